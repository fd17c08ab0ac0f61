"""openreel's overhead over the bare path, measured in one run.

Bare path: the same diffusers pipeline class loaded from the same folder, called with the same
arguments, frames converted to uint8 and encoded with a plain PyAV loop (libx264, same size/fps).
openreel path: ``openreel generate`` (plan, runner, post, encoder, thumbnail, spritesheet, recipe).

Two comparisons, each the median of several repetitions:
  cold  - ``openreel generate`` as a fresh process vs this script's bare path as a fresh process
          (both pay for importing torch/diffusers and loading the pipeline);
  warm  - in one process with the pipeline already loaded: Engine.generate vs the bare call.
Target (issue 2): openreel costs at most 10% more than the bare path on a run of 2 s or more.

With a model that makes sound (``--model tiny-ltx-2``) the bare path is the one diffusers' LTX-2
docs give: ``LTX2Pipeline`` then ``diffusers.utils.encode_video`` with the audio; openreel writes
its AAC track too (48 kHz, fitted to the video). Results go to ``results/overhead_audio.json``.

    python bench/overhead.py [--model tiny-hunyuan] [--steps 30] [--seconds 5] [--reps 5]
    python bench/overhead.py --model tiny-ltx-2 --steps 10 --seconds 2 --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def bare_encode(frames, path: Path, fps: int) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def bare_run(pipe, arguments: dict, out_frames: int, fps: int, path: Path) -> None:
    import numpy as np
    import torch

    with torch.inference_mode():
        output = pipe(**arguments, output_type="np")
    frames = output.frames[0]
    if getattr(output, "audio", None) is not None:
        # LTX-2: diffusers' own muxer, as its docs call it (frames and audio, the vocoder's rate).
        from diffusers.utils import encode_video

        encode_video(
            frames[:out_frames],
            fps=fps,
            output_path=str(path),
            audio=output.audio[0].float().cpu(),
            audio_sample_rate=pipe.vocoder.config.output_sampling_rate,
        )
        return
    frames = (np.clip(frames[:out_frames], 0, 1) * 255).round().astype("uint8")
    bare_encode(list(frames), path, fps)


def setup(args):
    """The plan openreel would make, and everything the bare path needs to match it."""
    from dataclasses import replace

    from openreel.engine import Engine
    from openreel.models.weights import resolve_card, weights_folder
    from openreel.spec import VideoSpec

    engine = Engine()
    card = resolve_card(args.model)
    # Output at the model's native size and fps, so both paths encode the same pixels.
    spec = VideoSpec(
        prompt=args.prompt,
        model=card.id,
        seconds=args.seconds,
        steps=args.steps,
        seed=1,
        width=card.native_width,
        height=card.native_height,
        fps=card.fps,
    )
    plan = engine.plan(spec)
    plan = replace(plan, seeds=(1,))
    return engine, card, spec, plan, weights_folder(card)


def bare_pipeline(card, folder):
    import diffusers
    import torch

    from openreel.models.families import family_module

    family = family_module(card.family)
    if getattr(family, "MAKES_AUDIO", False):
        # LTX-2's connectors and vocoder classes live in modules diffusers does not import itself.
        import diffusers.pipelines.ltx2.connectors  # noqa: F401
        import diffusers.pipelines.ltx2.vocoder  # noqa: F401
    class_name = family.PIPELINES["t2v"]
    pipe = getattr(diffusers, class_name).from_pretrained(folder, dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bare_arguments(card, plan, pipe=None):
    import torch

    from openreel.models.families import family_module

    family = family_module(card.family)
    arguments = family.call_arguments(plan, torch.Generator("cpu").manual_seed(plan.seeds[0]))
    if pipe is not None and hasattr(family, "prepare_call"):  # LTX-2's guidance block, by depth
        arguments = family.prepare_call(pipe, arguments)
    return arguments


def bare_main(args) -> None:
    """Entry for the cold bare path (a fresh process, like the CLI run it is compared with)."""
    _engine, card, _spec, plan, folder = setup(args)
    pipe = bare_pipeline(card, folder)
    bare_run(pipe, bare_arguments(card, plan, pipe), plan.out_frames, plan.out_fps, Path(args.bare_output))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tiny-hunyuan")
    parser.add_argument("--prompt", default="a paper boat drifting down a rainy street at night")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--bare-output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_output:
        bare_main(args)
        return

    engine, card, spec, plan, folder = setup(args)
    work = Path(tempfile.mkdtemp(prefix="openreel-bench-"))
    print(
        f"model {card.id}: {plan.width}x{plan.height}, {plan.num_frames} frames, {plan.steps} steps; "
        f"{args.reps} repetitions"
    )

    # Warm: one process, pipeline loaded once for each path.
    pipe = bare_pipeline(card, folder)
    arguments = bare_arguments(card, plan, pipe)
    bare_run(pipe, arguments, plan.out_frames, plan.out_fps, work / "warmup-bare.mp4")
    engine.generate(spec, work / "warmup.mp4")
    warm_bare, warm_openreel = [], []
    for rep in range(args.reps):
        started = time.perf_counter()
        bare_arguments_now = bare_arguments(card, plan, pipe)
        bare_run(pipe, bare_arguments_now, plan.out_frames, plan.out_fps, work / f"bare{rep}.mp4")
        warm_bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        engine.generate(spec, work / f"openreel{rep}.mp4")
        warm_openreel.append(time.perf_counter() - started)
    del pipe

    # Cold: fresh processes.
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cli = [
        sys.executable,
        "-m",
        "openreel",
        "generate",
        args.prompt,
        "--model",
        card.id,
        "--seconds",
        str(args.seconds),
        "--steps",
        str(args.steps),
        "--size",
        f"{plan.width}x{plan.height}",
        "--fps",
        str(card.fps),
        "--seed",
        "1",
        "-q",
    ]
    cold_bare, cold_openreel = [], []
    for rep in range(args.reps):
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--model",
                card.id,
                "--steps",
                str(args.steps),
                "--seconds",
                str(args.seconds),
                "--bare-output",
                str(work / f"cold-bare{rep}.mp4"),
            ],
            check=True,
            env=env,
        )
        cold_bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run(
            [*cli, "--output", str(work / f"cold{rep}.mp4")], check=True, env=env, stdout=subprocess.DEVNULL
        )
        cold_openreel.append(time.perf_counter() - started)

    rows = {
        "warm": (statistics.median(warm_bare), statistics.median(warm_openreel)),
        "cold": (statistics.median(cold_bare), statistics.median(cold_openreel)),
    }
    print(f"{'path':<6}{'bare s':>10}{'openreel s':>12}{'ratio':>8}")
    for name, (bare, ours) in rows.items():
        print(f"{name:<6}{bare:>10.3f}{ours:>12.3f}{ours / bare:>8.3f}")
    result = {
        "model": card.id,
        "steps": plan.steps,
        "frames": plan.num_frames,
        "size": f"{plan.width}x{plan.height}",
        "reps": args.reps,
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        **{f"{name}_bare_s": round(b, 4) for name, (b, _) in rows.items()},
        **{f"{name}_openreel_s": round(o, 4) for name, (_, o) in rows.items()},
        **{f"{name}_ratio": round(o / b, 4) for name, (b, o) in rows.items()},
    }
    sound = card.makes_audio
    if sound:
        result["audio"] = "bare: diffusers' encode_video with the vocoder's waveform; openreel: 48 kHz AAC"
    out = Path(__file__).parent / "results" / ("overhead_audio.json" if sound else "overhead.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
