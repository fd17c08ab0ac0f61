"""Pyramid Flow (jy0205/Pyramid-Flow, MIT code) through openreel's native port,
``openreel.models.pyramid_flow``: no diffusers class exists for it.

A video is denoised one latent frame at a time, each through three resolution stages, so the
pipeline takes two step counts (the first frame's and every later unit's) and two guidance scales.
The published recipe uses 20 steps per stage for the first frame and 10 for later units, guidance
7 for the first frame and 5 (text-to-video) or 4 (image-to-video) for the motion; the plan's steps
and guidance set the first pair and the later ones follow at the same ratio.

Weights load from a diffusers folder (``model_index.json``: tiny builds, converted copies) or from
the published folder layout (``causal_video_vae/``, ``diffusion_transformer_384p/`` ...), which is
what the Hugging Face cache holds for rain1011/pyramid-flow-*.
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

PIPELINES: dict[str, str] = {"t2v": "PyramidFlowPipeline", "i2v": "PyramidFlowPipeline"}


def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    # diffusers loads a component class only from a module already imported: model_index.json
    # names these, so import them all before from_pretrained.
    from openreel.models.pyramid_flow import convert, scheduler, transformer_flux, transformer_sd3, vae  # noqa: F401
    from openreel.models.pyramid_flow.pipeline import PyramidFlowPipeline

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"Pyramid Flow models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    folder = Path(folder)
    if (folder / "model_index.json").is_file():
        return PyramidFlowPipeline.from_pretrained(folder, dtype=dtype, quantization_config=quantization)
    if convert.is_official_layout(folder):
        variant = card.options.get("variant", "miniflux")
        pipe = convert.load_official_pipeline(folder, variant, card.options.get("resolution", "384p"), dtype)
        if quantization is not None:
            from openreel.render.quantize import quantize_components

            # Built component by component: the components it names are quantized after loading.
            quantize_components(pipe, quantization.quant_mapping)
        return pipe
    raise SpecError(
        f"{folder} holds neither a diffusers pipeline (model_index.json) nor the published Pyramid Flow "
        "layout (causal_video_vae/, diffusion_transformer_384p/ or _768p/)",
        param="model",
    )


def call_arguments(plan: Plan, generator: torch.Generator) -> dict[str, Any]:
    video_guidance = plan.options.get("video_guidance_scale", 5.0)
    if plan.mode == "i2v":
        video_guidance = plan.options.get("i2v_video_guidance_scale", 4.0)
    arguments: dict[str, Any] = {
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "height": plan.height,
        "width": plan.width,
        "num_frames": plan.num_frames,
        "num_inference_steps": plan.steps,
        # Later units take half the first frame's steps, as in the published 20/10 recipe.
        "video_num_inference_steps": max(1, plan.steps // 2),
        "guidance_scale": plan.guidance,
        "video_guidance_scale": video_guidance,
        "generator": generator,
    }
    # Image-to-video: the Runner adds the image through ``condition_arguments``.
    return arguments


def condition_arguments(items: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """Image-to-video, as the method does it: the first frame is the given image."""
    from openreel.errors import UnsupportedModeError
    from openreel.render.conditioning import to_pil

    if len(items) != 1 or items[0][1] != 0 or len(items[0][0]) != 1:
        raise UnsupportedModeError(
            "Pyramid Flow conditions only on a single first frame (image-to-video)", param="mode"
        )
    return {"image": to_pil(items[0][0])[0]}


def build_twin(reference: dict[str, Any], twin: ModelCard) -> DiffusionPipeline:
    """The twin of a Pyramid Flow card (models/twins.py): its native classes shrink beside them."""
    from openreel.models.pyramid_flow.tiny import build_twin as build_pyramid_twin

    return build_pyramid_twin(reference)
