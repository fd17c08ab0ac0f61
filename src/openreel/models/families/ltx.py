"""LTX-Video (Lightricks) through diffusers' LTXConditionPipeline.

The VAE patchifies 4x4 and then downsamples 2x three times in space and time: 32x spatial, 8x
temporal, with a 1x1 transformer patch. So frames are 8k+1 and sides multiples of 32. The
transformer's rotary positions are scaled by the frame rate, so it is told the card's fps. The
0.9.1+ VAEs denoise a little while decoding: ``decode_timestep`` and ``decode_noise_scale`` (card
options) set how much.

Distilled checkpoints run without CFG (guidance 1.0 on the card) and were distilled on fixed
timestep schedules, which their cards carry as options (diffusers' LTX-Video docs, 0.9.7/0.9.8
distilled): ``timesteps`` for the first pass ([1000, 993, 987, 981, 975, 909, 725, 0.03]), and for
the 1080p path ``adain_factor`` (1.0) for the latent upsampler, then ``refine_timesteps``
([1000, 909, 725, 421, 0]) re-run from ``refine_strength`` (0.999: the last four) over the
upsampled latents. Such a card runs its schedule's step count only: other counts are refused, as
the model was never trained on a resampled schedule. Remix re-runs the last ``strength`` of the
first-pass schedule from the source's latents, the pipeline's own latents + denoise_strength path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import SpecError, UnsupportedModeError

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
CALL_OPTIONS = ("decode_timestep", "decode_noise_scale", "guidance_rescale", "image_cond_noise_scale")
# Card options passed to the latent upsampler: AdaIN back to the first pass's latent statistics
# (distilled recipes) and 0.9.8's tone mapping.
UPSAMPLE_OPTIONS = ("adain_factor", "tone_map_compression_ratio")


# Copied from openreel.models.families.wan.pipeline_class with Wan->LTX-Video
def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"LTX-Video models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    return pipeline_class(mode).from_pretrained(folder, dtype=dtype, quantization_config=quantization)


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
    timesteps = distilled_schedule(plan)
    if timesteps is not None:
        arguments["timesteps"] = timesteps
    return arguments


def distilled_schedule(plan: Plan) -> list[float] | None:
    """The card's distilled first-pass schedule (None for cards without one). A distilled model
    only knows the timesteps it was distilled on, so another step count is refused rather than
    quietly run on a schedule it never saw."""
    timesteps = plan.options.get("timesteps")
    if timesteps is None:
        return None
    if len(timesteps) != plan.steps:
        raise SpecError(
            f"{plan.model_id} is distilled to a {len(timesteps)}-step schedule and runs only that; "
            f"{plan.steps} steps were asked. Ask for {len(timesteps)} steps (or leave steps out)",
            param="steps",
        )
    return list(timesteps)


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
    size to latents, double them with the latent upsampler, then re-run the last part of a
    schedule over them at the doubled size and decode. Returns float frames.

    Distilled cards re-run their own refinement schedule (``refine_timesteps`` from
    ``refine_strength``, else the first-pass one); others re-run ``plan.upscale.strength`` of
    plain steps."""
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
    upsample_options = {key: plan.options[key] for key in UPSAMPLE_OPTIONS if key in plan.options}
    larger = upsampler(latents=latents, output_type="latent", **upsample_options).frames
    second = dict(
        arguments,
        width=plan.upscale.width,
        height=plan.upscale.height,
        latents=larger,
        output_type="np",
        callback_on_step_end=callback,
        callback_on_step_end_tensor_inputs=["latents"],
    )
    second.update(refine_schedule(plan))
    return pipe(**second).frames[0]


def refine_schedule(plan: Plan) -> dict[str, Any]:
    """The refinement pass's schedule arguments: a distilled card's published refinement schedule
    and strength (the pipeline keeps the last ``strength`` of the timesteps and noises the
    upsampled latents to the first kept one), or plain steps for the others."""
    timesteps = plan.options.get("refine_timesteps") or plan.options.get("timesteps")
    if timesteps is not None:
        return {
            "timesteps": list(timesteps),
            "num_inference_steps": len(timesteps),
            "denoise_strength": plan.options.get("refine_strength", plan.upscale.strength),
        }
    return {
        "denoise_strength": plan.upscale.strength,
        # The pass re-runs strength x steps of the schedule: keep that at least two steps.
        "num_inference_steps": max(plan.steps, math.ceil(2 / plan.upscale.strength)),
    }


def twin_sizes(component: str, class_name: str, twin: ModelCard) -> dict[str, Any]:
    """What a twin shrinks (models/twins.py): widths, depths and heads. The VAE's widths shrink by
    the same factor everywhere, so its residual up- and downsamplers keep their channel ratios."""
    from openreel.models.reference import load_reference
    from openreel.models.twins import T5_WIDTH

    if class_name == "LTXVideoTransformer3DModel":
        return dict(
            num_attention_heads=4,
            attention_head_dim=8,
            cross_attention_dim=32,
            num_layers=2,  # two: first-block caching (draft quality) needs a block after the first
            caption_channels=T5_WIDTH,
        )
    if class_name == "AutoencoderKLLTXVideo":
        config = load_reference(twin.twin_of)["components"]["vae"]["config"]
        return dict(
            block_out_channels=[width // 32 for width in config["block_out_channels"]],
            decoder_block_out_channels=[width // 32 for width in config["decoder_block_out_channels"]],
            layers_per_block=[1] * len(config["layers_per_block"]),
            decoder_layers_per_block=[1] * len(config["decoder_layers_per_block"]),
        )
    if class_name.endswith("LTXLatentUpsamplerModel"):
        return dict(mid_channels=32, num_blocks_per_stage=1)  # its GroupNorms have 32 groups
    raise ValueError(f"no twin sizes for LTX-Video's {component} ({class_name})")
