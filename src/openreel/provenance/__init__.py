"""Provenance: every output says what made it, and anyone can check.

- ``watermark_frames`` marks frames before encoding with a payload naming this installation
  and the video (``make_payload``);
- ``sign_file`` adds a signed C2PA manifest (model, style, credits; the prompt only if the owner
  opts in) to an MP4, JPEG, PNG or WebP;
- ``verify`` reads both back.

Importing this package is cheap: c2pa, PyAV and PyWavelets load on first use.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel import paths
from openreel.provenance.credits import Credits, LoraCredit

# Imported here, not on first call: importing the submodule ``verify`` binds that name on this
# package, which would shadow the function below it if it happened later.
from openreel.provenance.verify import VerifyReport, verify

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "Credits",
    "LoraCredit",
    "VerifyReport",
    "installation_id",
    "make_payload",
    "payload_matches",
    "sign_file",
    "verify",
    "watermark_frames",
]

# 3 bytes say which installation made a video, 5 which video: enough that an installation can
# make ~10^4 videos before two share a tag with any real chance (~5e-5).
_INSTALLATION_BYTES = 3
_VIDEO_BYTES = 5


def installation_id() -> str:
    """A random id for this openreel folder, made on first use (home()/"installation-id")."""
    path = paths.home() / "installation-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".installation-id.")
    with os.fdopen(fd, "w") as fh:
        fh.write(uuid.uuid4().hex + "\n")
    try:
        # link, not rename: if another process got there first, its id wins and stays.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


def make_payload(installation_id: str, video_id: str) -> bytes:
    """The 8-byte watermark payload: a hash of the installation id, then of the video id."""
    inst = hashlib.sha256(installation_id.encode()).digest()[:_INSTALLATION_BYTES]
    video = hashlib.sha256(video_id.encode()).digest()[:_VIDEO_BYTES]
    return inst + video


def payload_matches(payload: bytes, *, installation_id: str, video_id: str | None = None) -> bool:
    """Whether ``payload`` came from this installation (and this video, when given)."""
    want = make_payload(installation_id, video_id or "")
    if video_id is None:
        return payload[:_INSTALLATION_BYTES] == want[:_INSTALLATION_BYTES]
    return payload == want


def watermark_frames(frames: Iterable[np.ndarray], payload: bytes) -> Iterator[np.ndarray]:
    """Stream RGB uint8 frames through the watermark (see ``watermark.watermark_frames``)."""
    from openreel.provenance import watermark

    return watermark.watermark_frames(frames, payload)


def sign_file(
    path: Path,
    *,
    credits: Credits,
    action: str = "c2pa.created",
    parents: Sequence[Path] = (),
    prompt: str | None = None,
    watermark: bytes | None = None,
    label: dict[str, Any] | None = None,
) -> None:
    """``c2pa.sign_file``: ``watermark`` is the payload the frames carry (None: read it back from
    the file, a decode; ``b""``: none), ``label`` the visible label laid on them, if any."""
    from openreel.provenance import c2pa

    c2pa.sign_file(
        path, credits=credits, action=action, parents=parents, prompt=prompt, watermark=watermark, label=label
    )
