"""Wan 2.1 / 2.2 (Alibaba Wan team) through diffusers' WanPipeline, the image-to-video
checkpoints through WanImageToVideoPipeline and VACE through WanVACEPipeline (card option
``pipeline``).

The VAE compresses 4x in time and 8x in space (16x for Wan 2.2 TI2V-5B), the transformer patches
2x2, so frames are 4k+1 and sides multiples of 16 (32 for TI2V-5B): the card says so. Wan 2.1 ships
UniPC with a flow shift that depends on resolution (3.0 for 480p, 5.0 for 720p); the card's
``flow_shift`` option sets it.

Wan 2.2 A14B has two experts of the same architecture: ``transformer`` denoises the high-noise
steps and ``transformer_2`` the rest, switching at the ``boundary_ratio`` of the repo's
model_index.json (0.875 for T2V, 0.9 for I2V). Both pipelines run them; the low-noise expert's
guidance is ``guidance_scale_2`` (card option ``guidance_2_ratio``).

The I2V checkpoints (card option ``conditioning="image"``) take the first frame as ``image`` and,
for first-last-frame, the last as ``last_image``. VACE (``conditioning="video"``) takes frames to
keep in pixels: a full-length control ``video`` with a ``mask`` that is 0 on them and 1 on the
frames to generate, and characters as ``reference_images``. Other cards hold an image by latent
anchoring.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import UnsupportedModeError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline, SchedulerMixin

    from openreel.models.catalog import ModelCard
    from openreel.plan import Plan

PIPELINES: dict[str, str] = {"t2v": "WanPipeline"}
# The refinement pass of the 1080p path: the same weights as video-to-video.
REFINE_PIPELINE = "WanVideoToVideoPipeline"
# Latents are (batch, channels, frames, height, width).
LATENT_FRAME_AXIS = 2


def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"Wan models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


def with_flow_shift(scheduler: SchedulerMixin, flow_shift: float) -> SchedulerMixin:
    """The same scheduler with another flow shift (UniPC and DPM++ call it ``flow_shift``, flow-match
    Euler calls it ``shift``); everything else in its saved config is kept."""
    key = "flow_shift" if "flow_shift" in scheduler.config else "shift"
    return type(scheduler).from_config(scheduler.config, **{key: flow_shift})


def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    import diffusers
    import torch

    # A dedicated checkpoint names its own class: its text-to-video slot is that pipeline.
    cls = getattr(diffusers, card.options["pipeline"]) if "pipeline" in card.options else pipeline_class(mode)
    # Wan's VAE (and the I2V checkpoints' CLIP image encoder) run in float32 even when the rest is
    # bf16: the model cards load them that way, as reduced precision costs detail. The pipeline
    # casts latents to the VAE's dtype and image embeddings to the transformer's.
    pipe = cls.from_pretrained(
        folder,
        dtype={"default": dtype, "vae": torch.float32, "image_encoder": torch.float32},
        quantization_config=quantization,
    )
    if "flow_shift" in card.options:
        pipe.scheduler = with_flow_shift(pipe.scheduler, card.options["flow_shift"])
    return pipe


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
    }
    if "guidance_2_ratio" in plan.options:
        # Two experts (Wan 2.2 A14B): the low-noise one keeps its published ratio to the plan's
        # guidance (Wan's T2V config: 4.0 high-noise, 3.0 low-noise), so --guidance moves both.
        arguments["guidance_scale_2"] = plan.guidance * plan.options["guidance_2_ratio"]
    return arguments


def conditions_natively(card: ModelCard) -> bool:
    """Whether the card's own pipeline takes conditions: ``condition_arguments`` (I2V, FLF2V) or
    ``video_condition_arguments`` (VACE); else the Runner anchors the first latent frame on the
    text-to-video weights."""
    return card.options.get("conditioning") in ("image", "video")


def condition_arguments(items: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """Clips (F, H, W, 3 floats in [0, 1]) at frame indices as WanImageToVideoPipeline's inputs:
    the clip at index 0 gives ``image`` (its first frame is the window's first), one placed later
    gives ``last_image`` (its last frame is the window's last: a loop's end), which only the
    first-last-frame checkpoints take (their image embedding has positions for two images)."""
    from openreel.render.conditioning import to_pil

    starts = [frames for frames, index in items if index == 0]
    ends = [frames for frames, index in items if index > 0]
    if len(starts) != 1 or len(ends) > 1:
        raise UnsupportedModeError(
            "Wan image-to-video conditions on a first frame and at most a last frame", param="mode"
        )
    arguments: dict[str, Any] = {"image": to_pil(starts[0][:1])[0]}
    if ends:
        arguments["last_image"] = to_pil(ends[0][-1:])[0]
    return arguments


def video_condition_arguments(items: list[tuple[np.ndarray, int]], num_frames: int) -> dict[str, Any]:
    """Clips (F, H, W, 3 floats in [0, 1]) at frame indices as WanVACEPipeline's ``video`` and
    ``mask`` over the whole window of ``num_frames``: the given frames where they stand with mask 0
    (keep), mid-grey with mask 1 (generate) elsewhere, as the pipeline's own example does. The
    control video must be as long as the window: its latents are concatenated to the noise's."""
    import numpy as np
    from PIL import Image

    from openreel.render.conditioning import to_pil

    height, width = items[0][0].shape[1:3]
    video = np.full((num_frames, height, width, 3), 0.5, dtype=np.float32)
    keep = np.zeros(num_frames, dtype=bool)
    for frames, index in items:
        if index < 0 or index + len(frames) > num_frames:
            raise UnsupportedModeError(
                f"frames at {index}..{index + len(frames) - 1} fall outside a {num_frames}-frame window",
                param="mode",
            )
        video[index : index + len(frames)] = frames
        keep[index : index + len(frames)] = True
    # PIL "L" masks, as the pipeline takes them: 0 black (keep), 255 white (generate).
    masks = [Image.new("L", (width, height), 0 if kept else 255) for kept in keep]
    return {"video": to_pil(video), "mask": masks}


def reference_arguments(images: list[np.ndarray]) -> dict[str, Any]:
    """Reference images (each (1, H, W, 3) floats in [0, 1], any aspect) as WanVACEPipeline's
    ``reference_images``: what a character looks like, wherever it appears. The pipeline pads each
    onto a white canvas of the video's size and denoises it as extra leading latent frames."""
    from openreel.render.conditioning import to_pil

    return {"reference_images": [to_pil(image[:1])[0] for image in images]}


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
        "strength": strength,
        "generator": generator,
    }


def twin_sizes(component: str, class_name: str, twin: ModelCard) -> dict[str, Any]:
    """What a twin shrinks (models/twins.py): widths, depths and heads."""
    from openreel.models.reference import load_reference
    from openreel.models.twins import CLIP_VISION_WIDTH, T5_WIDTH

    config = load_reference(twin.twin_of)["components"][component]["config"]
    if class_name in ("WanTransformer3DModel", "WanVACETransformer3DModel"):
        sizes: dict[str, Any] = dict(
            num_attention_heads=2, attention_head_dim=12, ffn_dim=32, num_layers=2, text_dim=T5_WIDTH
        )
        if config.get("image_dim") is not None:
            sizes["image_dim"] = CLIP_VISION_WIDTH  # the image encoder's hidden states
        if config.get("added_kv_proj_dim") is not None:
            # The I2V image cross-attention projects from the transformer's own width.
            sizes["added_kv_proj_dim"] = sizes["num_attention_heads"] * sizes["attention_head_dim"]
        if class_name == "WanVACETransformer3DModel":
            sizes["vace_layers"] = [0, 1]  # VACE needs a block at layer 0 (the input projection)
        return sizes
    if class_name == "AutoencoderKLWan":
        sizes = dict(base_dim=8, num_res_blocks=1)
        if config.get("decoder_base_dim") is not None:  # Wan 2.2's VAE decodes wider than it encodes
            sizes["decoder_base_dim"] = 16
        return sizes
    raise ValueError(f"no twin sizes for Wan's {component} ({class_name})")
