"""The Runner: loads a family's diffusers pipeline once, keeps it warm, and runs a Plan.

Progress and cancel go through diffusers' ``callback_on_step_end``. A cancel raises from the
callback: setting ``pipe._interrupt`` would skip the remaining steps but still run the VAE decode,
which at 1080p is seconds of wasted work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import Cancelled, GenerationError, OutOfMemoryError
from openreel.models.catalog import ModelCard
from openreel.models.families import family_module
from openreel.plan import Plan

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class _LoadedKey:
    folder: str
    mode: str
    device: str
    dtype: str
    vae_tiling: bool
    group_offload: bool


class Runner:
    """Owns at most one loaded pipeline: the last one used. Not thread-safe; one per worker."""

    def __init__(self) -> None:
        self._key: _LoadedKey | None = None
        self._pipe: Any = None
        self.loads = 0  # how many times a pipeline was loaded from disk (tests check warmth)

    def pipeline(self, card: ModelCard, folder: Path, plan: Plan) -> Any:
        key = _LoadedKey(
            str(folder), plan.mode, plan.device, plan.dtype, plan.memory.vae_tiling, plan.memory.group_offload
        )
        if key == self._key:
            return self._pipe
        self.unload()
        import torch
        from diffusers.utils import logging as diffusers_logging
        from transformers.utils import logging as transformers_logging

        # Our own progress display covers loading; their tqdm bars would interleave with it.
        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        family = family_module(card.family)
        dtype = getattr(torch, plan.dtype)
        pipe = family.load_pipeline(folder, card, plan.mode, dtype)
        self._place(pipe, plan)
        pipe.set_progress_bar_config(disable=True)
        self._key, self._pipe = key, pipe
        self.loads += 1
        return pipe

    @staticmethod
    def _place(pipe: Any, plan: Plan) -> None:
        if plan.memory.vae_tiling and hasattr(pipe, "vae") and hasattr(pipe.vae, "enable_tiling"):
            pipe.vae.enable_tiling()
        if plan.device == "cpu":
            return
        if plan.memory.group_offload:
            import torch

            # Block-level group offloading keeps one block group on the accelerator at a time;
            # it works for every family, unlike model CPU offload's hooks on custom VAEs.
            onload = torch.device(plan.device)
            for name in ("transformer", "transformer_2", "text_encoder", "text_encoder_2"):
                module = getattr(pipe, name, None)
                if module is not None and hasattr(module, "enable_group_offload"):
                    module.enable_group_offload(onload, offload_type="block_level", num_blocks_per_group=1)
            if getattr(pipe, "vae", None) is not None:
                pipe.vae.to(onload)
        else:
            pipe.to(plan.device)

    def unload(self) -> None:
        if self._pipe is None:
            return
        self._pipe, self._key = None, None
        import gc

        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def run(
        self,
        card: ModelCard,
        folder: Path,
        plan: Plan,
        seed: int,
        *,
        on_step: StepCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> np.ndarray:
        """Denoise and decode one variation: float32 frames (T, H, W, 3) in [0, 1]."""
        import torch

        pipe = self.pipeline(card, folder, plan)
        family = family_module(card.family)
        # A CPU generator gives the same noise on every device, so a recipe replays anywhere.
        generator = torch.Generator(device="cpu").manual_seed(seed)

        def step_end(_pipe: Any, index: int, _timestep: Any, _tensors: dict) -> dict:
            if should_cancel is not None and should_cancel():
                raise Cancelled("cancelled")
            if on_step is not None:
                # Pipelines with several loops (Pyramid Flow's stages and units, a refinement that
                # re-runs part of the schedule) count their own total.
                on_step(index + 1, getattr(_pipe, "num_timesteps", None) or plan.steps)
            return {}

        arguments = family.call_arguments(plan, generator)
        try:
            with torch.inference_mode():
                output = pipe(
                    **arguments,
                    output_type="np",
                    callback_on_step_end=step_end,
                    callback_on_step_end_tensor_inputs=["latents"],
                )
        except Cancelled:
            raise
        except torch.OutOfMemoryError as exc:
            raise OutOfMemoryError(_oom_message(card, plan)) from exc
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise OutOfMemoryError(_oom_message(card, plan)) from exc
            raise GenerationError(f"{card.id} failed: {exc}") from exc
        frames = output.frames[0]
        if frames.shape != (plan.num_frames, plan.height, plan.width, 3):
            raise GenerationError(
                f"{card.id} returned frames of shape {tuple(frames.shape)}; the plan asked for "
                f"{(plan.num_frames, plan.height, plan.width, 3)}"
            )
        return frames


def _oom_message(card: ModelCard, plan: Plan) -> str:
    return (
        f"{card.id} ran out of memory at {plan.width}x{plan.height}, {plan.num_frames} frames on "
        f"{plan.device}. Ask for fewer seconds or a lower resolution, or choose a smaller model "
        "(`openreel models list` shows each model's memory needs)."
    )
