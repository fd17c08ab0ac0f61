"""Encoder: streaming H.264 MP4 through PyAV, plus the thumbnail and spritesheet.

Every file here is written under a temporary name in its destination folder and renamed when
whole (``atomic_path``), so a crash, a cancel or a full disk never leaves a half-written video
where a client could download it.

The MP4s are what players and browsers expect without guessing: H.264 High, yuv420p, converted
to and tagged as BT.709 limited range (an untagged or BT.601-converted file shifts colours in
some players), moov atom first (``+faststart``, so playback starts before the download ends),
a time base of 1/fps with one tick per frame (exact fps, exact frame count).

With ``audio=True`` the MP4 also holds an AAC track (48 kHz stereo, ``render.audio``): its
timestamps count samples in the stream's 1/48000 time base from 0, the first frame's time, and it
lasts as long as the video (padded with silence or cut, to within one AAC frame of 1024 samples).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np

from openreel.atomic import atomic_path, commit, temp_path

if TYPE_CHECKING:
    import av.audio.stream
    import av.container
    import av.video.stream

    from openreel.render.audio import Audio

# x264's output depends on its thread count (measured: 1, 2, 4 and 8 threads give four different
# files from the same 720p frames), and "auto" follows the machine's core count. A fixed count
# takes the core count out of the output (x264's SIMD paths are meant to be bit-exact with its C
# code; only this 2-core machine was measured). Four gives ~60-70 fps at 1080p here; encoding is
# a small part of a generation either way.
X264_THREADS = 4


@functools.lru_cache(maxsize=1)
def _x264_params() -> str:
    """Extra x264 settings for reproducible output on this CPU.

    x264's AVX-512 code reads memory it never initialised: measured on an AVX-512 AMD EPYC, from
    one in ten to one in three encodes of the same frames came out different (at any thread
    count, including 1; more often under load), and none of several hundred with AVX-512 left
    out (x264's ``asm`` setting; plain C code was deterministic too). So on CPUs that have it, x264 is limited
    to AVX2 and below (every AVX-512 CPU has those; speed was the same within noise). Elsewhere
    x264 detects the CPU itself.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return "asm=AVX2" if "avx512bw" in line.split() else ""
    except OSError:
        pass
    return ""


# ffprobe's names for the colour values we write and commonly read back.
_PRIMARIES = {1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 12: "smpte432"}
_TRC = {
    1: "bt709",
    2: "unknown",
    6: "smpte170m",
    8: "linear",
    13: "iec61966-2-1",
    14: "bt2020-10",
    16: "smpte2084",
    18: "arib-std-b67",
}
_COLORSPACE = {0: "gbr", 1: "bt709", 2: "unknown", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc"}
_RANGE = {0: "unknown", 1: "tv", 2: "pc"}


# ---------------------------------------------------------------------------------------------
# Atomic writes


# ---------------------------------------------------------------------------------------------
# Writing video


def _check_size(width: int, height: int) -> None:
    # yuv420p stores one chroma sample per 2x2 block: odd sides cannot be encoded as asked.
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(
            f"video width and height must be positive and even for yuv420p, got {width}x{height}"
        )


class VideoWriter:
    """Streaming H.264 MP4 writer: ``write`` one (H, W, 3) uint8 RGB frame at a time.

    The file appears at ``path`` only on ``close``; ``abort`` (or leaving a ``with`` block by an
    exception) removes the partial file. Identical frames give identical bytes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        width: int,
        height: int,
        fps: int,
        crf: int = 20,
        preset: str = "veryfast",
        lossless: bool = False,
        audio: bool = False,
    ) -> None:
        import av

        _check_size(width, height)
        # Lossless (x264 qp 0) re-encodes already decoded YUV frames bit for bit: a re-cut.
        self._lossless = lossless
        if int(fps) != fps or fps <= 0:
            raise ValueError(f"fps must be a positive whole number, got {fps}")
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, int(fps)
        self.frames = 0
        # The sound, set any time before ``close`` (a lazily made clip knows it only at the end);
        # with ``audio=True`` and none set, the track is silent.
        self.audio: Audio | None = None
        self._time_base = Fraction(1, self.fps)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temp = temp_path(self.path)
        self._container: av.container.OutputContainer | None = av.open(
            str(self._temp), mode="w", format="mp4", options={"movflags": "+faststart"}
        )
        try:
            self._stream = self._add_stream(crf, preset)
            # Streams must all exist before the first packet is written: the track is added now.
            self._audio_stream = self._add_audio_stream() if audio else None
        except BaseException:
            self.abort()
            raise

    def _add_stream(self, crf: int, preset: str) -> av.video.stream.VideoStream:
        from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

        assert self._container is not None
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = self._time_base
        context = stream.codec_context
        context.time_base = self._time_base
        context.thread_count = X264_THREADS
        # Tags in the stream (the VUI of the H.264 headers) and in the container's colr box; the
        # pixels themselves are converted with the same matrix in ``write``.
        context.color_primaries = ColorPrimaries.BT709
        context.color_trc = ColorTrc.BT709
        context.colorspace = Colorspace.ITU709
        context.color_range = ColorRange.MPEG
        options = {"qp": "0", "preset": preset} if self._lossless else {"crf": str(crf), "preset": preset}
        if _x264_params():
            options["x264-params"] = _x264_params()
        context.options = options
        return stream

    def _add_audio_stream(self) -> av.audio.stream.AudioStream:
        from openreel.render.audio import RATE

        assert self._container is not None
        stream = self._container.add_stream("aac", rate=RATE)
        stream.layout = "stereo"
        stream.format = "fltp"
        stream.time_base = Fraction(1, RATE)
        stream.codec_context.time_base = Fraction(1, RATE)
        stream.codec_context.options = {"b": "192k"}
        return stream

    def _write_audio(self) -> None:
        """The whole track: the set sound at 48 kHz, fitted to the video's duration."""
        import av

        from openreel.render.audio import AAC_FRAME, RATE, Audio

        assert self._container is not None and self._audio_stream is not None
        sound = (self.audio or Audio.silence(0.0)).resampled(RATE)
        samples = sound.fit_samples(round(self.frames * RATE / self.fps)).samples
        time_base = Fraction(1, RATE)
        for offset in range(0, samples.shape[1], AAC_FRAME):
            chunk = np.ascontiguousarray(samples[:, offset : offset + AAC_FRAME])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, offset, time_base
            self._container.mux(self._audio_stream.encode(frame))
        self._container.mux(self._audio_stream.encode(None))

    def write(self, frame: np.ndarray) -> None:
        if self._container is None:
            raise RuntimeError("VideoWriter is closed")
        if (
            not isinstance(frame, np.ndarray)
            or frame.dtype != np.uint8
            or frame.ndim != 3
            or frame.shape[2] != 3
        ):
            raise ValueError(
                "frames must be uint8 RGB numpy arrays shaped (H, W, 3), got "
                f"{type(frame).__name__} {getattr(frame, 'dtype', '')} {getattr(frame, 'shape', '')}"
            )
        if frame.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"frame is {frame.shape[1]}x{frame.shape[0]} but the video is {self.width}x{self.height}"
            )
        self.write_yuv(_to_yuv420p(frame))

    def write_yuv(self, frame: av.VideoFrame) -> None:
        """Write an already converted BT.709 yuv420p frame (a decoded frame of another video: no
        colour conversion happens, so with ``lossless`` its pixels are kept exactly)."""
        if self._container is None:
            raise RuntimeError("VideoWriter is closed")
        if (frame.width, frame.height) != (self.width, self.height) or frame.format.name != "yuv420p":
            raise ValueError(
                f"frame is {frame.width}x{frame.height} {frame.format.name}; the video is "
                f"{self.width}x{self.height} yuv420p"
            )
        frame.pts = self.frames
        frame.time_base = self._time_base
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> Path:
        """Flush the encoder, finish the file and rename it onto ``path``."""
        if self._container is None:
            raise RuntimeError("VideoWriter is closed")
        if self.frames == 0:
            self.abort()
            raise ValueError("no frames were written; an empty video is not written")
        try:
            self._container.mux(self._stream.encode(None))
            if self._audio_stream is not None:
                self._write_audio()
            self._container.close()  # with +faststart this rewrites the file, moov first
            self._container = None
            commit(self._temp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and remove the partial file; nothing is left behind. Safe to call twice."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif self._container is not None:
            self.close()


def _to_yuv420p(frame: np.ndarray) -> av.VideoFrame:
    import av
    from av.video.reformatter import ColorPrimaries, ColorRange, Colorspace, ColorTrc

    rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    # The BT.709 matrix into limited range, matching the stream's tags; PyAV's implicit
    # conversion in ``encode`` would use BT.601 and make players shift every colour.
    return rgb.reformat(
        format="yuv420p",
        dst_colorspace=Colorspace.ITU709,
        dst_color_range=ColorRange.MPEG,
        dst_color_trc=ColorTrc.BT709,
        dst_color_primaries=ColorPrimaries.BT709,
    )


def encode_video(
    frames: Iterable[np.ndarray], path: str | os.PathLike[str], *, fps: int, crf: int = 20
) -> Path:
    """Encode ``frames`` (uint8 RGB, (H, W, 3), all one size) to an H.264 MP4 at ``path``.
    The size is taken from the first frame."""
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise ValueError("encode_video got no frames")
    if getattr(first, "ndim", None) != 3:
        raise ValueError(f"frames must be shaped (H, W, 3), got {getattr(first, 'shape', None)}")
    with VideoWriter(path, width=first.shape[1], height=first.shape[0], fps=fps, crf=crf) as writer:
        writer.write(first)
        for frame in iterator:
            writer.write(frame)
    return Path(path)


# ---------------------------------------------------------------------------------------------
# Reading video


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, in ffprobe's vocabulary (colour names as ffprobe prints them)."""

    codec: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    color_primaries: str
    color_trc: str
    colorspace: str
    color_range: str
    faststart: bool  # moov before mdat: playback can start while downloading


def _top_level_boxes(path: Path) -> Iterator[str]:
    """The types of an MP4's top-level boxes, in file order (reads headers only)."""
    size_on_disk = path.stat().st_size
    with open(path, "rb") as handle:
        offset = 0
        while offset + 8 <= size_on_disk:
            handle.seek(offset)
            header = handle.read(16)
            size = int.from_bytes(header[:4], "big")
            kind = header[4:8].decode("latin-1")
            if size == 1:  # 64-bit size follows
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:  # box runs to the end of the file
                size = size_on_disk - offset
            if size < 8:
                return
            yield kind
            offset += size


def _is_faststart(path: Path) -> bool:
    for kind in _top_level_boxes(path):
        if kind in ("moov", "mdat"):
            return kind == "moov"
    return False


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe the first video stream of ``path``."""
    import av

    path = Path(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        # MP4 stores the count; other containers may not, so count packets then.
        frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
        return VideoInfo(
            codec=context.name,
            pix_fmt=context.pix_fmt or "",
            width=context.width,
            height=context.height,
            fps=float(rate) if rate else 0.0,
            frames=frames,
            duration=duration,
            color_primaries=_name(_PRIMARIES, context.color_primaries),
            color_trc=_name(_TRC, context.color_trc),
            colorspace=_name(_COLORSPACE, context.colorspace),
            color_range=_name(_RANGE, context.color_range),
            faststart=_is_faststart(path),
        )


def _name(names: dict[int, str], value: int | None) -> str:
    if value is None:
        return "unknown"
    return names.get(int(value), str(int(value)))


def read_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode ``path``'s first video stream to uint8 RGB (H, W, 3) frames, one at a time,
    honouring the file's colour matrix and range tags."""
    import av
    from av.video.reformatter import ColorRange, Colorspace

    known_spaces = {int(space) for space in Colorspace}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            space = int(frame.colorspace)
            if space == 6:  # SMPTE 170M is BT.601's matrix under another name
                space = int(Colorspace.ITU601)
            elif space not in known_spaces:
                # Untagged: players assume BT.709 for HD and BT.601 for SD; so do we.
                space = int(Colorspace.ITU709 if frame.height >= 720 else Colorspace.ITU601)
            color_range = (
                frame.color_range
                if frame.color_range in (ColorRange.MPEG, ColorRange.JPEG)
                else ColorRange.MPEG
            )
            yield frame.reformat(
                format="rgb24", src_colorspace=space, src_color_range=color_range
            ).to_ndarray()


# ---------------------------------------------------------------------------------------------
# Stills


_STILL_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def _still_format(path: Path) -> str:
    try:
        return _STILL_FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"a thumbnail or spritesheet must be .jpg, .jpeg or .webp, got {path.name!r}"
        ) from None


def write_thumbnail(frame: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Save one uint8 RGB frame as JPEG or WebP (chosen by ``path``'s suffix), atomically."""
    from PIL import Image

    path = Path(path)
    image_format = _still_format(path)
    image = Image.fromarray(np.ascontiguousarray(frame), mode="RGB")
    with atomic_path(path) as temp:
        image.save(temp, format=image_format, quality=90)
    return path


def _sample_indices(count: int, slots: int) -> list[int]:
    # The middle of each of ``slots`` equal stretches of time: tile i stands for the i-th part
    # of the clip, which is what a scrubbing preview wants.
    return [min(count - 1, int((i + 0.5) * count / slots)) for i in range(min(slots, count))]


def write_spritesheet(
    frames: Sequence[np.ndarray] | Iterable[np.ndarray],
    path: str | os.PathLike[str],
    *,
    columns: int = 5,
    rows: int = 5,
    tile_width: int = 160,
) -> Path:
    """A ``columns`` x ``rows`` grid of evenly sampled frames, ``tile_width`` wide each (height by
    the frames' aspect), left to right then top to bottom; saved as JPEG (or WebP by suffix).

    The grid is always ``columns`` x ``rows`` so a player can compute tile positions from the
    size alone; with fewer frames than tiles the remaining tiles stay black. A plain iterable
    (not a sequence) is read once and only small tiles are kept from it.
    """
    from PIL import Image

    path = Path(path)
    image_format = _still_format(path)
    if columns <= 0 or rows <= 0 or tile_width <= 0:
        raise ValueError(
            f"columns, rows and tile_width must be positive, got {columns}, {rows}, {tile_width}"
        )
    slots = columns * rows

    def tile(frame: np.ndarray) -> Image.Image:
        height, width = frame.shape[:2]
        tile_height = max(1, round(tile_width * height / width))
        # reducing_gap: box-reduce first, then lanczos over the last 2x: ~5 ms a 1080p frame.
        return Image.fromarray(np.ascontiguousarray(frame), mode="RGB").resize(
            (tile_width, tile_height), Image.Resampling.LANCZOS, reducing_gap=2.0
        )

    if isinstance(frames, (Sequence, np.ndarray)):
        tiles = [tile(frames[i]) for i in _sample_indices(len(frames), slots)]
    else:
        every = [tile(frame) for frame in frames]  # small tiles only, never the full frames
        tiles = [every[i] for i in _sample_indices(len(every), slots)]
    if not tiles:
        raise ValueError("write_spritesheet got no frames")

    tile_height = tiles[0].height
    sheet = Image.new("RGB", (columns * tile_width, rows * tile_height))
    for index, image in enumerate(tiles):
        sheet.paste(image, ((index % columns) * tile_width, (index // columns) * tile_height))
    with atomic_path(path) as temp:
        sheet.save(temp, format=image_format, quality=85)
    return path
