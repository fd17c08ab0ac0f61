"""``verify(path)``: what a file says about where it came from.

Two independent witnesses: the C2PA manifest (present / valid / trusted / tampered, and its
claims) and the invisible watermark (found or not, payload, confidence). A file re-encoded by
another tool loses its manifest but usually keeps the watermark.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import SpecError
from openreel.provenance.c2pa import ManifestReport, read_manifest

if TYPE_CHECKING:
    from openreel.provenance.watermark import WatermarkResult

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
# Enough for ~20 fresh marks at the default spacing; decoding every frame of a long film
# would take minutes for no better answer.
MAX_FRAMES = 240


@dataclass
class VerifyReport:
    path: str
    kind: str  # "video" or "image"
    manifest: ManifestReport
    watermark: WatermarkResult

    @property
    def summary(self) -> str:
        m = self.manifest
        if not m.present:
            manifest = "no C2PA manifest"
        elif m.tampered:
            manifest = "C2PA manifest present but the file was changed after signing"
        elif m.trusted:
            manifest = "C2PA manifest valid and trusted"
        elif m.valid:
            manifest = "C2PA manifest valid, signer not trusted here"
        else:
            manifest = "C2PA manifest invalid"
        w = self.watermark
        mark = (
            f"watermark found (payload {w.payload.hex()}, confidence {w.confidence:.2f})"
            if w.found and w.payload
            else "no watermark found"
        )
        return f"{manifest}; {mark}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "summary": self.summary,
            "manifest": self.manifest.to_dict(),
            "watermark": self.watermark.to_dict(),
        }


def verify(path: Path, *, max_frames: int = MAX_FRAMES, anchors: str | None = None) -> VerifyReport:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path} is not a file", param="file")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        kind, frames = "image", _image_frames(path)
    elif suffix in VIDEO_SUFFIXES:
        kind, frames = "video", _video_frames(path, max_frames)
    else:
        raise SpecError(
            f"cannot verify {path.name}: expected a video ({', '.join(sorted(VIDEO_SUFFIXES))}) "
            f"or an image ({', '.join(sorted(IMAGE_SUFFIXES))})",
            param="file",
        )
    from openreel.provenance.watermark import Detector

    manifest = read_manifest(path, anchors=anchors)
    detector = Detector()
    try:
        for frame in frames:
            if min(frame.shape[:2]) >= 8:
                detector.add(frame)
    except Exception as exc:  # a file we cannot decode still gets its manifest reported
        if not _is_decode_error(exc):
            raise
    return VerifyReport(path=str(path), kind=kind, manifest=manifest, watermark=detector.result())


def _is_decode_error(exc: Exception) -> bool:
    import av
    from PIL import UnidentifiedImageError

    return isinstance(exc, (av.error.FFmpegError, UnidentifiedImageError, OSError))


def _image_frames(path: Path) -> Iterator[Any]:
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        yield np.asarray(image.convert("RGB"))


def _video_frames(path: Path, max_frames: int) -> Iterator[Any]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index >= max_frames:
                break
            yield video_luma(frame)


def video_luma(frame: Any) -> Any:
    """Full-range luma of a decoded ``av.VideoFrame``, read from its Y plane.

    Reading Y directly skips the YUV->RGB->luma round trip, whose result depends on whether the
    file's colour tags survived and which matrix the decoder guessed. Re-encoders pass Y through
    untouched, so this is the luma the watermark was written into (openreel encodes BT.709).
    """
    import numpy as np

    if not frame.format.name.startswith(("yuv", "yuvj", "nv12", "gray")):
        return frame.to_ndarray(format="rgb24")
    plane = frame.planes[0]
    ten_bit = frame.format.name.endswith("p10le")
    dtype = np.uint16 if ten_bit else np.uint8
    y = np.frombuffer(plane, dtype=dtype).reshape(frame.height, -1)[:, : frame.width].astype(np.float32)
    if ten_bit:
        y *= np.float32(1 / 4)  # to the 8-bit scale the mark was made on
    full_range = frame.color_range == 2 or frame.format.name.startswith("yuvj")
    if not full_range:
        y = (y - 16) * np.float32(255 / 219)
    return y
