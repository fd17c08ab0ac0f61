"""Never lose a finished run: the denoised latents are saved before the VAE decode, and the
decode survives running out of memory.

The save and the fallbacks sit at one boundary every family passes through: ``vae.decode``.
Every diffusers pipeline (and Pyramid Flow's) hands its final latents there, after its own
unpacking and denormalisation, so what is saved is exactly what the decoder gets, and a resume
calls the decoder with the very same arguments.

A latents file belongs to one variation of one output (``clip.mp4`` -> ``clip.latents.pt``) and
holds, per window, each decode call's arguments, with the resolved spec, the model record and the
plan's identity: enough to plan the run again and refuse latents that do not belong to it.
It is written atomically before each decode and removed once the video is whole.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openreel.atomic import atomic_path
from openreel.errors import OutOfMemoryError, SpecError

log = logging.getLogger(__name__)

FORMAT = "openreel.latents/1"
SUFFIX = ".latents.pt"
# What a decode that ran out of memory tries next, in order: each keeps what came before.
FALLBACKS = ("tiling", "slicing", "cpu")


class LatentsError(SpecError):
    """A latents file that cannot be resumed: unreadable, not ours, or for another run."""

    code = "invalid_latents"


def latents_path(video: Path) -> Path:
    """Where one variation's latents live while it is made: beside its video."""
    return video.with_name(video.stem + SUFFIX)


def plan_identity(plan: Any) -> str:
    """What fixes the latents: everything in the plan but where and how it runs (device, dtype,
    memory plan, time estimate), which may differ when the run is resumed."""
    data = plan.to_dict()
    # How many GPUs share a call (context parallelism) does not change its latents either.
    where = ("device", "dtype", "memory", "estimated_seconds", "context_parallel", "context_parallel_reason")
    for key in where:
        data.pop(key, None)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class LatentsFile:
    path: Path
    header: dict[str, Any]  # spec, model, plan_identity, variation, seed
    # window index -> each decode call's (args, kwargs), in the order the run made them.
    windows: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    # Read back from disk to finish a stopped run (said in the recipe), not a new run's file.
    resumed: bool = False
    # window index -> the sound the model made with it ({"samples": (channels, n), "rate"}), so a
    # resumed run of a model with sound (LTX-2) keeps it: the sound is not made by a VAE decode.
    sounds: dict[int, dict[str, Any]] = field(default_factory=dict)

    def record(self, window: int, args: tuple, kwargs: dict[str, Any]) -> None:
        """Keep one decode call's inputs (on the CPU) and write the file, before decoding."""
        self.windows.setdefault(window, []).append(
            {"args": [_to_cpu(value) for value in args], "kwargs": {k: _to_cpu(v) for k, v in kwargs.items()}}
        )
        self.save()

    def save(self) -> None:
        import torch

        with atomic_path(self.path) as temp:
            data = {"format": FORMAT, **self.header, "windows": self.windows, "sounds": self.sounds}
            torch.save(data, temp)

    def record_sound(self, window: int, samples: Any, rate: int) -> None:
        """Keep the window's sound (float samples (channels, n) at ``rate``) and write the file."""
        import torch

        tensor = torch.as_tensor(samples, dtype=torch.float32).cpu()
        self.sounds[window] = {"samples": tensor, "rate": int(rate)}
        self.save()

    def sound(self, window: int) -> tuple[Any, int] | None:
        """The window's saved sound as (float32 samples (channels, n), rate), if it was saved."""
        saved = self.sounds.get(window)
        return (saved["samples"].numpy(), saved["rate"]) if saved else None

    def decodes(self, window: int, expected: int) -> list[dict[str, Any]] | None:
        """The window's decode calls when all ``expected`` were made, else None."""
        calls = self.windows.get(window, [])
        return calls if len(calls) >= expected else None


def read_latents(path: Path) -> LatentsFile:
    """A saved latents file, or one clear error saying why it cannot be resumed."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise LatentsError(f"latents file {path} does not exist", param="resume")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise LatentsError(
            f"{path} is corrupt or not an openreel latents file ({type(exc).__name__}); "
            "it cannot be resumed: make the video again",
            param="resume",
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise LatentsError(
            f'{path} is not an openreel latents file (expected "format": "{FORMAT}")', param="resume"
        )
    needed = ("spec", "model", "plan_identity", "variation", "seed", "windows")
    missing = [key for key in needed if key not in data]
    if missing or not isinstance(data["windows"], dict):
        lacks = ", ".join(missing) or "windows"
        raise LatentsError(f"{path} is incomplete: it lacks {lacks}", param="resume")
    windows = data.pop("windows")
    sounds = data.pop("sounds", {})  # files older than the field have none
    data.pop("format")
    windows = {int(k): v for k, v in windows.items()}
    return LatentsFile(path, data, windows, sounds={int(k): v for k, v in sounds.items()})


def _to_cpu(value: Any) -> Any:
    import torch

    return value.detach().to("cpu") if isinstance(value, torch.Tensor) else value


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def decode_with_fallbacks(
    vae: Any, decode: Callable[..., Any], args: tuple, kwargs: dict[str, Any], steps: list[str] | None = None
) -> Any:
    """``decode(*args, **kwargs)``; when it runs out of memory, again with VAE tiling, then
    slicing as well, then on the CPU in float32. ``steps`` collects the fallbacks that were used.
    Raises OutOfMemoryError when the CPU runs out too (the latents are already saved)."""
    import torch

    attempts = ("as planned", *FALLBACKS)
    for attempt in attempts:
        if attempt == "tiling" and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        elif attempt == "slicing" and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        try:
            if attempt == "cpu":
                return _decode_on_cpu(vae, decode, args, kwargs)
            return decode(*args, **kwargs)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not is_oom(exc):
                raise
            log.warning("VAE decode ran out of memory (%s); trying %s", attempt, _next(attempts, attempt))
        # Outside the except block, so the failed attempt's tensors (held by the traceback) go.
        _free_memory()
        if steps is not None and attempt != attempts[-1]:
            steps.append(_next(attempts, attempt))
    raise OutOfMemoryError("the VAE decode ran out of memory with tiling, slicing and on the CPU")


def _next(attempts: tuple[str, ...], attempt: str) -> str:
    index = attempts.index(attempt)
    return attempts[index + 1] if index + 1 < len(attempts) else "nothing more"


def _decode_on_cpu(vae: Any, decode: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """Decode on the CPU in float32 (CPUs are slow in half precision), hand the result back on
    the VAE's own device and dtype, and put the VAE back where it was."""
    import torch

    device, dtype = vae.device, vae.dtype

    def to(value: Any, where: Any, kind: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(where, kind if value.is_floating_point() else value.dtype)
        return value

    vae.to("cpu", torch.float32)
    try:
        result = decode(
            *[to(a, "cpu", torch.float32) for a in args],
            **{k: to(v, "cpu", torch.float32) for k, v in kwargs.items()},
        )
    finally:
        vae.to(device, dtype)
    if isinstance(result, tuple):
        return tuple(to(item, device, dtype) for item in result)
    if hasattr(result, "sample"):
        result.sample = to(result.sample, device, dtype)
        return result
    return to(result, device, dtype)


class DecodeGuard:
    """Wraps one VAE's ``decode``: records the call's inputs in the current latents file (if
    any) before decoding, then decodes with the fallbacks. One per loaded VAE."""

    def __init__(self, vae: Any):
        self.vae = vae
        self.original = vae.decode
        self.sink: LatentsFile | None = None
        self.window = 0
        self.fallbacks: list[str] = []
        self._inside = False

    @classmethod
    def install(cls, vae: Any) -> DecodeGuard:
        existing = getattr(vae, "_openreel_guard", None)
        if existing is not None:
            return existing
        guard = cls(vae)
        # A plain attribute on the module: every caller (the pipelines, a refiner built from the
        # same components) goes through it.
        object.__setattr__(vae, "decode", guard)
        object.__setattr__(vae, "_openreel_guard", guard)
        return guard

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._inside:  # a VAE that decodes slices through its own decode
            return self.original(*args, **kwargs)
        if self.sink is not None:
            self.sink.record(self.window, args, kwargs)
        self._inside = True
        try:
            return decode_with_fallbacks(self.vae, self.original, args, kwargs, self.fallbacks)
        except OutOfMemoryError as exc:
            if self.sink is None:
                raise
            path = self.sink.path
            raise OutOfMemoryError(
                f"{exc.message}. The denoised latents are saved in {path}: "
                f"`openreel generate --resume {path}` decodes them without denoising again "
                "(after freeing memory, or on a larger machine)"
            ) from None
        finally:
            self._inside = False

    def replay(self, call: dict[str, Any]) -> Any:
        """Decode a saved call (with the fallbacks), on the VAE's device and dtype."""
        import torch

        def to(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                return value.to(self.vae.device, self.vae.dtype)
            return value.to(self.vae.device) if isinstance(value, torch.Tensor) else value

        args = tuple(to(a) for a in call["args"])
        kwargs = {k: to(v) for k, v in call["kwargs"].items()}
        self._inside = True
        try:
            return decode_with_fallbacks(self.vae, self.original, args, kwargs, self.fallbacks)
        finally:
            self._inside = False


def frames_from_decoded(pipe: Any, decoded: Any) -> Any:
    """What the pipeline does after its decode, for a saved call: float frames (T, H, W, 3) in
    [0, 1]. diffusers pipelines post-process through their video processor; Pyramid Flow's maps
    [-1, 1] itself."""
    video = decoded[0] if isinstance(decoded, tuple) else getattr(decoded, "sample", decoded)
    processor = getattr(pipe, "video_processor", None)
    if processor is not None:
        return processor.postprocess_video(video, output_type="np")[0]
    return (video.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 4, 1)[0].cpu().numpy()
