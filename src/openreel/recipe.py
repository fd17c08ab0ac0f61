"""The recipe: a JSON file beside every output that says exactly how it was made.

``openreel generate --recipe FILE`` replays it: the stored spec carries the resolved model and the
first seed, so the same machine makes the same frames bit for bit.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from openreel import __version__
from openreel.atomic import atomic_path
from openreel.errors import RecipeError, SpecError
from openreel.spec import VideoSpec

FORMAT = "openreel.recipe/1"


def build_recipe(
    spec: VideoSpec,
    plan: Any,
    model: dict[str, Any],
    variations: list[dict[str, Any]],
    credits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "openreel_version": __version__,
        "created_at": int(time.time()),
        "spec": spec.to_dict(),
        "model": model,
        "plan": plan.to_dict(),
        "variations": variations,
        "credits": credits or {},
    }


def write_recipe(path: Path, recipe: dict[str, Any]) -> Path:
    """Write atomically: a reader never sees half a recipe."""
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
    return path


def read_recipe(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror or exc}", param="recipe") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecipeError(f"recipe {path} is not valid JSON: {exc}", param="recipe") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("spec"), dict):
        raise RecipeError(
            f'{path} is not an openreel recipe (expected "format": "{FORMAT}" and a spec)', param="recipe"
        )
    return data


def spec_from_recipe(recipe: dict[str, Any]) -> VideoSpec:
    """The spec to replay: a hub model pinned to the revision the recipe was made with
    (``ID@REVISION``), so a newer download in the cache does not change the frames."""
    try:
        spec = VideoSpec.from_dict(recipe["spec"]).validated()
    except SpecError as exc:
        raise RecipeError(f"the recipe's spec is invalid: {exc.message}", param="recipe") from None
    except TypeError as exc:
        raise RecipeError(f"the recipe's spec is invalid: {exc}", param="recipe") from None
    # The GPUs it ran on are this machine's to choose: the frames are the same on any count.
    spec = replace(spec, gpus=None)
    model = recipe.get("model")
    if not isinstance(model, dict):
        return spec
    revision, source = model.get("revision"), str(model.get("source", ""))
    if revision and source.startswith("hub:") and spec.model == model.get("id") and "@" not in spec.model:
        spec = replace(spec, model=f"{spec.model}@{revision}")
    return spec
