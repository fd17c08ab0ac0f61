"""SkyReels-V2 (Skywork AI) diffusion forcing, through diffusers' SkyReelsV2DiffusionForcingPipeline.

A Wan 2.1 architecture (the same VAE, UMT5 text encoder and 2x2 patches: frames 4k+1, sides
multiples of 16) trained with diffusion forcing: every latent frame carries its own noise level,
so the model denoises new frames beside a history of frames that are already (nearly) clean. One
pipeline call makes a clip longer than the model's base length by itself: it generates
``base_num_frames``, then, again and again, keeps the last ``overlap_history`` frames as a
slightly re-noised history (``addnoise_condition``) and generates the frames after them. That is
what the model was trained for; openreel's own windows instead hold the next window's first
latent frames to the last window's by latent anchoring, which the model never saw in training.
The planner chooses between the two (``plan.plan_long_clip``); the card's ``diffusion_forcing``
option holds the published long-video settings.

Synchronous mode (``ar_step=0``): every frame of a pass shares the schedule. The asynchronous
mode (``ar_step=5``) runs more steps per pass and is slower (the diffusers docs), so it is not used.
Other modes hold an image or a clip's tail by latent anchoring on one pass, as Wan's cards do.
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

PIPELINES: dict[str, str] = {"t2v": "SkyReelsV2DiffusionForcingPipeline"}
# Latents are (batch, channels, frames, height, width).
LATENT_FRAME_AXIS = 2


# Copied from openreel.models.families.wan.pipeline_class with Wan->SkyReels-V2
def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"SkyReels-V2 models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    import torch

    from openreel.models.families.wan import with_flow_shift

    # The VAE runs in float32, as the diffusers docs load it (the Wan VAE loses detail in bf16).
    pipe = pipeline_class(mode).from_pretrained(
        folder, dtype={"default": dtype, "vae": torch.float32}, quantization_config=quantization
    )
    if "flow_shift" in card.options:
        # The published scheduler keeps the class default shift 1.0; the docs set 8.0 for T2V.
        pipe.scheduler = with_flow_shift(pipe.scheduler, card.options["flow_shift"])
    return pipe


def forcing_passes(card: ModelCard, num_frames: int) -> int:
    """How many passes of ``base_num_frames`` one diffusion-forcing call makes for ``num_frames``
    (the pipeline's own count: the first pass, then one per ``base - overlap`` new latent frames)."""
    forcing = card.options["diffusion_forcing"]
    step = card.frame_step
    latent = (num_frames - 1) // step + 1
    base = (forcing["base_num_frames"] - 1) // step + 1
    overlap = (forcing["overlap_history"] - 1) // step + 1
    if latent <= base:
        return 1
    return 1 + (latent - base - 1) // (base - overlap) + 1


def call_arguments(plan: Plan, generator: torch.Generator) -> dict[str, Any]:
    arguments = {
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "height": plan.height,
        "width": plan.width,
        "num_frames": plan.num_frames,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance,
        "generator": generator,
        "fps": plan.native_fps,
    }
    forcing = plan.options["diffusion_forcing"]
    # The pipeline makes a clip longer than base_num_frames itself, pass after pass, only when
    # overlap_history is given; a one-pass clip takes the same settings and ignores them.
    arguments.update(
        base_num_frames=forcing["base_num_frames"],
        overlap_history=forcing["overlap_history"],
        addnoise_condition=forcing["addnoise_condition"],
        ar_step=0,
    )
    return arguments


# Copied from openreel.models.families.wan.encode_frames
def encode_frames(pipe: DiffusionPipeline, frames: np.ndarray) -> torch.Tensor:
    """Frames (F, H, W, 3) in [0, 1] as the pipeline's normalised latents (what its loop denoises)."""
    import torch

    from openreel.render.conditioning import encode_mode

    vae = pipe.vae
    latents = encode_mode(vae, frames)
    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents)
    std = torch.tensor(vae.config.latents_std).view(shape).to(latents)
    return (latents - mean) / std


def twin_sizes(component: str, class_name: str, twin: ModelCard) -> dict[str, Any]:
    """What a twin shrinks (models/twins.py): widths, depths and heads, as for Wan."""
    from openreel.models.twins import T5_WIDTH

    if class_name == "SkyReelsV2Transformer3DModel":
        return dict(num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=T5_WIDTH)
    if class_name == "AutoencoderKLWan":
        return dict(base_dim=8, num_res_blocks=1)
    raise ValueError(f"no twin sizes for SkyReels-V2's {component} ({class_name})")
