"""HunyuanVideo (Tencent) through diffusers' HunyuanVideoPipeline, and the image-to-video
checkpoint through HunyuanVideoImageToVideoPipeline (card option ``pipeline``).

The VAE compresses 4x in time and 8x in space and the transformer patches 2x2, so frames are 4k+1
and sides multiples of 16. HunyuanVideo is guidance-distilled: ``guidance_scale`` is a number fed
into the transformer (embedded guidance, 6.0 by default), not classifier-free guidance, so one
transformer pass per step and no negative prompt.

A negative prompt the user gives switches to true classifier-free guidance (the pipeline's
``true_cfg_scale``) at the plan's guidance scale, with the embedded guidance set to 1: the
transformer runs twice per step, and diffusers advises against applying both guidances at once.
A style's negative prompt alone does not turn that on (it would double every styled run's cost
unasked): for HunyuanVideo it is dropped, and the plan says so.

HunyuanVideo-I2V (card option ``conditioning="image"``) takes the first frame as ``image``; the
text-to-video card holds an image by latent anchoring.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import SpecError, UnsupportedModeError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    from openreel.models.catalog import ModelCard
    from openreel.plan import Plan

PIPELINES: dict[str, str] = {"t2v": "HunyuanVideoPipeline"}
# Latents are (batch, channels, frames, height, width).
LATENT_FRAME_AXIS = 2


# Copied from openreel.models.families.wan.pipeline_class with Wan->HunyuanVideo
def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"HunyuanVideo models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    import diffusers

    # A dedicated checkpoint names its own class: its text-to-video slot is that pipeline.
    cls = getattr(diffusers, card.options["pipeline"]) if "pipeline" in card.options else pipeline_class(mode)
    return cls.from_pretrained(folder, dtype=dtype, quantization_config=quantization)


def plan_negative(
    user_negative: str | None, style_negative: str | None, guidance: float
) -> tuple[str | None, str]:
    """The negative prompt this run applies (None when none) and the plan's note on guidance.

    The planner records only what ``call_arguments`` applies, so a recipe never names a negative
    prompt the model did not see."""
    dropped = f"; the style's negative prompt ({style_negative!r}) is not applied" if style_negative else ""
    if not user_negative:
        return None, f"embedded guidance {guidance:g}, one transformer pass a step{dropped}"
    if guidance <= 1:
        raise SpecError(
            "HunyuanVideo applies a negative prompt through true classifier-free guidance, which needs "
            f"--guidance above 1 (got {guidance:g}); raise it or drop --negative",
            param="negative_prompt",
        )
    negative = ", ".join(n for n in (user_negative, style_negative) if n)
    return negative, (
        f"true CFG {guidance:g} with the negative prompt (embedded guidance 1): "
        "the transformer runs twice a step"
    )


def call_arguments(plan: Plan, generator: torch.Generator) -> dict[str, Any]:
    arguments = {
        "prompt": plan.prompt,
        "height": plan.height,
        "width": plan.width,
        "num_frames": plan.num_frames,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance,
        "generator": generator,
    }
    # The plan holds a negative prompt only when it is applied (plan_negative): true CFG at the
    # plan's scale, with the embedded guidance neutral so the strength is not applied twice.
    if plan.negative_prompt:
        arguments.update(
            guidance_scale=1.0, true_cfg_scale=plan.guidance, negative_prompt=plan.negative_prompt
        )
    return arguments


# Copied from openreel.models.families.cogvideox.conditions_natively
def conditions_natively(card: ModelCard) -> bool:
    """Whether ``condition_arguments`` serves this card (its own I2V pipeline); else the Runner
    anchors the first latent frame on the text-to-video weights."""
    return card.options.get("conditioning") == "image"


def condition_arguments(items: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """A clip (F, H, W, 3 floats in [0, 1]) at frame index 0 as HunyuanVideoImageToVideoPipeline's
    ``image``: its first frame is the window's first. The pipeline has no last-frame input."""
    from openreel.render.conditioning import to_pil

    if len(items) != 1 or items[0][1] != 0:
        raise UnsupportedModeError(
            "HunyuanVideo image-to-video conditions only on the first frame", param="mode"
        )
    return {"image": to_pil(items[0][0][:1])[0]}


def encode_frames(pipe: DiffusionPipeline, frames: np.ndarray) -> torch.Tensor:
    """Frames (F, H, W, 3) in [0, 1] as the pipeline's latents (its decode divides by the
    scaling factor)."""
    from openreel.render.conditioning import encode_mode

    return encode_mode(pipe.vae, frames) * pipe.vae.config.scaling_factor


def twin_sizes(component: str, class_name: str, twin: ModelCard) -> dict[str, Any]:
    """What a twin shrinks (models/twins.py): widths, depths and heads."""
    from openreel.models.twins import CLIP_TEXT_WIDTH, LLAMA_WIDTH

    if class_name == "HunyuanVideoTransformer3DModel":
        return dict(
            num_attention_heads=2,
            attention_head_dim=10,
            num_layers=1,
            num_single_layers=1,
            num_refiner_layers=1,
            text_embed_dim=LLAMA_WIDTH,
            pooled_projection_dim=CLIP_TEXT_WIDTH,
            rope_axes_dim=[2, 4, 4],  # the rotary axes split one head's width
        )
    if class_name == "AutoencoderKLHunyuanVideo":
        return dict(block_out_channels=[8, 8, 8, 8], layers_per_block=1, norm_num_groups=4)
    raise ValueError(f"no twin sizes for HunyuanVideo's {component} ({class_name})")
