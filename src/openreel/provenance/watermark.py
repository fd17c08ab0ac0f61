"""An invisible watermark that survives resizing, cropping, re-encoding and retiming.

The mark lives in *normalised* frame coordinates (u, v in 0..1 across the picture), so a
rescale to any size or aspect leaves it where it was; only a crop moves it, and the detector
searches for that. It is the same on every frame, so a change of frame rate, a cut at either
end or dropped frames leave every remaining frame carrying all of it, and the detector
averages frames: a long clip reads better than a short one, and moving content averages away.

The mark is a smooth luma pattern (the same change on R, G and B), made of three parts:

- **sync stripes**: a public pseudo-random sequence of ``SYNC_CELLS`` vertical stripes plus
  another of horizontal ones. A column (row) mean of the picture keeps the vertical
  (horizontal) stripes and averages the rest away, so scale and offset are found one axis at a
  time by a 1-D correlation over the crops allowed (``MIN_VISIBLE`` to 1 of each axis);
- **pilot cells**: a third of a ``GRID`` x ``GRID`` grid of cells, with public signs. Once the
  stripes have placed the grid, the pilots' correlation says whether a mark is there, with a
  known false-alarm rate (``PRESENCE_Z``): anyone with openreel can tell an openreel mark;
- **data cells**: the other two thirds carry the 104-bit code word of ``markcode``
  (encrypted payload, HMAC tag, CRC), each bit on ~15 cells spread over the frame. Reading
  the payload, and making one that verifies, needs the installation's watermark secret.

Cells and stripes are bicubic bumps a few pixels wide at the smallest sizes allowed, low
enough in frequency that H.264 and VP9 keep them at CRF 30, and the pattern is computed once
per frame size: marking costs one saturating add per frame.

Small or short clips: the 104 bits share the frame's pixels, and each bit is read as a mean over
its ~15 cells and the clip's frames. On textured content the picture's own cell means are larger
than the mark's (texture noise per bit, not the grid, is what limits a read: a plain mark lost
the payload of coarse moving texture below about 270 rows, though its presence held). So frames
up to 720p are marked *informed* (``_Informed``): the picture's own lean on every code bit is read
the way the detector will read it, and the bits it leans against are laid stronger to cancel it,
on runs of adjacent frames (which share their texture: up to INFORMED_RUN frames at 720p, one
frame at a time on small frames) so that its cost stays a small share of the encode. The
layout and the detector are unchanged (marks laid before this read as before).
Measured through openreel's H.264 encode (CRF 20) and ``verify``, 24 frames: the payload reads
down to 128x96 on smooth and on textured content; after a re-encode at CRF 28 it reads from
240x144 on textured and from 320x180 on smooth content (whose weak cells the encoder flattens),
and 8 frames suffice from 180 rows. A read that fails on a clip under RELIABLE_SIDE rows or
RELIABLE_FRAMES frames says "too small" / "too few frames to carry a payload reliably"
(``WatermarkResult.reason``) instead of "does not verify".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from openreel.provenance import markcode

PAYLOAD_BYTES = markcode.PAYLOAD_BYTES
CODE_BITS = markcode.CODE_BITS
# Kept for callers that spaced fresh marks: the mark is now the same on every frame.
EVERY = 1

GRID = 48  # pilot + data cells per axis
SYNC_CELLS = 64  # stripes per axis
# Luma levels (0..255) of the stripes and of the cells, before rounding. PSNR ~42 dB.
SYNC_AMPLITUDE = 1.0
CELL_AMPLITUDE = 2.0
# Texture hides a stronger mark and drowns a weak one: the amplitude grows with the local
# detail (high-passed luma std over TEXTURE_UNIT levels) up to MAX_GAIN times, re-measured
# every GAIN_EVERY frames (a mark that holds still costs an encoder almost nothing).
TEXTURE_UNIT = 12.0
MAX_GAIN = 3.0
GAIN_EVERY = 24
MIN_VISIBLE = 0.78  # a crop may keep as little as this share of each axis (10% a side, and some)
# Frames smaller than this on either side carry too few pixels per cell to read.
MIN_SIDE = 96
# Below this many pixels on the short side, or this many frames, a re-encode at CRF 28 can take
# the payload (see "Small or short clips" above): a read that fails there says so instead of a
# bare "none found" or "does not verify".
RELIABLE_SIDE = 180
RELIABLE_FRAMES = 8
# Informed embedding (see ``_Informed``) on frames up to 720p: where few pixels carry each bit, the
# picture's own content is what drowns it; larger frames have pixels enough and skip its cost.
INFORMED_MAX_PIXELS = 1280 * 720
# At 720p this many adjacent frames (which share their texture) share one informed change,
# measured on three of them; smaller frames share fewer (``_run_length``). 10 s of 720p coarse
# texture (bench/watermark.py): informed per frame, 6.5 s against a 4.2 s x264 encode; in runs of
# 24, 0.6 s against 2.4 s, what the plain mark costs on smooth 720p (the encode is that fast here).
INFORMED_RUN = 24
# Informed embedding runs only on stretches whose picture leans on the bits by more than this
# share of the mark (spread over the bits, measured when the texture gain is): smooth content
# leans ~0.03-0.1 at 720p (and marks plain, at no extra cost), coarse texture 0.3-1.4.
INFORMED_MIN_LEAN = 0.15
# A data bit's cells grow to at most this many times their plain strength to outvote the picture.
MAX_BOOST = 4.0
# How much of a frame's lean against a bit the boost cancels: more than all of it, since an
# encode weakens the mark (measured: 1.0 left the textured 10%-crop at CRF 28 at 99% of bits).
LEAN_CANCEL = 1.5

_SEED = 0x0BE11
_WORK = 256  # the detector's working picture: every frame is resampled to WORK x WORK
_REF = 1024  # samples of the reference stripe profile across the frame
_SCALE_STEP = 0.004
# Cells are read over their whole width (measured: the middle alone loses bits under crops),
# after a high-pass of about three cells that takes the picture's own shading away.
_INNER = 0.5
_HIGHPASS = 15
_CLIP_SIGMAS = 2.0
_CANDIDATES = 3  # per axis, tried in pairs against the pilots
# Pilot correlation in noise sigmas above which a mark is declared present. Noise gives a
# normal score; the detector tries (_CANDIDATES + 1)**2 placements, so a clean clip passes with
# probability ~16 * 1e-9 (bench/watermark.py measures it on clean and other-key clips).
PRESENCE_Z = 6.0


@dataclass
class WatermarkResult:
    found: bool  # an openreel mark is present (anyone can tell; no key needed)
    payload: bytes | None  # the 8-byte payload, only when it verified under the key
    confidence: float  # 0..1: mean estimated probability that each code bit is right
    frames_examined: int
    frames_marked: int  # frames that went into a found mark (all examined ones, or 0)
    readable: bool = False  # the code word's CRC checks
    authentic: bool = False  # ... and its tag verifies under the key given
    presence_z: float = 0.0  # pilot correlation in noise sigmas
    scale: tuple[float, float] | None = None  # visible share of the marked frame (x, y)
    offset: tuple[float, float] | None = None  # where the visible part starts (x, y)
    reason: str | None = None  # why nothing could be read (too small, too short)
    bits: np.ndarray | None = field(default=None, repr=False)  # code bits as read

    def to_dict(self) -> dict[str, object]:
        return {
            "found": self.found,
            "authentic": self.authentic,
            "readable": self.readable,
            "payload": self.payload.hex() if self.payload else None,
            "confidence": round(self.confidence, 4),
            "presence_z": round(self.presence_z, 2),
            "scale": [round(s, 4) for s in self.scale] if self.scale else None,
            "offset": [round(s, 4) for s in self.offset] if self.offset else None,
            "frames_examined": self.frames_examined,
            "frames_marked": self.frames_marked,
            "reason": self.reason,
        }


# --- the pattern -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    stripes_x: np.ndarray  # SYNC_CELLS signs
    stripes_y: np.ndarray
    pilot: np.ndarray  # GRID*GRID bool: which cells are pilots
    sign: np.ndarray  # GRID*GRID +-1: pilot sign, or the data cell's whitening sign
    bit_of_cell: np.ndarray  # GRID*GRID int: the code bit a data cell carries (-1 for pilots)


@lru_cache(maxsize=1)
def _layout() -> _Layout:
    rng = np.random.default_rng(_SEED)
    stripes_x = rng.choice([-1.0, 1.0], SYNC_CELLS)
    stripes_y = rng.choice([-1.0, 1.0], SYNC_CELLS)
    cells = GRID * GRID
    order = rng.permutation(cells)
    pilot = np.zeros(cells, dtype=bool)
    pilot[order[: cells // 3]] = True
    data = order[cells // 3 :]
    bit_of_cell = np.full(cells, -1, dtype=np.int64)
    # A permutation of a cyclic assignment: every bit gets the same share, spread over the frame.
    bit_of_cell[data] = rng.permutation(np.arange(len(data)) % CODE_BITS)
    sign = rng.choice([-1.0, 1.0], cells)
    return _Layout(stripes_x, stripes_y, pilot, sign, bit_of_cell)


def _resize(values: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bicubic resampling of a small float grid to ``height`` x ``width``: sample i of the grid
    sits at the centre of the i-th 1/n of the output, as the normalised coordinates say."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")
    return np.array(image.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)


def _stripe_profile(signs: np.ndarray, length: int) -> np.ndarray:
    return _resize(signs[None, :], length, 1)[0]


def pattern(code: np.ndarray, width: int, height: int) -> np.ndarray:
    """The luma change (float32, height x width) that carries ``code``."""
    layout = _layout()
    cells = np.where(layout.pilot, 1.0, 1.0 - 2.0 * code[np.maximum(layout.bit_of_cell, 0)]) * layout.sign
    out = _resize(cells.reshape(GRID, GRID) * CELL_AMPLITUDE, width, height)
    out += SYNC_AMPLITUDE * _stripe_profile(layout.stripes_x, width)[None, :]
    out += SYNC_AMPLITUDE * _stripe_profile(layout.stripes_y, height)[:, None]
    return out


class _Change:
    """A luma change ready to lay on frames: split into saturating uint8 steps once, so each
    frame costs four in-place passes (~2 ms at 1080p) instead of an int16 round trip (~10 ms)."""

    def __init__(self, delta: np.ndarray):
        # The same change on R, G and B is a change of luma only, whatever the luma weights;
        # split on one channel, then repeated (a third of the work of splitting three).
        steps = np.rint(delta).astype(np.int16)
        self.shape = delta.shape
        self.up = np.repeat(np.clip(steps, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        self.down = np.repeat(np.clip(-steps, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
        self.ceiling = 255 - self.up

    def apply(self, frame: np.ndarray) -> np.ndarray:
        # min(x, 255-u) + u == min(x + u, 255), and max(x, d) - d == max(x - d, 0): addition that
        # saturates instead of wrapping, with no wider type (the first pass makes the copy).
        out = np.minimum(frame, self.ceiling)
        out += self.up
        np.maximum(out, self.down, out=out)
        out -= self.down
        return out


def _check_frame(frame: np.ndarray, *, luma_ok: bool = False) -> None:
    rgb = frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    if not (rgb or (luma_ok and frame.ndim == 2)):
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")


def _key(key: bytes | None) -> bytes:
    if key is not None:
        return key
    from openreel.provenance import keys

    return keys.watermark_key()


def embed(frame: np.ndarray, payload: bytes, *, key: bytes | None = None) -> np.ndarray:
    """A copy of ``frame`` (RGB uint8) carrying ``payload`` (8 bytes) under ``key`` (default:
    this installation's watermark secret)."""
    return next(watermark_frames([frame], payload, key=key))


def _gain(frame: np.ndarray) -> np.ndarray:
    """How strongly to mark each part of ``frame`` (float32, full size): 1 where it is smooth, up
    to MAX_GAIN where texture hides the mark. Measured on every 4th pixel of green."""
    from PIL import Image

    height, width = frame.shape[:2]
    small = frame[::4, ::4, 1].astype(np.float32)
    detail = small - _box(_box(small, 3, 0), 3, 1)
    # Local std over about one cell (GRID cells across the frame, 4 pixels per sample).
    size = max(3, int(min(height, width) / GRID / 4) | 1)
    energy = _box(_box(detail * detail, size, 0), size, 1)
    gain = np.clip(np.sqrt(energy) / TEXTURE_UNIT, 1.0, MAX_GAIN).astype(np.float32)
    image = Image.fromarray(gain, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def watermark_frames(
    frames: Iterable[np.ndarray], payload: bytes, *, key: bytes | None = None, adaptive: bool = True
) -> Iterator[np.ndarray]:
    """Yield ``frames`` (RGB uint8) carrying ``payload``. The pattern is made once per frame
    size; with ``adaptive`` its strength follows the texture, measured every GAIN_EVERY frames,
    and frames up to INFORMED_MAX_PIXELS are marked informed (``_Informed``), a run of
    ``_run_length`` frames at a time (held back until the run is complete).
    Frames smaller than 16 pixels a side pass through unmarked."""
    code = markcode.encode(_key(key), payload)  # fails on a bad payload before the first frame
    marker = _Marker(code, adaptive)
    run: list[np.ndarray] = []
    for frame in frames:
        _check_frame(frame)
        if min(frame.shape[:2]) < 16:
            yield from marker.mark(run)
            run = []
            yield frame
            continue
        if run and run[0].shape != frame.shape:
            yield from marker.mark(run)
            run = []
        run.append(frame)
        if len(run) >= _run_length(frame.shape[0] * frame.shape[1]):
            yield from marker.mark(run)
            run = []
    yield from marker.mark(run)


def _run_length(pixels: int) -> int:
    """How many frames share one informed change: its cost (a full-size resample and a saturating
    step split, ~10 ms at 720p) is spread over up to INFORMED_RUN frames, in proportion to the
    frame's pixels, so small frames, whose texture shifts by a larger share of a cell from frame
    to frame, share fewer (under ~320x240, one frame at a time). A divisor of GAIN_EVERY, so every
    gain refresh falls on a run's first frame."""
    if pixels > INFORMED_MAX_PIXELS:
        return 1  # marked plain: nothing to share, nothing to hold back
    wanted = INFORMED_RUN * pixels / (1280 * 720)
    return max(n for n in (1, 2, 3, 4, 6, 8, 12, 24) if n <= max(1.0, min(wanted, INFORMED_RUN)))


class _Marker:
    """The state of one marked stream: the pattern of the current frame size, its texture gain
    and the informed embedding that goes with it."""

    def __init__(self, code: np.ndarray, adaptive: bool):
        self.code = code
        self.adaptive = adaptive
        self.size: tuple[int, int] | None = None
        self.count = 0  # frames marked at the current size
        self.measured = 0  # ... when the gain was last measured
        self.base: np.ndarray | None = None
        self.delta: np.ndarray | None = None  # the plain change, gain applied
        self.plain: _Change | None = None  # made when first needed
        self.informed: _Informed | None = None

    def mark(self, run: list[np.ndarray]) -> Iterator[np.ndarray]:
        """Mark a run of same-size frames (no longer than GAIN_EVERY) with one change."""
        if not run:
            return
        height, width = run[0].shape[:2]
        if self.size != (height, width):
            self.size, self.count, self.delta = (height, width), 0, None
            self.base = pattern(self.code, width, height)
        fresh = self.delta is None or self.count - self.measured >= GAIN_EVERY
        if fresh:
            self._refresh(run[0])
            self.measured = self.count
        self.count += len(run)
        change = None
        if self.informed is not None:
            lean = self.informed.lean(_sampled(run))
            if fresh and float(np.std(lean)) < INFORMED_MIN_LEAN:
                self.informed = None  # the picture barely leans on any bit: the plain mark will do
            else:
                change = self.informed.change(lean)
        if change is None:
            if self.plain is None:
                assert self.delta is not None
                self.plain = _Change(self.delta)
            change = self.plain
        for frame in run:
            yield change.apply(frame)

    def _refresh(self, frame: np.ndarray) -> None:
        assert self.base is not None
        height, width = frame.shape[:2]
        gain = _gain(frame) if self.adaptive else None
        self.delta = self.base * gain if gain is not None else self.base
        self.plain = None
        self.informed = None
        if gain is not None and height * width <= INFORMED_MAX_PIXELS:
            self.informed = _Informed(self.code, self.delta, gain)


def _sampled(run: list[np.ndarray]) -> list[np.ndarray]:
    """The frames of a run whose lean is measured: every frame of a run of up to 5, three or
    four evenly spaced ones of a longer run, since adjacent frames share their texture and the
    measure costs ~1.5-3 ms a 720p frame."""
    step = max(1, len(run) // 3)
    return run[step // 2 :: step]


class _Informed:
    """Informed embedding: per frame, what the detector will read of the frame's *own* content on
    each code bit (the picture leans for or against every bit by chance, and on textured frames
    that lean is larger than the mark), and a boost of just the bits it leans against, enough to
    cancel it. The layout and the detector are unchanged: a boosted bit is the same cells, laid
    stronger on those frames. Cost per run of frames (``_run_length``): a small resample of a few
    of them, a high-pass on the detector's working picture, a bicubic resample of the boosted
    cells and a split into saturating steps; per frame, the plain mark's saturating add. It runs
    only where the picture leans (INFORMED_MIN_LEAN) on frames up to INFORMED_MAX_PIXELS."""

    def __init__(self, code: np.ndarray, delta: np.ndarray, gain: np.ndarray):
        layout = _layout()
        height, width = delta.shape
        self.direction = 1.0 - 2.0 * code.astype(np.float64)  # +1 or -1: where each bit should read
        data = ~layout.pilot
        cells = layout.sign * self.direction[np.maximum(layout.bit_of_cell, 0)] * CELL_AMPLITUDE
        self.cells = np.where(data, cells, 0.0).astype(np.float32)
        self.size = (width, height)
        self.gain = gain
        self.delta = delta  # the plain change
        # What the detector reads of the data cells alone, per bit (towards its direction): the
        # unit a boost is measured in. Floored so a bit drowned by clipping is not boosted wildly.
        data_only = _resize(self.cells.reshape(GRID, GRID), width, height) * gain
        response = _bit_reading(_to_work(data_only), clip=False) * self.direction
        self.response = np.maximum(response, 0.25 * float(np.median(response)) + 1e-6)

    def lean(self, frames: list[np.ndarray]) -> np.ndarray:
        """How ``frames``' own content reads on each bit, on average, in units of the plain mark's
        reading (negative: against the bit). The detector sums frames: so does this."""
        from PIL import Image

        total = np.zeros((_WORK, _WORK, 3), dtype=np.float32)
        for frame in frames:
            total += np.asarray(Image.fromarray(frame).resize((_WORK, _WORK), Image.Resampling.BILINEAR))
        return _bit_reading(_luma(total / len(frames))) * self.direction / self.response

    def change(self, lean: np.ndarray) -> _Change | None:
        """The plain change plus a boost that cancels a ``lean`` (as ``lean`` gives it) against
        the bits (None: it leans against none)."""
        extra = np.clip(-LEAN_CANCEL * lean, 0.0, MAX_BOOST - 1.0)
        if not extra.any():
            return None
        layout = _layout()
        cells = self.cells * extra[np.maximum(layout.bit_of_cell, 0)].astype(np.float32)
        # Pillow's resampling, as ``pattern``: a matrix product would be cheaper on an idle CPU,
        # but a threaded BLAS on a busy one measured 20 ms instead of 1 (Pillow: 3.6 at 720p).
        boost = _resize(cells.reshape(GRID, GRID), *self.size)
        boost *= self.gain
        boost += self.delta
        return _Change(boost)


def _to_work(values: np.ndarray) -> np.ndarray:
    """A full-size float picture resampled to the detector's working picture, as ``Detector.add``."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32), mode="F")
    return np.asarray(image.resize((_WORK, _WORK), Image.Resampling.BILINEAR), dtype=np.float32)


@lru_cache(maxsize=1)
def _work_cells() -> np.ndarray:
    """The cell of each working-picture pixel for an uncropped, unscaled frame."""
    index = np.floor((np.arange(_WORK) + 0.5) / _WORK * GRID).astype(np.int64)
    return (index[:, None] * GRID + index[None, :]).ravel()


def _bit_reading(work: np.ndarray, *, clip: bool = True) -> np.ndarray:
    """What the detector reads on each code bit of a working picture at the frame's own
    placement: the high-passed cell means times their signs, averaged over each bit's cells."""
    layout = _layout()
    picture = _highpass(work.astype(np.float32), _HIGHPASS)
    if clip:
        limit = _CLIP_SIGMAS * 1.4826 * float(np.median(np.abs(picture))) + 1e-6
        picture = np.clip(picture, -limit, limit)
    index = _work_cells()
    counts = np.bincount(index, minlength=GRID * GRID)
    means = np.bincount(index, weights=picture.ravel(), minlength=GRID * GRID) / counts
    data = ~layout.pilot
    soft = means[data] * layout.sign[data]
    bits = layout.bit_of_cell[data]
    return np.bincount(bits, weights=soft, minlength=CODE_BITS) / np.bincount(bits, minlength=CODE_BITS)


# --- detection ---------------------------------------------------------------------------------


def _luma(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame.astype(np.float32, copy=False)
    rgb = frame.astype(np.float32)
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


def _box(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Moving average of ``size`` samples along ``axis``, edges mirrored."""
    half = size // 2
    pad = [(0, 0)] * values.ndim
    pad[axis] = (half + 1, half)
    padded = np.pad(values, pad, mode="reflect")
    total = np.cumsum(padded, axis=axis, dtype=np.float64)
    upper = np.take(total, np.arange(size, size + values.shape[axis]), axis=axis)
    lower = np.take(total, np.arange(0, values.shape[axis]), axis=axis)
    return ((upper - lower) / size).astype(np.float32)


def _highpass(values: np.ndarray, size: int) -> np.ndarray:
    out = values
    for axis in range(values.ndim):
        out = _box(out, size, axis)
    return values - out


@lru_cache(maxsize=2)
def _reference(axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The high-passed stripe profile across the whole frame, and its running energy."""
    layout = _layout()
    signs = layout.stripes_x if axis == 0 else layout.stripes_y
    ref = _highpass(_stripe_profile(signs, _REF), _REF // SYNC_CELLS * 5 // 2).astype(np.float64)
    return ref, np.concatenate([[0.0], np.cumsum(ref**2)])


@dataclass(frozen=True)
class _Placement:
    scale: float  # visible share of the marked axis
    offset: float  # where it starts, 0..1-scale
    score: float


def _search_axis(profile: np.ndarray, axis: int) -> list[_Placement]:
    """Where a received profile (column or row means) sits on the stripes: best few placements."""
    ref, energy = _reference(axis)
    spectrum = np.fft.rfft(ref, 2 * _REF)
    found: list[_Placement] = []
    n = len(profile)
    for scale in np.arange(MIN_VISIBLE, 1.0 + 1e-9, _SCALE_STEP):
        length = int(round(scale * _REF))
        resampled = np.interp((np.arange(length) + 0.5) * n / length - 0.5, np.arange(n), profile)
        q = _highpass(resampled.astype(np.float32), _REF // SYNC_CELLS * 5 // 2).astype(np.float64)
        q -= q.mean()
        norm = np.linalg.norm(q)
        if norm == 0:
            continue
        corr = np.fft.irfft(spectrum * np.conj(np.fft.rfft(q, 2 * _REF)), 2 * _REF)[: _REF - length + 1]
        windows = np.sqrt(np.maximum(energy[length:] - energy[: _REF - length + 1], 1e-12))
        ncc = corr / (norm * windows)
        lag = int(np.argmax(ncc))
        found.append(_Placement(length / _REF, lag / _REF, float(ncc[lag])))
    found.sort(key=lambda p: -p.score)
    best: list[_Placement] = []
    for placement in found:
        if all(
            abs(placement.scale - b.scale) > 0.012 or abs(placement.offset - b.offset) > 0.01 for b in best
        ):
            best.append(placement)
        if len(best) == _CANDIDATES:
            break
    # The untouched frame is the commonest case of all, and content with strong structure of its
    # own (a decoder's grid, blinds, text) can outvote the stripes: always try it too.
    if not any(p.scale == 1.0 and p.offset == 0.0 for p in best):
        best.append(_Placement(1.0, 0.0, 0.0))
    return best


class Detector:
    """Accumulates frames into bounded state (one WORK x WORK picture and two profiles), so a
    long video is never held in memory; ``result`` searches placement and reads the mark."""

    def __init__(self, *, key: bytes | None = None):
        self.key = key
        self.frames_examined = 0
        self._size: tuple[int, int] | None = None
        self._picture = np.zeros((_WORK, _WORK), dtype=np.float64)
        self._columns: np.ndarray | None = None
        self._rows: np.ndarray | None = None
        self._too_small = False

    def add(self, frame: np.ndarray) -> None:
        """Add one frame: RGB uint8, or full-range luma (H, W) as ``verify`` reads video."""
        from PIL import Image

        _check_frame(frame, luma_ok=True)
        size = frame.shape[:2]
        if min(size) < MIN_SIDE:
            self._too_small = True
            return
        if self._size is None:
            self._size = size
            self._columns = np.zeros(size[1])
            self._rows = np.zeros(size[0])
        elif size != self._size:
            return  # a stream that changes size mid-way: keep to its first size
        luma = _luma(frame)
        self._columns += luma.mean(axis=0)
        self._rows += luma.mean(axis=1)
        image = Image.fromarray(luma, mode="F").resize((_WORK, _WORK), Image.Resampling.BILINEAR)
        self._picture += np.asarray(image, dtype=np.float32)
        self.frames_examined += 1

    def result(self, key: bytes | None = None) -> WatermarkResult:
        if self.frames_examined == 0:
            reason = (
                f"frames smaller than {MIN_SIDE} pixels a side are too small to carry a mark"
                if self._too_small
                else "no frames to read"
            )
            return WatermarkResult(False, None, 0.0, 0, 0, reason=reason)
        assert self._columns is not None and self._rows is not None
        xs = _search_axis(self._columns, 0)
        ys = _search_axis(self._rows, 1)
        picture = _highpass((self._picture / self.frames_examined).astype(np.float32), _HIGHPASS)
        # Edges leave large high-pass values that would outvote a whole cell: cap them at a few
        # robust sigmas (the mark itself sits well inside).
        limit = _CLIP_SIGMAS * 1.4826 * float(np.median(np.abs(picture))) + 1e-6
        picture = np.clip(picture, -limit, limit)
        best: tuple[float, _Placement, _Placement, np.ndarray, np.ndarray] | None = None
        for px in xs:
            for py in ys:
                means, counts = _cell_means(picture, px, py)
                z = _pilot_z(means, counts)
                if best is None or z > best[0]:
                    best = (z, px, py, means, counts)
        if best is None:
            return WatermarkResult(False, None, 0.0, self.frames_examined, 0, reason="flat frames")
        z, px, py, means, counts = best
        if z < PRESENCE_Z:
            reason = self._limits("a mark")
            return WatermarkResult(False, None, 0.0, self.frames_examined, 0, presence_z=z, reason=reason)
        bits, reliability, confidence = _read_bits(means, counts)
        decoded = markcode.decode(_key(key if key is not None else self.key), bits, reliability)
        return WatermarkResult(
            True,
            decoded.payload,
            confidence,
            self.frames_examined,
            self.frames_examined,
            readable=decoded.readable,
            authentic=decoded.authentic,
            presence_z=z,
            scale=(px.scale, py.scale),
            offset=(px.offset, py.offset),
            reason=None if decoded.readable else self._limits("a payload"),
            bits=bits,
        )

    def _limits(self, what: str) -> str | None:
        """Why a failed read of ``what`` may be the clip's fault, not a missing or foreign mark:
        too small, too short."""
        assert self._size is not None
        height, width = self._size
        said = []
        if min(height, width) < RELIABLE_SIDE:
            said.append(f"{width}x{height} frames are too small")
        if self.frames_examined < RELIABLE_FRAMES:
            n = self.frames_examined
            said.append(f"{n} frame is too few" if n == 1 else f"{n} frames are too few")
        if not said:
            return None
        return (
            f"{' and '.join(said)} to carry {what} reliably (it needs {RELIABLE_SIDE} pixels a side "
            f"and {RELIABLE_FRAMES} frames to outlive a re-encode)"
        )


def _cell_means(picture: np.ndarray, px: _Placement, py: _Placement) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the high-passed working picture over the middle of each cell, placed as found."""
    centres = (np.arange(_WORK) + 0.5) / _WORK
    u = (px.offset + px.scale * centres) * GRID
    v = (py.offset + py.scale * centres) * GRID
    inner_u = np.abs(u - np.floor(u) - 0.5) < _INNER
    inner_v = np.abs(v - np.floor(v) - 0.5) < _INNER
    col = np.clip(np.floor(u).astype(np.int64), 0, GRID - 1)
    row = np.clip(np.floor(v).astype(np.int64), 0, GRID - 1)
    index = row[:, None] * GRID + col[None, :]
    mask = inner_v[:, None] & inner_u[None, :]
    counts = np.bincount(index[mask], minlength=GRID * GRID).astype(np.float64)
    sums = np.bincount(index[mask], weights=picture[mask], minlength=GRID * GRID)
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0), counts


def _pilot_z(means: np.ndarray, counts: np.ndarray) -> float:
    layout = _layout()
    use = layout.pilot & (counts > 0)
    values = means[use]
    if len(values) < 32:
        return 0.0
    values = values - values.mean()
    norm = np.linalg.norm(values)
    if norm == 0:
        return 0.0
    # Under no mark the signs are independent of the picture: the correlation is ~N(0, 1/n).
    return float(np.dot(values, layout.sign[use]) / norm)


def _read_bits(means: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    layout = _layout()
    use = (~layout.pilot) & (counts > 0)
    soft = means[use] * layout.sign[use]
    bit = layout.bit_of_cell[use]
    sums = np.bincount(bit, weights=soft, minlength=CODE_BITS)
    n = np.bincount(bit, minlength=CODE_BITS).astype(np.float64)
    mean = np.divide(sums, n, out=np.zeros_like(sums), where=n > 0)
    # Noise per cell from the spread around each bit's mean.
    residual = soft - mean[bit]
    sigma = max(float(np.sqrt(np.mean(residual**2))), 1e-9)
    z = np.abs(mean) * np.sqrt(n) / sigma
    confidence = float(np.mean([0.5 * (1 + math.erf(zi / math.sqrt(2))) for zi in z]))
    return (mean < 0).astype(np.uint8), z, confidence


def extract(frames: Iterable[np.ndarray], *, key: bytes | None = None) -> WatermarkResult:
    detector = Detector(key=key)
    for frame in frames:
        detector.add(frame)
    return detector.result()
