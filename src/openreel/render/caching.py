"""Draft quality's transformer cache: which of diffusers' cache hooks a family runs, and running it.

The hooks of diffusers 0.42 skip work inside each transformer call, each in its own way:

- **FirstBlockCache** runs the first block and, when its output barely changed since the last
  step, reuses the rest of the stack's last residual. It needs the family's block class in
  diffusers' block registry (CogVideoX, HunyuanVideo, LTX-Video, Mochi, Wan), and it adapts to
  whatever steps it sees, so it also serves runs made of several calls of other lengths.
- **MagCache** skips whole steps where the residual's magnitude is predictable from a per-step
  ratio curve of that very checkpoint. The curve must be measured: every uncached run of a
  registered family on this machine measures it at no cost (calibration skips nothing), and a
  later draft of the same model runs MagCache with it. The plan carries the curve, so a recipe
  replays anywhere.
- **TaylorSeer** needs no registry: on predicted steps the block stack is skipped and the output
  projection(s) are extrapolated from the last computed ones. It serves the families diffusers'
  registry does not know (LTX-2, with its sound projection too; HunyuanVideo 1.5; SkyReels-V2's
  one-pass runs).
- **TextKVCache** (lossless text K/V reuse) is implemented in diffusers 0.42.1 for the
  NucleusMoE image transformer only; no video family can run it.

All of them are off for runs of 8 steps or fewer: caching collapses few-step (distilled) runs
(diffusers #14025). Planning (``plan_cache``) imports no torch; running (``cached``) does.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openreel import paths
from openreel.atomic import atomic_path
from openreel.errors import GenerationError
from openreel.models.card import ModelCard

# Caching on few-step runs collapses quality (diffusers #14025): only above this many steps.
CACHE_MIN_STEPS = 8
# FirstBlockCache reuses the stack when the first block's output changed by less than this share.
FIRST_BLOCK_THRESHOLD = 0.2
# MagCache's defaults in diffusers: skip while the accumulated ratio error stays under 0.06, at
# most 3 steps in a row, never in the first fifth of the schedule (the layout forms there).
MAG_THRESHOLD = 0.06
MAG_MAX_SKIPS = 3
MAG_RETENTION = 0.2
# TaylorSeer computes every 3rd step after 3 full warm-up steps (its first-order extrapolation
# needs two computed points), and always computes the last step, where detail is finished.
TAYLOR_INTERVAL = 3
TAYLOR_WARMUP = 3

# Families whose block classes diffusers' registry knows: MagCache once measured, else
# FirstBlockCache.
REGISTERED_BLOCKS = frozenset({"cogvideox", "hunyuan", "ltx", "mochi", "wan"})
# Families it does not know, with the output projections TaylorSeer extrapolates (every output
# the transformer returns: LTX-2's sound has its own projection).
TAYLOR_OUTPUTS: dict[str, tuple[str, ...]] = {
    "ltx2": ("proj_out", "audio_proj_out"),
    "hunyuan15": ("proj_out",),
    "skyreels": ("proj_out",),
}
# The block stacks TaylorSeer skips on predicted steps (their outputs are not used then).
_BLOCK_STACKS = r"(transformer_blocks|single_transformer_blocks|blocks)\.\d+"
UNCACHED_FAMILIES = {
    "pyramid-flow": "its pyramid stages change the latent size within a run, and its transformer "
    "is not one of diffusers' cache models",
}


@dataclass(frozen=True)
class CacheChoice:
    """The plan's cache: the hook ("FirstBlockCache:0.2", "MagCache:0.06", "MagCache:calibrate",
    "TaylorSeer:3" or None), the measured MagCache curve it runs with, and what to say about it."""

    hook: str | None
    ratios: tuple[float, ...] = ()
    note: str = ""


def calibration_path(model_id: str) -> Path:
    """Where this machine keeps a model's measured MagCache curve."""
    return paths.home() / "calibration" / "magcache" / f"{model_id.replace('/', '--')}.json"


def recorded_ratios(model_id: str) -> tuple[float, ...]:
    """The model's measured MagCache curve, or () when none was measured (or the file is unreadable:
    it is measured again, nothing depends on it)."""
    try:
        data = json.loads(calibration_path(model_id).read_text())
        ratios = tuple(float(r) for r in data["ratios"])
    except (OSError, ValueError, KeyError, TypeError):
        return ()
    return ratios if len(ratios) > CACHE_MIN_STEPS else ()


def _two_experts(card: ModelCard) -> bool:
    # Wan 2.2 A14B hands the low-noise steps to a second transformer: each one sees only part of
    # the schedule, so a per-step curve neither completes nor applies.
    return "guidance_2_ratio" in card.options


def plan_cache(card: ModelCard, quality: str, steps: int, *, one_call: bool) -> CacheChoice:
    """The cache a run of ``steps`` steps at ``quality`` uses. ``one_call``: each pipeline call
    runs the plan's schedule once (not a latent upscale's second pass, not diffusion forcing)."""
    registered = card.family in REGISTERED_BLOCKS
    # A MagCache curve is per step of one schedule on one transformer.
    measurable = registered and one_call and not _two_experts(card)
    measured = recorded_ratios(card.id) if measurable else ()
    if quality != "draft":
        if measurable and not measured and steps > CACHE_MIN_STEPS:
            return CacheChoice(
                "MagCache:calibrate",
                note="measures this model's MagCache curve for later drafts (skips nothing)",
            )
        return CacheChoice(None)
    if card.family in UNCACHED_FAMILIES:
        return CacheChoice(None, note=f"no block cache ({UNCACHED_FAMILIES[card.family]})")
    if steps <= CACHE_MIN_STEPS:
        return CacheChoice(None, note=f"no block cache at {steps} steps (caching collapses few-step runs)")
    if measured:
        return CacheChoice(
            f"MagCache:{MAG_THRESHOLD}",
            measured,
            f"MagCache (threshold {MAG_THRESHOLD}, at most {MAG_MAX_SKIPS} steps in a row) on the curve "
            f"measured on this model's earlier {len(measured)}-step run",
        )
    if registered:
        if measurable:
            why = "; a standard run of this model measures the curve MagCache would use"
        else:
            why = "; MagCache needs one transformer running one schedule per call"
        return CacheChoice(
            f"FirstBlockCache:{FIRST_BLOCK_THRESHOLD}",
            note=f"FirstBlockCache (threshold {FIRST_BLOCK_THRESHOLD}): a step reuses the last residual "
            f"when the first block barely changed{why}",
        )
    if card.family in TAYLOR_OUTPUTS and one_call:
        return CacheChoice(
            f"TaylorSeer:{TAYLOR_INTERVAL}",
            note=f"TaylorSeer: after {TAYLOR_WARMUP} full steps the blocks run every {TAYLOR_INTERVAL}rd "
            "step and the output is extrapolated between",
        )
    if card.family in TAYLOR_OUTPUTS:  # only SkyReels' diffusion forcing runs them in more than one call
        return CacheChoice(
            None,
            note="no block cache (diffusion forcing denoises frames at different noise levels in one "
            "call: an output remembered from one step belongs to other frames the next)",
        )
    return CacheChoice(None, note=f"no block cache ({card.family}'s transformer has no cache hook here)")


def _models(pipe: Any) -> list[Any]:
    models = [getattr(pipe, name, None) for name in ("transformer", "transformer_2")]
    return [model for model in models if model is not None and hasattr(model, "enable_cache")]


@contextlib.contextmanager
def cached(pipe: Any, plan: Any) -> Iterator[None]:
    """The plan's cache hook on the transformer(s) for one pipeline call, removed after it, so a
    warm pipeline runs the next plan as that plan says. A calibrating call records the measured
    curve for the plan's model once it completes."""
    models = _models(pipe)
    if plan.cache is None or not models:
        yield
        return
    kind, _, value = plan.cache.partition(":")
    if kind == "MagCache" and value == "calibrate":
        with _calibrating(models[0], plan):
            yield
        return
    config = _config(kind, value, plan)
    for model in models:
        model.enable_cache(config)
    try:
        yield
    finally:
        for model in models:
            model.disable_cache()


def _config(kind: str, value: str, plan: Any) -> Any:
    from diffusers import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    if kind == "FirstBlockCache":
        return FirstBlockCacheConfig(threshold=float(value))
    if kind == "MagCache" and plan.cache_ratios:
        return MagCacheConfig(
            threshold=float(value),
            max_skip_steps=MAG_MAX_SKIPS,
            retention_ratio=MAG_RETENTION,
            num_inference_steps=plan.steps,
            mag_ratios=list(plan.cache_ratios),
        )
    if kind == "TaylorSeer" and plan.family in TAYLOR_OUTPUTS:
        return TaylorSeerCacheConfig(
            cache_interval=int(value),
            disable_cache_before_step=TAYLOR_WARMUP,
            disable_cache_after_step=plan.steps - 1,
            taylor_factors_dtype=None,  # the model's own dtype
            skip_predict_identifiers=[_BLOCK_STACKS],
            cache_identifiers=[re.escape(name) for name in TAYLOR_OUTPUTS[plan.family]],
        )
    raise GenerationError(f"unknown cache hook {plan.cache!r} in the plan")


_MAG_LOGGER = "diffusers.hooks.mag_cache"
_RESULTS = "MagCache Calibration Results:"


class _Curves(logging.Handler):
    """Collects the curves diffusers' MagCache calibration logs at the end of each schedule (one
    per cache context: Wan's conditional and unconditional passes each give one)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.curves: list[list[float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(_RESULTS):
            self.curves.append(json.loads(message.removeprefix(_RESULTS).strip()))


@contextlib.contextmanager
def _calibrating(model: Any, plan: Any) -> Iterator[None]:
    from diffusers import MagCacheConfig

    logger = logging.getLogger(_MAG_LOGGER)
    handler, level, propagate = _Curves(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the result is saved, not shown
    model.enable_cache(MagCacheConfig(calibrate=True, num_inference_steps=plan.steps))
    try:
        # diffusers also prints the curve for copying by hand; the run's output stays clean.
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        model.disable_cache()
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    curves = [curve for curve in handler.curves if len(curve) == plan.steps]
    if curves:
        _record(plan.model_id, [sum(values) / len(values) for values in zip(*curves, strict=True)])


def _record(model_id: str, ratios: list[float]) -> None:
    record = {
        "model": model_id,
        "steps": len(ratios),
        "ratios": [round(r, 5) for r in ratios],
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_path(calibration_path(model_id)) as temp:
        temp.write_text(json.dumps(record, indent=1))
