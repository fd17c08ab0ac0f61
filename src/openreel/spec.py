"""VideoSpec: what a person asked for, validated once at the edge.

Sizes live here and nowhere else: named resolutions and aspect ratios resolve to an exact
output width x height. Whether a model can make it (length, modes) is the Planner's question,
because it needs the model card.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from openreel.errors import SpecError

RESOLUTIONS: dict[str, int] = {"480p": 480, "720p": 720, "1080p": 1080}
ASPECTS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
# The sizes OpenAI's Videos API accepted (sora-2 and sora-2-pro); all are valid here too.
SORA_SIZES = ("1280x720", "720x1280", "1792x1024", "1024x1792")
# t2v: text to video; i2v: starts from ``image``; remix: re-renders ``video`` with a new prompt
# at ``strength``; extend: continues ``video`` (forwards, or backwards with ``backward``).
# loop: ``video`` made to loop seamlessly (its end generated to lead into its start); blend:
# ``video`` into ``video_b`` along an influence ``curve``; storyboard: ``cards`` (text, image or
# video at times) become one clip.
MODES = ("t2v", "i2v", "remix", "extend", "loop", "blend", "storyboard")
CURVES = ("linear", "ease", "ease-in", "ease-out")
# Sora's named remix strengths: how much of the denoising schedule is re-run over the source.
REMIX_STRENGTHS = {"subtle": 0.3, "mild": 0.5, "strong": 0.75}
MEMORY_MODES = ("auto", "fast", "low")
QUALITIES = ("draft", "standard", "final")
MIN_SIDE, MAX_SIDE = 64, 3840
MIN_FPS, MAX_FPS = 1, 60
MAX_VARIATIONS = 4
# Reference images of a character: each is a few latent frames more for the model to denoise.
MAX_REFERENCES = 4
DEFAULT_SECONDS = 4.0
DEFAULT_FPS = 24
DEFAULT_RESOLUTION = "480p"
DEFAULT_ASPECT = "16:9"
_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def size_for(resolution: str, aspect: str) -> tuple[int, int]:
    """The exact output size for a named resolution and aspect ratio.

    The short side is the resolution's height; the long side follows the aspect ratio, rounded to
    an even number because yuv420p needs even sides (480p 16:9 -> 854x480, 1080p 9:16 -> 1080x1920).
    """
    if resolution not in RESOLUTIONS:
        raise SpecError(
            f"unknown resolution {resolution!r}; choose one of {', '.join(RESOLUTIONS)}", param="resolution"
        )
    if aspect not in ASPECTS:
        raise SpecError(
            f"unknown aspect ratio {aspect!r}; choose one of {', '.join(ASPECTS)}", param="aspect"
        )
    short = RESOLUTIONS[resolution]
    a, b = ASPECTS[aspect]
    long = 2 * round(short * max(a, b) / min(a, b) / 2)
    return (long, short) if a >= b else (short, long)


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``WIDTHxHEIGHT`` and check it can be encoded."""
    match = _SIZE_RE.match(str(text))
    if not match:
        raise SpecError(
            f"size {text!r} is not WIDTHxHEIGHT; for example {', '.join(SORA_SIZES)}", param="size"
        )
    width, height = int(match.group(1)), int(match.group(2))
    check_size(width, height)
    return width, height


def check_size(width: int, height: int) -> None:
    for name, value in (("width", width), ("height", height)):
        if not MIN_SIDE <= value <= MAX_SIDE:
            raise SpecError(f"{name} {value} is outside {MIN_SIDE}..{MAX_SIDE} pixels", param="size")
        if value % 2:
            raise SpecError(f"{name} {value} must be even (H.264 yuv420p needs even sides)", param="size")
    if max(width, height) / min(width, height) > 4:
        raise SpecError(f"size {width}x{height} is more elongated than 4:1", param="size")


@dataclass(frozen=True)
class VideoSpec:
    """One request to make video. Immutable; ``validated()`` returns a checked, complete copy."""

    prompt: str
    model: str | None = None
    negative_prompt: str | None = None
    style: str | None = None
    seconds: float = DEFAULT_SECONDS
    fps: int = DEFAULT_FPS
    width: int = 854
    height: int = 480
    seed: int | None = None
    variations: int = 1
    steps: int | None = None
    guidance: float | None = None
    mode: str = "t2v"
    # Prompt changes over a long clip: (start second, prompt) pairs after the opening prompt.
    prompt_schedule: tuple[tuple[float, str], ...] = ()
    # Inputs of the editing modes: paths on this machine, checked by content in the engine.
    image: str | None = None
    video: str | None = None
    strength: float | None = None
    backward: bool = False
    video_b: str | None = None
    curve: str | None = None
    # Storyboard cards: {"at": seconds, and one of "text": prompt, "image": path, "video": path}.
    cards: tuple[dict[str, Any], ...] = ()
    # Reference images of a character (paths), for models that take them ("references" mode on
    # the card: Wan VACE); with t2v, i2v or extend.
    references: tuple[str, ...] = ()
    # How the model fits the device (plan.plan_memory): auto, fast or low. Frames are the same
    # in every mode but low's and auto's float8 storage (said in the plan when chosen).
    memory: str = "auto"
    # draft (turbo: fewer steps, cached transformer blocks), standard, or final (more steps).
    quality: str = "standard"
    # LoRAs on the model: {"source": file or hub id, "scale": float}, loaded for this run only.
    loras: tuple[dict[str, Any], ...] = ()
    # A sound track: None = the model's default (on where the model makes sound, as with Sora 2),
    # True = sound wanted (refused by a model that makes none), False = a silent video.
    audio: bool | None = None
    # GPUs one run spreads over by context parallelism (render.parallel): None = decided by the
    # plan (every GPU that helps, for the families that can, when the clip is large), 1 = off.
    gpus: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def num_frames(self) -> int:
        """Frames in the finished video: seconds x fps, exactly."""
        return round(self.seconds * self.fps)

    def validated(self) -> VideoSpec:
        prompt = (self.prompt or "").strip()
        if not prompt:
            raise SpecError("the prompt is empty; describe the video you want", param="prompt")
        if len(prompt) > 4000:
            raise SpecError(f"the prompt has {len(prompt)} characters; the limit is 4000", param="prompt")
        if self.mode not in MODES:
            raise SpecError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}", param="mode")
        seconds = _number(self.seconds, "seconds")
        if not math.isfinite(seconds) or seconds <= 0:
            raise SpecError(f"seconds must be more than 0 (got {self.seconds})", param="seconds")
        fps = _integer(self.fps, "fps")
        if not MIN_FPS <= fps <= MAX_FPS:
            raise SpecError(f"fps must be between {MIN_FPS} and {MAX_FPS} (got {fps})", param="fps")
        if round(seconds * fps) < 1:
            raise SpecError(f"{seconds} s at {fps} fps is less than one frame", param="seconds")
        check_size(_integer(self.width, "width"), _integer(self.height, "height"))
        variations = _integer(self.variations, "variations")
        if not 1 <= variations <= MAX_VARIATIONS:
            raise SpecError(
                f"variations must be between 1 and {MAX_VARIATIONS} (got {variations})", param="variations"
            )
        seed = self.seed
        if seed is not None:
            seed = _integer(seed, "seed")
            if not 0 <= seed < 2**63:
                raise SpecError(f"seed must be between 0 and 2^63-1 (got {seed})", param="seed")
        steps = self.steps
        if steps is not None:
            steps = _integer(steps, "steps")
            if not 1 <= steps <= 500:
                raise SpecError(f"steps must be between 1 and 500 (got {steps})", param="steps")
        guidance = self.guidance
        if guidance is not None:
            guidance = _number(guidance, "guidance")
            if not 0 <= guidance <= 30:
                raise SpecError(f"guidance must be between 0 and 30 (got {guidance})", param="guidance")
        negative = self.negative_prompt.strip() if self.negative_prompt else None
        schedule = _check_schedule(self.prompt_schedule, seconds)
        strength = _check_mode_inputs(self)
        if self.memory not in MEMORY_MODES:
            modes = ", ".join(MEMORY_MODES)
            raise SpecError(f"unknown memory mode {self.memory!r}; choose one of {modes}", param="memory")
        if self.quality not in QUALITIES:
            choices = ", ".join(QUALITIES)
            raise SpecError(f"unknown quality {self.quality!r}; choose one of {choices}", param="quality")
        if self.audio is not None and not isinstance(self.audio, bool):
            raise SpecError(f"audio must be true or false (got {self.audio!r})", param="audio")
        gpus = self.gpus
        if gpus is not None:
            gpus = _integer(gpus, "gpus")
            if not 1 <= gpus <= 64:
                raise SpecError(f"gpus must be between 1 and 64 (got {gpus})", param="gpus")
        from openreel.models.lora import check_entries

        loras = check_entries(self.loras)
        return replace(
            self,
            prompt=prompt,
            loras=loras,
            negative_prompt=negative or None,
            seconds=seconds,
            fps=fps,
            variations=variations,
            seed=seed,
            steps=steps,
            guidance=guidance,
            gpus=gpus,
            prompt_schedule=schedule,
            strength=strength,
            cards=tuple(dict(card) for card in self.cards),
            references=tuple(str(path) for path in self.references),
            curve=self.curve or ("ease" if self.mode == "blend" else None),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown field(s) {', '.join(unknown)}", param=unknown[0])
        return cls(**data)


def parse_strength(value: str | float) -> float:
    """A remix strength: a preset name (subtle, mild, strong) or a number in (0, 1]."""
    if isinstance(value, str) and value.strip().lower() in REMIX_STRENGTHS:
        return REMIX_STRENGTHS[value.strip().lower()]
    try:
        strength = float(value)
    except (TypeError, ValueError):
        raise SpecError(
            f"strength {value!r} is not one of {', '.join(REMIX_STRENGTHS)} or a number in (0, 1]",
            param="strength",
        ) from None
    if not 0 < strength <= 1:
        raise SpecError(f"strength must be in (0, 1] (got {strength:g})", param="strength")
    return strength


def _check_mode_inputs(spec: VideoSpec) -> float | None:
    """The inputs each mode needs, and only those; returns the checked strength."""
    needs = {
        "i2v": {"image"},
        "remix": {"video"},
        "extend": {"video"},
        "loop": {"video"},
        "blend": {"video", "video_b"},
    }.get(spec.mode, set())
    for name in ("image", "video", "video_b"):
        if name in needs and not getattr(spec, name):
            raise SpecError(f"{spec.mode} needs an input {name.replace('_b', ' b')}", param=name)
        if getattr(spec, name) and name not in needs:
            raise SpecError(f"{spec.mode} takes no input {name.replace('_b', ' b')}", param=name)
    if spec.backward and spec.mode != "extend":
        raise SpecError("backward only applies to extend", param="backward")
    if spec.curve is not None and (spec.mode != "blend" or spec.curve not in CURVES):
        raise SpecError(f"curve applies to blend and is one of {', '.join(CURVES)}", param="curve")
    if spec.references:
        if isinstance(spec.references, str) or not all(
            isinstance(path, str) and path for path in spec.references
        ):
            raise SpecError("references is a list of image paths", param="references")
        if len(spec.references) > MAX_REFERENCES:
            raise SpecError(
                f"at most {MAX_REFERENCES} reference images (got {len(spec.references)})", param="references"
            )
        if spec.mode not in ("t2v", "i2v", "extend"):
            raise SpecError("reference images apply to t2v, i2v and extend", param="references")
    if spec.cards and spec.mode != "storyboard":
        raise SpecError("cards only apply to storyboard", param="cards")
    if spec.mode == "storyboard":
        _check_cards(spec.cards, spec.seconds)
    if spec.mode in ("remix", "blend"):
        return parse_strength(spec.strength if spec.strength is not None else "mild")
    if spec.strength is not None:
        raise SpecError("strength only applies to remix and blend", param="strength")
    return None


def _check_cards(cards: Any, seconds: float) -> None:
    if not cards:
        raise SpecError("a storyboard needs at least one card", param="cards")
    last = -1.0
    for number, card in enumerate(cards, start=1):
        if not isinstance(card, dict):
            raise SpecError(f"card {number} is not a table with 'at' and text, image or video", param="cards")
        kinds = [kind for kind in ("text", "image", "video") if card.get(kind)]
        if len(kinds) != 1 or set(card) - {"at", "text", "image", "video"}:
            raise SpecError(
                f"card {number} needs exactly one of text, image or video (and 'at')", param="cards"
            )
        at = _number(card.get("at", 0), "cards")
        if not 0 <= at < seconds:
            raise SpecError(
                f"card {number} at {at:g} s is outside the board (0-{seconds:g} s)", param="cards"
            )
        if at < last:
            raise SpecError("cards must be in time order", param="cards")
        last = at
    if not any(card.get("text") for card in cards):
        raise SpecError("a storyboard needs at least one text card to say what happens", param="cards")


def parse_schedule_entry(text: str) -> tuple[float, str]:
    """``"5:the kite flies higher"`` -> (5.0, "the kite flies higher")."""
    start, sep, prompt = str(text).partition(":")
    if not sep:
        raise SpecError(
            f'{text!r} is not SECONDS:PROMPT, e.g. "5:the kite flies higher"', param="prompt_schedule"
        )
    return _number(start.strip(), "prompt_schedule"), prompt.strip()


def _check_schedule(entries: Any, seconds: float) -> tuple[tuple[float, str], ...]:
    checked: list[tuple[float, str]] = []
    for entry in entries or ():
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise SpecError(
                f"prompt schedule entry {entry!r} is not [seconds, prompt]", param="prompt_schedule"
            )
        start, text = _number(entry[0], "prompt_schedule"), str(entry[1]).strip()
        if not 0 < start < seconds:
            raise SpecError(
                f"prompt change at {start:g} s is outside the clip (0-{seconds:g} s)", param="prompt_schedule"
            )
        if not text:
            raise SpecError(f"the prompt change at {start:g} s is empty", param="prompt_schedule")
        if checked and start <= checked[-1][0]:
            raise SpecError("prompt changes must be in time order", param="prompt_schedule")
        checked.append((start, text))
    return tuple(checked)


def _number(value: Any, param: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{param} must be a number (got {value!r})", param=param) from None


def _integer(value: Any, param: str) -> int:
    number = _number(value, param)
    if not number.is_integer():
        raise SpecError(f"{param} must be a whole number (got {value!r})", param=param)
    return int(number)
