"""The Runner: loads a family's diffusers pipeline once, keeps it warm, and runs a Plan.

Progress and cancel go through diffusers' ``callback_on_step_end``. A cancel raises from the
callback: setting ``pipe._interrupt`` would skip the remaining steps but still run the VAE decode,
which at 1080p is seconds of wasted work.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import Cancelled, GenerationError, OutOfMemoryError, UnsupportedModeError
from openreel.models.anchoring import LatentAnchor
from openreel.models.catalog import ModelCard
from openreel.models.families import family_module
from openreel.plan import MemoryPlan, Plan, Window
from openreel.render.caching import cached

if TYPE_CHECKING:
    import numpy as np

    from openreel.render.audio import Audio
    from openreel.render.latents import LatentsFile

log = logging.getLogger(__name__)

# on_step(done, total, phase): phase is "denoising" or "refining" (the 1080p model stage).
StepCallback = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class _LoadedKey:
    folder: str
    mode: str
    device: str
    dtype: str
    memory: MemoryPlan


class Runner:
    """Owns at most one loaded pipeline: the last one used. Not thread-safe; one per worker."""

    def __init__(self) -> None:
        self._key: _LoadedKey | None = None
        self._pipe: Any = None
        self._refiner: Any = None
        self.loads = 0  # how many times a pipeline was loaded from disk (tests check warmth)
        # A context-parallel plan's calls run in a group of rank processes (render.parallel),
        # each with its own Runner; this one then loads nothing itself.
        self._group: Any = None
        self._group_loras: list[dict[str, Any]] = []

    def pipeline(self, card: ModelCard, folder: Path, plan: Plan) -> Any:
        key = _LoadedKey(str(folder), "t2v", plan.device, plan.dtype, plan.memory)
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
        # Every mode runs on the family's text-to-video pipeline: image-to-video and extension
        # condition it, remix and refinement reuse its components in a video-to-video pipeline.
        # (A dedicated image-to-video checkpoint's card names its own pipeline for this slot.)
        quantization = None
        if plan.memory.quantize:
            from openreel.render.quantize import pipeline_config

            # int8 weight-only, quantized while loading: never all weights at full precision.
            quantization = pipeline_config(folder, plan.memory.quantize)
        pipe = family.load_pipeline(folder, card, "t2v", dtype, quantization=quantization)
        self._place(pipe, plan)
        if getattr(pipe, "vae", None) is not None:
            from openreel.render.latents import DecodeGuard

            # Latents saved before every decode, and a decode that survives running out of memory.
            DecodeGuard.install(pipe.vae)
        pipe.set_progress_bar_config(disable=True)
        self._key, self._pipe = key, pipe
        self.loads += 1
        return pipe

    @staticmethod
    def _place(pipe: Any, plan: Plan) -> None:
        """Apply the plan's memory choices (plan.plan_memory) to every component."""
        import torch

        memory = plan.memory
        vae = getattr(pipe, "vae", None)
        if memory.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if memory.vae_slicing and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        if memory.layerwise_fp8:
            # Weights stored in float8, each layer upcast to the compute dtype when it runs:
            # half the denoiser's bf16 memory (diffusers skips norms and embeddings by default).
            for name in ("transformer", "transformer_2"):
                model = getattr(pipe, name, None)
                if name in memory.quantize:
                    continue  # int8 already: a module is quantized or cast, never both
                if model is not None and hasattr(model, "enable_layerwise_casting"):
                    model.enable_layerwise_casting(
                        storage_dtype=torch.float8_e4m3fn, compute_dtype=getattr(torch, plan.dtype)
                    )
        if memory.group_offload:
            from openreel.paths import home
            from openreel.render.offload import apply_group_offload

            # Group offloading reaches every component but the VAE, the transformers text and
            # image encoders too (their own API has no such method); it works with onload = CPU,
            # where only offloading to disk saves memory.
            disk = str(home() / "offload" / f"{os.getpid()}") if memory.offload_to_disk else None
            apply_group_offload(
                pipe,
                torch.device(plan.device),
                offload_type=memory.offload_type,
                use_stream=memory.offload_streams,
                disk=disk,
            )
        elif plan.device != "cpu":
            pipe.to(plan.device)

    def unload(self) -> None:
        if self._group is not None:
            self._group.close()
            self._group = None
        if self._pipe is None:
            return
        self._pipe, self._key, self._refiner = None, None, None
        import gc

        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @contextlib.contextmanager
    def adapters(
        self, card: ModelCard, folder: Path, plan: Plan, loras: list[dict[str, Any]]
    ) -> Iterator[None]:
        """``loras`` loaded into the pipeline for the calls inside, unloaded after them, so the
        warm pipeline is the plain model again for the next run."""
        if not loras:
            yield
            return
        if plan.context_parallel > 1:
            # Each rank loads them into its own pipeline, for the calls inside.
            self._group_loras = loras
            try:
                yield
            finally:
                self._group_loras = []
            return
        from openreel.models.lora import load_adapters, unload_adapters

        pipe = self.pipeline(card, folder, plan)
        load_adapters(pipe, card, loras)
        try:
            yield
        finally:
            unload_adapters(pipe)

    @contextlib.contextmanager
    def _saving(self, latents: LatentsFile | None, window: int) -> Iterator[None]:
        """While the pipeline runs, its VAE's decode calls are saved to ``latents`` first."""
        guard = getattr(getattr(self._pipe, "vae", None), "_openreel_guard", None)
        if guard is None or latents is None:
            yield
            return
        guard.sink, guard.window = latents, window
        try:
            yield
        finally:
            guard.sink = None

    @property
    def decode_fallbacks(self) -> list[str]:
        """The decode fallbacks (tiling, slicing, cpu) this pipeline needed so far."""
        if self._group is not None:
            return list(self._group.fallbacks)
        guard = getattr(getattr(self._pipe, "vae", None), "_openreel_guard", None)
        return list(guard.fallbacks) if guard is not None else []

    def decode_saved(self, call: dict[str, Any]) -> np.ndarray:
        """Float frames (T, H, W, 3) from one saved decode call, as the pipeline would make them."""
        import torch

        from openreel.render.latents import frames_from_decoded

        guard = self._pipe.vae._openreel_guard
        with torch.inference_mode():
            return frames_from_decoded(self._pipe, guard.replay(call))

    def refine_pipeline(self, family: Any) -> Any:
        """The family's video-to-video pipeline over the loaded one's weights (no second copy)."""
        if self._refiner is None:
            import inspect

            import diffusers

            # Built from the loaded components rather than with from_pipe, which casts every
            # shared module to one dtype (float32 by default) in place.
            refine_class = getattr(diffusers, family.REFINE_PIPELINE)
            accepted = inspect.signature(refine_class.__init__).parameters
            self._refiner = refine_class(**{k: v for k, v in self._pipe.components.items() if k in accepted})
            self._refiner.set_progress_bar_config(disable=True)
        return self._refiner

    def run_window(
        self,
        card: ModelCard,
        folder: Path,
        plan: Plan,
        window: Window,
        seed: int,
        *,
        tail: np.ndarray | None = None,
        end: np.ndarray | None = None,
        extra: list[tuple[np.ndarray, int]] | None = None,
        references: list[np.ndarray] | None = None,
        on_step: StepCallback | None = None,
        should_cancel: CancelCheck | None = None,
        latents: LatentsFile | None = None,
    ) -> WindowFrames:
        """Generate one window of one variation, then raise it to the plan's upscale size with the
        family's model stage if the plan says so. Frames are float32 in [0, 1].

        ``tail``: frames the window must begin with (the previous window's last frames, the clip
        being extended, or an image). ``end``: frames it must end with (extending backwards:
        the clip's head) and ``extra`` (frames at window indices: storyboard keyframes) only
        families with native conditioning (LTX-Video) accept. ``references``: images (1, H, W, 3)
        of what a character looks like, for cards whose pipeline takes them (VACE).

        ``latents``: the variation's latents file. Each decode's inputs are saved there first; a
        window it already holds whole is decoded from it without denoising (a resumed run)."""
        if plan.context_parallel > 1:
            return self._in_group(
                "run_window", card, folder, plan, (window, seed), latents, on_step, should_cancel,
                tail=tail, end=end, extra=extra, references=references,
            )  # fmt: skip
        import torch

        pipe = self.pipeline(card, folder, plan)
        family = family_module(card.family)
        expected = 2 if plan.upscale.method == "v2v" else 1
        saved = latents.decodes(window.index, expected) if latents is not None else None
        if saved is not None:
            decoded = [self.decode_saved(call) for call in saved]
            from openreel.render.audio import Audio

            sound = latents.sound(window.index)
            audio = Audio(*sound) if sound is not None else None
            return WindowFrames(native=decoded[0], final=decoded[-1], audio=audio)
        call_plan = plan.for_window(window)
        # A CPU generator gives the same noise on every device, so a recipe replays anywhere;
        # window 0 uses the variation's seed itself, so a one-window clip is the plain call.
        generator = torch.Generator(device="cpu").manual_seed(seed + _WINDOW_SEED_STRIDE * window.index)
        callback = _StepReporter(call_plan, on_step, should_cancel)
        arguments = family.call_arguments(call_plan, generator)
        if hasattr(family, "prepare_call"):  # arguments that depend on the loaded weights
            arguments = family.prepare_call(pipe, arguments)
        anchor: LatentAnchor | None = None
        audio: Audio | None = None
        if _conditions_natively(family, card):
            items = [(tail, 0)] if tail is not None else []
            if end is not None:
                items.append((end, window.num_frames - len(end)))
            items.extend(extra or ())
            if items and card.options.get("conditioning") == "video":
                # VACE's control video spans the whole window, so it needs the window's length.
                arguments.update(family.video_condition_arguments(items, window.num_frames))
            elif items:
                arguments.update(family.condition_arguments(items))
        elif end is not None or extra:
            raise UnsupportedModeError(
                f"{card.id} can only be conditioned on its first frames", param="model"
            )
        elif tail is not None:
            anchor = LatentAnchor(
                family.encode_frames(pipe, tail),
                family.LATENT_FRAME_AXIS,
                seed + window.index,
                # Where the loop keeps the window's first latent frame (CogVideoX 1.5 pads in front).
                start=family.anchor_start(pipe, window.num_frames) if hasattr(family, "anchor_start") else 0,
            )
        if references:
            if "references" not in card.modes or not hasattr(family, "reference_arguments"):
                raise UnsupportedModeError(f"{card.id} cannot take reference images", param="model")
            arguments.update(family.reference_arguments(references))
        step_end = anchor.callback(callback) if anchor is not None else callback
        stepping = _step_arguments(pipe, step_end)
        if anchor is not None and not stepping:
            raise UnsupportedModeError(f"{card.id} cannot be conditioned on given frames", param="model")
        try:
            with torch.inference_mode(), self._saving(latents, window.index):
                if plan.upscale.method == "latent":
                    from openreel.models.weights import upsampler_folder

                    with cached(pipe, plan):
                        final = family.upsample_and_refine(
                            pipe, upsampler_folder(card), call_plan, arguments, step_end
                        )
                    native = final
                else:
                    # A family may serve conditioned calls with another pipeline on the same weights.
                    caller = family.pipeline_for(pipe, arguments) if hasattr(family, "pipeline_for") else pipe
                    with cached(pipe, plan):
                        output = caller(**arguments, output_type="np", **stepping)
                    native = output.frames[0]
                    audio = _sound(family, pipe, output)
                    if audio is not None and latents is not None:
                        latents.record_sound(window.index, audio.samples, audio.rate)
                    _check_shape(card, native, (window.num_frames, plan.height, plan.width, 3))
                    final = native
                    # The refinement runs uncached: its pipeline (Wan's video-to-video) sets no
                    # cache context, and it re-runs only the last, detailed part of the schedule.
                    if plan.upscale.method == "v2v":
                        final = self._video_to_video(
                            family,
                            call_plan,
                            native,
                            (plan.upscale.width, plan.upscale.height),
                            plan.upscale.strength,
                            generator,
                            callback,
                        )
        except (Cancelled, OutOfMemoryError):
            raise
        except torch.OutOfMemoryError as exc:
            raise OutOfMemoryError(_oom_message(card, plan)) from exc
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise OutOfMemoryError(_oom_message(card, plan)) from exc
            raise GenerationError(f"{card.id} failed: {exc}") from exc
        size = (
            (plan.upscale.height, plan.upscale.width)
            if plan.upscale.method in ("v2v", "latent")
            else (plan.height, plan.width)
        )
        _check_shape(card, final, (window.num_frames, *size, 3))
        return WindowFrames(native=native, final=final, audio=audio)

    def _in_group(
        self,
        method: str,
        card: ModelCard,
        folder: Path,
        plan: Plan,
        args: tuple,
        latents: LatentsFile | None,
        on_step: StepCallback | None,
        should_cancel: CancelCheck | None,
        **kwargs: Any,
    ) -> Any:
        """``method`` run by every rank of a context-parallel group (started, or kept warm, for
        this plan's rank count); rank 0's result. The pipeline loaded here, if any, goes first."""
        from openreel.render.parallel import ParallelGroup

        if self._group is None or not self._group.serves(plan):
            self.unload()
            self._group = ParallelGroup(plan.context_parallel, plan.device)
        return self._group.run(
            method, card, folder, plan, args, kwargs,
            loras=self._group_loras, latents=latents, on_step=on_step, should_cancel=should_cancel,
        )  # fmt: skip

    def _video_to_video(
        self,
        family: Any,
        plan: Plan,
        frames: np.ndarray,
        size: tuple[int, int],
        strength: float,
        generator: Any,
        callback: _StepReporter,
    ) -> np.ndarray:
        """Lanczos to ``size``, then a video-to-video pass there re-running ``strength`` of the
        schedule: the 1080p refinement, and remix at the native size."""
        from PIL import Image

        from openreel.render.conditioning import to_pil

        video = [image.resize(size, Image.Resampling.LANCZOS) for image in to_pil(frames)]
        refiner = self.refine_pipeline(family)
        return refiner(
            **family.refine_arguments(plan, video, size, strength, generator),
            output_type="np",
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents"],
        ).frames[0]

    def run_remix(
        self,
        card: ModelCard,
        folder: Path,
        plan: Plan,
        frames: np.ndarray,
        seed: int,
        *,
        on_step: StepCallback | None = None,
        should_cancel: CancelCheck | None = None,
        latents: LatentsFile | None = None,
    ) -> np.ndarray:
        """Re-render ``frames`` (the source clip at the plan's native size and frame count) with
        the plan's prompt, re-running ``plan.inputs['strength']`` of the schedule."""
        if plan.context_parallel > 1:
            arguments = (frames, seed)
            return self._in_group("run_remix", card, folder, plan, arguments, latents, on_step, should_cancel)
        import torch

        pipe = self.pipeline(card, folder, plan)
        family = family_module(card.family)
        saved = latents.decodes(0, 1) if latents is not None else None
        if saved is not None:
            return self.decode_saved(saved[-1])
        strength = float(plan.inputs["strength"])
        generator = torch.Generator(device="cpu").manual_seed(seed)
        callback = _StepReporter(plan, on_step, should_cancel)
        with torch.inference_mode(), self._saving(latents, 0):
            if hasattr(family, "REFINE_PIPELINE"):
                result = self._video_to_video(
                    family, plan, frames, (plan.width, plan.height), strength, generator, callback
                )
            elif hasattr(family, "remix_arguments"):
                arguments = family.call_arguments(plan, generator)
                # A distilled card's schedule stays: the pipeline re-runs its last ``strength``.
                arguments.update(family.remix_arguments(pipe, frames, strength))
                result = pipe(
                    **arguments,
                    output_type="np",
                    callback_on_step_end=callback,
                    callback_on_step_end_tensor_inputs=["latents"],
                ).frames[0]
            else:
                raise UnsupportedModeError(f"{card.id} cannot remix", param="model")
        _check_shape(card, result, (plan.num_frames, plan.height, plan.width, 3))
        return result


@dataclass
class WindowFrames:
    native: np.ndarray  # at the generation size; its tail conditions the next window
    final: np.ndarray  # after the model upscale stage (the same array when there is none)
    # The window's sound, from its first frame on, when the model makes sound (LTX-2); a window
    # decoded from saved latents (a resumed run) has the sound saved with them.
    audio: Audio | None = None


def _sound(family: Any, pipe: Any, output: Any) -> Audio | None:
    """The waveform a sound-making pipeline returned beside the frames (the first video's)."""
    if not getattr(family, "MAKES_AUDIO", False) or getattr(output, "audio", None) is None:
        return None
    from openreel.render.audio import Audio

    return Audio.from_pipeline(output.audio[0], family.audio_sample_rate(pipe))


# Window k's generator is seeded seed + k * stride: distinct noise per window, reproducible.
_WINDOW_SEED_STRIDE = 1_000_003


class _StepReporter:
    """``callback_on_step_end`` for progress and cancel. A second loop in the same call (the
    refinement pass) starts its index at 0 again: that marks the "refining" phase. Diffusion
    forcing's passes restart it too: they count on, all of them denoising."""

    def __init__(self, plan: Plan, on_step: StepCallback | None, should_cancel: CancelCheck | None):
        self.plan, self.on_step, self.should_cancel = plan, on_step, should_cancel
        self.phase = "denoising"
        self.last_index = -1
        self.passes_done = 0

    def __call__(self, pipe: Any, index: int, _timestep: Any, _tensors: dict) -> dict:
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled("cancelled")
        forcing = self.plan.forcing_passes > 1
        if index <= self.last_index:
            if forcing:
                self.passes_done += 1
            else:
                self.phase = "refining"
        self.last_index = index
        if self.on_step is not None:
            # Pipelines with several loops (Pyramid Flow's stages and units, a refinement that
            # re-runs part of the schedule) count their own total.
            total = getattr(pipe, "num_timesteps", None) or self.plan.steps
            done = index + 1
            if forcing:
                done, total = self.passes_done * total + done, self.plan.forcing_passes * total
            self.on_step(done, total, self.phase)
        return {}


def _step_arguments(pipe: Any, step_end: Callable[..., dict]) -> dict[str, Any]:
    """``callback_on_step_end`` for the pipelines that take it. HunyuanVideo 1.5's do not (diffusers
    0.42.1): they run without per-step progress, cancel within the call or latent anchoring."""
    import inspect

    if "callback_on_step_end" not in inspect.signature(pipe.__call__).parameters:
        return {}
    return {"callback_on_step_end": step_end, "callback_on_step_end_tensor_inputs": ["latents"]}


def _conditions_natively(family: Any, card: ModelCard) -> bool:
    """Whether the family's own pipeline takes conditions for this card (``condition_arguments``):
    for all its cards (LTX-Video, Pyramid Flow), or per card (``conditions_natively(card)``: the
    dedicated image-to-video checkpoints of Wan and CogVideoX, Wan VACE). Otherwise latent anchoring."""
    if not hasattr(family, "condition_arguments"):
        return False
    return family.conditions_natively(card) if hasattr(family, "conditions_natively") else True


def _check_shape(card: ModelCard, frames: np.ndarray, expected: tuple[int, ...]) -> None:
    if tuple(frames.shape) != expected:
        raise GenerationError(
            f"{card.id} returned frames of shape {tuple(frames.shape)}; the plan asked for {expected}"
        )


def _oom_message(card: ModelCard, plan: Plan) -> str:
    return (
        f"{card.id} ran out of memory at {plan.width}x{plan.height}, {plan.num_frames} frames on "
        f"{plan.device}. Ask for fewer seconds or a lower resolution, or choose a smaller model "
        "(`openreel models list` shows each model's memory needs)."
    )
