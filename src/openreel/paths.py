"""The openreel folder: ``$OPENREEL_HOME``, default ``~/.openreel``.

It holds tiny model builds, user style presets, the LoRAs a server offers, the default SQLite job
database, job outputs, and the provenance keys. Everything that reads a location asks here, so
tests can point the whole program at a temporary folder with one environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    root = Path(os.environ.get("OPENREEL_HOME") or Path.home() / ".openreel").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    return home() / "models"


def styles_dir() -> Path:
    return home() / "styles"


def loras_dir() -> Path:
    """LoRAs a server offers: API requests name a file or folder here, never a path."""
    return home() / "loras"


def outputs_dir() -> Path:
    return home() / "outputs"
