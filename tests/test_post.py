"""conform() and float_to_uint8(): exact size, fps and frame count, streaming, through real
ffmpeg filters (PyAV)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from openreel.render.post import conform, cover_size, float_to_uint8


def moving_frames(count: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Natural-ish frames: colour gradients with a bright disc sliding across and a dark bar
    moving down, so scaling, cropping and motion interpolation all have something to work on."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [xx / width * 220 + 20, yy / height * 200 + 30, (xx + yy) / (width + height) * 180 + 40], -1
    )
    for index in range(count):
        frame = base.copy()
        cx, cy = (0.15 + 0.7 * index / max(1, count - 1)) * width, height / 2
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (min(width, height) / 5) ** 2
        frame[disc] = (250, 220, 60)
        bar = slice(
            int(index / max(1, count) * height * 0.8),
            int(index / max(1, count) * height * 0.8) + height // 10,
        )
        frame[bar, : width // 3] = (20, 30, 90)
        yield frame.astype(np.uint8)


def numbered_frames(count: int, width: int = 32, height: int = 24) -> Iterator[np.ndarray]:
    # Flat on purpose: brightness = 4 * index, so each output frame says which input it came from.
    for index in range(count):
        yield np.full((height, width, 3), 4 * index, dtype=np.uint8)


def banded(width: int, height: int, axis: int) -> np.ndarray:
    """Grey frame with a red band at the start and a blue band at the end of ``axis``
    (0: rows, 1: columns), each 1/8 of that side; a centre crop of 25 % removes both."""
    frame = np.full((height, width, 3), 128, dtype=np.uint8)
    band = (height if axis == 0 else width) // 8
    index_first = (slice(0, band), slice(None)) if axis == 0 else (slice(None), slice(0, band))
    index_last = (slice(-band, None), slice(None)) if axis == 0 else (slice(None), slice(-band, None))
    frame[index_first] = (255, 0, 0)
    frame[index_last] = (0, 0, 255)
    return frame


def run(frames, **kwargs) -> list[np.ndarray]:
    out = list(conform(frames, **kwargs))
    for frame in out:
        assert frame.dtype == np.uint8
        assert frame.shape == (kwargs["height"], kwargs["width"], 3)
    return out


def test_cover_size_keeps_aspect_and_covers():
    assert cover_size(64, 48, 128, 72) == (128, 96)  # 4:3 into 16:9: overflow in height
    assert cover_size(160, 90, 48, 64) == (114, 64)  # landscape into portrait: overflow in width
    assert cover_size(256, 144, 128, 72) == (128, 72)  # same aspect: no crop


def test_upscale_and_centre_crop_4_3_to_16_9():
    # A 4:3 frame covering 16:9 loses 1/8 at top and bottom: exactly the red and blue bands.
    src = banded(64, 48, axis=0)
    (out,) = run([src], src_fps=24, width=128, height=72, fps=24, num_frames=1)
    inner = out[4:-4].astype(int)  # lanczos rings a pixel or two at the former band edges
    assert np.abs(inner - 128).max() < 12
    assert out[0, :, 0].mean() < 200 and out[-1, :, 2].mean() < 200  # bands cropped away


def test_aspect_change_landscape_to_portrait_crops_sides():
    src = banded(160, 90, axis=1)
    (out,) = run([src], src_fps=24, width=48, height=64, fps=24, num_frames=1)
    assert np.abs(out[:, 2:-2].astype(int) - 128).max() < 12


def test_downscale_matches_lanczos_reference():
    frames = list(moving_frames(6, 256, 144))
    out = run(iter(frames), src_fps=24, width=128, height=72, fps=24, num_frames=6)
    for src, got in zip(frames, out, strict=True):
        reference = np.asarray(Image.fromarray(src).resize((128, 72), Image.Resampling.LANCZOS))
        assert np.abs(reference.astype(int) - got.astype(int)).mean() < 2.0


def test_same_size_same_fps_passes_through_exactly():
    frames = list(moving_frames(5, 64, 48))
    out = run(iter(frames), src_fps=24, width=64, height=48, fps=24, num_frames=5)
    assert all(np.array_equal(a, b) for a, b in zip(frames, out, strict=True))


@pytest.mark.parametrize(("src_fps", "src_count"), [(16, 32), (30, 60)])
def test_fps_filter_retimes_by_timestamp(src_fps, src_count):
    out = run(numbered_frames(src_count), src_fps=src_fps, width=32, height=24, fps=24, num_frames=48)
    assert len(out) == 48  # 2 s either way, no padding needed
    sources = [int(frame[0, 0, 0]) // 4 for frame in out]
    assert sources == sorted(sources) and sources[0] == 0 and sources[-1] >= src_count - 2
    # Each output frame comes from the input frame nearest in time.
    assert all(abs(s - k * src_fps / 24) <= 1 for k, s in enumerate(sources))
    if src_fps < 24:
        assert len(set(sources)) == src_count  # repeats, never skips
    else:
        assert len(set(sources)) == 48  # drops, never repeats


def test_retime_and_resize_together():
    out = run(moving_frames(16, 96, 64), src_fps=16, width=128, height=72, fps=24, num_frames=24)
    assert len(out) == 24


def test_fractional_source_fps():
    out = run(numbered_frames(48), src_fps=24000 / 1001, width=32, height=24, fps=24, num_frames=48)
    assert len(out) == 48


def test_interpolate_makes_new_frames_and_exact_count():
    frames = list(moving_frames(16, 64, 48))
    out = run(iter(frames), src_fps=8, width=64, height=48, fps=24, num_frames=48, interpolate=True)
    assert len(out) == 48
    # Motion-compensated in-betweens: many output frames match no input frame.
    new = [f for f in out if min(np.abs(f.astype(int) - s).mean() for s in frames) > 1.0]
    assert len(new) >= 16
    # Motion continues right up to the last real frame (at output 45 = 15 * 3); only the two
    # frames after it hold still, as with the fps filter.
    assert np.abs(out[45].astype(int) - frames[15]).mean() < 1.0
    assert np.abs(out[44].astype(int) - frames[15]).mean() > 1.0
    assert all(np.array_equal(out[45], f) for f in out[46:])


def test_interpolate_with_resize_both_directions():
    up = run(
        moving_frames(8, 64, 48), src_fps=8, width=96, height=64, fps=24, num_frames=24, interpolate=True
    )
    down = run(
        moving_frames(8, 96, 64), src_fps=8, width=64, height=48, fps=24, num_frames=24, interpolate=True
    )
    assert len(up) == len(down) == 24


@pytest.mark.parametrize("interpolate", [False, True])
def test_single_frame_becomes_a_still(interpolate):
    frame = next(moving_frames(1, 64, 48))
    out = run([frame], src_fps=8, width=96, height=64, fps=24, num_frames=5, interpolate=interpolate)
    assert len(out) == 5 and all(np.array_equal(out[0], f) for f in out)


def test_pads_by_repeating_last_frame():
    out = run(numbered_frames(4), src_fps=24, width=32, height=24, fps=24, num_frames=7)
    assert [int(f[0, 0, 0]) // 4 for f in out] == [0, 1, 2, 3, 3, 3, 3]


def test_trims_and_stops_reading_input():
    pulled = []

    def source():
        for index, frame in enumerate(numbered_frames(100)):
            pulled.append(index)
            yield frame

    out = run(source(), src_fps=24, width=32, height=24, fps=24, num_frames=10)
    assert len(out) == 10
    assert len(pulled) <= 11  # streaming: the other 90 frames were never made


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="no frames"):
        list(conform([], src_fps=24, width=32, height=24, fps=24, num_frames=1))
    with pytest.raises(ValueError, match="num_frames"):
        conform([], src_fps=24, width=32, height=24, fps=24, num_frames=0)
    with pytest.raises(ValueError, match="uint8 RGB"):
        list(
            conform(
                [np.zeros((24, 32, 3), np.float32)], src_fps=24, width=32, height=24, fps=24, num_frames=1
            )
        )
    mixed = [np.zeros((24, 32, 3), np.uint8), np.zeros((24, 30, 3), np.uint8)]
    with pytest.raises(ValueError, match="size changed"):
        list(conform(mixed, src_fps=24, width=64, height=48, fps=24, num_frames=2))


def test_float_to_uint8_rounds_and_clips_frame_by_frame():
    video = np.array([[[[0.0, 0.5, 1.0]]], [[[-0.2, 1.3, 0.2]]]], dtype=np.float32)  # (2, 1, 1, 3)
    out = list(float_to_uint8(video))
    assert [f.tolist() for f in out] == [[[[0, 128, 255]]], [[[0, 255, 51]]]]
    assert all(f.dtype == np.uint8 for f in out)
    with pytest.raises(ValueError, match="T, H, W, 3"):
        next(float_to_uint8(np.zeros((4, 4, 3))))
