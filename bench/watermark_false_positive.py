"""How often the watermark detector says "mark present" on video that carries none.

    nice -n 10 python bench/watermark_false_positive.py --trials 10000
    python bench/watermark_false_positive.py --trials 300          # a quick look

Each trial is a short unmarked clip (4 frames, 96 to 720 rows, several aspects) of one of eight
kinds of natural-looking content made in code: sky gradients, fractal noise (foliage, gravel),
shapes over a gradient, a camera pan across a larger scene, periodic structure (blinds, stripes,
checkerboards at any period and angle: the content most like the mark's sync stripes), text-like
glyph rows, flat colour with grain, and a dark low-contrast night scene. A quarter of the clips
go through a real H.264 encode (CRF 18-30, sometimes resized), read back as ``verify`` reads
video (luma from the Y plane). The real ``Detector`` decides; every "found" is a false positive.

Reported: false positives / trials, the exact 95% Clopper-Pearson upper bound on the rate (with
none found it is about the rule of three, 3 / trials), the detector's threshold (``PRESENCE_Z``)
and the distribution of the presence score it compares against the threshold: its mean and std
(the design says ~N(0, 1) per placement, the max over (_CANDIDATES + 1)**2 placements) and the
largest score seen, with the margin to the threshold in sigmas.

Writes bench/results/watermark_false_positive.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

# bench/watermark.py's transcode: a real libx264 encode, decoded the way `verify` reads video.
from watermark import transform  # noqa: E402  (bench/ is on the path when run as a script)

from openreel.provenance import watermark  # noqa: E402

KEY = bytes(range(32))
FRAMES = 4
SIZES = [
    (160, 96),
    (256, 144),
    (320, 180),
    (384, 216),
    (480, 270),
    (640, 360),
    (512, 512),
    (360, 640),
    (1280, 720),
]
KINDS = ("gradient", "fractal", "shapes", "pan", "periodic", "text", "flat", "night")


def _fractal(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """1/f-ish noise: octaves of random grids, upsampled bilinearly (PIL), summed."""
    from PIL import Image

    out = np.zeros((height, width), np.float32)
    cells = 4
    amplitude = 1.0
    while cells < max(height, width):
        grid = rng.normal(0, 1, (cells, cells)).astype(np.float32)
        out += amplitude * np.asarray(
            Image.fromarray(grid, mode="F").resize((width, height), Image.Resampling.BILINEAR)
        )
        cells *= 2
        amplitude *= rng.uniform(0.45, 0.75)
    return out / (out.std() + 1e-6)


def clip(kind: str, width: int, height: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``FRAMES`` RGB uint8 frames of ``kind`` with a little motion between them."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    tint = rng.uniform(0.7, 1.3, 3).astype(np.float32)
    frames: list[np.ndarray] = []
    if kind == "pan":  # a camera pan across a scene larger than the frame
        scene_w, scene_h = width + 8 * FRAMES, height + 4 * FRAMES
        scene = 120 + 45 * _fractal(rng, scene_h, scene_w)
        sy, sx = np.mgrid[0:scene_h, 0:scene_w]
        for _ in range(int(rng.integers(2, 6))):
            cx, cy, r = rng.uniform(0, scene_w), rng.uniform(0, scene_h), rng.uniform(0.05, 0.3) * scene_h
            scene[(sx - cx) ** 2 + (sy - cy) ** 2 < r * r] = rng.uniform(20, 235)
        dx, dy = rng.integers(-8, 9), rng.integers(-4, 5)
        x0, y0 = 4 * FRAMES, 2 * FRAMES
        for i in range(FRAMES):
            y = scene[
                y0 + dy * i // 2 : y0 + dy * i // 2 + height, x0 + dx * i // 2 : x0 + dx * i // 2 + width
            ]
            frames.append(y[..., None] * tint)
    else:
        base = np.zeros((height, width), np.float32)
        if kind == "gradient":
            angle = rng.uniform(0, 2 * math.pi)
            base = (
                80
                + 120 * (np.cos(angle) * u + np.sin(angle) * v)
                + 30 * np.exp(-((u - rng.uniform()) ** 2 + (v - rng.uniform()) ** 2) * 8)
            )
        elif kind == "fractal":
            base = 128 + rng.uniform(15, 60) * _fractal(rng, height, width)
        elif kind == "shapes":
            base = 90 + 80 * v + 20 * u
            for _ in range(int(rng.integers(3, 12))):
                x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
                w, h = rng.uniform(0.05, 0.4) * width, rng.uniform(0.05, 0.4) * height
                if rng.uniform() < 0.5:
                    base[(np.abs(xx - x0) < w / 2) & (np.abs(yy - y0) < h / 2)] = rng.uniform(0, 255)
                else:
                    base[((xx - x0) / w) ** 2 + ((yy - y0) / h) ** 2 < 0.25] = rng.uniform(0, 255)
        elif kind == "periodic":
            period = rng.uniform(2.5, 0.25 * min(width, height))
            angle = rng.choice([0.0, math.pi / 2, rng.uniform(0, math.pi)])
            phase = np.cos(angle) * xx + np.sin(angle) * yy
            wave = np.sin(2 * math.pi * phase / period)
            if rng.uniform() < 0.4:  # square wave: blinds, a fence, a checkerboard
                wave = np.sign(wave)
                if rng.uniform() < 0.5:
                    wave = wave * np.sign(
                        np.sin(2 * math.pi * (-np.sin(angle) * xx + np.cos(angle) * yy) / period)
                    )
            base = 128 + rng.uniform(10, 100) * wave
        elif kind == "text":
            base = np.full((height, width), rng.uniform(200, 250), np.float32)
            line = max(6, int(rng.uniform(0.03, 0.1) * height))
            for top in range(line, height - line, int(line * 1.6)):
                left = int(rng.uniform(0.02, 0.1) * width)
                while left < width * 0.9:
                    glyph = min(int(line * rng.uniform(0.3, 0.8)), width - left)
                    mask = rng.uniform(size=(line, glyph)) < 0.45
                    base[top : top + line, left : left + glyph][mask] = rng.uniform(0, 60)
                    left += glyph + max(1, line // 5)
        elif kind == "flat":
            base = np.full((height, width), rng.uniform(0, 255), np.float32)
        else:  # night: dark, low contrast, heavy sensor noise shows on the encode
            base = 18 + 10 * _fractal(rng, height, width)
        grain = rng.uniform(0, 6)
        for i in range(FRAMES):
            shift = np.roll(base, (i * int(rng.integers(-2, 3)), i * int(rng.integers(-2, 3))), axis=(0, 1))
            frames.append((shift + rng.normal(0, grain, shift.shape).astype(np.float32))[..., None] * tint)
    return [np.clip(f, 0, 255).astype(np.uint8) for f in frames]


def clopper_pearson_upper(k: int, n: int, confidence: float = 0.95) -> float:
    """Exact (two-sided) upper bound on a binomial rate after ``k`` events in ``n`` trials."""
    if k >= n:
        return 1.0
    alpha = (1 - confidence) / 2

    def cdf(p: float) -> float:  # P(X <= k) for X ~ Binomial(n, p)
        return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))

    low, high = k / n, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) > alpha else (low, mid)
    return high


def trial(index: int) -> dict:
    rng = np.random.default_rng(10_000_000 + index)
    kind = KINDS[index % len(KINDS)]
    width, height = SIZES[int(rng.integers(len(SIZES)))]
    frames = clip(kind, width, height, rng)
    encoded = index % 4 == 3
    if encoded:
        size = (
            None
            if rng.uniform() < 0.5
            else (int(width * rng.uniform(0.6, 1.5)), int(height * rng.uniform(0.6, 1.5)))
        )
        frames = transform(frames, crf=int(rng.integers(18, 31)), size=size)
    result = watermark.extract(frames, key=KEY)
    return {
        "kind": kind,
        "size": f"{width}x{height}",
        "h264": encoded,
        "found": result.found,
        "z": result.presence_z,
        "scored": result.presence_z != 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "watermark_false_positive.json"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for index in range(args.trials):
        rows.append(trial(index))
        if rows[-1]["found"]:
            print(f"FALSE POSITIVE trial {index}: {rows[-1]}", flush=True)
        if (index + 1) % 500 == 0:
            print(f"{index + 1}/{args.trials} trials, {time.perf_counter() - start:.0f} s", flush=True)
    elapsed = time.perf_counter() - start
    scored = np.array([r["z"] for r in rows if r["scored"]])  # flat frames give no score
    found = sum(r["found"] for r in rows)
    by_kind = Counter(r["kind"] for r in rows if r["found"])
    report = {
        "machine": platform.platform(),
        "command": f"python bench/watermark_false_positive.py --trials {args.trials}",
        "trials": args.trials,
        "frames_per_clip": FRAMES,
        "h264_share": 0.25,
        "false_positives": found,
        "false_positive_rate": found / args.trials,
        "rate_upper_95_clopper_pearson": clopper_pearson_upper(found, args.trials),
        "rule_of_three": 3 / args.trials,
        "false_positives_by_kind": dict(by_kind),
        "threshold_presence_z": watermark.PRESENCE_Z,
        "placements_tried": (watermark._CANDIDATES + 1) ** 2,
        "presence_z": {
            "scored": len(scored),
            "mean": round(float(scored.mean()), 3),
            "std": round(float(scored.std()), 3),
            "p99": round(float(np.percentile(scored, 99)), 3),
            "max": round(float(scored.max()), 3),
            "max_by_kind": {kind: round(max(r["z"] for r in rows if r["kind"] == kind), 3) for kind in KINDS},
        },
        "seconds": round(elapsed, 1),
        "ms_per_trial": round(1000 * elapsed / args.trials, 1),
    }
    z = report["presence_z"]
    print(
        f"{found}/{args.trials} unmarked clips declared marked (rate {found / args.trials:.2e}, 95% upper "
        f"bound {report['rate_upper_95_clopper_pearson']:.2e}); threshold z={watermark.PRESENCE_Z}, "
        f"score mean {z['mean']} std {z['std']} p99 {z['p99']} max {z['max']} "
        f"({watermark.PRESENCE_Z - z['max']:.2f} below the threshold); {elapsed:.0f} s"
    )
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
