"""Speed and memory of every real card's full-size architecture, under each memory mode.

On a CUDA machine each selected real card is built at full size with random weights (nothing is
downloaded): the twin (models/twins.py) gives the pipeline class, tokenizers, processors and
scheduler, and every weighted component is replaced by one instantiated from the card's reference
configuration directly on the GPU in bf16. The real pipeline then runs a few steps at the card's
native size and frame count under each memory mode the planner can choose:

  none                 everything on the GPU
  vae_tiling           pipe.vae.enable_tiling()
  group_offload_block  block-level group offloading with CUDA streams (render/offload.py)
  group_offload_leaf   leaf-level group offloading with CUDA streams
  fp8_layerwise        the transformer stored in float8_e4m3fn, computed in bf16

and records seconds per step (from ``callback_on_step_end`` timestamps after a synchronize; the
first step is a warm-up when there are more), peak GPU memory and MFU: the transformer's FLOPs per
step (2 * params * tokens per pass, plus attention's 4 * tokens^2 * width * depth) over the step
time, against a bf16 matmul peak measured in the same run. A mode that fails (out of memory,
unsupported) is recorded with its error and the run goes on.

Without CUDA the same code runs on the twins in float32 (group offloading onloads to the CPU),
with peak RSS instead of GPU memory and a float32 matmul peak, so CI keeps it working. The
measured figures are meant to replace the catalog's memory estimates (catalog._sized).

    python bench/gpu_smoke.py [--cards ID ...] [--modes MODE ...] [--steps 3] [--frames N] [--out PATH]

Writes bench/results/gpu_smoke_<device>.json (gpu_smoke_cpu.json without CUDA).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
MODES = ("none", "vae_tiling", "group_offload_block", "group_offload_leaf", "fp8_layerwise")
PROMPT = "a red fox running through fresh snow at sunrise, cinematic"


# --- the machine -------------------------------------------------------------------------------


def device_and_dtype(force_cpu: bool) -> tuple[Any, Any, str]:
    import torch

    if torch.cuda.is_available() and not force_cpu:
        return torch.device("cuda"), torch.bfloat16, torch.cuda.get_device_name(0)
    # The twins' operations are tiny: spread over threads on a shared CPU they wait on each other
    # (steps of 5 ms and 270 ms in one run), so the CPU path keeps to one thread.
    torch.set_num_threads(1)
    return torch.device("cpu"), torch.float32, cpu_name()


def cpu_name() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "cpu"


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: Any, dtype: Any) -> float:
    """Dense matmul FLOP/s of this device in this dtype, best of a few timed runs: the MFU
    denominator, measured rather than taken from a datasheet."""
    import torch

    n, reps = (8192, 20) if device.type == "cuda" else (1024, 5)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


@contextlib.contextmanager
def peak_memory(device: Any):
    """Peak GPU memory allocated (CUDA) or peak resident set size (CPU) inside the block, GiB."""
    import torch

    result: dict[str, float] = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        result["resident_gib"] = torch.cuda.memory_allocated() / 2**30
        yield result
        result["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return
    # Writing 5 to clear_refs resets the kernel's high-water mark (VmHWM) of this process.
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    result["resident_gib"] = _proc_status_kib("VmRSS") / 2**20
    yield result
    result["peak_rss_gib"] = _proc_status_kib("VmHWM") / 2**20


def _proc_status_kib(field: str) -> int:
    import resource

    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def free_memory(device: Any) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- building ----------------------------------------------------------------------------------


@contextlib.contextmanager
def default_dtype(dtype: Any):
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def full_size_config(name: str, component: dict[str, Any], pipe: Any) -> dict[str, Any]:
    """The reference configuration, except that LLaVA must find its image token where the twin
    tokenizer puts it (the full vocabulary holds every twin token id, so nothing else changes)."""
    config = dict(component["config"])
    if component["class"] == "LlavaForConditionalGeneration":
        tokenizer = pipe.components[name.replace("text_encoder", "tokenizer")]
        config["image_token_index"] = tokenizer.convert_tokens_to_ids("<image>")
    return config


def build(card_id: str, full: bool, device: Any, dtype: Any) -> Any:
    """The card's pipeline: its twin, with every weighted component replaced by a full-size random
    one built on ``device`` (``full``), or the twin itself in ``dtype``."""
    import torch

    from openreel.models.catalog import get_card, twin_for
    from openreel.models.families import family_module
    from openreel.models.reference import instantiate, load_reference, model_components
    from openreel.models.twins import build_twin

    card = get_card(card_id)
    pipe = build_twin(twin_for(card_id))
    if full:
        float32 = set(card.options.get("float32_components", ()))
        for name, component in model_components(load_reference(card_id)).items():
            if name not in pipe.components:  # LTX-Video's latent upsampler: a pipeline of its own
                continue
            config = full_size_config(name, component, pipe)
            pipe.register_modules(**{name: None})
            # Built where it runs, in the dtype it runs in: no float32 copy, no host round trip.
            with torch.device(device), default_dtype(torch.float32 if name in float32 else dtype):
                module = instantiate(component, config)
            pipe.register_modules(**{name: module.eval()})
    family = family_module(card.family)
    if "flow_shift" in card.options and hasattr(family, "with_flow_shift"):
        pipe.scheduler = family.with_flow_shift(pipe.scheduler, card.options["flow_shift"])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def weighted(pipe: Any) -> dict[str, Any]:
    import torch

    return {name: c for name, c in pipe.components.items() if isinstance(c, torch.nn.Module)}


def denoisers(pipe: Any) -> dict[str, Any]:
    return {name: module for name, module in weighted(pipe).items() if name.startswith("transformer")}


def place(pipe: Any, mode: str, device: Any, dtype: Any) -> None:
    """Put the pipeline on ``device`` the way ``mode`` says."""
    import torch

    if mode in ("group_offload_block", "group_offload_leaf"):
        # Offloaded weights live on the CPU; the hooks bring them to the device block by block.
        for module in weighted(pipe).values():
            module.to("cpu")
        free_memory(device)
        if mode == "group_offload_block":
            from openreel.render.offload import apply_group_offload

            apply_group_offload(pipe, device)
        else:
            leaf_offload(pipe, device)
        return
    pipe.to(device)
    if mode == "vae_tiling":
        pipe.vae.enable_tiling()
    elif mode == "fp8_layerwise":
        for module in denoisers(pipe).values():
            module.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    elif mode != "none":
        raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")


def leaf_offload(pipe: Any, device: Any) -> None:
    """Leaf-level group offloading (each leaf module its own group) of every component but the
    VAEs, which move to the device whole as render/offload.py does it."""
    import torch
    from diffusers.hooks import apply_group_offloading

    from openreel.render.offload import is_vae

    for name, module in weighted(pipe).items():
        if is_vae(name):
            module.to(device)
            continue
        apply_group_offloading(
            module,
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="leaf_level",
            use_stream=device.type == "cuda",
        )


# --- running -----------------------------------------------------------------------------------


class StepClock:
    """Timestamps of the denoising loop: the first transformer call opens it, each
    ``callback_on_step_end`` closes a step. Counts the samples the transformer sees (classifier-free
    guidance runs two, batched or as two calls) to know the passes a step takes."""

    def __init__(self, device: Any) -> None:
        self.device = device
        self.start: float | None = None
        self.marks: list[float] = []
        self.samples = 0

    def pre_hook(self, _module: Any, args: tuple, kwargs: dict) -> None:
        if self.start is None:
            synchronize(self.device)
            self.start = time.perf_counter()
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        self.samples += int(hidden.shape[0]) if hasattr(hidden, "shape") else 1

    def callback(self, _pipe: Any, _index: int, _timestep: Any, _tensors: dict) -> dict:
        synchronize(self.device)
        self.marks.append(time.perf_counter())
        return {}

    def step_seconds(self) -> list[float]:
        if self.start is None:
            return []
        times = [self.start, *self.marks]
        return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def call_plan(card: Any, steps: int, frames: int | None) -> Any:
    """The plan openreel makes for a text-to-video run of this card at its native size, with the
    asked steps and frames. Image-only checkpoints are planned as t2v; their image comes from
    ``conditions``."""
    from openreel.hardware import Hardware
    from openreel.plan import make_plan
    from openreel.spec import VideoSpec

    t2v_card = replace(card, modes=card.modes | {"t2v"})
    spec = VideoSpec(prompt=PROMPT, model=card.id, width=card.native_width, height=card.native_height)
    plan = make_plan(spec, t2v_card, Hardware("cpu", "float32", "plan", 1024.0, 1))
    count = card.max_frames if frames is None else frames
    count = card.frame_step * max(0, (min(count, card.max_frames) - 1) // card.frame_step) + 1
    options = dict(plan.options)
    if "timesteps" in options:  # a distilled schedule, cut to the asked steps
        options["timesteps"] = list(options["timesteps"])[: max(steps, 1)]
    return replace(
        plan,
        width=card.native_width,
        height=card.native_height,
        num_frames=count,
        steps=max(steps, card.min_steps),
        options=options,
    )


def conditions(card: Any, family: Any, plan: Any) -> dict[str, Any]:
    """A mid-grey first frame (and last, for first-last-frame) for image-conditioned checkpoints."""
    import numpy as np

    if card.options.get("conditioning") != "image":
        return {}
    grey = np.full((1, plan.height, plan.width, 3), 0.5, dtype=np.float32)
    items = [(grey, 0)]
    if "loop" in card.modes:
        items.append((grey, plan.num_frames - 1))
    return family.condition_arguments(items)


def transformer_shape(config: Any) -> tuple[int, int]:
    """(attention width, blocks) from a transformer's configuration."""
    heads, head_dim = config.get("num_attention_heads", 0), config.get("attention_head_dim", 0)
    depth = sum(config.get(key, 0) or 0 for key in ("num_layers", "num_single_layers"))
    return heads * head_dim, depth


def run_mode(card_id: str, mode: str, args: argparse.Namespace, env: dict[str, Any]) -> dict[str, Any]:
    """Build, place and run one card under one mode; a failure is returned as the row's error."""
    import torch

    from openreel.models.catalog import get_card, twin_for
    from openreel.models.families import family_module
    from openreel.plan import transformer_tokens
    from openreel.render.runner import _step_arguments

    device, dtype, full = env["device"], env["dtype"], env["full"]
    card = get_card(card_id) if full else twin_for(card_id)
    row: dict[str, Any] = {"card": card_id, "built": card.id, "family": card.family, "mode": mode}
    pipe = None
    try:
        family = family_module(card.family)
        plan = call_plan(card, args.steps, args.frames)
        row.update(width=plan.width, height=plan.height, frames=plan.num_frames, steps=plan.steps)
        pipe = build(card_id, full, device, dtype)
        place(pipe, mode, device, dtype)
        clock = StepClock(device)
        hooks = [
            module.register_forward_pre_hook(clock.pre_hook, with_kwargs=True)
            for module in denoisers(pipe).values()
        ]
        arguments = family.call_arguments(plan, torch.Generator("cpu").manual_seed(0))
        if hasattr(family, "prepare_call"):  # LTX-2: its guidance block, by the loaded depth
            arguments = family.prepare_call(pipe, arguments)
        arguments.update(conditions(card, family, plan))
        free_memory(device)
        with peak_memory(device) as memory, torch.inference_mode():
            synchronize(device)
            start = time.perf_counter()
            # HunyuanVideo 1.5's pipelines take no step callback: their steps are timed as a whole.
            stepping = _step_arguments(pipe, clock.callback)
            pipe(**arguments, output_type="np", **stepping)
            synchronize(device)
            row["call_seconds"] = round(time.perf_counter() - start, 4)
        for hook in hooks:
            hook.remove()
        row.update({key: round(value, 3) for key, value in memory.items()})
        steps = clock.step_seconds()
        if not stepping:  # the call's time over its steps (an upper bound: the decode is in it)
            steps = [row["call_seconds"] / plan.steps] * plan.steps
            row["step_timing"] = "whole call / steps (the pipeline takes no step callback)"
        # The first step pays for kernel selection and allocator warm-up when there are more.
        timed = steps[1:] if len(steps) > 1 else steps
        row["step_seconds"] = [round(s, 4) for s in steps]
        row["seconds_per_step"] = round(statistics.mean(timed), 4) if timed else None
        transformer = denoisers(pipe)["transformer"]
        params = sum(p.numel() for p in transformer.parameters())
        width, depth = transformer_shape(transformer.config)
        tokens = transformer_tokens(card, plan.width, plan.height, plan.num_frames)
        passes = clock.samples / max(1, len(steps))
        flops = passes * (2 * params * tokens + 4 * tokens**2 * width * depth)
        row.update(
            transformer_params=params,
            tokens=tokens,
            passes_per_step=round(passes, 2),
            flops_per_step=flops,
            mfu=round(flops / row["seconds_per_step"] / env["peak"], 4) if row["seconds_per_step"] else None,
        )
    except Exception as exc:  # noqa: BLE001 - an OOM or an unsupported mode is a result, not a crash
        row["error"] = f"{type(exc).__name__}: {exc}"[:600]
    finally:
        del pipe
        free_memory(device)
    return row


# --- reporting ---------------------------------------------------------------------------------


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each mode's seconds per step against mode "none" of the same card in this run."""
    base = {r["card"]: r.get("seconds_per_step") for r in rows if r["mode"] == "none"}
    for row in rows:
        none = base.get(row["card"])
        if none and row.get("seconds_per_step"):
            row["ratio_to_none"] = round(row["seconds_per_step"] / none, 3)


def table(rows: list[dict[str, Any]], memory_key: str) -> str:
    lines = [f"{'card':28} {'mode':20} {'s/step':>9} {'x none':>7} {'peak GiB':>9} {'MFU':>7}  error"]
    for r in rows:

        def cell(key: str, fmt: str, row: dict[str, Any] = r) -> str:
            value = row.get(key)
            width = int(re.match(r"\d*", fmt).group() or 0)
            return format(value, fmt) if isinstance(value, int | float) else "-".rjust(width)

        lines.append(
            f"{r['card']:28} {r['mode']:20} {cell('seconds_per_step', '9.4f')} "
            f"{cell('ratio_to_none', '7.2f')} {cell(memory_key, '9.3f')} {cell('mfu', '7.2%')}  "
            f"{r.get('error', '')[:60]}"
        )
    return "\n".join(lines)


def default_cards(full: bool) -> list[str]:
    """Every real card on a GPU; on a CPU the first card of each family (run as its twin)."""
    from openreel.models.catalog import CARDS, FAMILIES

    if full:
        return [card.id for card in CARDS]
    return [next(card.id for card in CARDS if card.family == family) for family in FAMILIES]


def real_id(card_id: str) -> str:
    """A real card id, given one or its twin's."""
    from openreel.models.catalog import get_card

    card = get_card(card_id)
    return card.twin_of or card.id


def output_path(args: argparse.Namespace, full: bool, name: str) -> Path:
    if args.out:
        return Path(args.out)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") if full else "cpu"
    return RESULTS / f"gpu_smoke_{slug}.json"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", nargs="+", help="real card ids (or their twins'); default: see above")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (3 on a GPU, 2 on a CPU)")
    parser.add_argument("--frames", type=int, default=None, help="frames (default: each card's longest)")
    parser.add_argument("--out", help="results file (default: bench/results/gpu_smoke_<device>.json)")
    parser.add_argument("--cpu", action="store_true", help="run the twins on the CPU even with CUDA")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import diffusers
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    args = parse(argv)
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    device, dtype, name = device_and_dtype(args.cpu)
    full = device.type == "cuda"
    args.steps = args.steps or (3 if full else 2)
    peak = matmul_peak(device, dtype)
    env = {"device": device, "dtype": dtype, "full": full, "peak": peak}
    cards = [real_id(card_id) for card_id in args.cards] if args.cards else default_cards(full)
    print(f"{name}: {str(dtype).removeprefix('torch.')} matmul peak {peak / 1e12:.3f} TFLOP/s", flush=True)
    rows = []
    for card_id in cards:
        for mode in args.modes:
            rows.append(run_mode(card_id, mode, args, env))
            seconds, error = rows[-1].get("seconds_per_step"), rows[-1].get("error", "")
            print(f"  {card_id} {mode}: {seconds} s/step {error[:80]}", flush=True)
    add_ratios(rows)
    memory_key = "peak_gib" if full else "peak_rss_gib"
    print(table(rows, memory_key))
    result = {
        "device": name,
        "device_type": device.type,
        "dtype": str(dtype).removeprefix("torch."),
        "built": "full-size reference architectures, random weights" if full else "twins (tiny, random)",
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "torch_threads": torch.get_num_threads(),
        "matmul_peak_flops": peak,
        "steps": args.steps,
        "frames": args.frames,
        "memory": "peak GPU memory allocated, GiB" if full else "peak resident set size of the process, GiB",
        "notes": [
            "seconds_per_step: mean of the steps after the first (the first warms up) when there are more",
            "pyramid-flow: its stages run below the native size, so tokens (and MFU) are overstated",
        ],
        "results": rows,
    }
    path = output_path(args, full, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
