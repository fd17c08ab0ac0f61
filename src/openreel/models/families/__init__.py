"""One small module per model family, diffusers-style: which pipeline class serves which mode, how
the weights are loaded (with the card's family options applied), and how a Plan becomes the keyword
arguments of ``pipe(...)``. Everything model-specific lives in these modules; the Runner is
family-agnostic and calls only ``PIPELINES``, ``load_pipeline`` and ``call_arguments``.

Each module imports torch and diffusers inside its functions, so importing one is cheap.
"""

from __future__ import annotations

import importlib
import types

from openreel.models.catalog import FAMILIES


def family_module(name: str) -> types.ModuleType:
    """The module ``openreel.models.families.<name>``."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known families: {', '.join(FAMILIES)}")
    # Family names may hold hyphens ("pyramid-flow"); module names use underscores.
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
