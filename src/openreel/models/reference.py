"""Reference configurations: what each real card's published checkpoint is made of, as data.

``families/reference/<card id>.json`` names the pipeline class and, for every component, its class,
its published configuration (with where it was read) and, where one is published, the parameter
figure it must match. ``params`` holds the parameter counts of the components built from those
configurations at full size on the meta device (no weights, no memory): the planner's memory and
time figures come from them. ``python -m openreel.models.reference`` rewrites them after a
configuration changes; a test checks they are current.

Reading a reference needs only ``json``; building from one imports torch lazily.
"""

from __future__ import annotations

import importlib
import json
from functools import cache
from pathlib import Path
from typing import Any

REFERENCE_DIR = Path(__file__).parent / "families" / "reference"

# Components that hold no weights: configured, but not counted.
WEIGHTLESS = ("scheduler", "guider", "tokenizer", "tokenizer_2", "image_processor", "feature_extractor")


def reference_path(card_id: str) -> Path:
    return REFERENCE_DIR / f"{card_id}.json"


def has_reference(card_id: str) -> bool:
    return reference_path(card_id).is_file()


@cache
def load_reference(card_id: str) -> dict[str, Any]:
    path = reference_path(card_id)
    if not path.is_file():
        raise FileNotFoundError(f"no reference configuration for {card_id!r} ({path})")
    return json.loads(path.read_text(encoding="utf-8"))


def reference_ids() -> list[str]:
    return sorted(path.stem for path in REFERENCE_DIR.glob("*.json"))


def model_components(reference: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The components that carry weights (transformers, VAEs, encoders, upsamplers)."""
    return {
        name: component
        for name, component in reference["components"].items()
        if name not in WEIGHTLESS and "config" in component
    }


def resolve_class(name: str) -> type:
    """A component class by name: diffusers' or transformers' exported classes, or a dotted path
    (openreel's native ports)."""
    if "." in name:
        module, _, attribute = name.rpartition(".")
        return getattr(importlib.import_module(module), attribute)
    import diffusers
    import transformers

    for library in (diffusers, transformers):
        if hasattr(library, name):
            return getattr(library, name)
    raise ValueError(f"no class {name!r} in diffusers or transformers")


def instantiate(component: dict[str, Any], config: dict[str, Any] | None = None) -> Any:
    """One component from its reference entry (or ``config`` in its place), on the current device."""
    cls = resolve_class(component["class"])
    values = component["config"] if config is None else config
    if "config_class" in component:
        return cls(resolve_class(component["config_class"])(**values))
    return cls.from_config(values)


def meta_param_counts(reference: dict[str, Any]) -> dict[str, int]:
    """Parameters of each weighted component built at full size on the meta device."""
    import torch

    counts = {}
    for name, component in model_components(reference).items():
        with torch.device("meta"):
            model = instantiate(component)
        counts[name] = sum(parameter.numel() for parameter in model.parameters())
    return counts


def param_counts(card_id: str) -> dict[str, int]:
    """The recorded full-size parameter counts of a card's components (empty without a reference)."""
    if not has_reference(card_id):
        return {}
    return dict(load_reference(card_id).get("params", {}))


def transformer_shape(card_id: str) -> tuple[int, int] | None:
    """(width, depth) of the card's denoiser: attention width and the number of blocks."""
    if not has_reference(card_id):
        return None
    config = load_reference(card_id)["components"].get("transformer", {}).get("config", {})
    heads, head_dim = config.get("num_attention_heads"), config.get("attention_head_dim")
    depth = sum(config.get(key, 0) for key in ("num_layers", "num_single_layers"))
    if not heads or not head_dim or not depth:
        return None
    return heads * head_dim, depth


def write_params(card_ids: list[str] | None = None) -> None:
    """Record the meta-device parameter counts in each reference file."""
    for card_id in card_ids or reference_ids():
        path = reference_path(card_id)
        reference = json.loads(path.read_text(encoding="utf-8"))
        reference["params"] = meta_param_counts(reference)
        path.write_text(json.dumps(reference, indent=2) + "\n", encoding="utf-8")
        print(f"{card_id}: {reference['params']}")
    load_reference.cache_clear()


if __name__ == "__main__":
    import sys

    write_params(sys.argv[1:] or None)
