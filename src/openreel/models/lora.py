"""LoRAs: small weight deltas a person adds to a model (a look, a subject, a step-distilled turbo).

They load through diffusers' own loaders (``pipe.load_lora_weights(file, adapter_name=...)``,
``set_adapters`` for the scales) and are unloaded after the run, so the warm pipeline makes the
plain model's frames again. Before anything loads, the file's tensor names say which family it
was trained for: a Wan LoRA on LTX-Video is one clear error naming Wan, not a stack trace.

A LoRA is ``{"source": FILE_OR_HUB_ID, "scale": float}`` in the spec (``--lora SOURCE[:SCALE]``).
Its author and licence come from a sidecar JSON (``<file>.json`` or ``<stem>.json``) or the
safetensors metadata, else "unknown", and are credited like the model's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from openreel.errors import SpecError
from openreel.provenance.credits import LoraCredit

MAX_LORAS = 8
MAX_SCALE = 10.0
UNKNOWN = "unknown"
FAMILY_TITLES = {
    "wan": "Wan",
    "ltx": "LTX-Video",
    "ltx2": "LTX-2",
    "cogvideox": "CogVideoX",
    "mochi": "Mochi",
    "hunyuan": "HunyuanVideo",
    "pyramid-flow": "Pyramid Flow",
}
# Prefixes trainers put before the transformer's own module names (diffusers, ComfyUI, kohya, peft).
_PREFIXES = ("transformer.", "diffusion_model.", "model.diffusion_model.", "base_model.model.",
             "lora_unet_", "lora_transformer_")  # fmt: skip
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w./-]+\.safetensors)?$")
_AUTHOR_KEYS = ("author", "authors", "modelspec.author", "ss_author", "creator")
_LICENCE_KEYS = ("licence", "license", "modelspec.license", "modelspec.licence")


def parse_lora(text: str) -> dict[str, Any]:
    """``"style.safetensors:0.8"`` -> {"source": "style.safetensors", "scale": 0.8}; no scale is 1.0.

    Only a number after the last colon is a scale, so hub ids and Windows paths stay whole."""
    source, sep, tail = str(text).strip().rpartition(":")
    if sep and source:
        try:
            return {"source": source, "scale": float(tail)}
        except ValueError:
            pass
    return {"source": str(text).strip(), "scale": 1.0}


def check_entries(entries: Any) -> tuple[dict[str, Any], ...]:
    """The spec's LoRAs, checked for shape (not content: that needs the model card)."""
    if isinstance(entries, (str, dict)):
        entries = [entries]
    checked = []
    for entry in entries or ():
        entry = parse_lora(entry) if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or set(entry) - {"source", "scale"} or not entry.get("source"):
            raise SpecError(f"LoRA {entry!r} is not {{source, scale}} or SOURCE[:SCALE]", param="loras")
        try:
            scale = float(entry.get("scale", 1.0))
        except (TypeError, ValueError):
            raise SpecError(f"LoRA scale {entry.get('scale')!r} is not a number", param="loras") from None
        if not math.isfinite(scale) or abs(scale) > MAX_SCALE:
            raise SpecError(f"LoRA scale must be between -{MAX_SCALE:g} and {MAX_SCALE:g}", param="loras")
        checked.append({"source": str(entry["source"]), "scale": scale})
    if len(checked) > MAX_LORAS:
        raise SpecError(f"at most {MAX_LORAS} LoRAs (got {len(checked)})", param="loras")
    return tuple(checked)


def local_file(source: str) -> Path:
    """The safetensors file of a LoRA: a file, a folder holding one, or a Hugging Face Hub id
    (``owner/name`` or ``owner/name/file.safetensors``) fetched into the hub cache."""
    path = Path(source).expanduser()
    if path.is_file():
        return path.resolve()
    if path.is_dir():
        return _single_file(path, source)
    if not _HUB_ID.match(source):
        raise SpecError(f"LoRA {source!r} is neither a file nor a Hugging Face Hub id", param="loras")
    from huggingface_hub import snapshot_download

    repo = "/".join(source.split("/")[:2])
    filename = source[len(repo) + 1 :] or None
    try:
        patterns = [filename] if filename else ["*.safetensors", "*.json"]
        folder = snapshot_download(repo, allow_patterns=patterns)
    except Exception as exc:  # noqa: BLE001 - offline, missing, gated: all say the same to a person
        message = f"LoRA {source!r} cannot be fetched from the Hugging Face Hub: {exc}"
        raise SpecError(message, param="loras") from None
    return Path(folder) / filename if filename else _single_file(Path(folder), source)


def _single_file(folder: Path, source: str) -> Path:
    files = sorted(folder.glob("*.safetensors"))
    preferred = [f for f in files if f.name == "pytorch_lora_weights.safetensors"]
    if len(preferred or files) != 1:
        raise SpecError(
            f"LoRA {source!r} holds {len(files)} .safetensors files; name one of them", param="loras"
        )
    return (preferred or files)[0].resolve()


def _read(path: Path, source: str) -> tuple[list[str], dict[str, str]]:
    """The tensor names and metadata of a safetensors file, without loading its tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys, metadata = list(handle.keys()), dict(handle.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error to a person
        raise SpecError(f"LoRA {source!r} is not a readable safetensors file: {exc}", param="loras") from None
    if not any("lora" in key.lower() or key.endswith(".alpha") for key in keys):
        raise SpecError(f"LoRA {source!r} holds no LoRA weights (no lora_A/lora_B tensors)", param="loras")
    return keys, metadata


def _module_name(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def lora_family(keys: Iterable[str]) -> str | None:
    """The family a LoRA's tensor names belong to, where they say it unambiguously.

    Wan's transformer names its blocks ``blocks.N`` (diffusers ``attn1``, original ``self_attn``);
    LTX-Video, CogVideoX and Mochi use ``transformer_blocks.N``: LTX's blocks have a cross
    attention ``attn2``, Mochi's a joint ``add_q_proj``; HunyuanVideo adds single-stream blocks;
    LTX-2 has audio attention. A CogVideoX LoRA looks like a Mochi one missing ``add_*``: None.
    """
    names = [_module_name(key) for key in keys]
    tops = {re.split(r"[._]\d+[._]", name, maxsplit=1)[0] for name in names}
    joined = "\n".join(names)
    if "transformer_blocks" in tops and re.search(r"audio_(attn|to_video)|video_to_audio", joined):
        return "ltx2"
    if tops & {"single_transformer_blocks", "single_blocks", "double_blocks"}:
        return "hunyuan"
    if "blocks" in tops:
        return "wan"
    if "transformer_blocks" in tops:
        if re.search(r"[._]attn2[._]", joined):
            return "ltx"
        if re.search(r"add_[qkv]_proj", joined):
            return "mochi"
    return None


def title(family: str) -> str:
    return FAMILY_TITLES.get(family, family)


def check_fits(source: str, card: Any) -> Path:
    """The LoRA's file, checked to be a LoRA for ``card``'s family; a SpecError names the family
    it is for otherwise."""
    path = local_file(source)
    keys, _ = _read(path, source)
    family = lora_family(keys)
    if family is not None and family != card.family:
        raise SpecError(
            f"LoRA {source!r} is for {title(family)}, not {title(card.family)}: {card.id} cannot load "
            f"it; choose a {title(family)} model or a LoRA made for {title(card.family)}",
            param="loras",
        )
    return path


def credit(source: str) -> LoraCredit:
    """Author and licence from a sidecar JSON beside the file, else its safetensors metadata."""
    path = local_file(source)
    _, metadata = _read(path, source)
    for sidecar in (path.with_name(path.name + ".json"), path.with_suffix(".json")):
        if sidecar.is_file():
            try:
                data = json.loads(sidecar.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                metadata = {**metadata, **{k: v for k, v in data.items() if isinstance(v, (str, list))}}
            break
    # A file is named as it was given, not by where a link leads (the Hub cache's blobs are hashes).
    name = source if not Path(source).expanduser().exists() else Path(source).name
    return LoraCredit(id=name, author=_first(metadata, _AUTHOR_KEYS), licence=_first(metadata, _LICENCE_KEYS))


def family_of(source: str) -> str | None:
    """The family a LoRA was trained for, where its tensor names say (None otherwise)."""
    path = local_file(source)
    return lora_family(_read(path, source)[0])


def _first(metadata: dict[str, Any], keys: Sequence[str]) -> str:
    for key in keys:
        value = metadata.get(key)
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value)
        if value:
            return str(value)
    return UNKNOWN


def load_adapters(pipe: Any, card: Any, loras: Sequence[dict[str, Any]]) -> list[str]:
    """Load ``loras`` into ``pipe`` as adapters with their scales; returns the adapter names.
    A loader error (layers the model lacks, shapes that differ) becomes a SpecError, with
    whatever was loaded already unloaded again."""
    if not hasattr(pipe, "load_lora_weights"):
        raise SpecError(f"{card.id} ({title(card.family)}) cannot load LoRAs", param="loras")
    names: list[str] = []
    try:
        for number, lora in enumerate(loras):
            path = check_fits(lora["source"], card)
            _check_layers(lora["source"], card, path, getattr(pipe, "transformer", None))
            name = f"openreel_{number}"
            try:
                pipe.load_lora_weights(str(path), adapter_name=name)
            except Exception as exc:  # noqa: BLE001 - peft and diffusers raise many kinds
                raise SpecError(_mismatch(lora["source"], card, path, exc), param="loras") from None
            names.append(name)
        pipe.set_adapters(names, [float(lora["scale"]) for lora in loras])
    except BaseException:
        unload_adapters(pipe)
        raise
    return names


def _check_layers(source: str, card: Any, path: Path, transformer: Any) -> None:
    """A diffusers-format LoRA's layers must all be the model's: diffusers only warns about the
    rest and loads a part (a LoRA of a deeper model of the same family, say)."""
    if transformer is None:
        return
    keys, _ = _read(path, source)
    wanted = {
        key[len("transformer.") :].split(".lora_")[0]
        for key in keys
        if key.startswith("transformer.") and ".lora_" in key
    }
    missing = sorted(wanted - {name for name, _ in transformer.named_modules()})
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise SpecError(
            f"LoRA {source!r} does not fit {card.id} ({title(card.family)}): the model has no layer "
            f"{shown} (a LoRA for a larger {title(card.family)} model?)",
            param="loras",
        )


def _mismatch(source: str, card: Any, path: Path, exc: Exception) -> str:
    family = lora_family(_read(path, source)[0])
    made_for = f" (it looks made for {title(family)})" if family and family != card.family else ""
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return f"LoRA {source!r} does not fit {card.id} ({title(card.family)}){made_for}: {first_line}"


def unload_adapters(pipe: Any) -> None:
    """Remove every LoRA layer, so the pipeline is the plain model again."""
    if hasattr(pipe, "unload_lora_weights"):
        pipe.unload_lora_weights()
