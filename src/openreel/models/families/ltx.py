"""LTX-Video (Lightricks) through diffusers' LTXConditionPipeline.

The VAE patchifies 4x4 and then downsamples 2x three times in space and time: 32x spatial, 8x
temporal, with a 1x1 transformer patch. So frames are 8k+1 and sides multiples of 32. The
transformer's rotary positions are scaled by the frame rate, so it is told the card's fps. The
0.9.1+ VAEs denoise a little while decoding: ``decode_timestep`` and ``decode_noise_scale`` (card
options) set how much. Distilled checkpoints run without CFG (guidance 1.0 on the card) and were
distilled on a fixed timestep schedule, which a card can give as the ``timesteps`` option (for
example [1000, 993, 987, 981, 975, 909, 725, 0.03] for 0.9.7/0.9.8 distilled at 8 steps).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import UnsupportedModeError

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    from openreel.models.catalog import ModelCard
    from openreel.plan import Plan

# LTX-Video 0.9.5+ (the cards' 0.9.7 and 0.9.8) is published as an LTXConditionPipeline: text alone
# when no conditions are given, and LTXPipeline in diffusers 0.42 cannot take a custom timestep
# schedule (it always passes sigmas too, and retrieve_timesteps refuses both).
PIPELINES: dict[str, str] = {"t2v": "LTXConditionPipeline"}

# Card options passed to the pipeline as they are, when the card sets them.
CALL_OPTIONS = ("decode_timestep", "decode_noise_scale", "guidance_rescale")


# Copied from openreel.models.families.wan.pipeline_class with Wan->LTX-Video
def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"LTX-Video models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


def load_pipeline(folder: Path, card: ModelCard, mode: str, dtype: torch.dtype) -> DiffusionPipeline:
    return pipeline_class(mode).from_pretrained(folder, dtype=dtype)


def call_arguments(plan: Plan, generator: torch.Generator) -> dict[str, Any]:
    arguments = {
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "height": plan.height,
        "width": plan.width,
        "num_frames": plan.num_frames,
        "frame_rate": plan.native_fps,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance,
        "generator": generator,
    }
    arguments.update({key: plan.options[key] for key in CALL_OPTIONS if key in plan.options})
    timesteps = plan.options.get("timesteps")
    # A custom schedule replaces num_inference_steps; use it only when it has the planned number of
    # steps, so progress (step i of plan.steps) stays true when someone asks for other steps.
    if timesteps is not None and len(timesteps) == plan.steps:
        arguments["timesteps"] = list(timesteps)
    return arguments


def condition_arguments(items: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """Condition a call on clips (F, H, W, 3 floats in [0, 1]) placed at frame indices: LTX-Video's
    own mechanism (its condition pipeline encodes them and holds those tokens through the loop)."""
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    from openreel.render.conditioning import to_pil

    return {
        "conditions": [
            LTXVideoCondition(video=to_pil(frames), frame_index=index, strength=1.0)
            for frames, index in items
        ]
    }


def remix_arguments(pipe: DiffusionPipeline, frames: np.ndarray, strength: float) -> dict[str, Any]:
    """Remix: start the loop from the source clip's latents noised to ``strength`` of the way
    (the pipeline's ``latents`` + ``denoise_strength``), so its layout and motion carry over."""
    import torch

    from openreel.render.conditioning import encode_mode

    vae = pipe.vae
    latents = encode_mode(vae, frames)
    shape = (1, -1, 1, 1, 1)
    mean = vae.latents_mean.view(shape).to(latents)
    std = vae.latents_std.view(shape).to(latents)
    with torch.inference_mode():
        normalised = (latents - mean) * vae.config.scaling_factor / std
    return {"latents": normalised, "denoise_strength": strength}


def upsample_and_refine(
    pipe: DiffusionPipeline,
    upsampler_folder: Path,
    plan: Plan,
    arguments: dict[str, Any],
    callback: Callable[..., dict],
) -> np.ndarray:
    """The two-stage path to high resolution, as Lightricks publishes it: denoise at the native
    size to latents, double them with the latent upsampler, then re-run the last part of the
    schedule (``plan.upscale.strength``) at the doubled size and decode. Returns float frames."""
    from diffusers import LTXLatentUpsamplePipeline

    first = dict(
        arguments,
        output_type="latent",
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents"],
    )
    latents = pipe(**first).frames
    upsampler = LTXLatentUpsamplePipeline.from_pretrained(
        upsampler_folder, vae=pipe.vae, dtype=pipe.vae.dtype
    )
    upsampler.set_progress_bar_config(disable=True)
    upsampler.to(pipe.vae.device)
    larger = upsampler(latents=latents, output_type="latent").frames
    second = dict(
        arguments,
        width=plan.upscale.width,
        height=plan.upscale.height,
        latents=larger,
        denoise_strength=plan.upscale.strength,
        # The pass re-runs strength x steps of the schedule: keep that at least two steps.
        num_inference_steps=max(plan.steps, math.ceil(2 / plan.upscale.strength)),
        output_type="np",
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents"],
    )
    # A distilled card's fixed schedule is for the full run; the refinement uses plain steps.
    second.pop("timesteps", None)
    return pipe(**second).frames[0]
