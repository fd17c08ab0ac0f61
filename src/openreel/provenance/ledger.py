"""Every manifest this installation signed, filed by the watermark payload its file carries.

A platform that re-encodes a video strips its C2PA manifest but (usually) keeps the mark; the
mark's payload, read with the installation's key, finds the manifest here again. One JSON file
per payload under ``home()/manifests``: a video, its thumbnail and its spritesheet share one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from openreel import paths


def ledger_dir() -> Path:
    return paths.home() / "manifests"


def _path(payload: bytes) -> Path:
    return ledger_dir() / f"{payload.hex()}.json"


def record(payload: bytes, *, file: str, manifest: dict[str, Any], signer: str | None = None) -> None:
    """File ``manifest`` (as signed into ``file``) under ``payload``; earlier entries stay."""
    folder = ledger_dir()
    folder.mkdir(parents=True, exist_ok=True)
    entries = lookup(payload) or []
    entries.append(
        {
            "file": file,
            "signed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "signer": signer,
            "manifest": manifest,
        }
    )
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ledger-")
    with os.fdopen(fd, "w") as fh:
        json.dump(entries, fh, indent=1)
    os.replace(tmp, _path(payload))


def lookup(payload: bytes) -> list[dict[str, Any]] | None:
    try:
        return json.loads(_path(payload).read_text())
    except FileNotFoundError:
        return None
