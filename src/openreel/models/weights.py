"""Where a model's weights come from: a tiny build in the openreel folder, the Hugging Face cache
(downloading into it when the hub can be reached), or a local folder in diffusers layout.

Every path that fails says what to do next in one paragraph, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from openreel import paths
from openreel.errors import SpecError, UnknownModelError, WeightsMissingError
from openreel.models.catalog import CARDS, FAMILIES, ModelCard, get_card

# diffusers pipeline class prefixes -> family, for local folders that carry no openreel card.
_CLASS_PREFIXES = {
    "CogVideoX": "cogvideox",
    "Mochi": "mochi",
    "LTX2": "ltx2",  # before "LTX": the first prefix that matches wins
    "LTX": "ltx",
    "Wan": "wan",
    "HunyuanVideo": "hunyuan",
    "PyramidFlow": "pyramid-flow",
}


def tiny_folder(card: ModelCard) -> Path:
    return paths.models_dir() / card.id


def ensure_tiny(card: ModelCard) -> Path:
    """Build the tiny model once; later runs load the saved copy like any other weights.

    Built in a temporary folder and renamed into place, so a crash or a second worker building
    at the same time never leaves a half-written model behind.
    """
    folder = tiny_folder(card)
    stamp = _twin_stamp(card)
    if (folder / "model_index.json").is_file():
        if _read_stamp(folder) == stamp:
            return folder
        # Built by an older openreel (another reference or shrink rule): set it aside and rebuild,
        # rather than load weights that no longer fit the card.
        stale = folder.with_name(f".{folder.name}-stale-{os.getpid()}")
        with contextlib.suppress(OSError):  # another worker may have moved it first
            os.rename(folder, stale)
        shutil.rmtree(stale, ignore_errors=True)
    from openreel.models.twins import build_twin

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{card.id}-", dir=folder.parent))
    try:
        with _no_library_progress_bars():
            build_twin(card).save_pretrained(staging)
        (staging / _STAMP_FILE).write_text(stamp + "\n", encoding="utf-8")
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / "model_index.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


# Bump when twins.py or a family's twin_sizes changes what a twin is built of.
TWIN_FORMAT = 2
_STAMP_FILE = "openreel-twin.txt"


def _twin_stamp(card: ModelCard) -> str:
    """What a saved twin was built from: the twin format and its card's reference file."""
    import hashlib

    from openreel.models.reference import reference_path

    digest = hashlib.sha256(f"{TWIN_FORMAT}:{card.id}:{card.twin_of}".encode())
    if card.twin_of:
        digest.update(reference_path(card.twin_of).read_bytes())
    return digest.hexdigest()[:16]


def _read_stamp(folder: Path) -> str | None:
    try:
        return (folder / _STAMP_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None


@contextmanager
def _no_library_progress_bars() -> Iterator[None]:
    """transformers draws a "Writing model shards" bar for each text encoder it saves: a second's
    build of a tiny model is no news to a person waiting for a video."""
    from transformers.utils import logging as transformers_logging

    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def upsampler_folder(card: ModelCard) -> Path:
    """LTX-Video's latent upsampler pipeline folder: built beside a tiny model, else the card's
    ``latent_upsampler`` repository from the Hugging Face cache (downloaded when missing)."""
    if card.is_tiny:
        folder = tiny_folder(card) / "latent_upsampler"
        if not (folder / "model_index.json").is_file():
            from diffusers import AutoencoderKLLTXVideo

            from openreel.models.twins import build_twin_upsampler

            staging = Path(tempfile.mkdtemp(prefix=".latent_upsampler-", dir=ensure_tiny(card)))
            try:
                vae = AutoencoderKLLTXVideo.from_pretrained(tiny_folder(card) / "vae")
                with _no_library_progress_bars():
                    build_twin_upsampler(card, vae).save_pretrained(staging)
                try:
                    os.rename(staging, folder)
                except OSError:
                    if not (folder / "model_index.json").is_file():
                        raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return folder
    repo = card.options.get("latent_upsampler")
    if not repo:
        raise SpecError(f"{card.id} has no latent upsampler", param="model")
    return hub_folder(replace(card, source=f"hub:{repo}", revision=None, options={}))


def missing_weights_message(card: ModelCard, reason: str) -> str:
    repo = card.hub_repo
    if card.revision and repo:
        # A recipe (or --model ID@REVISION) pins this exact commit; another one will not do.
        return (
            f"Revision {card.revision} of {repo} ({card.id}) is not in the Hugging Face cache "
            f"({_hf_cache_hint()}) and could not be downloaded ({reason}). Replaying a recipe loads "
            "the exact weights it was made with: download that revision where the hub can be reached "
            f"(`hf download {repo} --revision {card.revision}`), or give `--model {card.id}` without "
            "the recipe to use the cached revision (the frames will differ)."
        )
    return (
        f"The weights of {card.id} ({card.title}) are not on this machine and could not be "
        f"downloaded ({reason}). Download them where the Hugging Face hub can be reached with "
        f"`openreel models pull {card.id}` (they go into the Hugging Face cache, "
        f"{_hf_cache_hint()}), or point openreel at a folder that holds them in diffusers layout "
        f"with `--model /path/to/{repo.split('/')[-1] if repo else card.id}`. To try openreel "
        f"offline right now, use its tiny twin: `--model {_twin_id(card)}` (random weights: "
        "the video is noise, but every stage runs)."
        # Gated parts (LTX-2's Gemma text encoder) download only once their licence is accepted.
        + (f" {card.options['gated']}" if card.options.get("gated") else "")
    )


def _twin_id(card: ModelCard) -> str:
    from openreel.models.catalog import TINY_CARDS

    like = next((twin for twin in TINY_CARDS if twin.twin_of == card.id), None)
    like = like or next(twin for twin in TINY_CARDS if twin.family == card.family)
    return like.id


def _hf_cache_hint() -> str:
    return os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"


def hub_folder(card: ModelCard, *, download: bool = True) -> Path:
    """The snapshot folder of a hub card, from the cache or (if allowed) downloaded."""
    from huggingface_hub import snapshot_download

    repo = card.hub_repo
    assert repo is not None
    patterns = card.options.get("allow_patterns")
    try:
        return Path(
            snapshot_download(repo, revision=card.revision, allow_patterns=patterns, local_files_only=True)
        )
    except Exception as cached_error:  # noqa: BLE001 - any miss means "not cached"
        if not download:
            raise WeightsMissingError(
                missing_weights_message(card, "not in the Hugging Face cache"), param="model"
            ) from cached_error
    try:
        return Path(snapshot_download(repo, revision=card.revision, allow_patterns=patterns))
    except Exception as exc:  # noqa: BLE001 - offline, gated, no disk: all end the same way
        raise WeightsMissingError(missing_weights_message(card, _reason(exc)), param="model") from exc


def _reason(exc: Exception) -> str:
    """One short line from whatever huggingface_hub raised."""
    first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def is_downloaded(card: ModelCard) -> bool:
    if card.is_tiny:
        return (tiny_folder(card) / "model_index.json").is_file()
    marker = card.options.get("weights_marker", "model_index.json")
    if card.source.startswith("local:"):
        return Path(card.source.removeprefix("local:"), marker).is_file()
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(card.hub_repo, marker, revision=card.revision)
    return isinstance(found, str)


def card_for_folder(folder: Path) -> ModelCard:
    """A card for a local diffusers folder: ``openreel.json`` beside ``model_index.json`` may name
    the catalog card it is a copy of; otherwise the family's first card is the template."""
    from openreel.models.pyramid_flow.convert import is_official_layout, transformer_folder

    index = folder / "model_index.json"
    if not index.is_file() and is_official_layout(folder):
        # Pyramid Flow's published layout (not diffusers'): the card whose transformer is there.
        for card in CARDS:
            if (
                card.family == "pyramid-flow"
                and (folder / transformer_folder(card.options["resolution"])).is_dir()
            ):
                return replace(
                    card, id=str(folder), source=f"local:{folder}", title=f"{card.title} (local folder)"
                )
    if not index.is_file():
        raise SpecError(
            f"{folder} is neither a diffusers model folder (no model_index.json) nor a published "
            "Pyramid Flow folder",
            param="model",
        )
    base: ModelCard | None = None
    meta = folder / "openreel.json"
    if meta.is_file():
        base = get_card(json.loads(meta.read_text())["card"])
    else:
        class_name = json.loads(index.read_text()).get("_class_name", "")
        family = next((f for prefix, f in _CLASS_PREFIXES.items() if class_name.startswith(prefix)), None)
        if family is None:
            raise UnknownModelError(
                f"{folder} holds a {class_name or 'unknown'} pipeline; openreel runs these families: "
                f"{', '.join(FAMILIES)}",
                param="model",
            )
        # A dedicated checkpoint's pipeline class names its card (the first, for a class that
        # several share: openreel.json picks another); else the family's first card.
        base = next((card for card in CARDS if card.options.get("pipeline") == class_name), None) or next(
            card for card in CARDS if card.family == family
        )
    return replace(base, id=str(folder), source=f"local:{folder}", title=f"{base.title} (local folder)")


def resolve_card(model: str) -> ModelCard:
    """A catalog id, optionally pinned to a hub commit (``ID@REVISION``: a recipe's replay), or a
    path to a local folder."""
    candidate = Path(model).expanduser()
    if ("/" in model or model.startswith(".")) and candidate.is_dir():
        return card_for_folder(candidate.resolve())
    model_id, revision = split_revision(model)
    card = get_card(model_id)
    if revision is None:
        return card
    if not card.hub_repo:
        raise SpecError(f"{model_id} is not a Hugging Face model; it has no revision to pin", param="model")
    return replace(card, revision=revision)


def split_revision(model: str) -> tuple[str, str | None]:
    """``"ID@REVISION"`` -> (ID, REVISION); a model without ``@`` has no pinned revision."""
    model_id, sep, revision = model.partition("@")
    if sep and not revision:
        raise SpecError(f"{model!r} names no revision after '@'", param="model")
    return model_id, revision or None


def fingerprint(folder: Path) -> str:
    """What identifies weights that have no hub commit (tiny builds, local folders): a hash of
    model_index.json and every component's JSON configuration. It changes when the architecture or
    settings do; hashing every weight file of a 13B model on each run would take minutes."""
    import hashlib

    digest = hashlib.sha256()
    files = [folder / "model_index.json", *sorted(folder.glob("*/*.json"))]
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return f"sha256:{digest.hexdigest()}"


def weights_folder(card: ModelCard, *, download: bool = True) -> Path:
    if card.is_tiny:
        return ensure_tiny(card)
    if card.source.startswith("local:"):
        return Path(card.source.removeprefix("local:"))
    return hub_folder(card, download=download)


def pull(card: ModelCard) -> Path:
    """Download a hub card's weights into the Hugging Face cache (huggingface_hub shows progress)."""
    if card.is_tiny:
        return ensure_tiny(card)
    if not card.hub_repo:
        raise SpecError(f"{card.id} is a local folder; nothing to pull", param="model")
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                card.hub_repo, revision=card.revision, allow_patterns=card.options.get("allow_patterns")
            )
        )
    except Exception as exc:  # noqa: BLE001
        raise WeightsMissingError(
            f"could not download {card.hub_repo} ({_reason(exc)}). "
            "Check the network (the hub must be reachable), free disk space, and for gated models "
            "`hf auth login`.",
            param="model",
        ) from exc


# --- what is on disk: sizes and removal (the CLI's `models` and the studio's models view) ---------


def _hub_repo_folder(card: ModelCard) -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE) / f"models--{card.hub_repo.replace('/', '--')}"


def _card_matches(card: ModelCard, relative: str) -> bool:
    from fnmatch import fnmatch

    patterns = card.options.get("allow_patterns")
    return patterns is None or any(fnmatch(relative, pattern) for pattern in patterns)


def _snapshot_files(card: ModelCard) -> list[Path]:
    """The cached snapshot entries (links into the blobs) that belong to ``card``."""
    snapshots = _hub_repo_folder(card) / "snapshots"
    if not snapshots.is_dir():
        return []
    found = []
    for revision in snapshots.iterdir():
        for path in revision.rglob("*"):
            if (path.is_file() or path.is_symlink()) and _card_matches(
                card, path.relative_to(revision).as_posix()
            ):
                found.append(path)
    return found


def _folder_bytes(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    # Snapshot entries are links to the blobs: count each byte once.
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def disk_bytes(card: ModelCard) -> int:
    """Bytes this model's weights take on this machine (0 when nothing is there)."""
    if card.is_tiny:
        return _folder_bytes(tiny_folder(card))
    if card.source.startswith("local:"):
        return _folder_bytes(Path(card.source.removeprefix("local:")))
    blobs = {path.resolve() for path in _snapshot_files(card) if path.exists()}
    return sum(blob.stat().st_size for blob in blobs)


def remove(card: ModelCard) -> int:
    """Delete a model's weights from this machine; returns the bytes freed.

    A hub repository that other catalog cards share (Pyramid Flow's 384p and 768p) keeps the
    files those cards also need; a folder the person gave is theirs, never deleted here."""
    if card.source.startswith("local:"):
        raise SpecError(
            f"{card.source.removeprefix('local:')} is a folder you gave openreel; delete it yourself "
            "if you no longer need it",
            param="model",
        )
    if card.is_tiny:
        folder = tiny_folder(card)
        freed = _folder_bytes(folder)
        if not freed:
            raise SpecError(
                f"{card.id} is not built on this machine: there is nothing to remove", param="model"
            )
        shutil.rmtree(folder)
        return freed
    files = _snapshot_files(card)
    if not files:
        raise SpecError(f"{card.id} is not downloaded: there is nothing to remove", param="model")
    siblings = [other for other in CARDS if other.hub_repo == card.hub_repo and other.id != card.id]
    if not siblings:
        folder = _hub_repo_folder(card)
        freed = _folder_bytes(folder)
        shutil.rmtree(folder)
        return freed
    return _remove_own_files(card, files, siblings)


def _remove_own_files(card: ModelCard, files: list[Path], siblings: list[ModelCard]) -> int:
    """Delete the snapshot entries only ``card`` uses, and each blob nothing else links to."""
    shared = {path.resolve() for other in siblings for path in _snapshot_files(other)}
    freed = 0
    for path in files:
        blob = path.resolve()
        if blob in shared:
            continue
        freed += blob.stat().st_size if blob.is_file() else 0
        path.unlink()
        if blob != path and blob.is_file():
            blob.unlink()
    return freed
