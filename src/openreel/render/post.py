"""Post: turn the frames a model made into exactly the frames that were asked for.

A model works at its native size and frame rate; a person asks for a size, an fps and a number
of seconds. ``conform`` bridges the two in one streaming pass through an in-process ffmpeg
filter graph (PyAV), so a long 1080p clip is never held in memory as a whole, let alone as
floats: frames go in one at a time and come out one at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import av.filter

# ffmpeg's minterpolate in motion-compensated mode: the settings ffmpeg's documentation gives
# for smoother results (adaptive overlapped blocks, bidirectional search, variable-size blocks).
_MINTERPOLATE = "mi_mode=mci:mc_mode=aobmc:me_mode=bidir:vsbmc=1"


def float_to_uint8(frames: np.ndarray) -> Iterator[np.ndarray]:
    """Convert a pipeline's float video (T, H, W, 3) in [0, 1] to uint8 frames, one at a time.

    Frame by frame on purpose: converting the whole array at once would make a second full-size
    float copy of a clip that may already fill most of the memory.
    """
    if getattr(frames, "ndim", None) != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected float frames shaped (T, H, W, 3), got {getattr(frames, 'shape', None)}")
    for frame in frames:
        yield np.clip(np.rint(np.asarray(frame, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def cover_size(src_width: int, src_height: int, width: int, height: int) -> tuple[int, int]:
    """The size to scale a src_width x src_height frame to so that it covers width x height while
    keeping its aspect ratio; the centre crop then removes the overflow on one axis only."""
    scale = max(width / src_width, height / src_height)
    return max(width, round(src_width * scale)), max(height, round(src_height * scale))


def conform(
    frames: Iterable[np.ndarray],
    *,
    src_fps: float,
    width: int,
    height: int,
    fps: int,
    num_frames: int,
    interpolate: bool = False,
) -> Iterator[np.ndarray]:
    """Scale, crop and retime ``frames`` (uint8 RGB, (H, W, 3)) to exactly ``num_frames`` frames of
    ``width`` x ``height`` at ``fps``, streaming.

    - Size: lanczos scale to cover the target keeping the aspect ratio, then a centre crop.
    - Time: ffmpeg's ``fps`` filter (drops or repeats frames by timestamp), or with
      ``interpolate=True`` ffmpeg's ``minterpolate`` (motion-compensated new frames).
    - Count: trimmed to ``num_frames``; if the filters return fewer (minterpolate drops a few at
      the end), the last frame is repeated.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    if fps <= 0 or src_fps <= 0 or int(fps) != fps:
        raise ValueError(f"fps must be a positive whole number and src_fps positive, got {fps}, {src_fps}")
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    return _conform(iter(frames), src_fps, width, height, int(fps), num_frames, interpolate)


def _conform(
    frames: Iterator[np.ndarray],
    src_fps: float,
    width: int,
    height: int,
    fps: int,
    num_frames: int,
    interpolate: bool,
) -> Iterator[np.ndarray]:
    first = next(frames, None)
    if first is None:
        raise ValueError("conform got no frames")
    src_height, src_width = _check_frame(first, None)

    # Exact rates as fractions: a float like 23.976 becomes 2997/125 rather than a rounded int.
    src_rate = Fraction(src_fps).limit_denominator(10_000)
    resize = (src_width, src_height) != (width, height)
    retime = src_rate != fps

    second = next(frames, None)
    if second is None:
        # minterpolate returns nothing at all for a single frame; a still needs no motion anyway.
        interpolate = False

    def source() -> Iterator[np.ndarray]:
        yield first
        if second is None:
            return
        for frame in itertools.chain([second], frames):
            _check_frame(frame, (src_height, src_width))
            yield frame

    if resize or retime:
        filtered = _filter(source(), src_width, src_height, src_rate, width, height, fps, interpolate)
    else:
        filtered = source()

    count = 0
    last: np.ndarray | None = None
    for frame in filtered:
        yield frame
        last = frame
        count += 1
        if count == num_frames:
            # Stop pulling: the rest of the input (and the graph's work on it) is not needed.
            return
    if last is None:
        raise RuntimeError("the ffmpeg filters returned no frames")
    for _ in range(num_frames - count):
        yield last


def _check_frame(frame: np.ndarray, shape: tuple[int, int] | None) -> tuple[int, int]:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            "frames must be uint8 RGB numpy arrays shaped (H, W, 3), got "
            f"{type(frame).__name__} {getattr(frame, 'dtype', '')} {getattr(frame, 'shape', '')}"
        )
    if shape is not None and frame.shape[:2] != shape:
        raise ValueError(
            f"frame size changed mid-stream: {frame.shape[1]}x{frame.shape[0]}, "
            f"expected {shape[1]}x{shape[0]}"
        )
    return frame.shape[0], frame.shape[1]


def _filter(
    frames: Iterator[np.ndarray],
    src_width: int,
    src_height: int,
    src_rate: Fraction,
    width: int,
    height: int,
    fps: int,
    interpolate: bool,
) -> Iterator[np.ndarray]:
    import av

    resize = (src_width, src_height) != (width, height)
    retime = src_rate != fps
    # Scaling runs on planar RGB (gbrp): swscale's lanczos is about twice as fast there as on
    # packed rgb24, and PyAV converts gbrp to and from (H, W, 3) RGB arrays itself.
    pix_fmt = "gbrp" if resize else "rgb24"
    time_base = 1 / src_rate

    graph = av.filter.Graph()
    nodes: list[av.filter.context.FilterContext] = [
        graph.add_buffer(width=src_width, height=src_height, format=pix_fmt, time_base=time_base)
    ]
    size_nodes: list[tuple[str, str]] = []
    if resize:
        scaled_w, scaled_h = cover_size(src_width, src_height, width, height)
        size_nodes.append(("scale", f"w={scaled_w}:h={scaled_h}:flags=lanczos"))
        if (scaled_w, scaled_h) != (width, height):
            size_nodes.append(
                ("crop", f"w={width}:h={height}:x={(scaled_w - width) // 2}:y={(scaled_h - height) // 2}")
            )
    time_nodes: list[tuple[str, str]] = []
    if retime:
        time_nodes.append(
            ("minterpolate", f"fps={fps}:{_MINTERPOLATE}") if interpolate else ("fps", f"fps={fps}")
        )

    # Order for the least work: motion interpolation at the smaller of the two sizes (its cost
    # grows with pixels); dropping frames before scaling them, duplicating only after.
    time_first = (width * height >= src_width * src_height) if interpolate else (fps < src_rate)
    for name, args in (time_nodes + size_nodes) if time_first else (size_nodes + time_nodes):
        nodes.append(graph.add(name, args))
    # minterpolate works in YUV; convert back so every frame leaves in the format we read.
    nodes.append(graph.add("format", f"pix_fmts={pix_fmt}"))
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()

    def drain() -> Iterator[np.ndarray]:
        while True:
            try:
                yield graph.vpull().to_ndarray()
            except av.error.BlockingIOError:  # needs more input
                return
            except av.error.EOFError:  # flushed
                return

    def push(array: np.ndarray, pts: int) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=pix_fmt)
        frame.pts = pts
        frame.time_base = time_base
        # The fps filter needs the last frame's duration to know how long it lasts: without it
        # a 3 s clip at 16 fps comes out one frame short of 72 at 24 fps.
        frame.duration = 1
        graph.vpush(frame)

    count, last = 0, None
    for count, last in enumerate(frames, start=1):
        push(last, count - 1)
        yield from drain()
    if retime and interpolate and last is not None:
        # minterpolate only makes frames up to the one before the last input (it needs a frame
        # after to move towards): 67 of 72 for 24 frames at 8 -> 24 fps. Holding the last frame
        # one more tick lets it interpolate all the way to the last real frame (70 of 72); the
        # caller holds it for the rest, as the fps filter does.
        push(last, count)
        yield from drain()
    graph.vpush(None)
    yield from drain()
