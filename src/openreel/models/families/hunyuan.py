"""HunyuanVideo (Tencent) through diffusers' HunyuanVideoPipeline.

The VAE compresses 4x in time and 8x in space and the transformer patches 2x2, so frames are 4k+1
and sides multiples of 16. HunyuanVideo is guidance-distilled: ``guidance_scale`` is a number fed
into the transformer (embedded guidance, 6.0 by default), not classifier-free guidance, so one
transformer pass per step and no negative prompt. True CFG with a negative prompt is available
through the ``true_cfg_scale`` option (> 1), at twice the transformer work.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import UnsupportedModeError

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


def load_pipeline(folder: Path, card: ModelCard, mode: str, dtype: torch.dtype) -> DiffusionPipeline:
    return pipeline_class(mode).from_pretrained(folder, dtype=dtype)


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
    true_cfg_scale = float(plan.options.get("true_cfg_scale", 1.0))
    # The pipeline ignores a negative prompt unless true CFG is on; only pass it when it counts.
    if true_cfg_scale > 1 and plan.negative_prompt:
        arguments.update(true_cfg_scale=true_cfg_scale, negative_prompt=plan.negative_prompt)
    return arguments


def encode_frames(pipe: DiffusionPipeline, frames: np.ndarray) -> torch.Tensor:
    """Frames (F, H, W, 3) in [0, 1] as the pipeline's latents (its decode divides by the
    scaling factor)."""
    from openreel.render.conditioning import encode_mode

    return encode_mode(pipe.vae, frames) * pipe.vae.config.scaling_factor
