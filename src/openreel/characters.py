"""Characters: named reference images that keep a person or creature across videos.

The CLI keeps them in ``$OPENREEL_HOME/characters/<name>/`` (the server keeps its own, per API
key, in its database). How a character conditions a video depends on the model, and that rule
lives here for both: a model that takes reference images (Wan VACE: ``references`` in its modes)
is conditioned on them throughout; any other image-to-video model starts from the first one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from openreel import paths
from openreel.errors import SpecError, UnsupportedModeError
from openreel.models.catalog import ModelCard, all_cards
from openreel.spec import MAX_REFERENCES

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


def conditions(card: ModelCard, images: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """(start image, reference images) for a character on ``card``."""
    if not images:
        raise SpecError("the character has no reference images", param="character")
    if "references" in card.modes:
        return None, tuple(images[:MAX_REFERENCES])
    if "i2v" in card.modes:
        return images[0], ()
    able = [c.id for c in all_cards() if "references" in c.modes or "i2v" in c.modes]
    raise UnsupportedModeError(
        f"{card.id} can start from neither an image nor reference images; models that can: {', '.join(able)}",
        param="character",
    )


def folder(name: str) -> Path:
    return paths.home() / "characters" / name


def create(name: str, images: Sequence[Path]) -> Path:
    """Keep ``images`` (checked by content) under ``name``; replaces a character of that name."""
    import shutil
    import tempfile

    from openreel.render.inputs import load_image

    if not _NAME.match(name):
        raise SpecError(
            f"character name {name!r}: 1-64 letters, digits, spaces, '.', '_' or '-'", param="name"
        )
    if not 1 <= len(images) <= MAX_REFERENCES:
        raise SpecError(f"give 1 to {MAX_REFERENCES} reference images (got {len(images)})", param="images")
    for image in images:
        load_image(image, 64, 64)  # readable, not a decompression bomb
    target = folder(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        kept = []
        for number, image in enumerate(images, start=1):
            copy = staging / f"{number:02d}{Path(image).suffix.lower() or '.png'}"
            shutil.copyfile(image, copy)
            kept.append(copy.name)
        (staging / "character.json").write_text(json.dumps({"name": name, "images": kept}, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def images_of(name: str) -> list[str]:
    record = folder(name) / "character.json"
    if not record.is_file():
        known = sorted(
            p.name for p in (paths.home() / "characters").glob("*") if (p / "character.json").is_file()
        )
        raise SpecError(
            f"no character {name!r}; make one with `openreel character create --name {name} IMAGE...`"
            + (f" (known: {', '.join(known)})" if known else ""),
            param="character",
        )
    return [str(folder(name) / image) for image in json.loads(record.read_text())["images"]]


def all_names() -> list[str]:
    root = paths.home() / "characters"
    return sorted(p.name for p in root.glob("*") if (p / "character.json").is_file()) if root.is_dir() else []
