"""Frames in and out of the pipelines: float frames as PIL images (what diffusers' video inputs
take) and as VAE input, and the VAE's most likely latents for them.

Conditioning a window on frames it must begin with (the tail of the window before) is done by the
families: LTX-Video and the dedicated image-to-video checkpoints take frames natively, the others
by latent anchoring (``openreel.models.anchoring``).

The causal VAEs of these families encode a clip of 1 + k * frame_step frames into 1 + k latent
frames whose first one holds the first frame alone, just like the start of a new window; that
is why windows overlap by 1 + k * frame_step frames (``plan.overlap_frames``).
"""

from __future__ import annotations

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
