"""Latent anchoring: holding a window's leading latent frames to given values through a denoising
loop, for the families whose text-to-video pipelines take no conditioning frames.

The given frames are encoded with the pipeline's own VAE into its normalised latent space; after
every denoising step the anchored latent frames are replaced by those latents noised to the level
the loop stands at. The transformer so sees the true context at every noise level and the frames
after it continue from it; the last step sets the anchored latents exactly (noise level zero).

Two things here depend on the model, and both are read from the pipeline rather than assumed:
- the noise level after step i, which is the scheduler's convention: flow-matching schedulers
  keep it in ``sigmas`` (Mochi 1's published scheduler stores it inverted, ``invert_sigmas=True``:
  its sigma 1.0 is the clean end), DDPM-style ones noise with ``add_noise``;
- where the anchored frames sit in the loop's latents: a family may pad latent frames in front
  (CogVideoX 1.5 pads one leading frame so the count divides its temporal patch, and drops it
  before decoding), given by the family module's ``anchor_start``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def is_flow_matching(scheduler: Any) -> bool:
    config = scheduler.config
    return (
        type(scheduler).__name__.startswith("FlowMatch")
        or config.get("prediction_type") == "flow_prediction"
        or bool(config.get("use_flow_sigmas"))
    )


def flow_noise_level(scheduler: Any, next_index: int) -> float:
    """The share of noise in the latents after ``next_index`` steps of a flow-matching loop."""
    sigmas = scheduler.sigmas
    if next_index >= len(sigmas):
        return 0.0
    sigma = float(sigmas[next_index])
    # An inverted schedule runs sigma from 0 (noise) up to 1 (clean): the level is its complement.
    return 1.0 - sigma if scheduler.config.get("invert_sigmas", False) else sigma


def noised(scheduler: Any, x0: torch.Tensor, noise: torch.Tensor, next_index: int) -> torch.Tensor:
    """``x0`` noised to the level a loop stands at after ``next_index`` steps."""
    if is_flow_matching(scheduler):
        level = flow_noise_level(scheduler, next_index)
        return (1 - level) * x0 + level * noise
    timesteps = scheduler.timesteps
    if next_index >= len(timesteps):
        return x0
    return scheduler.add_noise(x0, noise, timesteps[next_index : next_index + 1])


class LatentAnchor:
    """Holds latent frames ``start .. start + count`` of a loop's latents to given values.

    Use ``callback`` as (part of) ``callback_on_step_end``.
    """

    def __init__(self, latents: torch.Tensor, frame_axis: int, seed: int, start: int = 0):
        import torch

        self.latents = latents
        self.frame_axis = frame_axis
        self.start = start
        self.count = latents.shape[frame_axis]
        # Noise of its own generator: drawing from the pipeline's would shift every later draw.
        generator = torch.Generator(device="cpu").manual_seed(seed)
        self.noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32).to(latents.device)

    def apply(self, pipe: Any, index: int, latents: torch.Tensor) -> torch.Tensor:
        value = noised(pipe.scheduler, self.latents.float(), self.noise, index + 1).to(latents.dtype)
        latents = latents.clone()
        held = latents.narrow(self.frame_axis, self.start, self.count)
        held.copy_(value.expand_as(held))
        return latents

    def callback(self, then: Callable[..., dict] | None = None) -> Callable[..., dict]:
        def step_end(pipe: Any, index: int, timestep: Any, tensors: dict) -> dict:
            result = dict(then(pipe, index, timestep, tensors) if then is not None else {})
            result["latents"] = self.apply(pipe, index, tensors["latents"])
            return result

        return step_end
