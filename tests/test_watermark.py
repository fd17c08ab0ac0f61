"""The invisible watermark through what a video meets on its way: resizing, cropping, H.264 and
VP9 re-encoding, retiming and cuts, on smooth and on textured content; and what it refuses."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from openreel.provenance import markcode, watermark

# 540p: its half (270p) is the smallest of the ladders the issue asks to survive.
WIDTH, HEIGHT, FRAMES = 960, 540, 24
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PAYLOAD = bytes.fromhex("0123456789abcdef")


def natural_frames(n: int = FRAMES, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    """Moving gradients, a moving disc and light grain."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grain = rng.normal(0, 4, (height, width)).astype(np.float32)
    frames = []
    for i in range(n):
        t = i / 24
        y = 128 + 60 * np.sin(xx / width * 3 + t) * np.cos(yy / height * 4 - 0.7 * t) + grain
        img = np.stack([y + 20, y, 0.7 * y + 30], axis=-1)
        disc = (xx - width * (0.3 + 0.2 * np.sin(t))) ** 2 + (yy - height / 2) ** 2 < (height / 5) ** 2
        img[disc] = [230, 200, 40]
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def textured_frames(n: int = FRAMES, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    """Coarse noise of std 50 panning 2 pixels a frame: foliage, gravel, film grain at its worst."""
    rng = np.random.default_rng(1)
    texture = np.kron(rng.normal(0, 50, (height // 2, width // 2 + n)), np.ones((2, 2)))
    return [
        np.repeat(np.clip(128 + texture[:, 2 * i : 2 * i + width], 0, 255).astype(np.uint8)[..., None], 3, 2)
        for i in range(n)
    ]


def transcode(
    frames: list[np.ndarray],
    *,
    codec: str = "libx264",
    crf: int = 23,
    size: tuple[int, int] | None = None,
    crop: tuple[float, float, float, float] = (0, 0, 0, 0),
) -> list[np.ndarray]:
    """Crop (left, top, right, bottom shares), resize (Lanczos) and encode for real; decode back
    the way ``verify`` reads video (luma from the Y plane)."""
    import av
    from PIL import Image

    from openreel.provenance.verify import video_luma

    height, width = frames[0].shape[:2]
    left, top = int(width * crop[0]), int(height * crop[1])
    right, bottom = width - int(width * crop[2]), height - int(height * crop[3])
    out_w, out_h = size or (right - left, bottom - top)
    out_w, out_h = out_w - out_w % 2, out_h - out_h % 2
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4" if codec == "libx264" else "webm") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = out_w, out_h, "yuv420p"
        stream.options = (
            {"crf": str(crf), "preset": "veryfast"}
            if codec == "libx264"
            else {"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8"}
        )
        for frame in frames:
            picture = Image.fromarray(frame[top:bottom, left:right]).resize((out_w, out_h), Image.LANCZOS)
            video_frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
            )
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        return [video_luma(frame) for frame in container.decode(video=0)]


@pytest.fixture(scope="module")
def natural() -> list[np.ndarray]:
    return natural_frames()


@pytest.fixture(scope="module")
def marked(natural: list[np.ndarray]) -> list[np.ndarray]:
    return list(watermark.watermark_frames(natural, PAYLOAD, key=KEY))


def test_invisible_and_exact(natural: list[np.ndarray], marked: list[np.ndarray]) -> None:
    mse = np.mean((natural[0].astype(np.float64) - marked[0]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 38  # PSNR in dB
    result = watermark.extract(marked, key=KEY)
    assert result.found and result.authentic and result.payload == PAYLOAD
    assert result.scale == (1.0, 1.0) and result.offset == (0.0, 0.0)


@pytest.mark.parametrize(
    "change",
    [
        {"crf": 30},
        {"codec": "libvpx-vp9", "crf": 30},
        {"crf": 28, "size": (480, 270)},  # half
        {"crf": 28, "size": (1920, 1080)},  # twice
        {"crf": 28, "size": (896, 512)},  # another aspect (Sora's 1792x1024, halved)
        {"crf": 28, "crop": (0.1, 0.1, 0.1, 0.1)},
        {"crf": 28, "crop": (0.1, 0.0, 0.02, 0.07), "size": (854, 480)},
    ],
    ids=["h264-crf30", "vp9-crf30", "half", "twice", "aspect", "crop10", "crop-and-480p"],
)
def test_survives(marked: list[np.ndarray], change: dict) -> None:
    result = watermark.extract(transcode(marked, **change), key=KEY)
    assert result.found and result.authentic and result.payload == PAYLOAD, result


def test_crop_is_located(marked: list[np.ndarray]) -> None:
    result = watermark.extract(transcode(marked, crf=23, crop=(0.08, 0.02, 0.02, 0.1)), key=KEY)
    assert result.scale is not None and result.offset is not None
    assert np.allclose(result.scale, (0.9, 0.88), atol=0.01)
    assert np.allclose(result.offset, (0.08, 0.02), atol=0.01)


def test_retimed_and_cut(marked: list[np.ndarray]) -> None:
    # Every other frame (fps halved), the first and last few gone: any frames carry all of it.
    result = watermark.extract(transcode(marked[5:-4:2], crf=28), key=KEY)
    assert result.payload == PAYLOAD


@pytest.mark.parametrize(
    "size,change",
    [
        ((WIDTH, HEIGHT), {"crf": 30}),
        ((WIDTH, HEIGHT), {"crf": 28, "size": (640, 360)}),
        # The tiny models' output size (480x288) halved, and cropped: few pixels per bit, where
        # the texture's own lean on each bit outweighs a plain mark.
        ((480, 288), {"crf": 28, "size": (240, 144)}),
        ((480, 288), {"crf": 28, "crop": (0.1, 0.1, 0.1, 0.1)}),
    ],
    ids=["crf30", "360p", "small-half", "small-crop10"],
)
def test_textured_content(size: tuple[int, int], change: dict) -> None:
    clip = list(watermark.watermark_frames(textured_frames(FRAMES, *size), PAYLOAD, key=KEY))
    result = watermark.extract(transcode(clip, **change), key=KEY)
    assert result.payload == PAYLOAD, result


def test_runs_of_frames_come_back_whole_and_in_order() -> None:
    """Textured frames are marked informed a run of adjacent frames at a time (held back until
    the run is complete): a stream that changes size mid-run, carries a frame too small to mark
    and ends mid-run still gives every frame back, in order, marked, and each part reads."""
    wide = textured_frames(22, 960, 540)  # runs of 6 frames at this size
    tiny = np.zeros((8, 8, 3), np.uint8)
    small = textured_frames(10, 480, 288)
    sent = [*wide[:9], *small, tiny, *wide[9:]]
    got = list(watermark.watermark_frames(sent, PAYLOAD, key=KEY))
    assert len(got) == len(sent) and got[19] is tiny
    for before, after in zip(sent[:19] + sent[20:], got[:19] + got[20:], strict=True):
        change = np.abs(after.astype(np.int16) - before)
        # Each frame is its own, marked (the texture pans 2 pixels a frame: a neighbour differs
        # by ~56 levels, the mark by ~6).
        assert after.shape == before.shape and 0 < change.mean() < 10
    assert watermark.extract(got[:9] + got[20:], key=KEY).payload == PAYLOAD
    assert watermark.extract(got[9:19], key=KEY).payload == PAYLOAD


def test_marks_laid_before_informed_embedding_still_read(
    natural: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Informed embedding changed how strongly cells are laid, not where: a plain mark (as every
    file marked before it carries) reads with today's detector."""
    monkeypatch.setattr(watermark, "INFORMED_MAX_PIXELS", 0)
    plain = list(watermark.watermark_frames(natural, PAYLOAD, key=KEY))
    assert watermark.extract(transcode(plain, crf=23), key=KEY).payload == PAYLOAD


@pytest.mark.parametrize("crf", [None, 30])
def test_clean_video_shows_no_mark(natural: list[np.ndarray], crf: int | None) -> None:
    frames = natural if crf is None else transcode(natural, crf=crf, crop=(0.05, 0.05, 0.05, 0.05))
    result = watermark.extract(frames, key=KEY)
    assert not result.found and result.payload is None and result.presence_z < watermark.PRESENCE_Z
    for value in (0, 128, 255):  # flat colour
        assert not watermark.extract([np.full((200, 300, 3), value, np.uint8)] * 3, key=KEY).found


def test_other_key_sees_the_mark_but_not_the_payload(marked: list[np.ndarray]) -> None:
    result = watermark.extract(transcode(marked, crf=23), key=OTHER_KEY)
    assert result.found and result.readable
    assert not result.authentic and result.payload is None


def test_forged_or_altered_payload_never_verifies() -> None:
    code = markcode.encode(KEY, PAYLOAD)
    assert markcode.decode(KEY, code).payload == PAYLOAD
    assert markcode.decode(OTHER_KEY, code) == markcode.Decoded(True, False, None)
    for bit in range(markcode.CODE_BITS):  # one flipped bit: caught by the CRC or the tag
        altered = code.copy()
        altered[bit] ^= 1
        assert not markcode.decode(KEY, altered).authentic
    # Someone without the key writes their own payload with a plausible tag and a correct CRC.
    body = markcode.encrypt(OTHER_KEY, PAYLOAD) + b"\0\0\0\0"
    forged = np.unpackbits(np.frombuffer(body + bytes([markcode.crc8(body)]), dtype=np.uint8))
    assert markcode.decode(KEY, forged, reliability=np.ones(markcode.CODE_BITS)) == markcode.Decoded(
        True, False, None
    )


def test_too_small_and_too_short() -> None:
    tiny = watermark.extract([np.zeros((64, 64, 3), np.uint8)], key=KEY)
    assert not tiny.found and "too small" in (tiny.reason or "")
    assert watermark.extract([], key=KEY).reason == "no frames to read"
    # Frames too small to mark pass through untouched instead of failing a render.
    frame = np.zeros((8, 8, 3), np.uint8)
    assert next(watermark.watermark_frames([frame], PAYLOAD, key=KEY)) is frame


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        next(watermark.watermark_frames(iter([]), b"short", key=KEY))
    with pytest.raises(ValueError, match="RGB uint8"):
        watermark.embed(np.zeros((64, 64), dtype=np.uint8), PAYLOAD, key=KEY)


def _unmarked_clip(seed: int) -> list[np.ndarray]:
    """Three frames of one of four kinds of content with no mark: a gradient, multi-scale noise
    (foliage, gravel), shapes, or periodic structure (blinds, a fence: the content most like the
    mark's sync stripes), at a small size, moving a little."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = [(160, 96), (256, 144), (320, 180), (192, 256)][seed % 4]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = seed // 4 % 4
    if kind == 0:
        angle = rng.uniform(0, 2 * np.pi)
        base = 70 + 120 * (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    elif kind == 1:
        base = np.full((height, width), 128.0, np.float32)
        for cells in (4, 8, 16, 32, 64):
            grid = rng.normal(0, 60 / np.sqrt(cells), (cells, cells)).astype(np.float32)
            base += np.asarray(
                Image.fromarray(grid, mode="F").resize((width, height), Image.Resampling.BILINEAR)
            )
    elif kind == 2:
        base = 60 + 100 * yy / height
        for _ in range(6):
            x0, y0, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.3) * height
            base[(xx - x0) ** 2 + (yy - y0) ** 2 < r * r] = rng.uniform(0, 255)
    else:
        period, angle = rng.uniform(3, 40), rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)])
        base = 128 + 80 * np.sign(np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period))
    frames = []
    for i in range(3):
        moved = np.roll(base, (i, 2 * i), axis=(0, 1)) + rng.normal(0, 3, base.shape).astype(np.float32)
        frames.append(np.repeat(np.clip(moved, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    return frames


def test_threshold_gives_no_false_positive_on_unmarked_content() -> None:
    """200 fixed unmarked clips: none declared marked, with room to spare (the full 10,000-clip
    count is bench/watermark_false_positive.py). Noise scores ~N(0, 1) per placement, the best of
    16 placements ~1.5 +- 0.7: a threshold lowered to ~3 sigmas lets several through."""
    scores = []
    for seed in range(200):
        result = watermark.extract(_unmarked_clip(seed), key=KEY)
        assert not result.found and result.payload is None, (seed, result)
        scores.append(result.presence_z)
    assert max(scores) < watermark.PRESENCE_Z - 1.5, max(scores)


def _encode(frames: list[np.ndarray], path: Path, crf: int = 20) -> Path:
    from openreel.render.encode import VideoWriter

    with VideoWriter(path, width=frames[0].shape[1], height=frames[0].shape[0], fps=24, crf=crf) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def test_small_clip_reads_where_it_can_and_says_why_where_it_cannot(tmp_path: Path) -> None:
    """Through openreel's encoder and ``verify``: coarse texture at 160x96 keeps its payload (the
    texture's lean on each bit is cancelled as it is marked); a smooth 240x144 clip re-encoded at
    CRF 28 keeps the mark's presence but not its payload, and the answer says the clip is too
    small to carry one, never "made by this installation" nor "made elsewhere"."""
    from openreel.provenance.verify import verify

    rough = _encode(
        list(watermark.watermark_frames(textured_frames(24, 160, 96), PAYLOAD, key=KEY)), tmp_path / "t.mp4"
    )
    report = verify(rough, key=KEY)
    assert report.watermark.payload == PAYLOAD and report.watermark.reason is None
    assert "too small" not in report.summary
    squeezed = _encode(
        list(watermark.watermark_frames(natural_frames(24, 240, 144), PAYLOAD, key=KEY)),
        tmp_path / "s.mp4",
        crf=28,
    )
    report = verify(squeezed, key=KEY)
    assert report.watermark.found and report.watermark.payload is None
    assert "240x144 frames are too small to carry a payload reliably" in report.summary, report.summary
    assert "made by this installation" not in report.summary and "elsewhere" not in report.summary
