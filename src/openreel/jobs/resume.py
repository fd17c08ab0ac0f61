"""What a job whose worker died leaves for its rerun.

A worker that dies after denoising has written the variation's latents (``*.latents.pt``, saved
before each VAE decode) and, for the variations it finished, whole signed files listed in the
recipe. A rerun keeps exactly those and removes everything else (temporary files of a write that
never finished), so a 15-minute denoise is decoded again rather than redone, and nothing
half-written can ever be served. It only reads names and the recipe's JSON (no torch).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from openreel.render.latents import SUFFIX as LATENTS_SUFFIX  # imports torch only when it saves

RECIPE_NAME = "video.json"


def finished_files(directory: Path) -> set[str]:
    """The recipe and the files of the variations it lists, where all of them are on disk."""
    recipe = directory / RECIPE_NAME
    try:
        data = json.loads(recipe.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    kept: set[str] = set()
    for entry in data.get("variations", []) if isinstance(data, dict) else []:
        if not isinstance(entry, dict):
            continue
        names = [entry.get(key) for key in ("video", "thumbnail", "spritesheet")]
        if all(isinstance(name, str) and "/" not in name and (directory / name).is_file() for name in names):
            kept.update(names)
    return kept | {RECIPE_NAME} if kept else set()


def keep_for_rerun(directory: Path) -> bool:
    """Remove all but saved latents and finished variations from ``directory``; True when
    something was kept to resume from (the whole folder goes otherwise)."""
    if not directory.is_dir():
        return False
    kept = finished_files(directory) | {p.name for p in directory.glob(f"*{LATENTS_SUFFIX}") if p.is_file()}
    if not kept:
        shutil.rmtree(directory, ignore_errors=True)
        return False
    for path in directory.iterdir():
        if path.name in kept:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return True
