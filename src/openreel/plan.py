"""The Planner: VideoSpec + ModelCard + Hardware -> Plan.

Every number the pipeline will see is chosen here, openly: the generation size snapped to the
model's multiple near its native area, a frame count that obeys the card's frame rule, steps and
guidance, and what post-processing turns the raw frames into exactly the size, fps and frame
count that was asked for. The pipeline never has to adjust anything silently.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field

from openreel.errors import SpecError, UnsupportedModeError
from openreel.hardware import Hardware
from openreel.models.catalog import ModelCard, all_cards
from openreel.spec import VideoSpec
from openreel.styles import Style, apply_style


@dataclass(frozen=True)
class MemoryPlan:
    vae_tiling: bool = False
    group_offload: bool = False
    reason: str = "fits in memory"


@dataclass(frozen=True)
class Plan:
    model_id: str
    family: str
    mode: str
    # The text the pipeline sees, after the style preset is applied.
    prompt: str
    negative_prompt: str | None
    # Generation, in the model's native terms.
    width: int
    height: int
    num_frames: int
    native_fps: int
    steps: int
    guidance: float
    # One seed per variation; variation i uses seeds[i].
    seeds: tuple[int, ...]
    # The finished video.
    out_width: int
    out_height: int
    out_fps: int
    out_frames: int
    device: str
    dtype: str
    memory: MemoryPlan = field(default_factory=MemoryPlan)
    style: str | None = None
    options: dict = field(default_factory=dict)

    @property
    def needs_resize(self) -> bool:
        return (self.width, self.height) != (self.out_width, self.out_height)

    @property
    def needs_retime(self) -> bool:
        return self.native_fps != self.out_fps or self.num_frames != self.out_frames

    def to_dict(self) -> dict:
        return asdict(self)


def generation_size(card: ModelCard, out_width: int, out_height: int) -> tuple[int, int]:
    """Width x height the model generates at: the output's aspect ratio, at most the card's native
    area (post-processing upscales the rest), each side a multiple of the card's size multiple."""
    m = card.size_multiple
    area = min(out_width * out_height, card.native_area)
    aspect = out_width / out_height
    width = math.sqrt(area * aspect)
    height = width / aspect
    # Of the four neighbouring multiples, keep those within the area budget (memory and what the
    # model was trained on), then take the truest aspect ratio, then the larger picture.
    candidates = [
        (w, h)
        for w in {max(m, math.floor(width / m) * m), max(m, math.ceil(width / m) * m)}
        for h in {max(m, math.floor(height / m) * m), max(m, math.ceil(height / m) * m)}
    ]
    within = [c for c in candidates if c[0] * c[1] <= area * 1.05] or [
        min(candidates, key=lambda c: c[0] * c[1])
    ]
    return min(within, key=lambda c: (abs(math.log(c[0] / c[1] / aspect)), -c[0] * c[1]))


def new_seed() -> int:
    return random.SystemRandom().randrange(2**31)


def make_plan(spec: VideoSpec, card: ModelCard, hardware: Hardware, style: Style | None = None) -> Plan:
    """Decide everything about one run. ``spec`` must be validated; raises SpecError with the
    allowed values when this model cannot make what was asked."""
    if spec.mode not in card.modes:
        able = [c.id for c in all_cards() if spec.mode in c.modes]
        raise UnsupportedModeError(
            f"{card.id} cannot do {spec.mode}; models that can: {', '.join(able) or 'none yet'}",
            param="mode",
        )
    num_frames = card.frames_for(spec.seconds)
    if num_frames > card.max_frames:
        raise SpecError(
            f"{card.id} makes at most {card.max_seconds:.2f} s ({card.max_frames} frames at "
            f"{card.fps} fps); {spec.seconds:g} s was asked. Ask for {math.floor(card.max_seconds)} s "
            "or less, or choose a model with longer clips (`openreel models list`)",
            param="seconds",
        )
    width, height = generation_size(card, spec.width, spec.height)

    style_steps = style.steps if style else None
    style_guidance = style.guidance if style else None
    steps = spec.steps or style_steps or card.default_steps
    guidance = spec.guidance if spec.guidance is not None else card.default_guidance
    if style_guidance is not None and spec.guidance is None and not card.is_tiny:
        guidance = style_guidance
    prompt, negative = (
        apply_style(style, spec.prompt, spec.negative_prompt)
        if style
        else (spec.prompt, spec.negative_prompt)
    )

    first_seed = spec.seed if spec.seed is not None else new_seed()
    # Variations get consecutive seeds so a recipe names each one and any can be replayed alone.
    seeds = tuple((first_seed + i) % 2**63 for i in range(spec.variations))

    return Plan(
        model_id=card.id,
        family=card.family,
        mode=spec.mode,
        prompt=prompt,
        negative_prompt=negative,
        width=width,
        height=height,
        num_frames=num_frames,
        native_fps=card.fps,
        steps=steps,
        guidance=guidance,
        seeds=seeds,
        out_width=spec.width,
        out_height=spec.height,
        out_fps=spec.fps,
        out_frames=spec.num_frames,
        device=hardware.device,
        dtype=hardware.dtype,
        memory=plan_memory(card, hardware, width, height, num_frames),
        style=style.id if style else None,
        options=dict(card.options),
    )


def plan_memory(card: ModelCard, hardware: Hardware, width: int, height: int, frames: int) -> MemoryPlan:
    """Choose VAE tiling and group offloading from the card's needs scaled to this size."""
    scale = (width * height * frames) / (card.native_area * card.max_frames)
    need = card.memory_gib * max(0.5, scale)
    if need <= hardware.memory_gib * 0.9:
        return MemoryPlan()
    if need * 0.7 <= hardware.memory_gib * 0.9:
        return MemoryPlan(
            vae_tiling=True, reason=f"~{need:.0f} GiB needed, {hardware.memory_gib:.0f} free: VAE tiling"
        )
    return MemoryPlan(
        vae_tiling=True,
        group_offload=True,
        reason=f"~{need:.0f} GiB needed, {hardware.memory_gib:.0f} free: VAE tiling and group offloading",
    )
