"""CogVideoX and CogVideoX 1.5 (THUDM / Zhipu AI) through diffusers' CogVideoXPipeline, and the
image-to-video checkpoint through CogVideoXImageToVideoPipeline (card option ``pipeline``).

The VAE compresses 4x in time and 8x in space and the transformer patches 2x2, so frames are 4k+1
(CogVideoX 1.5 is trained on 16k+1) and sides multiples of 16. CogVideoX 1.5 also patches 2 latent
frames together; the pipeline pads one latent frame when needed and drops it again before decoding,
so every 4k+1 count still comes back exactly. The 5B models want dynamic CFG (a guidance scale that
rises over the steps): the card's ``dynamic_cfg`` option.

CogVideoX-5b-I2V (card option ``conditioning="image"``) takes the first frame as ``image``; other
cards hold an image by latent anchoring.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import UnsupportedModeError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    from openreel.models.catalog import ModelCard
    from openreel.plan import Plan

PIPELINES: dict[str, str] = {"t2v": "CogVideoXPipeline"}
# The refinement pass of the 1080p path: the same weights as video-to-video.
REFINE_PIPELINE = "CogVideoXVideoToVideoPipeline"
# CogVideoX's loop keeps latents as (batch, frames, channels, height, width).
LATENT_FRAME_AXIS = 1


# Copied from openreel.models.families.wan.pipeline_class with Wan->CogVideoX
def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"CogVideoX models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    import diffusers

    # A dedicated checkpoint names its own class: its text-to-video slot is that pipeline.
    cls = getattr(diffusers, card.options["pipeline"]) if "pipeline" in card.options else pipeline_class(mode)
    pipe = cls.from_pretrained(folder, dtype=dtype, quantization_config=quantization)
    # Every CogVideoX repository publishes the DDIM scheduler; THUDM run the 5B models with DPM
    # (from the same config) and dynamic CFG, which is meant for DPM: the card's ``scheduler``.
    if "scheduler" in card.options:
        pipe.scheduler = getattr(diffusers, card.options["scheduler"]).from_config(pipe.scheduler.config)
    return pipe


def call_arguments(plan: Plan, generator: torch.Generator) -> dict[str, Any]:
    return {
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "height": plan.height,
        "width": plan.width,
        "num_frames": plan.num_frames,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance,
        "use_dynamic_cfg": bool(plan.options.get("dynamic_cfg", False)),
        "generator": generator,
    }


def conditions_natively(card: ModelCard) -> bool:
    """Whether ``condition_arguments`` serves this card (its own I2V pipeline); else the Runner
    anchors the first latent frame on the text-to-video weights."""
    return card.options.get("conditioning") == "image"


def condition_arguments(items: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """A clip (F, H, W, 3 floats in [0, 1]) at frame index 0 as CogVideoXImageToVideoPipeline's
    ``image``: its first frame is the window's first. The pipeline has no last-frame input."""
    from openreel.render.conditioning import to_pil

    if len(items) != 1 or items[0][1] != 0:
        raise UnsupportedModeError(
            "CogVideoX image-to-video conditions only on the first frame", param="mode"
        )
    return {"image": to_pil(items[0][0][:1])[0]}


def encode_frames(pipe: DiffusionPipeline, frames: np.ndarray) -> torch.Tensor:
    """Frames (F, H, W, 3) in [0, 1] as the pipeline's latents: scaled, frames before channels."""
    from openreel.render.conditioning import encode_mode

    latents = encode_mode(pipe.vae, frames) * pipe.vae.config.scaling_factor
    return latents.permute(0, 2, 1, 3, 4)


def anchor_start(pipe: DiffusionPipeline, num_frames: int) -> int:
    """Where a call's first latent frame sits in the denoising loop's latents. CogVideoX 1.5
    patches latent frames in pairs (``patch_size_t=2``): for an odd latent count the pipeline pads
    latent frames in front and drops them before decoding, so the clip's first latent frame comes
    after the padding. (The padded frames are noise the decode never sees.)"""
    patch_size_t = pipe.transformer.config.patch_size_t
    latent_frames = (num_frames - 1) // pipe.vae_scale_factor_temporal + 1
    if patch_size_t is None or latent_frames % patch_size_t == 0:
        return 0
    return patch_size_t - latent_frames % patch_size_t


def refine_arguments(
    plan: Plan, video: list, size: tuple[int, int], strength: float, generator: torch.Generator
) -> dict[str, Any]:
    """Keyword arguments of a video-to-video pass over ``video`` (PIL images) at ``size``
    (width, height): the 1080p refinement, and remix."""
    return {
        "video": video,
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "height": size[1],
        "width": size[0],
        # The pass re-runs strength x steps of the schedule: keep that at least two steps.
        "num_inference_steps": max(plan.steps, math.ceil(2 / strength)),
        "guidance_scale": plan.guidance,
        "use_dynamic_cfg": bool(plan.options.get("dynamic_cfg", False)),
        "strength": strength,
        "generator": generator,
    }


def twin_sizes(component: str, class_name: str, twin: ModelCard) -> dict[str, Any]:
    """What a twin shrinks (models/twins.py): widths, depths and heads. A transformer with learned
    position embeddings (5B I2V) has a table for one latent size: the twin's native size."""
    from openreel.models.twins import T5_WIDTH

    if class_name == "CogVideoXTransformer3DModel":
        # Rotary embeddings split a head into 3D parts: its width must divide by 16.
        sizes = dict(
            num_attention_heads=2,
            attention_head_dim=16,
            time_embed_dim=8,
            text_embed_dim=T5_WIDTH,
            num_layers=2,  # two: first-block caching (draft quality) needs a block after the first
        )
        if twin.options.get("fixed_size"):
            sizes.update(sample_width=twin.native_width // 8, sample_height=twin.native_height // 8)
        return sizes
    if class_name == "AutoencoderKLCogVideoX":
        return dict(block_out_channels=[8, 8, 8, 8], layers_per_block=1, norm_num_groups=2)
    raise ValueError(f"no twin sizes for CogVideoX's {component} ({class_name})")
