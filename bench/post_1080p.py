"""openreel's 1080p post-processing against the ffmpeg command line doing the same work.

Source: 10 s of 854x480 at 8 fps (natural-looking frames made in code: gradients, moving shapes,
texture). Both paths motion-interpolate to 24 fps (minterpolate, mci), scale with lanczos to cover
1920x1080, centre-crop, convert with BT.709 and encode libx264 veryfast CRF 20 with the same
thread count, from the same raw frames:

  openreel - render.post.conform(interpolate=True) streaming into render.encode.VideoWriter,
             in a fresh Python process (its peak RSS measured alone);
  ffmpeg   - the ffmpeg binary reading the raw RGB frames from a file with the same filter chain.

Prints the time ratio (target <= 1.2) and the peak RSS of each (target: openreel under 1.5 GiB),
and writes bench/results/post_1080p.json.

    python bench/post_1080p.py [--seconds 10] [--reps 3]        # needs the ffmpeg binary
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC_W, SRC_H, SRC_FPS = 854, 480, 8
OUT_W, OUT_H, OUT_FPS = 1920, 1080, 24


def source_frames(count: int):
    """Frames with structure and motion, so motion estimation and x264 do real work."""
    import numpy as np

    y, x = np.mgrid[0:SRC_H, 0:SRC_W].astype(np.float32)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 24, size=(SRC_H, SRC_W, 1), dtype=np.uint8)
    for i in range(count):
        t = i / SRC_FPS
        frame = np.empty((SRC_H, SRC_W, 3), np.float32)
        frame[..., 0] = 120 + 100 * np.sin(x / 90 + t)
        frame[..., 1] = 110 + 90 * np.cos(y / 70 - 0.7 * t)
        frame[..., 2] = 90 + 80 * np.sin((x + y) / 130 + 0.3 * t)
        cx, cy = 200 + 60 * t, 240 + 80 * np.sin(t)
        disc = (x - cx) ** 2 + (y - cy) ** 2 < 60**2
        frame[disc] = (230, 200, 40)
        frame[int(100 + 20 * t) % SRC_H : int(160 + 20 * t) % SRC_H or SRC_H, 500:640] = (30, 60, 200)
        yield np.clip(frame + texture, 0, 255).astype(np.uint8)


def run_openreel(raw: Path, count: int, out: Path) -> None:
    """The child process: read the raw frames, conform, encode."""
    import numpy as np

    from openreel.render.encode import VideoWriter
    from openreel.render.post import conform

    def frames():
        with open(raw, "rb") as handle:
            for _ in range(count):
                yield np.frombuffer(handle.read(SRC_W * SRC_H * 3), np.uint8).reshape(SRC_H, SRC_W, 3)

    total = round(count / SRC_FPS * OUT_FPS)
    stream = conform(
        frames(), src_fps=SRC_FPS, width=OUT_W, height=OUT_H, fps=OUT_FPS, num_frames=total, interpolate=True
    )
    with VideoWriter(out, width=OUT_W, height=OUT_H, fps=OUT_FPS) as writer:
        for frame in stream:
            writer.write(frame)


def ffmpeg_command(raw: Path, count: int, out: Path) -> list[str]:
    from openreel.render.encode import X264_THREADS, _x264_params
    from openreel.render.post import _MINTERPOLATE, cover_size

    scaled_w, scaled_h = cover_size(SRC_W, SRC_H, OUT_W, OUT_H)
    chain = (
        f"minterpolate=fps={OUT_FPS}:{_MINTERPOLATE},"
        f"scale=w={scaled_w}:h={scaled_h}:flags=lanczos,"
        f"crop=w={OUT_W}:h={OUT_H}:x={(scaled_w - OUT_W) // 2}:y={(scaled_h - OUT_H) // 2},"
        "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p"
    )
    x264 = ["-x264-params", _x264_params()] if _x264_params() else []
    return [
        "ffmpeg",
        "-y",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{SRC_W}x{SRC_H}",
        "-r",
        str(SRC_FPS),
        "-i",
        str(raw),
        "-vf",
        chain,
        "-frames:v",
        str(round(count / SRC_FPS * OUT_FPS)),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "20",
        "-threads",
        str(X264_THREADS),
        *x264,
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-colorspace",
        "bt709",
        "-movflags",
        "+faststart",
        str(out),
    ]


def timed(command: list[str]) -> tuple[float, float]:
    """Wall seconds and that child's own peak RSS in GiB (os.wait4 reports one child's usage)."""
    started = time.perf_counter()
    process = subprocess.Popen(command)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed with status {os.waitstatus_to_exitcode(status)}")
    return seconds, usage.ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_openreel(Path(args.child[0]), int(args.child[1]), Path(args.child[2]))
        return
    if shutil.which("ffmpeg") is None:
        sys.exit("this benchmark compares against the ffmpeg binary: install it (apt-get install ffmpeg)")

    count = round(args.seconds * SRC_FPS)
    work = Path(tempfile.mkdtemp(prefix="openreel-post-"))
    raw = work / "source.rgb"
    with open(raw, "wb") as handle:
        for frame in source_frames(count):
            handle.write(frame.tobytes())
    print(
        f"source: {count} frames {SRC_W}x{SRC_H} @ {SRC_FPS} fps -> {OUT_W}x{OUT_H} @ {OUT_FPS} fps, "
        f"{args.reps} repetitions"
    )

    ff_runs = [timed(ffmpeg_command(raw, count, work / f"ffmpeg{i}.mp4")) for i in range(args.reps)]
    ours_runs = [
        timed([sys.executable, __file__, "--child", str(raw), str(count), str(work / f"openreel{i}.mp4")])
        for i in range(args.reps)
    ]
    ff = statistics.median(s for s, _ in ff_runs)
    ours = statistics.median(s for s, _ in ours_runs)
    ff_rss = max(r for _, r in ff_runs)
    ours_rss = max(r for _, r in ours_runs)

    from openreel.render.encode import probe

    info = probe(work / "openreel0.mp4")
    assert (info.width, info.height, info.fps) == (OUT_W, OUT_H, OUT_FPS), info
    print(f"{'path':<10}{'seconds':>10}{'peak RSS GiB':>14}")
    print(f"{'ffmpeg':<10}{ff:>10.2f}{ff_rss:>14.2f}")
    print(f"{'openreel':<10}{ours:>10.2f}{ours_rss:>14.2f}")
    print(
        f"time ratio openreel/ffmpeg: {ours / ff:.3f} (target <= 1.2); "
        f"openreel peak RSS {ours_rss:.2f} GiB (target < 1.5); frames {info.frames}"
    )
    result = {
        "source": f"{count} frames {SRC_W}x{SRC_H}@{SRC_FPS}",
        "output": f"{OUT_W}x{OUT_H}@{OUT_FPS}",
        "frames": info.frames,
        "reps": args.reps,
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "ffmpeg_s": round(ff, 3),
        "openreel_s": round(ours, 3),
        "ratio": round(ours / ff, 3),
        "ffmpeg_peak_rss_gib": round(ff_rss, 3),
        "openreel_peak_rss_gib": round(ours_rss, 3),
    }
    out = Path(__file__).parent / "results" / "post_1080p.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
