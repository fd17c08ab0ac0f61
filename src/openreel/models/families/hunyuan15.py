"""HunyuanVideo 1.5 (Tencent) through diffusers' HunyuanVideo15Pipeline, and the image-to-video
checkpoint through HunyuanVideo15ImageToVideoPipeline (card option ``pipeline``).

A new design, not HunyuanVideo's: an 8.3B transformer, a VAE that compresses 16x in space and 4x
in time into 32 channels (patch size 1: frames 4k+1, sides multiples of 16), Qwen2.5-VL-7B's
language model as the text encoder and a ByT5 encoder that reads quoted text in the prompt (text
to draw in the picture). It is not guidance-distilled: classifier-free guidance is a component,
the pipeline's ``guider``, which takes no call argument; ``prepare_call`` sets its scale from the
plan's before each call, so ``--guidance`` and the recipe mean what they say.

The pipelines take no ``callback_on_step_end`` (diffusers 0.42.1): no per-step progress, no
cancel within a call and no latent anchoring. So the text-to-video card makes text-to-video in one
call only, and the image-to-video card conditions through its own pipeline: the image's latents
as extra input channels at the first latent frame, and its SigLIP features in the transformer.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import UnsupportedModeError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    from openreel.models.catalog import ModelCard
    from openreel.plan import Plan

PIPELINES: dict[str, str] = {"t2v": "HunyuanVideo15Pipeline"}
# Latents are (batch, channels, frames, height, width).
LATENT_FRAME_AXIS = 2


# Copied from openreel.models.families.wan.pipeline_class with Wan->HunyuanVideo 1.5
def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"HunyuanVideo 1.5 models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


# Copied from openreel.models.families.hunyuan.load_pipeline
def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    import diffusers

    # A dedicated checkpoint names its own class: its text-to-video slot is that pipeline.
    cls = getattr(diffusers, card.options["pipeline"]) if "pipeline" in card.options else pipeline_class(mode)
    return cls.from_pretrained(folder, dtype=dtype, quantization_config=quantization)


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


def prepare_call(pipe: DiffusionPipeline, arguments: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the pipeline takes them: the guidance scale moves onto its guider (a
    component, which the pipeline reads instead of a call argument), and the image-to-video
    pipeline, which sizes the video from its image, takes no height or width (the card's
    ``fixed_size`` gives it the image at the native size, whose bucket is the native size)."""
    arguments = dict(arguments)
    scale = arguments.pop("guidance_scale")
    if "height" not in inspect.signature(pipe.__call__).parameters:
        del arguments["height"], arguments["width"]
    if pipe.guider.guidance_scale != scale:
        pipe.guider = pipe.guider.new(guidance_scale=scale)
    return arguments


# Copied from openreel.models.families.cogvideox.conditions_natively
def conditions_natively(card: ModelCard) -> bool:
    """Whether ``condition_arguments`` serves this card (its own I2V pipeline)."""
    return card.options.get("conditioning") == "image"


def condition_arguments(items: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """A clip (F, H, W, 3 floats in [0, 1]) at frame index 0 as HunyuanVideo15ImageToVideoPipeline's
    ``image``: its first frame is the video's first. The pipeline has no last-frame input."""
    from openreel.render.conditioning import to_pil

    if len(items) != 1 or items[0][1] != 0:
        raise UnsupportedModeError(
            "HunyuanVideo 1.5 image-to-video conditions only on the first frame", param="mode"
        )
    return {"image": to_pil(items[0][0][:1])[0]}


def twin_sizes(component: str, class_name: str, twin: ModelCard) -> dict[str, Any]:
    """What a twin shrinks (models/twins.py): widths, depths and heads."""
    from openreel.models.twins import CLIP_VISION_WIDTH, LLAMA_WIDTH, T5_WIDTH

    if class_name == "HunyuanVideo15Transformer3DModel":
        return dict(
            num_attention_heads=2,
            attention_head_dim=12,
            num_layers=1,
            num_refiner_layers=1,
            text_embed_dim=LLAMA_WIDTH,  # the Qwen twin's width
            text_embed_2_dim=T5_WIDTH,  # the ByT5 twin's
            image_embed_dim=CLIP_VISION_WIDTH,  # the SigLIP twin's
            rope_axes_dim=[4, 4, 4],  # the rotary axes split one head's width
            # The I2V pipeline sizes its video from the image: the bucket nearest its aspect with
            # about target_size squared pixels. 80 holds the twin's 96x64 (as 960 holds 1280x720).
            target_size=80,
        )
    if class_name == "AutoencoderKLHunyuanVideo15":
        # The downsamplers fold space and time into channels and average groups of them, so each
        # stage may grow at most 4x, and the deepest must hold twice the 32 latent channels (mean
        # and variance): the narrowest widths that run.
        return dict(block_out_channels=[4, 8, 16, 32, 64], layers_per_block=1)
    raise ValueError(f"no twin sizes for HunyuanVideo 1.5's {component} ({class_name})")
