"""What provenance adds to a 10 s 1080p clip: watermarking + C2PA signing vs the H.264 encode.

    python bench/provenance.py              # 240 frames at 1920x1080 (10 s at 24 fps)
    python bench/provenance.py --frames 96  # quicker

All three are measured in one streaming run, frame by frame as the engine does it: the
optional visible label, the watermark step and the encode step of each frame are timed
separately (PyAV libx264, preset veryfast, CRF 20, BT.709 yuv420p, faststart: what openreel's
encoder does), then signing the finished MP4 with the payload handed over, as the engine signs
(no decode). Frames cycle through a pool of 24 made in code, so memory stays flat. Targets: the
mark <= 10% of the encode (issue 17), watermark + sign <= 25%. The label is reported apart (it
is off by default). Prints a table and writes bench/results/provenance.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

TARGET = 0.25
MARK_TARGET = 0.10


def natural_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """Gradients, a moving disc and grain, so the encoder does real work (flat colour is free)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    grain = rng.normal(0, 8, (height, width)).astype(np.float32)
    frames = []
    for i in range(n):
        t = i / 24
        img = np.stack(
            [
                128 + 90 * np.sin(xx / width * 3 + t) + grain,
                100 + 80 * np.cos(yy / height * 4 - 0.7 * t) + grain,
                60 + 100 * (xx + yy) / (width + height) + grain,
            ],
            axis=-1,
        )
        disc = (xx - width * (0.3 + 0.2 * np.sin(t))) ** 2 + (yy - height * 0.5) ** 2 < (height / 5) ** 2
        img[disc] = [230, 200, 40]
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


class Timed:
    """Wraps an iterator and adds the time spent inside its ``next`` to ``seconds``."""

    def __init__(self, frames: Iterator[np.ndarray]):
        self.frames, self.seconds = frames, 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            start = time.perf_counter()
            try:
                frame = next(self.frames)
            except StopIteration:
                return
            finally:
                self.seconds += time.perf_counter() - start
            yield frame


def encode(frames: Iterable[np.ndarray], path: Path, width: int, height: int, fps: int) -> float:
    """Encode ``frames``; returns the seconds spent in conversion + encoding + muxing only."""
    import av

    spent = 0.0
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        stream.codec_context.colorspace = 1  # BT.709 tags, as the encoder writes them
        stream.codec_context.color_range = 1
        for frame in frames:
            start = time.perf_counter()
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
            )
            for packet in stream.encode(video_frame):
                container.mux(packet)
            spent += time.perf_counter() - start
        start = time.perf_counter()
        for packet in stream.encode():
            container.mux(packet)
    return spent + time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=240, help="frames in the clip (240 = 10 s at 24 fps)")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "provenance.json")
    args = parser.parse_args()

    import os

    from openreel import provenance
    from openreel.provenance import watermark

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("OPENREEL_HOME", str(Path(tmp) / "home"))
        payload = provenance.make_payload(provenance.installation_id(), "bench")
        from openreel.provenance import keys

        keys.signing_identity()  # the local CA exists before timing, as in a running server
        watermark.embed(np.zeros((64, 64, 3), np.uint8), payload)  # warm imports (pywt) out of the timing

        pool = natural_frames(min(24, args.frames), args.width, args.height)
        source = (pool[i % len(pool)] for i in range(args.frames))
        from openreel.provenance.label import Label, label_frames

        labelling = Timed(label_frames(source, Label()))
        marking = Timed(provenance.watermark_frames(labelling, payload))
        video = Path(tmp) / "clip.mp4"
        encode_s = encode(marking, video, args.width, args.height, args.fps)
        # The marking iterator's time includes pulling labelled frames: take the label out.
        label_s = labelling.seconds
        watermark_s = marking.seconds - label_s

        credits = provenance.Credits(model_id="bench-model", model_licence="Apache-2.0")
        start = time.perf_counter()
        provenance.sign_file(video, credits=credits, watermark=payload)
        sign_s = time.perf_counter() - start

        start = time.perf_counter()
        report = provenance.verify(video)
        verify_s = time.perf_counter() - start
        size_mb = video.stat().st_size / 1e6

    added = watermark_s + sign_s
    ratio = added / encode_s
    mark_ratio = watermark_s / encode_s
    rows = [
        ("encode (libx264 veryfast CRF 20)", encode_s),
        ("watermark (every frame)", watermark_s),
        ("sign (C2PA, payload handed over)", sign_s),
        ("watermark + sign", added),
        ("visible label (optional, not in the sum)", label_s),
        ("verify (not on the render path)", verify_s),
    ]
    size = f"{args.width}x{args.height}"
    print(f"{args.frames} frames {size} @ {args.fps} fps, {os.cpu_count()} CPUs, {size_mb:.1f} MB")
    print(f"{'step':<52}{'seconds':>9}{'per frame ms':>14}")
    for name, seconds in rows:
        print(f"{name:<52}{seconds:>9.3f}{1000 * seconds / args.frames:>14.2f}")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"watermark / encode = {mark_ratio:.1%} (target {MARK_TARGET:.0%})")
    print(f"added / encode = {ratio:.1%} ({verdict} the {TARGET:.0%} target)")
    print(f"label / encode = {label_s / encode_s:.1%}")
    print(f"verify: manifest trusted={report.manifest.trusted}, watermark found={report.watermark.found}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "frames": args.frames,
                "width": args.width,
                "height": args.height,
                "fps": args.fps,
                "cpus": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "watermark_every": watermark.EVERY,
                "encode_s": round(encode_s, 4),
                "watermark_s": round(watermark_s, 4),
                "sign_s": round(sign_s, 4),
                "added_s": round(added, 4),
                "ratio": round(ratio, 4),
                "target": TARGET,
                "watermark_ratio": round(mark_ratio, 4),
                "watermark_target": MARK_TARGET,
                "label_s": round(label_s, 4),
                "verify_s": round(verify_s, 4),
                "verify_trusted": report.manifest.trusted,
                "verify_watermark_found": report.watermark.found,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
