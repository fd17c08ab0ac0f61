"""Inputs of the editing modes: a reference image, a source clip. Checked by content, with errors
that say what is wrong, and read into the frames the pipelines take.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from openreel.errors import SpecError

if TYPE_CHECKING:
    import numpy as np

# Decompression bombs: a small file that decodes to billions of pixels. 50 megapixels is far
# beyond any frame a video model takes.
MAX_IMAGE_PIXELS = 50_000_000
MAX_CLIP_SECONDS = 120.0


@dataclass(frozen=True)
class ClipInfo:
    width: int
    height: int
    fps: float
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def load_image(
    path: str | Path, width: int, height: int, *, contain: bool = False, param: str = "image"
) -> np.ndarray:
    """The image as one float frame (1, height, width, 3) in [0, 1]: scaled to cover, centre-cropped.
    ``contain``: scaled to fit within width x height instead, its own aspect kept (a reference
    image of a character must not lose its head to a crop)."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"image {path} does not exist", param=param)
    try:
        with Image.open(path) as probe:
            if probe.width * probe.height > MAX_IMAGE_PIXELS:
                raise SpecError(
                    f"image {path.name} is {probe.width}x{probe.height}: more than "
                    f"{MAX_IMAGE_PIXELS // 10**6} megapixels",
                    param=param,
                )
            probe.verify()
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            if contain:
                fitted = ImageOps.contain(image, (width, height), Image.Resampling.LANCZOS)
            else:
                fitted = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise SpecError(f"{path.name} is not a readable image ({exc})", param=param) from None
    return (np.asarray(fitted, dtype=np.float32) / 255.0)[None]


def probe_clip(path: str | Path) -> ClipInfo:
    """Size, fps and frame count of a source clip, or a clear error."""
    import av

    path = Path(path)
    if not path.is_file():
        raise SpecError(f"video {path} does not exist", param="video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SpecError(f"{path.name} has no video stream", param="video")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = stream.frames or sum(1 for _ in container.decode(stream))
            width, height = stream.codec_context.width, stream.codec_context.height
    except av.error.FFmpegError as exc:
        raise SpecError(f"{path.name} is not a readable video ({exc})", param="video") from None
    if fps <= 0 or frames <= 0:
        raise SpecError(f"{path.name} has no frames", param="video")
    info = ClipInfo(width, height, fps, frames)
    if info.seconds > MAX_CLIP_SECONDS:
        raise SpecError(
            f"{path.name} is {info.seconds:.0f} s; the limit is {MAX_CLIP_SECONDS:.0f} s", param="video"
        )
    return info


def clip_frames(
    path: str | Path, *, width: int, height: int, fps: int, num_frames: int
) -> Iterator[np.ndarray]:
    """The clip's frames as uint8 RGB at exactly width x height, fps and num_frames (streaming)."""
    from openreel.render.encode import read_frames
    from openreel.render.post import conform

    info = probe_clip(path)
    return conform(
        read_frames(path), src_fps=info.fps, width=width, height=height, fps=fps, num_frames=num_frames
    )


def clip_at(path: str | Path, *, width: int, height: int, fps: int) -> np.ndarray:
    """The whole clip as float frames (F, height, width, 3) in [0, 1] at ``fps`` (for the model
    size: small, and needed whole as a condition or a remix source)."""
    import numpy as np

    info = probe_clip(path)
    count = max(1, round(info.seconds * fps))
    frames = list(clip_frames(path, width=width, height=height, fps=fps, num_frames=count))
    return np.stack(frames).astype(np.float32) / 255.0
