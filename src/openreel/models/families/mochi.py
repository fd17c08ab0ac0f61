"""Mochi 1 (Genmo) through diffusers' MochiPipeline.

The VAE compresses 6x in time and 8x in space and the transformer patches 2x2, so frames are 6k+1
and sides multiples of 16. Plain classifier-free guidance with a negative prompt.
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

PIPELINES: dict[str, str] = {"t2v": "MochiPipeline"}
# Latents are (batch, channels, frames, height, width).
LATENT_FRAME_AXIS = 2


# Copied from openreel.models.families.wan.pipeline_class with Wan->Mochi
def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"Mochi models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    return pipeline_class(mode).from_pretrained(folder, dtype=dtype, quantization_config=quantization)


# Copied from openreel.models.families.wan.call_arguments
def call_arguments(plan: Plan, generator: torch.Generator) -> dict[str, Any]:
    return {
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "height": plan.height,
        "width": plan.width,
        "num_frames": plan.num_frames,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance,
        "generator": generator,
    }


def encode_frames(pipe: DiffusionPipeline, frames: np.ndarray) -> torch.Tensor:
    """Frames (F, H, W, 3) in [0, 1] as the pipeline's latents: the inverse of its decode step
    (``latents * std / scaling_factor + mean`` when the VAE publishes statistics)."""
    import torch

    from openreel.render.conditioning import encode_mode

    vae = pipe.vae
    latents = encode_mode(vae, frames)
    if (
        getattr(vae.config, "latents_mean", None) is not None
        and getattr(vae.config, "latents_std", None) is not None
    ):
        shape = (1, -1, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents)
        std = torch.tensor(vae.config.latents_std).view(shape).to(latents)
        return (latents - mean) * vae.config.scaling_factor / std
    return latents * vae.config.scaling_factor


def twin_sizes(component: str, class_name: str, twin: ModelCard) -> dict[str, Any]:
    """What a twin shrinks (models/twins.py): widths, depths and heads."""
    from openreel.models.twins import T5_WIDTH

    if class_name == "MochiTransformer3DModel":
        return dict(
            num_attention_heads=2,
            attention_head_dim=8,
            num_layers=2,
            pooled_projection_dim=16,
            text_embed_dim=T5_WIDTH,
            time_embed_dim=4,
        )
    if class_name == "AutoencoderKLMochi":
        # 32 channels is the floor: Mochi's VAE group-norms in 32 groups.
        return dict(
            encoder_block_out_channels=[32, 32, 32, 32],
            decoder_block_out_channels=[32, 32, 32, 32],
            layers_per_block=[1, 1, 1, 1, 1],
        )
    raise ValueError(f"no twin sizes for Mochi's {component} ({class_name})")
