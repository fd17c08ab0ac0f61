"""--quality draft (turbo) against standard, on each family's first twin, in one run.

Same prompt, size, frames and seed, twice per family: at the card's default steps (draft halves
them) and at an explicit ``--steps`` count both keep, where draft adds the family's transformer
cache above 8 steps (render.caching): FirstBlockCache for the families diffusers' block registry
knows until a standard run has measured the model's MagCache curve, then MagCache; TaylorSeer for
the others. So each row runs draft first (no curve yet), then standard (its warm-up call measures
the curve), then draft again. Only the model stage is timed
(the runner's call, VAE decode included), warm, best of ``--reps``. Reported per row: wall time
ratio draft/standard, transformer block evaluations of each (the cache skips work inside a
transformer call, so blocks are counted, not calls), and the PSNR of draft's frames against
standard's. The twins have random weights: the PSNR says how far draft moves the output, not
how good either looks.

    python bench/turbo.py [--families wan ltx] [--steps 12] [--seconds 1] [--size 96x64] [--reps 2]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "results" / "turbo.json"


COUNTER = {"blocks": 0}
_PATCHED: set[type] = set()


def count_blocks(transformer: Any) -> None:
    """Count calls of the transformer's block classes' forward into COUNTER. Patched on the class
    once for the whole process (a cache hook keeps a bound forward between runs, so a patch that
    came and went would count into a stale place); a cache hook that skips a block's work skips
    its count too."""
    for name, blocks in transformer.named_children():
        if not name.endswith("blocks") or not hasattr(blocks, "__iter__"):
            continue
        for cls in {type(block) for block in blocks} - _PATCHED:
            forward = cls.forward

            @functools.wraps(forward)  # the cache hook reads the block's signature
            def counted(self, *args, _forward=forward, **kwargs):
                COUNTER["blocks"] += 1
                return _forward(self, *args, **kwargs)

            cls.forward = counted
            _PATCHED.add(cls)


def psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def run_once(engine: Any, spec: Any) -> tuple[float, int, Any, Any]:
    """(seconds, block evaluations, frames, plan) of one warm model-stage call."""
    from openreel.models.weights import weights_folder

    plan = engine.plan(spec)
    card, _ = engine.card_and_style(engine.resolve(spec))
    folder = weights_folder(card)
    pipe = engine.runner.pipeline(card, folder, plan)
    count_blocks(pipe.transformer)
    COUNTER["blocks"] = 0
    started = time.perf_counter()
    frames = engine.runner.run_window(card, folder, plan, plan.windows[0], plan.seeds[0]).final
    seconds = time.perf_counter() - started
    return seconds, COUNTER["blocks"], frames, plan


def bench_family(family: str, steps: int | None, args: argparse.Namespace) -> dict[str, Any]:
    from openreel.engine import Engine
    from openreel.models.catalog import all_cards, twin_for
    from openreel.spec import VideoSpec, parse_size

    first = next(card for card in all_cards() if card.family == family and not card.is_tiny)
    twin = twin_for(first.id)
    width, height = parse_size(args.size)
    engine = Engine()
    row: dict[str, Any] = {"family": family, "twin": twin.id, "asked_steps": steps}
    results = {}
    # A draft before any standard run has no MagCache curve yet; the standard run's warm-up call
    # measures it, so the second draft runs on it.
    for label, quality in (("draft_before_curve", "draft"), ("standard", "standard"), ("draft", "draft")):
        spec = VideoSpec(
            "a red kite over a beach", model=twin.id, seconds=args.seconds, width=width, height=height,
            seed=3, quality=quality, steps=steps,
        )  # fmt: skip
        run_once(engine, spec)  # warm: the pipeline loaded, first-call costs paid
        runs = [run_once(engine, spec) for _ in range(args.reps)]
        best = min(runs, key=lambda run: run[0])
        results[label] = best
        row[label] = {
            "seconds": round(best[0], 4),
            "steps": best[3].steps,
            "cache": best[3].cache,
            "block_evaluations": best[1],
            "frames": list(best[2].shape),
        }
    if row["draft_before_curve"]["cache"] == row["draft"]["cache"]:
        del row["draft_before_curve"]
    else:
        before = results["draft_before_curve"]
        row["before_curve"] = {
            "time_ratio": round(before[0] / results["standard"][0], 3),
            "block_ratio": round(before[1] / max(results["standard"][1], 1), 3),
            "psnr_db": round(psnr(before[2], results["standard"][2]), 2),
        }
    row["time_ratio"] = round(results["draft"][0] / results["standard"][0], 3)
    row["block_ratio"] = round(results["draft"][1] / max(results["standard"][1], 1), 3)
    row["psnr_db"] = round(psnr(results["draft"][2], results["standard"][2]), 2)
    return row


def report(family: str, steps: int | None, args: argparse.Namespace) -> dict[str, Any]:
    try:
        row = bench_family(family, steps, args)
    except Exception as exc:  # noqa: BLE001 - a family that fails is recorded, the run goes on
        row = {"family": family, "asked_steps": steps, "error": f"{type(exc).__name__}: {exc}"[:300]}
        print(f"{family:10s} error: {row['error']}")
        return row
    standard, draft = row["standard"], row["draft"]
    print(
        f"{family:10s} {row['twin']:16s} steps {standard['steps']:>3} -> {draft['steps']:<3}"
        f" cache {draft['cache'] or '-':20s} time x{row['time_ratio']:<6} "
        f"blocks x{row['block_ratio']:<6} PSNR {row['psnr_db']} dB"
    )
    if "before_curve" in row:
        before = row["before_curve"]
        print(
            f"{'':10s} {'(before a curve)':16s} {'':15s} cache {row['draft_before_curve']['cache']:20s}"
            f" time x{before['time_ratio']:<6} blocks x{before['block_ratio']:<6} PSNR {before['psnr_db']} dB"
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    families = ["cogvideox", "mochi", "ltx", "wan", "hunyuan", "ltx2", "hunyuan15", "skyreels"]
    parser.add_argument("--families", nargs="*", default=families)
    parser.add_argument("--steps", type=int, default=12, help="the explicit step count of the second row")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size", default="96x64")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--home", help="openreel folder to use (default: a fresh temporary one)")
    args = parser.parse_args()
    # Twins built fresh in a private openreel folder: one left in ~/.openreel by an older
    # openreel may no longer match today's twin builder.
    os.environ["OPENREEL_HOME"] = args.home or tempfile.mkdtemp(prefix="openreel-bench-")
    import torch

    torch.set_num_threads(1)  # a shared CPU: one thread keeps the ratio steadier
    rows = []
    for family in args.families:
        for steps in (None, args.steps):
            rows.append(report(family, steps, args))
    record = {
        "what": "draft vs standard, warm model stage, best of reps; ratios are draft / standard",
        "machine": f"{platform.processor() or platform.machine()}, torch threads 1",
        "settings": {"seconds": args.seconds, "size": args.size, "reps": args.reps},
        "families": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
