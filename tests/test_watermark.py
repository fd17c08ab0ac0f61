"""The invisible watermark through real H.264 (PyAV libx264) at CRF 18, 23 and 28."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest

from openreel.provenance import make_payload, watermark

WIDTH, HEIGHT, FRAMES = 640, 360, 36
PAYLOAD = make_payload("test-installation", "video_0123")


def natural_frames(
    n: int = FRAMES, width: int = WIDTH, height: int = HEIGHT, seed: int = 0
) -> list[np.ndarray]:
    """Moving gradients, two shapes and grain: what a codec has to work at, unlike flat colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grain = np.kron(rng.normal(0, 1, (height // 4 + 1, width // 4 + 1)), np.ones((4, 4)))[:height, :width]
    grain = grain.astype(np.float32) * 12
    frames = []
    for i in range(n):
        t = i / 24
        img = np.stack(
            [
                128 + 90 * np.sin(xx / width * 3 + t) + grain,
                100 + 80 * np.cos(yy / height * 4 - 0.7 * t) + 0.5 * grain,
                60 + 100 * (xx + yy) / (width + height) + 0 * grain,
            ],
            axis=-1,
        )
        sun = (xx - width * (0.3 + 0.2 * np.sin(t))) ** 2 + (yy - height * 0.5) ** 2 < (height / 5) ** 2
        img[sun] = [230, 200, 40]
        box = (abs(xx - width * 0.75) < width / 10) & (
            abs(yy - height * 0.4 - 20 * np.sin(2 * t)) < height / 6
        )
        img[box] = img[box] * 0.3 + np.array([20, 60, 200]) * 0.7
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def reencode(frames: list[np.ndarray], crf: int) -> Iterator[np.ndarray]:
    """Encode as an H.264 MP4 (BT.709, like openreel's encoder) at the same size; decode it back
    the way ``verify`` does (luma from the Y plane)."""
    import av

    from openreel.provenance.verify import video_luma

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
            )
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buf.seek(0)
    with av.open(buf) as container:
        for frame in container.decode(video=0):
            yield video_luma(frame)


@pytest.fixture(scope="module")
def clean() -> list[np.ndarray]:
    return natural_frames()


@pytest.fixture(scope="module")
def marked(clean: list[np.ndarray]) -> list[np.ndarray]:
    return list(watermark.watermark_frames(iter(clean), PAYLOAD))


def bit_accuracy(result: watermark.WatermarkResult) -> float:
    if result.bits is None:
        return 0.0
    truth = np.unpackbits(np.frombuffer(PAYLOAD, dtype=np.uint8))
    return float(np.mean(result.bits == truth))


def test_marks_are_invisible_and_read_back_exactly(clean: list[np.ndarray], marked: list[np.ndarray]) -> None:
    mse = np.mean((clean[0].astype(np.float64) - marked[0]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 38  # PSNR in dB
    result = watermark.extract(marked)
    assert result.found and result.payload == PAYLOAD
    assert result.confidence > 0.99


@pytest.mark.parametrize("crf", [18, 23, 28])
def test_survives_h264(marked: list[np.ndarray], crf: int) -> None:
    result = watermark.extract(reencode(marked, crf))
    assert bit_accuracy(result) >= 0.95, result
    assert result.found and result.payload == PAYLOAD


@pytest.mark.parametrize("crf", [None, 18, 28])
def test_no_detection_on_clean_frames(clean: list[np.ndarray], crf: int | None) -> None:
    frames = clean if crf is None else reencode(clean, crf)
    result = watermark.extract(frames)
    assert not result.found and result.payload is None
    assert result.frames_marked == 0


def test_flat_and_odd_sized_frames() -> None:
    # Flat colour is the worst case for false detection (every block reads the same bit);
    # the key must turn it into noise. Odd sizes keep their edge unmarked, not crash.
    for value in (0, 128, 255):
        flat = np.full((100, 150, 3), value, dtype=np.uint8)
        assert not watermark.extract([flat] * 3).found
    odd = natural_frames(1, 203, 117)[0]
    assert watermark.extract([watermark.embed(odd, PAYLOAD)]).payload == PAYLOAD


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        next(watermark.watermark_frames(iter([]), b"short"))
    with pytest.raises(ValueError, match="RGB uint8"):
        watermark.embed(np.zeros((64, 64), dtype=np.uint8), PAYLOAD)
