"""ModelCard: everything openreel knows about one model, as data (the catalog lists them)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelCard:
    id: str
    family: str
    title: str
    # "hub:<owner>/<repo>" for published weights, "tiny" for the in-code random build.
    source: str
    licence: str
    licence_url: str
    authors: tuple[str, ...]
    modes: frozenset[str]
    # The size the model was trained at (landscape); the planner keeps generation near its area.
    native_width: int
    native_height: int
    fps: int
    # Valid frame counts are frame_step * k + 1 (the VAE's temporal compression), up to max_frames.
    frame_step: int
    max_frames: int
    # Width and height must be multiples of this (VAE spatial factor x transformer patch size).
    size_multiple: int
    default_steps: int
    default_guidance: float
    # Peak accelerator memory at the native size and longest clip, without offloading (GiB): for
    # real cards the weights from their reference parameter counts plus an activation estimate
    # (catalog._sized), for tiny and local cards a stated figure.
    memory_gib: float
    revision: str | None = None
    description: str = ""
    # Higher is better quality; used to choose defaults (sora-2-pro maps to the best that fits).
    quality: int = 0
    # Fewest denoising steps the pipeline accepts (Mochi's schedule divides by steps - 1).
    min_steps: int = 1
    # Longest clip made in windows, each conditioned on the tail of the one before.
    max_total_seconds: float = 20.0
    # How this family raises resolution past its native size with a model, when it can:
    # "latent" (LTX-Video's latent upsampler + a short refinement), "v2v" (upscale the frames,
    # then a low-strength video-to-video pass at the target size), None (lanczos only).
    upscaler: str | None = None
    # Transformer size, for the planner's time estimate: parameters (billions), width, depth.
    params_b: float = 1.0
    dit_width: int = 1536
    dit_depth: int = 30
    # Family-specific pipeline settings (flow shift, guidance-embedding, ...).
    options: dict = field(default_factory=dict, hash=False, compare=False)
    # A twin's real card: the tiny build is made from that card's reference configuration.
    twin_of: str | None = None
    # Of memory_gib, the weights (the rest grows with the clip's size).
    weights_gib: float = 0.0

    @property
    def is_tiny(self) -> bool:
        return self.source == "tiny"

    @property
    def makes_audio(self) -> bool:
        """Whether the model makes a sound track with its frames (LTX-2)."""
        return bool(self.options.get("audio"))

    @property
    def hub_repo(self) -> str | None:
        return self.source.removeprefix("hub:") if self.source.startswith("hub:") else None

    @property
    def max_seconds(self) -> float:
        return self.max_frames / self.fps

    @property
    def native_area(self) -> int:
        return self.native_width * self.native_height

    def valid_frames(self, n: int) -> bool:
        return n >= 1 and (n - 1) % self.frame_step == 0 and n <= self.max_frames

    def frames_for(self, seconds: float) -> int:
        """The smallest valid frame count that covers ``seconds`` at the native fps."""
        wanted = max(1, math.ceil(seconds * self.fps - 1e-9))
        return self.frame_step * math.ceil((wanted - 1) / self.frame_step) + 1
