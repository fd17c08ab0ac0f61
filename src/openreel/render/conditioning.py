"""Conditioning a window on frames it must begin with: the tail of the window before.

LTX-Video conditions natively (its condition pipeline takes frames at any index; see
``families/ltx.py``). For the other families openreel anchors latents: the given frames are encoded
with the pipeline's own VAE into its normalised latent space, and after every denoising step the
leading latent frames are replaced by those latents noised to the level of the next step. The
transformer so sees the true context at every noise level and the frames after it continue from
it; the last step sets the anchored latents exactly (noise level zero), so the seam is the tail.

The causal VAEs of these families encode a clip of 1 + k * frame_step frames into 1 + k latent
frames whose first one holds the first frame alone, just like the start of a new window; that
is why windows overlap by 1 + k * frame_step frames (``plan.overlap_frames``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch


def to_pil(frames: np.ndarray) -> list:
    """Float frames (F, H, W, 3) in [0, 1] as PIL images, what diffusers' video inputs take."""
    import numpy as np
    from PIL import Image

    return [Image.fromarray((np.clip(frame, 0, 1) * 255).round().astype("uint8")) for frame in frames]


def vae_input(vae: Any, frames: np.ndarray) -> torch.Tensor:
    """Float frames (F, H, W, 3) in [0, 1] as the VAE's input: (1, 3, F, H, W) in [-1, 1]."""
    import torch

    video = torch.from_numpy(frames).permute(3, 0, 1, 2).unsqueeze(0) * 2 - 1
    return video.to(device=vae.device, dtype=vae.dtype)


def encode_mode(vae: Any, frames: np.ndarray) -> torch.Tensor:
    """The VAE's most likely latents for ``frames`` (the mode: no sampling, so reproducible)."""
    import torch

    with torch.inference_mode():
        return vae.encode(vae_input(vae, frames)).latent_dist.mode()


def _is_flow_matching(scheduler: Any) -> bool:
    config = scheduler.config
    return (
        type(scheduler).__name__.startswith("FlowMatch")
        or config.get("prediction_type") == "flow_prediction"
        or bool(config.get("use_flow_sigmas"))
    )


class LatentAnchor:
    """Holds the leading latent frames of a window to given values through the denoising loop.

    Use ``callback`` as (part of) ``callback_on_step_end``; ``anchored`` keeps the exact values
    written after the last step, for tests and for checking the seam.
    """

    def __init__(self, latents: torch.Tensor, frame_axis: int, seed: int):
        import torch

        self.latents = latents
        self.frame_axis = frame_axis
        self.count = latents.shape[frame_axis]
        # Noise of its own generator: drawing from the pipeline's would shift every later draw.
        generator = torch.Generator(device="cpu").manual_seed(seed)
        self.noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32).to(latents.device)
        self.anchored: torch.Tensor | None = None

    def noised(self, scheduler: Any, next_index: int) -> torch.Tensor:
        """The anchor at the noise level the loop stands at after ``next_index`` steps."""
        x0 = self.latents.float()
        timesteps = scheduler.timesteps
        if _is_flow_matching(scheduler):
            sigmas = scheduler.sigmas
            sigma = float(sigmas[next_index]) if next_index < len(sigmas) else 0.0
            return (1 - sigma) * x0 + sigma * self.noise
        if next_index >= len(timesteps):
            return x0
        return scheduler.add_noise(x0, self.noise, timesteps[next_index : next_index + 1])

    def apply(self, pipe: Any, index: int, latents: torch.Tensor) -> torch.Tensor:
        value = self.noised(pipe.scheduler, index + 1).to(latents.dtype)
        latents = latents.clone()
        latents.narrow(self.frame_axis, 0, self.count).copy_(
            value.expand_as(latents.narrow(self.frame_axis, 0, self.count))
        )
        if index + 1 >= len(pipe.scheduler.timesteps):
            self.anchored = latents.narrow(self.frame_axis, 0, self.count).clone()
        return latents

    def callback(self, then: Callable[..., dict] | None = None) -> Callable[..., dict]:
        def step_end(pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
            result = dict(then(pipe, index, timestep, tensors) if then is not None else {})
            result["latents"] = self.apply(pipe, index, tensors["latents"])
            return result

        return step_end
