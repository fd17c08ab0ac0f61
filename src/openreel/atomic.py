"""Whole files or none: every output (video, still, recipe, signed file) is written to a
temporary name beside its destination and renamed when complete.

Kept free of heavy imports so signing and recipes can use it without loading PyAV.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


def temp_path(path: Path) -> Path:
    # Same folder, so the final rename is atomic on the same filesystem; the real suffix is kept
    # last, so anything that picks a format by suffix (PyAV, Pillow, c2pa) still sees it.
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")


def commit(temp: Path, path: Path) -> None:
    """Move a finished temporary file onto ``path``, keeping the mode of a file it replaces."""
    with contextlib.suppress(OSError):
        os.chmod(temp, path.stat().st_mode & 0o7777)
    # fsync before the rename: after a power cut the name must not point at an empty file.
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path`` (keeping
    the mode of a file it replaces), on any exception it is removed and the exception propagates.
    ``path`` never holds a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path)
    try:
        yield temp
        commit(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
