"""The encoder: real libx264 through PyAV, checked by probing and decoding what it wrote."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openreel.render.encode import (
    VideoWriter,
    atomic_path,
    encode_video,
    probe,
    read_frames,
    write_spritesheet,
    write_thumbnail,
)


# Copied from tests/test_post.py: a test module stands alone.
def moving_frames(count: int, width: int, height: int) -> Iterator[np.ndarray]:
    """Natural-ish frames: colour gradients with a bright disc sliding across and a dark bar
    moving down."""
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


def gradient(width: int, height: int) -> np.ndarray:
    """Smooth and saturated, no edges: chroma subsampling barely matters, the colour matrix does."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xx / width * 255, yy / height * 255, 255 - xx / width * 255], -1).astype(np.uint8)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))  # hidden temp names included


def test_encoded_file_is_what_players_expect(tmp_path):
    path = encode_video(moving_frames(30, 160, 90), tmp_path / "clip.mp4", fps=24)
    info = probe(path)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 160, 90)
    assert info.fps == 24 and info.frames == 30 and info.duration == pytest.approx(30 / 24)
    assert (info.color_primaries, info.color_trc, info.colorspace, info.color_range) == (
        "bt709",
        "bt709",
        "bt709",
        "tv",
    )
    assert info.faststart
    assert listing(tmp_path) == ["clip.mp4"]


@pytest.mark.parametrize("fps", [16, 25, 30])
def test_exact_fps_and_count(tmp_path, fps):
    path = encode_video(moving_frames(17, 64, 48), tmp_path / "clip.mp4", fps=fps)
    info = probe(path)
    assert info.fps == fps and info.frames == 17
    assert len(list(read_frames(path))) == 17


def test_1080p_is_not_padded_to_1088(tmp_path):
    frames = [next(moving_frames(1, 1920, 1080))] * 3
    info = probe(encode_video(frames, tmp_path / "hd.mp4", fps=24))
    assert (info.width, info.height, info.frames) == (1920, 1080, 3)
    assert next(read_frames(tmp_path / "hd.mp4")).shape == (1080, 1920, 3)


def test_same_frames_give_same_bytes(tmp_path):
    # Several runs, not two: the nondeterminism this guards against (x264's AVX-512 code reading
    # uninitialised memory) hit about one encode in ten.
    frames = list(moving_frames(24, 192, 108))
    outputs = {encode_video(frames, tmp_path / f"{k}.mp4", fps=24).read_bytes() for k in range(6)}
    assert len(outputs) == 1


def test_colours_round_trip_with_bt709(tmp_path):
    import av

    frame = gradient(256, 144)
    path = encode_video([frame] * 3, tmp_path / "g.mp4", fps=24, crf=18)
    decoded = next(read_frames(path))
    error = np.abs(decoded.astype(int) - frame).mean()
    assert error < 2.5
    # The same pixels read with the BT.601 matrix are clearly off: this check would catch an
    # encoder that converted with one matrix and tagged another.
    with av.open(str(path)) as container:
        yuv = next(container.decode(video=0))
        wrong = yuv.reformat(format="rgb24", src_colorspace="ITU601", src_color_range="MPEG").to_ndarray()
    assert np.abs(wrong.astype(int) - frame).mean() > 2 * error + 2


def test_writer_streams_and_appears_only_on_close(tmp_path):
    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, width=64, height=48, fps=24)
    for frame in moving_frames(40, 64, 48):
        writer.write(frame)
    # Packets are on disk by now, under a hidden temporary name in the same folder.
    (partial,) = listing(tmp_path)
    assert partial.startswith(".out.") and partial.endswith(".mp4")
    assert writer.close() == target
    assert listing(tmp_path) == ["out.mp4"] and probe(target).frames == 40


def test_writer_abort_and_exception_leave_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "a.mp4", width=64, height=48, fps=24)
    writer.write(next(moving_frames(1, 64, 48)))
    writer.abort()
    writer.abort()  # twice is fine
    assert listing(tmp_path) == []

    with (
        pytest.raises(RuntimeError, match="cancelled"),
        VideoWriter(tmp_path / "b.mp4", width=64, height=48, fps=24) as w,
    ):
        w.write(next(moving_frames(1, 64, 48)))
        raise RuntimeError("cancelled")
    assert listing(tmp_path) == []


def test_bad_sizes_raise_clear_errors_and_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match="even"):
        VideoWriter(tmp_path / "odd.mp4", width=63, height=48, fps=24)
    with pytest.raises(ValueError, match="even"):
        encode_video([np.zeros((45, 64, 3), np.uint8)], tmp_path / "odd.mp4", fps=24)
    with pytest.raises(ValueError, match="64x48"):
        encode_video(
            [np.zeros((48, 64, 3), np.uint8), np.zeros((48, 66, 3), np.uint8)], tmp_path / "mix.mp4", fps=24
        )
    with pytest.raises(ValueError, match="uint8 RGB"):
        encode_video([np.zeros((48, 64, 3), np.float32)], tmp_path / "float.mp4", fps=24)
    with pytest.raises(ValueError, match="no frames"):
        encode_video([], tmp_path / "empty.mp4", fps=24)
    with (
        pytest.raises(ValueError, match="no frames"),
        VideoWriter(tmp_path / "none.mp4", width=64, height=48, fps=24),
    ):
        pass
    assert listing(tmp_path) == []


def test_atomic_path_renames_on_success_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "sub" / "manifest.bin"
    with atomic_path(target) as temp:
        assert temp.parent == target.parent and temp.suffix == ".bin"
        temp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"

    with pytest.raises(OSError), atomic_path(target) as temp:
        temp.write_bytes(b"half")
        raise OSError("disk full")
    assert target.read_bytes() == b"whole"  # the old file is untouched
    assert listing(target.parent) == ["manifest.bin"]


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_thumbnail(tmp_path, suffix):
    frame = next(moving_frames(1, 320, 180))
    path = write_thumbnail(frame, tmp_path / f"thumb{suffix}")
    with Image.open(path) as image:
        assert image.size == (320, 180)
        assert image.format == {".jpg": "JPEG", ".webp": "WEBP"}[suffix]
        assert np.abs(np.asarray(image.convert("RGB")).astype(int) - frame).mean() < 4
    assert listing(tmp_path) == [f"thumb{suffix}"]
    with pytest.raises(ValueError, match="jpg"):
        write_thumbnail(frame, tmp_path / "thumb.png")


def test_spritesheet_grid_and_even_sampling(tmp_path):
    # Frame i is flat with brightness 2 * i: each tile says which frame it shows.
    frames = [np.full((90, 160, 3), 2 * i, np.uint8) for i in range(100)]
    path = write_spritesheet(frames, tmp_path / "sprites.jpg", columns=5, rows=4, tile_width=80)
    with Image.open(path) as image:
        assert image.size == (400, 180) and image.format == "JPEG"
        sheet = np.asarray(image).astype(int)
    shown = [round(sheet[r * 45 + 22, c * 80 + 40].mean() / 2) for r in range(4) for c in range(5)]
    assert shown == pytest.approx([int((i + 0.5) * 5) for i in range(20)], abs=1)
    assert listing(tmp_path) == ["sprites.jpg"]


def test_spritesheet_from_generator_and_short_clip(tmp_path):
    path = write_spritesheet(moving_frames(40, 320, 180), tmp_path / "s.jpg")
    with Image.open(path) as image:
        assert image.size == (5 * 160, 5 * 90)
    # Fewer frames than tiles: the grid keeps its size, unused tiles stay black.
    path = write_spritesheet(list(moving_frames(3, 320, 180)), tmp_path / "short.jpg", columns=2, rows=2)
    with Image.open(path) as image:
        sheet = np.asarray(image).astype(int)
    assert sheet.shape == (180, 320, 3)
    assert sheet[90:, 160:].mean() < 3 and sheet[:90, :160].mean() > 50
