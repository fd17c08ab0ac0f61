"""``verify(path)``: what a file says about where it came from.

Three witnesses: the C2PA manifest (present / valid / trusted / tampered, and its claims), the
invisible watermark (an openreel mark present or not, which anyone can tell; its payload, which
only this installation's key reads and verifies), and the ledger: the manifest this
installation signed for that payload, found again when a copy lost its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import SpecError
from openreel.provenance.c2pa import ManifestReport, read_manifest

if TYPE_CHECKING:
    from openreel.provenance.watermark import WatermarkResult

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
# The mark is the same on every frame: five seconds read as well as a film, and more would
# only cost time. Longer videos are sampled evenly.
MAX_FRAMES = 120


@dataclass
class VerifyReport:
    path: str
    kind: str  # "video" or "image"
    manifest: ManifestReport
    watermark: WatermarkResult
    # What this installation signed under the mark's payload (ledger entries), when it verified.
    record: list[dict[str, Any]] | None = field(default=None)

    @property
    def mark_summary(self) -> str:
        w = self.watermark
        if not w.found:
            return f"no watermark found ({w.reason})" if w.reason else "no watermark found"
        text = "AI-generated mark present (openreel watermark)"
        if w.authentic and w.payload:
            text += f"; made by this installation, video {w.payload.hex()}"
        elif w.readable:
            text += "; its payload does not verify with this installation's key (made elsewhere, or forged)"
        elif w.reason:  # the clip is too small or too short: say that, not "made elsewhere"
            text += f"; its payload could not be read: {w.reason}"
        else:
            text += "; its payload does not verify with this installation's key (damaged, or made elsewhere)"
        return text

    @property
    def record_summary(self) -> str | None:
        if not self.record:
            return None
        entry = next(
            (e for e in self.record if e.get("file", "").endswith(tuple(VIDEO_SUFFIXES))), self.record[0]
        )
        manifest = entry.get("manifest") or {}
        made = (manifest.get("claim_generator_info") or [{}])[0]
        text = f"signed here on {entry.get('signed_at')} as {entry.get('file')}"
        if made:
            text += f" by {made.get('name')} {made.get('version')}"
        for assertion in manifest.get("assertions", []):
            if assertion.get("label") == "org.openreel.credits":
                text += f", model {(assertion['data'].get('model') or {}).get('id')}"
            if assertion.get("label") == "org.openreel.prompt":
                text += f", prompt {assertion['data'].get('prompt')!r}"
        return text

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
        parts = [manifest, self.mark_summary]
        if self.record_summary and not m.present:
            parts.append(f"manifest on record: {self.record_summary}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "summary": self.summary,
            "manifest": self.manifest.to_dict(),
            "watermark": self.watermark.to_dict(),
            "record": self.record,
        }


def verify(
    path: Path, *, max_frames: int = MAX_FRAMES, anchors: str | None = None, key: bytes | None = None
) -> VerifyReport:
    """Check ``path``'s manifest and watermark; ``key`` defaults to this installation's secret."""
    from openreel.provenance import ledger

    path = Path(path)
    kind = _kind(path)
    manifest = read_manifest(path, anchors=anchors)
    mark = read_watermark(path, max_frames=max_frames, key=key)
    record = ledger.lookup(mark.payload) if mark.authentic and mark.payload else None
    return VerifyReport(path=str(path), kind=kind, manifest=manifest, watermark=mark, record=record)


def _kind(path: Path) -> str:
    if not path.is_file():
        raise SpecError(f"{path} is not a file", param="file")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise SpecError(
        f"cannot verify {path.name}: expected a video ({', '.join(sorted(VIDEO_SUFFIXES))}) "
        f"or an image ({', '.join(sorted(IMAGE_SUFFIXES))})",
        param="file",
    )


def read_watermark(path: Path, *, max_frames: int = MAX_FRAMES, key: bytes | None = None) -> WatermarkResult:
    """The watermark in ``path``, read in one streaming pass over at most ``max_frames`` frames.
    A file that cannot be decoded gives ``found=False`` with the reason, never a guess."""
    from openreel.provenance.watermark import Detector

    path = Path(path)
    frames = _image_frames(path) if _kind(path) == "image" else _video_frames(path, max_frames)
    detector = Detector(key=key)
    try:
        for frame in frames:
            detector.add(frame)
    except Exception as exc:  # a file we cannot decode still gets its manifest reported
        if not _is_decode_error(exc):
            raise
        result = detector.result() if detector.frames_examined else None
        if result is None or not result.found:
            from openreel.provenance.watermark import WatermarkResult

            return WatermarkResult(
                False, None, 0.0, detector.frames_examined, 0, reason=f"cannot decode {path.name}: {exc}"
            )
        return result
    return detector.result()


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
        stride = max(1, (stream.frames or 0) // max_frames)
        taken = 0
        for index, frame in enumerate(container.decode(stream)):
            if taken >= max_frames:
                break
            if index % stride == 0:
                taken += 1
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
