"""--memory modes against no offloading, on the twins on this CPU, in one run.

Each row is a fresh process (so its peak RSS is its own): the twin's pipeline loaded and placed
as the memory plan says, one warm-up call, then the best of ``--reps`` timed calls of the model
stage (denoising and VAE decode). Rows: ``none`` (the baseline: nothing offloaded), the
planner's own choice for ``auto``, ``fast`` and ``low`` on this machine, and each MemoryPlan
setting that runs on a CPU alone (VAE tiling, VAE slicing, block- and leaf-level group
offloading, offloading to disk, float8 layerwise storage, int8 weight-only quantization of the
components the planner would quantize: torchao, ``openreel[quant]``). Reported: peak RSS (and its rise over
the process after imports), the timed seconds, both as ratios to ``none``, and ``max_abs_diff``,
how far the frames are from ``none``'s (0 for lossless settings). The twins are a few MiB, so on
them RSS differences are small next to the interpreter's; full-size figures need a GPU
(bench/gpu_smoke.py).

    python bench/memory.py [--families wan ltx] [--seconds 1] [--size 96x64] [--steps 4] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "results" / "memory.json"
# Settings that run on a CPU by themselves (CUDA streams need an accelerator).
VARIANTS: dict[str, dict[str, Any]] = {
    "none": {},
    "vae_tiling": {"vae_tiling": True},
    "vae_slicing": {"vae_slicing": True},
    "offload_block": {"group_offload": True, "offload_type": "block_level"},
    "offload_leaf": {"group_offload": True, "offload_type": "leaf_level"},
    "offload_disk": {"group_offload": True, "offload_type": "block_level", "offload_to_disk": True},
    "fp8_layerwise": {"layerwise_fp8": True},
    "int8": {"quantize": "planner"},  # the components int8_choice names for the card
}
MODES = ("auto", "fast", "low")


def rss_mib() -> float:
    """Current resident memory of this process (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def resident_bytes(module: Any) -> int:
    """Bytes of ``module``'s weights held in memory: a torchao tensor counts its int8 data and
    scales; weights on the meta device count nothing."""
    try:
        from torchao.utils import TorchAOBaseTensor
    except ImportError:  # without openreel[quant] nothing is quantized
        TorchAOBaseTensor = ()  # noqa: N806 - an isinstance() of nothing

    total = 0
    for parameter in module.parameters():
        if isinstance(parameter, TorchAOBaseTensor):
            names, _ = parameter.__tensor_flatten__()
            total += sum(getattr(parameter, name).nbytes for name in names)
        elif parameter.device.type != "meta":
            total += parameter.nbytes
    return total


def child(family: str, variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """One row, in this process: load, place, warm up, time one call."""
    import numpy as np
    import torch

    from openreel.engine import Engine
    from openreel.models.catalog import all_cards, twin_for
    from openreel.models.weights import weights_folder
    from openreel.plan import MemoryPlan, int8_choice
    from openreel.spec import VideoSpec, parse_size

    torch.set_num_threads(1)
    first = next(card for card in all_cards() if card.family == family and not card.is_tiny)
    twin = twin_for(first.id)
    width, height = parse_size(args.size)
    mode = variant if variant in MODES else "auto"
    spec = VideoSpec(
        "a red kite over a beach", model=twin.id, seconds=args.seconds, width=width, height=height,
        seed=3, steps=args.steps, memory=mode,
    )  # fmt: skip
    engine = Engine()
    plan = engine.plan(spec)
    if variant not in MODES:
        settings = dict(VARIANTS[variant])
        if settings.get("quantize") == "planner":
            settings["quantize"] = int8_choice(twin).components
        plan = replace(plan, memory=MemoryPlan(mode="auto", reason=f"bench: {variant}", **settings))
    folder = weights_folder(twin)
    baseline = rss_mib()
    engine.runner.run_window(twin, folder, plan, plan.windows[0], plan.seeds[0])  # load + warm up
    times = []
    for _ in range(args.reps):  # best of reps: a shared CPU's noise is only ever added time
        started = time.perf_counter()
        frames = engine.runner.run_window(twin, folder, plan, plan.windows[0], plan.seeds[0]).final
        times.append(time.perf_counter() - started)
    seconds = min(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    # The twins' weights are KiB beside the interpreter's MiB: what each component holds in
    # memory shows a setting's effect on weights where RSS cannot (int8: a byte a Linear weight).
    pipe = engine.runner._pipe
    weights = {
        name: round(resident_bytes(module) / 1024, 1)
        for name, module in pipe.components.items()
        if hasattr(module, "parameters")
    }
    np.save(args.frames_out, frames)
    memory = plan.memory
    chosen = [name for name, value in vars(memory).items() if value is True]
    if memory.quantize:
        chosen.append("int8:" + "+".join(memory.quantize))
    return {
        "family": family,
        "twin": twin.id,
        "variant": variant,
        "memory_plan": chosen + ([memory.offload_type] if memory.group_offload else []),
        "reason": memory.reason,
        "seconds": round(seconds, 4),
        "peak_rss_mib": round(peak, 1),
        "rise_mib": round(peak - baseline, 1),
        "weights_kib": weights,
    }


def run_row(family: str, variant: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    frames = folder / f"{family}-{variant}.npy"
    command = [sys.executable, __file__, "--child", family, variant, "--frames-out", str(frames)]
    command += ["--seconds", str(args.seconds), "--size", args.size, "--steps", str(args.steps)]
    command += ["--reps", str(args.reps)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        return {"family": family, "variant": variant, "error": done.stderr.strip().splitlines()[-1][:300]}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["frames_file"] = str(frames)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="*", default=["wan", "ltx"])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size", default="96x64")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "VARIANT"), help=argparse.SUPPRESS)
    parser.add_argument("--frames-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return
    import numpy as np

    # Twins built fresh in a private openreel folder, shared by the rows.
    os.environ["OPENREEL_HOME"] = tempfile.mkdtemp(prefix="openreel-bench-")
    scratch = Path(tempfile.mkdtemp(prefix="openreel-memory-"))
    rows = []
    for family in args.families:
        base: dict[str, Any] | None = None
        base_frames = None
        for variant in ["none", *MODES, *list(VARIANTS)[1:]]:
            row = run_row(family, variant, args, scratch)
            if "error" not in row:
                frames = np.load(row.pop("frames_file"))
                base, base_frames = base or row, frames if base_frames is None else base_frames
                row["time_ratio"] = round(row["seconds"] / base["seconds"], 3)
                row["peak_ratio"] = round(row["peak_rss_mib"] / base["peak_rss_mib"], 3)
                row["max_abs_diff"] = float(f"{np.abs(frames - base_frames).max():.3g}")
                print(
                    f"{family:5s} {variant:14s} peak {row['peak_rss_mib']:7.1f} MiB (x{row['peak_ratio']:<5})"
                    f" time {row['seconds']:7.3f} s (x{row['time_ratio']:<5}) diff {row['max_abs_diff']:<8}"
                    f" transformer {row['weights_kib'].get('transformer', 0):6.1f} KiB"
                    f" {' '.join(row['memory_plan']) or '-'}"
                )
            else:
                print(f"{family:5s} {variant:14s} error: {row['error']}")
            rows.append(row)
    record = {
        "what": "memory modes vs no offloading on the twins; ratios are row / none; one process a row",
        "machine": f"{platform.processor() or platform.machine()}, CPU, torch threads 1",
        "settings": {"seconds": args.seconds, "size": args.size, "steps": args.steps, "reps": args.reps},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
