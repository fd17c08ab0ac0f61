"""An invisible watermark that survives H.264: DWT-DCT-SVD on the luma channel.

How it works (FIELD-NOTES, Provenance): take luma Y, a one-level Haar DWT, cut its LL band into
4x4 blocks, and in each block quantise the largest singular value ``s0`` onto one of two
interleaved lattices (quantisation index modulation): ``s0 mod STEP`` near ``STEP/4`` means 0,
near ``3*STEP/4`` means 1. ``s0`` carries the block's low-frequency energy, which H.264 keeps
well even at CRF 28, and changing it moves all four colours by the same amount, so chroma is
untouched.

Two shortcuts keep a 1080p frame at a few tens of milliseconds instead of ~0.4 s:
- the DCT of the classic recipe is orthogonal, so it leaves singular values alone: transforming
  a block, editing ``s0`` and transforming back is exactly editing ``s0`` of the block itself;
- only the top singular triplet is needed, and a few power iterations on the batched 4x4
  Gram matrices give it, where a full batched SVD is five times slower.

The 64-bit payload gets a CRC-16 (80 code bits). Each block carries one code bit, chosen by a
fixed pseudo-random permutation and XOR-ed with a pseudo-random key; the key turns the
structure of clean frames (flat areas all reading the same bit) into noise, so a clean frame
votes for nothing. Decoding is soft: each block's position on the lattice is averaged per bit,
after taking out the common slide that other tools' colour conversions cause, then over the
frames that show a mark. A result is "found" only when marked
frames are seen *and* the CRC checks, so clean video reports not found.

Decoding needs the frame at the size it was marked at (the block grid must line up), and a
frame of at least ~320x180: smaller ones have too few blocks per bit to tell a mark from noise.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

PAYLOAD_BYTES = 8
PAYLOAD_BITS = PAYLOAD_BYTES * 8
CODE_BITS = PAYLOAD_BITS + 16  # payload + CRC-16

# Quantisation step for s0. s0 of a 4x4 LL block is ~8x the mean luma, so a step of 48 moves
# a pixel by at most ~3 levels (PSNR ~42 dB) and keeps ~100% of bits through CRF 28.
STEP = 48.0
# A fresh mark every k-th frame (frame 0, always a keyframe, first), held on the frames between
# (see watermark_frames). 12 keeps marking a 1080p clip under ~20% of its encode time.
EVERY = 12
# A frame counts as marked when its per-bit averages sit this many noise sigmas from zero on
# average; a clean frame scores ~0.8 (the mean of |N(0,1)|), a marked one 5 to 50.
FRAME_SCORE_MIN = 2.5

_BLOCK = 4
_SEED = 0x0BE11
_POWER_ITERATIONS = 4
# BT.709 luma in 1/256ths (what the encoder's yuv420p conversion uses), so the integer sum fits
# uint16: 54 + 183 + 19 = 256.
_LUMA = (54, 183, 19)


@dataclass
class WatermarkResult:
    found: bool
    payload: bytes | None  # the 8-byte payload, only when found (CRC checked)
    confidence: float  # 0..1: mean estimated probability that each code bit is right
    frames_examined: int
    frames_marked: int
    # The payload bits as decoded, even when the CRC failed: for measuring bit accuracy.
    bits: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "found": self.found,
            "payload": self.payload.hex() if self.payload else None,
            "confidence": round(self.confidence, 4),
            "frames_examined": self.frames_examined,
            "frames_marked": self.frames_marked,
        }


def encode_bits(payload: bytes) -> np.ndarray:
    if len(payload) != PAYLOAD_BYTES:
        raise ValueError(f"watermark payload must be {PAYLOAD_BYTES} bytes, got {len(payload)}")
    crc = binascii.crc_hqx(payload, 0xFFFF).to_bytes(2, "big")
    return np.unpackbits(np.frombuffer(payload + crc, dtype=np.uint8))


def _check_frame(frame: np.ndarray, *, luma_ok: bool = False) -> None:
    rgb = frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    if not (rgb or (luma_ok and frame.ndim == 2)):
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
    if frame.shape[0] < 2 * _BLOCK or frame.shape[1] < 2 * _BLOCK:
        raise ValueError(f"frame {frame.shape[1]}x{frame.shape[0]} is too small to carry a watermark")


def _ll_band(frame: np.ndarray) -> np.ndarray:
    """Haar LL of luma over the part of the frame covered by whole 8x8 pixel blocks.

    ``frame`` is RGB uint8 (H, W, 3), or already luma (H, W) on the full 0..255 scale, which is
    how a decoded video is read: straight from its Y plane, with no colour conversion between.
    """
    import pywt

    h = frame.shape[0] // (2 * _BLOCK) * (2 * _BLOCK)
    w = frame.shape[1] // (2 * _BLOCK) * (2 * _BLOCK)
    if frame.ndim == 2:
        y = frame[:h, :w].astype(np.float32)
    else:
        rgb = frame[:h, :w]
        # Integer luma (0..65280) is several times faster than float weights on a 1080p frame.
        y16 = rgb[..., 0] * np.uint16(_LUMA[0])
        y16 += rgb[..., 1] * np.uint16(_LUMA[1])
        y16 += rgb[..., 2] * np.uint16(_LUMA[2])
        y = y16.astype(np.float32) * np.float32(1 / 256)
    ll, _ = pywt.dwt2(y, "haar")
    return ll


def _blocks(ll: np.ndarray) -> np.ndarray:
    rows, cols = ll.shape[0] // _BLOCK, ll.shape[1] // _BLOCK
    return ll.reshape(rows, _BLOCK, cols, _BLOCK).transpose(0, 2, 1, 3).reshape(-1, _BLOCK, _BLOCK)


def _unblocks(blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows, cols = shape[0] // _BLOCK, shape[1] // _BLOCK
    return blocks.reshape(rows, cols, _BLOCK, _BLOCK).transpose(0, 2, 1, 3).reshape(shape)


def _top_singular(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s0, u0, v0) of every 4x4 block by power iteration on B^T B."""
    gram = np.einsum("nji,njk->nik", blocks, blocks)
    # Not the all-ones vector: a block whose top right-singular vector is orthogonal to the
    # start never converges, and zero-mean patterns are exactly orthogonal to ones.
    v = np.broadcast_to(np.array([0.61, 0.47, 0.52, 0.37], dtype=np.float32), (len(blocks), _BLOCK)).copy()
    for _ in range(_POWER_ITERATIONS):
        v = np.einsum("nik,nk->ni", gram, v)
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    bv = np.einsum("nij,nj->ni", blocks, v)
    s0 = np.linalg.norm(bv, axis=1)
    u = bv / np.maximum(s0[:, None], 1e-12)
    return s0, u, v


@lru_cache(maxsize=8)
def _layout(n_blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which code bit each block carries, its key bit, and how many blocks carry each bit."""
    rng = np.random.default_rng(_SEED)
    # A permutation of a cyclic assignment: every bit gets the same share, spread over the frame.
    bit_of_block = rng.permutation(np.arange(n_blocks) % CODE_BITS)
    key = rng.integers(0, 2, n_blocks, dtype=np.uint8)
    counts = np.bincount(bit_of_block, minlength=CODE_BITS).astype(np.float64)
    return bit_of_block, key, counts


def embed(frame: np.ndarray, payload: bytes, *, step: float = STEP) -> np.ndarray:
    """A copy of ``frame`` (RGB uint8) carrying ``payload`` (8 bytes)."""
    return _Change(_delta(frame, payload, step)).apply(frame)


def _delta(frame: np.ndarray, payload: bytes, step: float) -> np.ndarray:
    """The luma change (int16, one value per pixel) that puts ``payload`` into ``frame``."""
    _check_frame(frame)
    code = encode_bits(payload)
    ll = _ll_band(frame)
    blocks = _blocks(ll)
    bit_of_block, key, _ = _layout(len(blocks))
    wanted = code[bit_of_block] ^ key
    s0, u, v = _top_singular(blocks)
    # Nearest point of the lattice for the wanted bit: offset step/4 (bit 0) or 3*step/4 (bit 1).
    offset = step * (0.25 + 0.5 * wanted.astype(np.float32))
    target = np.round((s0 - offset) / step) * step + offset
    delta_blocks = (target - s0)[:, None, None] * np.einsum("ni,nj->nij", u, v)
    # LL of the Haar transform is (sum of each 2x2 pixel quad) / 2, so a change d in LL is a
    # change of d/2 in each of its four pixels: the inverse DWT of a lone LL band, done by hand.
    delta_ll = _unblocks(delta_blocks.astype(np.float32), ll.shape) * np.float32(0.5)
    return np.rint(np.repeat(np.repeat(delta_ll, 2, axis=0), 2, axis=1)).astype(np.int16)


class _Change:
    """A luma change ready to lay on frames: split into saturating uint8 steps once, so each
    frame costs four in-place passes (~2 ms at 1080p) instead of an int16 round trip (~10 ms)."""

    def __init__(self, delta: np.ndarray):
        # The same change on R, G and B is a change of luma only, whatever the luma weights.
        delta3 = np.repeat(delta[..., None], 3, axis=2)
        self.shape = delta.shape
        self.up = np.clip(delta3, 0, 255).astype(np.uint8)
        self.down = np.clip(-delta3, 0, 255).astype(np.uint8)
        self.ceiling = 255 - self.up

    def apply(self, frame: np.ndarray) -> np.ndarray:
        out = frame.copy()
        region = out[: self.shape[0], : self.shape[1]]
        # min(x, 255-u) + u == min(x + u, 255), and max(x, d) - d == max(x - d, 0): addition that
        # saturates instead of wrapping, with no wider type.
        np.minimum(region, self.ceiling, out=region)
        region += self.up
        np.maximum(region, self.down, out=region)
        region -= self.down
        return out


def watermark_frames(
    frames: Iterable[np.ndarray], payload: bytes, *, every: int = EVERY, step: float = STEP, hold: bool = True
) -> Iterator[np.ndarray]:
    """Yield ``frames`` carrying ``payload``: computed afresh on every ``every``-th frame (frame 0
    first) and, with ``hold``, the same change laid on the frames in between.

    Why hold: H.264 codes most frames as a residual against the previous one. A mark on one
    frame in twelve is a small residual that CRF 28 throws away, but a mark that stays put is
    predicted for free wherever the picture stays put, and survives in every frame. Laying a
    held change costs ~3 ms a 1080p frame against ~45 ms for computing one.
    """
    encode_bits(payload)  # fail on a bad payload before the first frame, not mid-stream
    change: _Change | None = None
    marked_shape: tuple[int, ...] = ()
    for index, frame in enumerate(frames):
        if index % every == 0:
            change, marked_shape = _Change(_delta(frame, payload, step)), frame.shape
            yield change.apply(frame)
        elif hold and change is not None and frame.shape == marked_shape:
            yield change.apply(frame)
        else:
            yield frame


class Detector:
    """Accumulates soft votes frame by frame, so a long video is never held in memory.

    Other tools' colour conversions shift luma by a level or two, which slides every ``s0``
    along the lattice by the same amount. So each block's ``s0`` becomes a phasor
    ``exp(2*pi*i*s0/step)``, and the common rotation is estimated per frame from the squared
    per-bit means (squaring removes the bit signs) and taken out before voting.
    """

    def __init__(self, *, step: float = STEP):
        self.step = step
        self.frames_examined = 0
        self.frames_marked = 0
        self._sum = np.zeros(CODE_BITS)
        self._sum_sq = np.zeros(CODE_BITS)
        self._count = np.zeros(CODE_BITS)

    def add(self, frame: np.ndarray) -> float:
        """Add one frame, RGB uint8 or full-range luma (H, W); returns how clearly it shows a mark."""
        _check_frame(frame, luma_ok=True)
        self.frames_examined += 1
        blocks = _blocks(_ll_band(frame))
        bit_of_block, key, counts = _layout(len(blocks))
        s0, _, _ = _top_singular(blocks)
        phasor = np.exp(2j * np.pi * s0.astype(np.float64) / self.step)
        phasor[key == 1] *= -1  # undo the key: code bit 0 now sits at +i, bit 1 at -i
        sums = _bincount_complex(bit_of_block, phasor)
        # Squaring removes the +-1 of the bits; what is left is twice the common rotation
        # (plus pi, since i^2 = -1). The half angle is ambiguous by pi: bits and their
        # complements; the smaller rotation is taken here and the CRC settles it at the end.
        rotation = np.angle(-np.sum((sums / counts) ** 2)) / 2
        turn = np.exp(-1j * (np.pi / 2 + rotation))
        soft_sums = (sums * turn).real
        means = soft_sums / counts
        # A clean frame's projected block values have variance ~0.5: its per-bit means are noise
        # of size sqrt(0.5/count), and their mean absolute z is ~0.8 (a little more, as the
        # rotation is fitted to it).
        score = float(np.mean(np.abs(means) * np.sqrt(counts / 0.5)))
        if score >= FRAME_SCORE_MIN:
            if self.frames_marked and float(np.dot(soft_sums, self._sum)) < 0:
                soft_sums, turn = -soft_sums, -turn  # same pi ambiguity, settled against the votes so far
            # sum of Re(z*t)^2 = (count + Re(t^2 * sum of z^2)) / 2, without a second pass.
            squares = _bincount_complex(bit_of_block, phasor * phasor)
            self._sum_sq += (counts + (squares * turn * turn).real) / 2
            self._sum += soft_sums
            self._count += counts
            self.frames_marked += 1
        return score

    def result(self) -> WatermarkResult:
        if self.frames_marked == 0:
            return WatermarkResult(False, None, 0.0, self.frames_examined, 0)
        mean = self._sum / self._count
        var = np.maximum(self._sum_sq / self._count - mean**2, 1e-6)
        z = np.abs(mean) / np.sqrt(var / self._count)
        confidence = float(np.mean([0.5 * (1 + math.erf(zi / math.sqrt(2))) for zi in z]))
        code = (mean < 0).astype(np.uint8)
        for candidate in (code, 1 - code):
            data = np.packbits(candidate).tobytes()
            payload, crc = data[:PAYLOAD_BYTES], data[PAYLOAD_BYTES:]
            if binascii.crc_hqx(payload, 0xFFFF).to_bytes(2, "big") == crc:
                return WatermarkResult(
                    True,
                    payload,
                    confidence,
                    self.frames_examined,
                    self.frames_marked,
                    bits=candidate[:PAYLOAD_BITS],
                )
        return WatermarkResult(
            False, None, confidence, self.frames_examined, self.frames_marked, bits=code[:PAYLOAD_BITS]
        )


def _bincount_complex(index: np.ndarray, values: np.ndarray) -> np.ndarray:
    real = np.bincount(index, weights=values.real, minlength=CODE_BITS)
    imag = np.bincount(index, weights=values.imag, minlength=CODE_BITS)
    return real + 1j * imag


def extract(frames: Iterable[np.ndarray], *, step: float = STEP) -> WatermarkResult:
    detector = Detector(step=step)
    for frame in frames:
        detector.add(frame)
    return detector.result()
