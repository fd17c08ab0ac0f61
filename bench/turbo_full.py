"""Draft's transformer cache at full size: each family's first real card, random weights, on a GPU.

bench/turbo.py measures draft against standard on the twins, whose transformers are too small for
a cache to pay. This builds each card's full-size architecture on CUDA the way bench/gpu_smoke.py
does (its twin's tokenizers and scheduler, every weighted component from the reference
configuration, bf16, nothing downloaded) and runs the real pipeline at ``--steps`` steps, the same
seed and inputs, under the cache each plan chooses (render.caching):

  (warm-up)             one uncached call, not counted
  draft, no curve yet   FirstBlockCache (registered families) or TaylorSeer (the others)
  (measuring)           registered families: the standard call that measures the MagCache curve
  standard              the plain uncached call: the baseline
  draft                 MagCache on that curve (registered families)

Per row: the call's wall time (synchronized), transformer block evaluations, and their ratios and
the PSNR of the decoded frames against standard's. Random weights: the curve, the skips and the
PSNR say what the hooks do with this architecture's numbers, not what they do to a real picture;
the seconds are real. Without CUDA the same code runs on the twins in float32 (CI keeps it alive).

    python bench/turbo_full.py [--cards wan2.1-t2v-1.3b ...] [--steps 12] [--frames 33]

Writes bench/results/turbo_full_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpu_smoke import build, call_plan, conditions, device_and_dtype, free_memory, synchronize
from turbo import COUNTER, count_blocks, psnr

RESULTS = Path(__file__).parent / "results"
CARDS = (
    "wan2.1-t2v-1.3b",
    "ltx-video-2b",
    "cogvideox-2b",
    "mochi-1",
    "hunyuanvideo",
    "ltx-2",
    "hunyuanvideo-1.5-t2v",
    "skyreels-v2-df-1.3b-540p",
)


def run(pipe: Any, card: Any, plan: Any, device: Any) -> tuple[float, int, Any]:
    """(seconds, block evaluations, frames) of one call under the plan's cache."""
    import torch

    from openreel.models.families import family_module
    from openreel.render.caching import cached

    family = family_module(card.family)
    arguments = family.call_arguments(plan, torch.Generator("cpu").manual_seed(0))
    if hasattr(family, "prepare_call"):
        arguments = family.prepare_call(pipe, arguments)
    arguments.update(conditions(card, family, plan))
    COUNTER["blocks"] = 0
    with torch.inference_mode(), cached(pipe, plan):
        synchronize(device)
        start = time.perf_counter()
        output = pipe(**arguments, output_type="np")
        synchronize(device)
    return time.perf_counter() - start, COUNTER["blocks"], output.frames[0]


def bench_card(card_id: str, args: argparse.Namespace, device: Any, dtype: Any, full: bool) -> dict[str, Any]:
    from openreel.models.catalog import get_card, twin_for
    from openreel.render.caching import plan_cache

    card = get_card(card_id) if full else twin_for(card_id)
    plan = replace(call_plan(card, args.steps, args.frames), steps=args.steps)
    pipe = build(card_id, full, device, dtype)
    count_blocks(pipe.transformer)
    row: dict[str, Any] = {"card": card_id, "built": card.id, "steps": plan.steps, "frames": plan.num_frames}
    run(pipe, card, replace(plan, cache=None), device)  # warm-up: kernels chosen, allocator grown
    results = {}
    # The measuring standard call (registered families) comes after the first draft, which runs
    # before any curve exists, and before the plain standard call that is the baseline.
    sequence = ("draft_before_curve", "draft"), ("measuring", "standard"), ("standard", "standard")
    for label, quality in (*sequence, ("draft", "draft")):
        choice = plan_cache(card, quality, plan.steps, one_call=True)
        planned = replace(plan, cache=choice.hook, cache_ratios=choice.ratios)
        seconds, blocks, frames = run(pipe, card, planned, device)
        results[label] = (seconds, blocks, frames)
        row[label] = {"cache": choice.hook, "seconds": round(seconds, 3), "block_evaluations": blocks}
    base = results["standard"]
    for label in ("draft_before_curve", "draft"):
        seconds, blocks, frames = results[label]
        row[label].update(
            time_ratio=round(seconds / base[0], 3),
            block_ratio=round(blocks / max(base[1], 1), 3),
            psnr_db=round(psnr(frames, base[2]), 2),
        )
    del pipe
    free_memory(device)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", nargs="*", default=list(CARDS))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--cpu", action="store_true", help="the twins on the CPU even where CUDA is")
    args = parser.parse_args()
    # The measured curves go to a private openreel folder: a bench never changes the user's drafts.
    os.environ["OPENREEL_HOME"] = tempfile.mkdtemp(prefix="openreel-turbo-full-")
    device, dtype, name = device_and_dtype(args.cpu)
    full = device.type == "cuda"
    rows = []
    for card_id in args.cards:
        try:
            row = bench_card(card_id, args, device, dtype, full)
        except Exception as exc:  # noqa: BLE001 - a card that fails is recorded, the run goes on
            row = {"card": card_id, "error": f"{type(exc).__name__}: {exc}"[:400]}
            print(f"{card_id:28s} error: {row['error']}")
        else:
            for label in ("draft_before_curve", "draft"):
                d = row[label]
                print(
                    f"{card_id:28s} {label:18s} {d['cache'] or '-':20s} time x{d['time_ratio']:<6} "
                    f"blocks x{d['block_ratio']:<6} PSNR {d['psnr_db']} dB "
                    f"(standard {row['standard']['seconds']} s)"
                )
        rows.append(row)
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") if full else "cpu"
    out = RESULTS / f"turbo_full_{slug}.json"
    record = {
        "what": "draft's cache vs the uncached call, full-size random weights (twins without CUDA)",
        "device": name,
        "full_size": full,
        "settings": {"steps": args.steps, "frames": args.frames},
        "cards": rows,
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
