"""The Planner: VideoSpec + ModelCard + Hardware -> Plan.

Every number the pipeline will see is chosen here, openly: the generation size snapped to the
model's multiple near its native area, a frame count that obeys the card's frame rule, steps and
guidance, and what post-processing turns the raw frames into exactly the size, fps and frame
count that was asked for. The pipeline never has to adjust anything silently.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field, replace

from openreel.errors import SpecError, UnsupportedModeError
from openreel.hardware import Hardware
from openreel.models.catalog import ModelCard, all_cards
from openreel.models.families import family_module
from openreel.render.caching import plan_cache
from openreel.spec import MEMORY_MODES, VideoSpec
from openreel.styles import Style, apply_style


@dataclass(frozen=True)
class MemoryPlan:
    """How the weights and activations fit this device (``--memory``); the runner applies it."""

    mode: str = "auto"
    vae_tiling: bool = False
    vae_slicing: bool = False
    # diffusers group offloading of every component but the VAE: "block_level" (one block on
    # the device at a time) or "leaf_level" (one layer: least memory, most transfers).
    group_offload: bool = False
    offload_type: str = "block_level"
    offload_streams: bool = False  # CUDA streams overlap the next group's transfer with compute
    offload_to_disk: bool = False  # offloaded weights on disk, not in system memory
    # Denoiser weights stored in float8 and upcast layer by layer for compute (lossy, small).
    layerwise_fp8: bool = False
    # Components whose Linear weights are stored in int8 (torchao weight-only, quantized while
    # loading): the transformer(s), and a text encoder larger than the denoiser. A module is
    # quantized or cast to float8 layer by layer, never both.
    quantize: tuple[str, ...] = ()
    reason: str = "fits in memory"


@dataclass(frozen=True)
class Window:
    """One pipeline call of a long clip. Window k > 0 starts with ``overlap`` frames conditioned
    on the last ``overlap`` frames of window k - 1; only the frames after them are new."""

    index: int
    start: int  # the clip's native frame at which this window begins (overlap included)
    num_frames: int  # frames this call generates, overlap included; valid for the card
    overlap: int
    prompt: str

    @property
    def new_frames(self) -> int:
        return self.num_frames - self.overlap


@dataclass(frozen=True)
class UpscalePlan:
    """How the native frames reach the output size."""

    method: str  # "none", "lanczos", "v2v" (refine at the larger size), "latent" (LTX upsampler)
    width: int  # size after the model stage; the final lanczos fit goes from here to the output
    height: int
    strength: float = 0.0  # how much of the schedule a refinement pass re-runs
    reason: str = ""


@dataclass(frozen=True)
class RetimePlan:
    method: str  # "none", "fps" (drop/repeat by timestamp), "minterpolate" (motion-compensated)
    reason: str = ""


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
    # How the guidance is applied when the family does it its own way (HunyuanVideo), for --dry-run.
    guidance_note: str = ""
    options: dict = field(default_factory=dict)
    windows: tuple[Window, ...] = ()
    upscale: UpscalePlan = field(default_factory=lambda: UpscalePlan("none", 0, 0))
    retime: RetimePlan = field(default_factory=lambda: RetimePlan("none"))
    estimated_seconds: float | None = None
    # Extending backwards: the last window ends with this many frames conditioned on the clip's
    # head (dropped from the output, which continues with the clip itself).
    trailing: int = 0
    # The editing modes' inputs, as given (paths, remix strength, direction, curve).
    inputs: dict = field(default_factory=dict)
    # Output frames taken from the source clip itself (at the output's size and fps): None for
    # the whole clip (extend), a count from its start (loop), 0 when the output is all new.
    source_frames: int | None = 0
    # Storyboard keyframes after the start: (native frame index, "image" or "video", path).
    keyframes: tuple[tuple[int, str, str], ...] = ()
    quality: str = "standard"
    # A diffusers cache hook on the transformer ("FirstBlockCache:0.2", "MagCache:0.06",
    # "TaylorSeer:3", "MagCache:calibrate"), or None (render.caching chooses it per family).
    cache: str | None = None
    # The measured per-step curve MagCache runs with, carried so that a recipe replays anywhere.
    cache_ratios: tuple[float, ...] = ()
    # What the quality changed, in words (the recipe and --dry-run say it).
    quality_note: str = ""
    # How a clip longer than one model call is made ("windows" or "diffusion forcing"; "" when one
    # call of the model's length covers it), and why (plan_long_clip; --dry-run says both).
    long_clip: str = ""
    long_clip_reason: str = ""
    # Diffusion forcing: the passes its one call makes (each a denoising loop of its own).
    forcing_passes: int = 0
    # Ranks (GPUs) one call is spread over by context parallelism, and why (render.parallel).
    context_parallel: int = 1
    context_parallel_reason: str = ""

    def for_window(self, window: Window) -> Plan:
        """This plan as one pipeline call sees it: the window's frames and prompt."""
        return replace(self, num_frames=window.num_frames, prompt=window.prompt, windows=(window,))

    def to_dict(self) -> dict:
        return asdict(self)


def generation_size(card: ModelCard, out_width: int, out_height: int) -> tuple[int, int]:
    """Width x height the model generates at: the output's aspect ratio, at most the card's native
    area (post-processing upscales the rest), each side a multiple of the card's size multiple."""
    if card.options.get("fixed_size"):
        # The model runs at one size only (learned position embeddings); cover-and-crop in
        # post-processing gives the output its own aspect ratio.
        return card.native_width, card.native_height
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


def overlap_frames(card: ModelCard) -> int:
    """Frames a window shares with the one before: about half a second, and 1 + k * frame_step so
    the shared frames encode to whole latent frames of the causal VAE (its first latent frame
    holds one frame, each later one frame_step frames). Image-conditioned checkpoints pin exactly
    one frame at each end of a window, so they share one."""
    if card.options.get("conditioning") == "image":
        return 1
    groups = max(1, round(0.5 * card.fps / card.frame_step))
    return 1 + groups * card.frame_step


def plan_windows(
    card: ModelCard, total: int, prompts: list[tuple[float, str]], lead: int = 0
) -> tuple[Window, ...]:
    """Cover ``total`` new native frames with windows of at most ``card.max_frames``.

    ``lead`` > 0 (extending a clip) makes the first window begin with that many frames
    conditioned on the clip's tail, exactly like every later window begins on its predecessor's.
    """

    def prompt_at(frame: int) -> str:
        seconds = max(frame, 0) / card.fps
        return [text for start, text in prompts if start <= seconds + 1e-9][-1]

    windows: list[Window] = []
    covered = 0
    while covered < total:
        overlap = overlap_frames(card) if windows else lead
        if overlap == 0:
            # ``total`` already obeys the frame rule (frames_for); a first window covers it or
            # takes the longest the model makes.
            fresh = min(total, card.max_frames)
        else:
            fresh = min(card.max_frames - overlap, total - covered)
            # The window's length must obey the frame rule: round the new part up to whole groups.
            fresh = card.frame_step * math.ceil(fresh / card.frame_step)
        windows.append(Window(len(windows), covered - overlap, overlap + fresh, overlap, prompt_at(covered)))
        covered += fresh
    return tuple(windows)


def refine_token_budget(hardware: Hardware) -> int:
    """Largest transformer sequence (latent frames x latent patches) a refinement pass may use:
    beyond it attention time and activation memory grow past what this machine does in reason."""
    if hardware.device == "cpu":
        # On a CPU the VAE decode at the refined size dominates: a 960x480 refinement of a
        # 4 s tiny Wan clip took 150 s on 2 cores. Keep CPUs to small refinements.
        return 8_000
    return int(hardware.memory_gib * 4_000)


def transformer_tokens(card: ModelCard, width: int, height: int, frames: int) -> int:
    latent_frames = (frames - 1) // card.frame_step + 1
    return latent_frames * (width // card.size_multiple) * (height // card.size_multiple)


def plan_upscale(
    card: ModelCard, hardware: Hardware, width: int, height: int, window_frames: int, out_w: int, out_h: int
) -> UpscalePlan:
    """Generate at the native size, then raise the resolution with the best means the family has
    and this machine can afford; lanczos alone only where nothing better is available."""
    if out_w * out_h <= width * height * 1.2:
        if (out_w, out_h) == (width, height):
            return UpscalePlan("none", width, height, reason="generated at the output size")
        return UpscalePlan("lanczos", width, height, reason="within 20% of the generated size")
    budget = refine_token_budget(hardware)
    m = card.size_multiple
    if card.upscaler == "latent":
        # The latent upsampler doubles each side; a refinement pass re-runs the last part of the
        # schedule: 40%, or what a distilled card's published refinement prescribes.
        up_w, up_h = width * 2, height * 2
        tokens = transformer_tokens(card, up_w, up_h, window_frames)
        if tokens <= budget:
            return UpscalePlan(
                "latent",
                up_w,
                up_h,
                float(card.options.get("refine_strength", 0.4)),
                f"LTX latent upsampler {width}x{height} -> {up_w}x{up_h}, a refinement pass, then lanczos",
            )
        reason = _over_budget(up_w, up_h, tokens, budget)
    elif card.upscaler == "v2v":
        scale = max(out_w / width, out_h / height)
        up_w, up_h = m * math.ceil(width * scale / m), m * math.ceil(height * scale / m)
        tokens = transformer_tokens(card, up_w, up_h, window_frames)
        if tokens <= budget:
            return UpscalePlan(
                "v2v",
                up_w,
                up_h,
                0.3,
                f"lanczos to {up_w}x{up_h}, then video-to-video refinement at strength 0.3",
            )
        reason = _over_budget(up_w, up_h, tokens, budget)
    else:
        reason = f"{card.family} has no video-to-video or latent upsampler pipeline in diffusers"
    return UpscalePlan("lanczos", width, height, reason=reason)


def _over_budget(width: int, height: int, tokens: int, budget: int) -> str:
    return (
        f"a refinement at {width}x{height} needs ~{tokens // 1000}k tokens, "
        f"over this machine's {budget // 1000}k"
    )


def plan_retime(native_fps: int, out_fps: int) -> RetimePlan:
    if native_fps == out_fps:
        return RetimePlan("none", "generated at the output fps")
    if out_fps > native_fps:
        return RetimePlan("minterpolate", f"motion-compensated interpolation {native_fps} -> {out_fps} fps")
    return RetimePlan("fps", f"frames dropped by timestamp {native_fps} -> {out_fps} fps")


def throughput_flops(hardware: Hardware) -> float:
    """Sustained dense FLOP/s a diffusion transformer gets here: a rough planning figure."""
    name = hardware.name.upper()
    if hardware.device == "cuda":
        for marker, flops in (("H200", 450e12), ("H100", 400e12), ("A100", 150e12), ("L40", 120e12)):
            if marker in name:
                return flops
        return 60e12
    if hardware.device == "mps":
        return 8e12
    return 25e9 * max(1, hardware.cpu_threads)


def estimate_seconds(
    card: ModelCard,
    hardware: Hardware,
    steps: int,
    guidance: float,
    windows: tuple[Window, ...],
    width: int,
    height: int,
    upscale: UpscalePlan,
    out_pixels: int,
    out_frames: int,
    ranks: int = 1,
) -> float:
    """Transformer FLOPs (linear layers and attention) over every step of every window, plus the
    refinement pass and post-processing; a planning estimate, not a promise. ``ranks``: GPUs the
    transformer's work is spread over by context parallelism (CPU ranks share the same cores)."""
    passes = 2 if guidance > 1 else 1  # classifier-free guidance runs the transformer twice

    def pass_flops(w: int, h: int, frames: int) -> float:
        tokens = transformer_tokens(card, w, h, frames)
        return passes * (2 * card.params_b * 1e9 * tokens + 4 * tokens**2 * card.dit_width * card.dit_depth)

    flops = sum(steps * pass_flops(width, height, window.num_frames) for window in windows)
    if upscale.method in ("v2v", "latent"):
        refine_steps = max(1, round(steps * upscale.strength))
        flops += sum(refine_steps * pass_flops(upscale.width, upscale.height, w.num_frames) for w in windows)
    spread = ranks if hardware.device == "cuda" else 1
    # Decode, post-processing, watermark and encode: about 40 megapixels a second on a CPU core pair.
    return flops / (throughput_flops(hardware) * spread) + out_pixels * out_frames / 40e6


def plan_long_clip(
    card: ModelCard, mode: str, frames: int, windows: tuple[Window, ...], prompts: list[tuple[float, str]]
) -> tuple[str, str]:
    """How ``frames`` native frames that one model call cannot hold are made, and why.

    Windows work on every card: each window begins on the last frames of the one before, held
    there by the family's conditioning or by latent anchoring. A card with a diffusion-forcing
    pipeline (SkyReels-V2) can instead make the whole clip in one call that keeps denoising new
    frames beside a slightly re-noised history of its own last frames: what the model was trained
    to do, where anchoring imposes frames it never learnt to continue. That call takes one prompt
    and conditions on nothing given, so text-to-video with one prompt goes to diffusion forcing;
    a prompt that changes over time, or given frames to begin from, keep windows."""
    if len(windows) < 2:
        return "", ""
    forcing = card.options.get("diffusion_forcing")
    if forcing is None:
        return "windows", f"{card.id} has no diffusion-forcing pipeline"
    if mode != "t2v":
        return "windows", f"diffusion forcing here makes text-to-video only, not {mode}"
    if len(prompts) > 1:
        return "windows", "the prompt changes over time, and a diffusion-forcing call takes one prompt"
    passes = family_module(card.family).forcing_passes(card, frames)
    return "diffusion forcing", (
        f"one call of {passes} passes of {forcing['base_num_frames']} frames, each continuing the last "
        f"{forcing['overlap_history']} frames of the one before as a slightly re-noised history, as "
        f"the model was trained; not {len(windows)} windows held to each other by latent anchoring, "
        "which it was not trained for"
    )


def check_mode(card: ModelCard, mode: str) -> None:
    """A clear error naming the models that can, when this one cannot."""
    if mode not in card.modes:
        able = [c.id for c in all_cards() if mode in c.modes and not c.is_tiny]
        tiny = [c.id for c in all_cards() if mode in c.modes and c.is_tiny]
        label = {
            "extend_backward": "backward extension",
            "still": "stills",
            "references": "reference images",
        }.get(mode, mode)
        raise UnsupportedModeError(
            f"{card.id} cannot do {label}; models that can: {', '.join(able + tiny) or 'none yet'}",
            param="model",
        )


def make_plan(spec: VideoSpec, card: ModelCard, hardware: Hardware, style: Style | None = None) -> Plan:
    """Decide everything about one run. ``spec`` must be validated; raises SpecError with the
    allowed values when this model cannot make what was asked."""
    check_mode(card, "extend_backward" if spec.mode == "extend" and spec.backward else spec.mode)
    if spec.references:
        check_mode(card, "references")
    if spec.seconds > card.max_total_seconds + 1e-9:
        windows = (
            f" (in windows of {card.max_seconds:.2f} s)"
            if card.max_total_seconds > card.max_seconds + 1e-9
            else ""
        )
        raise SpecError(
            f"{card.id} makes at most {card.max_total_seconds:.3g} s{windows}; {spec.seconds:g} s was asked. "
            "Ask for less, or choose a model with longer clips (`openreel models list`)",
            param="seconds",
        )
    num_frames = card.frames_for(spec.seconds)
    width, height = generation_size(card, spec.width, spec.height)

    style_steps = style.steps if style else None
    style_guidance = style.guidance if style else None
    steps = spec.steps or style_steps or card.default_steps
    distilled = card.options.get("timesteps")
    if distilled is not None:
        # A distilled card runs the schedule it was distilled on, whose length is its step count:
        # a style's steps do not apply, and other counts are refused here, before any loading.
        if spec.steps and spec.steps != len(distilled):
            raise SpecError(
                f"{card.id} is distilled to a {len(distilled)}-step schedule and runs only that; "
                f"{spec.steps} steps were asked. Ask for {len(distilled)} steps (or leave steps out)",
                param="steps",
            )
        steps = len(distilled)
    steps, quality_changes = plan_quality(card, spec.quality, steps, explicit=bool(spec.steps))
    if steps < card.min_steps:
        raise SpecError(f"{card.id} needs at least {card.min_steps} steps (got {steps})", param="steps")
    guidance = spec.guidance if spec.guidance is not None else card.default_guidance
    if style_guidance is not None and spec.guidance is None and not card.is_tiny:
        guidance = style_guidance

    def styled(text: str) -> str:
        return apply_style(style, text, None)[0] if style else text

    prompt = styled(spec.prompt)
    negative = apply_style(style, spec.prompt, spec.negative_prompt)[1] if style else spec.negative_prompt
    # The guidance scale that runs the transformer twice a step (classifier-free guidance).
    cfg_guidance, guidance_note = guidance, ""
    family = family_module(card.family)
    if hasattr(family, "plan_negative"):
        # Guidance-distilled (HunyuanVideo): a negative prompt costs a second pass, so the family
        # says which one it applies; the plan records only that one.
        negative, guidance_note = family.plan_negative(
            spec.negative_prompt, style.negative_prompt if style else None, guidance
        )
        cfg_guidance = guidance if negative else 1.0
    schedule = [(0.0, prompt)] + [(start, styled(text)) for start, text in spec.prompt_schedule]
    if spec.mode == "storyboard":
        # Text cards steer their segments: the first from the start, each later one from its time.
        texts = [(float(c.get("at", 0)), str(c["text"])) for c in spec.cards if c.get("text")]
        schedule = [(0.0, styled(texts[0][1]))] + [(at, styled(text)) for at, text in texts[1:] if at > 0]
    lead = trailing = 0
    if spec.mode == "extend":
        # New frames only; the clip's own frames come first (or last, backwards) in the output.
        num_frames = max(1, math.ceil(spec.seconds * card.fps - 1e-9))
        if spec.backward:
            trailing = overlap_frames(card)
            fresh = card.frame_step * math.ceil(num_frames / card.frame_step)
            if fresh + trailing > card.max_frames:
                raise SpecError(
                    f"{card.id} extends backwards by at most {(card.max_frames - trailing) / card.fps:.2f} s "
                    f"at a time; {spec.seconds:g} s was asked",
                    param="seconds",
                )
        else:
            lead = overlap_frames(card)
    if spec.mode in ("remix", "blend") and num_frames > card.max_frames:
        raise SpecError(
            f"{card.id} {spec.mode}es clips of up to {card.max_seconds:.2f} s; {spec.seconds:g} s was asked",
            param="seconds",
        )
    out_frames, source_frames = spec.num_frames, 0
    if spec.mode == "extend":
        source_frames = None  # the whole clip, before the new part (after it, backwards)
    if spec.mode == "loop":
        # The clip keeps its start; its last part is re-made as a bridge that begins from the
        # kept part's tail and ends in the clip's first frames, so the end leads into the start.
        trailing = overlap_frames(card)
        bridge = max(card.frame_step, round(spec.seconds * card.fps) // 3)
        window = card.frame_step * math.ceil((bridge + 2 * trailing - 1) / card.frame_step) + 1
        window = min(window, card.max_frames)
        bridge = window - 2 * trailing
        out_frames = max(1, round(bridge / card.fps * spec.fps))
        source_frames = spec.num_frames - out_frames
        if source_frames < 1:
            raise SpecError(f"a loop needs a clip longer than {bridge / card.fps:.2f} s", param="seconds")
    keyframes: tuple[tuple[int, str, str], ...] = ()
    if spec.mode == "storyboard":
        keyframes = tuple(
            (round(float(c.get("at", 0)) * card.fps), kind, str(c[kind]))
            for c in spec.cards
            for kind in ("image", "video")
            if c.get(kind)
        )
        if any(index > 0 for index, _, _ in keyframes):
            check_mode(card, "keyframes")
    if spec.mode == "loop":
        windows = (Window(0, 0, window, trailing, schedule[0][1]),)
    elif trailing:
        windows = (Window(0, 0, fresh + trailing, 0, schedule[0][1]),)
    else:
        windows = plan_windows(card, num_frames, schedule, lead=lead)
    long_clip, long_clip_reason = plan_long_clip(card, spec.mode, num_frames, windows, schedule)
    # What one pass of the model holds: the memory and time of a call are those of its passes.
    passes = windows
    if long_clip == "diffusion forcing":
        base = card.options["diffusion_forcing"]["base_num_frames"]
        passes = tuple(
            Window(i, 0, base, 0, schedule[0][1])
            for i in range(family_module(card.family).forcing_passes(card, num_frames))
        )
        windows = (Window(0, 0, num_frames, 0, schedule[0][1]),)
    # The new frames: every window's frames after its conditioned overlap (and, extending
    # backwards, before the clip's own head that ends the window).
    num_frames = sum(w.new_frames for w in windows) - trailing

    first_seed = spec.seed if spec.seed is not None else new_seed()
    # Variations get consecutive seeds so a recipe names each one and any can be replayed alone.
    seeds = tuple((first_seed + i) % 2**63 for i in range(spec.variations))
    upscale = plan_upscale(card, hardware, width, height, passes[0].num_frames, spec.width, spec.height)
    # MagCache and TaylorSeer count steps: only where each call runs the schedule once.
    one_call = upscale.method != "latent" and long_clip != "diffusion forcing"
    cache = plan_cache(card, spec.quality, steps, one_call=one_call)
    quality_note = _quality_note(card, spec, [*quality_changes, cache.note])
    # Memory is planned for one window at the largest size the model itself runs at.
    model_w, model_h = max((width, height), (upscale.width, upscale.height), key=lambda s: s[0] * s[1])
    from openreel.render.parallel import plan_parallel, without_cache_when_parallel

    ranks, ranks_reason = plan_parallel(
        card, hardware, spec.gpus, transformer_tokens(card, model_w, model_h, passes[0].num_frames)
    )

    plan = Plan(
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
        guidance_note=guidance_note,
        seeds=seeds,
        out_width=spec.width,
        out_height=spec.height,
        out_fps=spec.fps,
        out_frames=out_frames,
        device=hardware.device,
        dtype=hardware.dtype,
        memory=plan_memory(
            card,
            hardware,
            model_w,
            model_h,
            passes[0].num_frames,
            spec.memory,
            loras=bool(spec.loras or (style is not None and style.loras)),
        ),
        style=style.id if style else None,
        options=dict(card.options),
        windows=windows,
        upscale=upscale,
        retime=plan_retime(card.fps, spec.fps),
        trailing=trailing,
        source_frames=source_frames,
        keyframes=keyframes,
        quality=spec.quality,
        cache=cache.hook,
        cache_ratios=cache.ratios,
        quality_note=quality_note,
        long_clip=long_clip,
        long_clip_reason=long_clip_reason,
        forcing_passes=len(passes) if long_clip == "diffusion forcing" else 0,
        context_parallel=ranks,
        context_parallel_reason=ranks_reason,
        inputs={
            key: value
            for key, value in (
                ("image", spec.image),
                ("video", spec.video),
                ("strength", spec.strength),
                ("backward", spec.backward),
                ("video_b", spec.video_b),
                ("curve", spec.curve),
                ("references", list(spec.references)),
            )
            if value
        },
        estimated_seconds=len(seeds)
        * estimate_seconds(
            card,
            hardware,
            steps,
            cfg_guidance,
            passes,
            width,
            height,
            upscale,
            spec.width * spec.height,
            spec.num_frames,
            ranks,
        ),
    )
    return without_cache_when_parallel(plan)


def _draft_model_note(card: ModelCard, spec: VideoSpec, note: str) -> str:
    """What draft chose of models: the distilled sibling it runs on, or the one to pull."""
    from openreel.models.turbo import DRAFT_LORA, DRAFT_OF, draft_card, draft_lora

    asked, lora = spec.extra.get(DRAFT_OF), spec.extra.get(DRAFT_LORA)
    if asked:
        return note.replace("draft: ", f"draft: {card.id}, the distilled checkpoint of {asked}; ", 1)
    if lora:
        return note.replace("draft: ", f"draft: the step-distilled LoRA {lora.split('/')[-1]}; ", 1)
    hints = [hint for hint in (draft_card(card, spec.mode)[1], draft_lora(card)[1]) if hint]
    return "; ".join([note, *hints])


def _quality_note(card: ModelCard, spec: VideoSpec, changes: list[str]) -> str:
    """What the quality changed, in words: "draft: 25 steps instead of 50; MagCache ..." (and, for
    a draft, the distilled model or LoRA it runs on, or the one that would make it faster)."""
    changes = [change for change in changes if change]
    if not changes:
        return ""
    note = f"{spec.quality}: " + "; ".join(changes)
    return _draft_model_note(card, spec, note) if spec.quality == "draft" else note


def plan_quality(card: ModelCard, quality: str, steps: int, *, explicit: bool) -> tuple[int, list[str]]:
    """(steps, what changed) for ``quality``. draft: half the steps (unless asked for a number, or
    the card is distilled to its schedule); final: 1.5x the steps; standard: as the card (or the
    user) says. The transformer cache each quality runs is render.caching's choice."""
    # Distilled to a fixed schedule (LTX-Video 13B distilled) or to few steps (HunyuanVideo 1.5's
    # step-distilled checkpoint): already the fast path, so a draft keeps the card's steps.
    distilled = card.options.get("timesteps") is not None or bool(card.options.get("step_distilled"))
    if quality == "standard":
        return steps, []
    if quality == "final":
        if explicit or distilled:
            return steps, ["the steps as asked (a distilled schedule or a given count)"]
        more = math.ceil(steps * 1.5)
        return more, [f"{more} steps instead of {steps}"]
    if explicit or distilled:
        return steps, []
    fewer = max(card.min_steps, math.ceil(steps / 2))
    return fewer, [f"{fewer} steps instead of {steps}"]


# Of a component's parameters, the share in nn.Linear weights (what int8 weight-only stores in a
# byte), measured on meta-device builds of the references: diffusion transformers >= 0.999, text
# encoders 0.815 (Wan's UMT5: its 256k-token embedding stays) to 0.999 (LTX-2's Gemma).
_LINEAR_SHARE = {"transformer": 1.0, "text_encoder": 0.8}


@dataclass(frozen=True)
class Int8Choice:
    """What int8 weight-only quantization would take on a card, and what it saves."""

    components: tuple[str, ...]
    saved_gib: float  # of the card's weights as weights_gib counts them (bf16: a byte a weight)
    available: bool  # torchao is installed

    def words(self) -> str:
        names = " and ".join(self.components)
        return f"int8 weight-only quantization of {names} (torchao, ~{self.saved_gib:.1f} GiB less)"

    def hint(self) -> str:
        return f"`pip install 'openreel[quant]'` would add {self.words().replace('torchao, ', '')}"


def int8_choice(card: ModelCard) -> Int8Choice:
    """int8 weight-only for the card's transformer(s), and for a text encoder where it is the
    large half (at least the denoiser's size: Wan 1.3B's 5.7B UMT5, CogVideoX-2B's T5). Figures
    from the full-size parameter counts (a twin's from its real card, scaled to its own weights);
    a folder without them quantizes its transformer, of a size unknown."""
    from openreel.models.reference import param_counts
    from openreel.render.quantize import available

    counts = param_counts(card.twin_of or card.id)
    transformers = [name for name in counts if name.startswith("transformer")]
    if not transformers:
        return Int8Choice(("transformer",), 0.0, available())
    denoiser = max(counts[name] for name in transformers)
    encoders = [name for name in counts if name.startswith("text_encoder") and counts[name] >= denoiser]
    chosen = (*transformers, *encoders)
    float32 = set(card.options.get("float32_components", ()))
    total = sum(count * (4 if name in float32 else 2) for name, count in counts.items())
    saved = sum(counts[name] * _LINEAR_SHARE[name.rstrip("_0123456789")] for name in chosen)
    return Int8Choice(chosen, card.weights_gib * saved / total, available())


def plan_memory(
    card: ModelCard,
    hardware: Hardware,
    width: int,
    height: int,
    frames: int,
    mode: str = "auto",
    ram_gib: float | None = None,
    *,
    loras: bool = False,
) -> MemoryPlan:
    """Choose dtype savings, offloading, quantization and VAE tiling from the card's weights (its
    full-size parameter counts) and its activations scaled to this clip, against this device's
    free memory (``ram_gib``: system memory, where offloaded weights go; on a CPU the same memory).

    fast: everything resident, or a clear error when it cannot be. low: every saving this
    device has. auto: the fewest savings that fit, each one said with its reason; lossless ones
    first, as a video model's compute per step dwarfs moving its weights. int8 weight-only
    quantization (torchao, when installed) comes in where the weights do not fit as they are:
    on a CPU, where offloading saves memory only by going to disk, and on an accelerator where
    the offloaded weights exceed system memory (instead of float8 storage, which casts without
    a scale, or disk). Without torchao the plan says what installing it would save.

    With ``loras``, offloaded weights stay in system memory: diffusers (0.42) loads a LoRA into an
    offloaded model by re-applying the hooks, which never rewrites the files of weights already
    on disk, so the run would fail (or read stale weights) at the first offloaded block. LoRAs
    load into int8 layers through peft's torchao support."""
    if mode not in MEMORY_MODES:
        modes = ", ".join(MEMORY_MODES)
        raise SpecError(f"unknown memory mode {mode!r}; choose one of {modes}", param="memory")
    free = hardware.memory_gib * 0.9
    ram = (hardware.memory_gib if hardware.device == "cpu" else ram_gib or _system_gib()) * 0.9
    scale = (width * height * frames) / (card.native_area * card.max_frames)
    weights = card.weights_gib
    activations = (card.memory_gib - weights) * max(0.5, scale)
    need = weights + activations
    have = f"~{need:.1f} GiB needed ({weights:.1f} of weights), {hardware.memory_gib:.1f} GiB free"
    cuda = hardware.device == "cuda"
    if mode == "fast":
        if need > free:
            raise SpecError(
                f"--memory fast keeps all of {card.id} on the {hardware.device}: {have}. "
                "Use --memory auto (or low) to offload, or a shorter or smaller clip",
                param="memory",
            )
        return MemoryPlan(mode, reason=f"fast: everything resident; {have}")
    int8 = int8_choice(card)
    if mode == "low":
        return _lowest(card, hardware, ram, weights, have, int8, loras=loras)
    if need <= free:
        return MemoryPlan(mode, reason=f"fits in memory: {have}")
    if need * 0.7 <= free:
        # The VAE decode of the whole clip is the peak beyond the denoiser's own.
        return MemoryPlan(mode, vae_tiling=True, reason=f"{have}: VAE tiling keeps the decode's peak down")
    if hardware.device == "cpu" and int8.available and (need - int8.saved_gib) * 0.7 <= free:
        return MemoryPlan(
            mode,
            vae_tiling=True,
            vae_slicing=True,
            quantize=int8.components,
            reason=f"{have}: {int8.words()}, VAE tiling and slicing: it fits without offloading to disk",
        )
    # Offloaded: one block of the denoiser resident (two with streams), the rest in system memory.
    block = weights / max(card.dit_depth, 1) * (2 if cuda else 1)
    leaf = activations * 0.7 + block > free
    over = weights > ram  # the offloaded weights, as they are, exceed system memory
    quantize = int8.available and over and weights - int8.saved_gib <= ram
    fp8 = cuda and over and not quantize
    disk = not quantize and weights / (2 if fp8 else 1) > ram
    if disk and loras:
        _refuse_disk_with_loras(card, weights, ram, int8)
    parts = [
        "VAE tiling and slicing",
        f"{'leaf' if leaf else 'block'}-level group offloading" + (" with CUDA streams" if cuda else ""),
    ]
    if quantize:
        parts.append(f"{int8.words()}: {weights:.0f} GiB of weights > the {ram:.0f} GiB of RAM to use")
    if fp8:
        parts.append(f"float8 weight storage ({weights:.0f} GiB of weights > {ram / 0.9:.0f} GiB of RAM)")
    if disk:
        parts.append("offloaded weights on disk (they do not fit in system memory)")
    if over and not int8.available:
        parts.append(int8.hint())
    return MemoryPlan(
        mode,
        vae_tiling=True,
        vae_slicing=True,
        group_offload=True,
        offload_type="leaf_level" if leaf else "block_level",
        offload_streams=cuda,
        offload_to_disk=disk,
        layerwise_fp8=fp8,
        quantize=int8.components if quantize else (),
        reason=f"{have}: " + ", ".join(parts),
    )


def _refuse_disk_with_loras(
    card: ModelCard, weights: float, ram: float, int8: Int8Choice | None = None
) -> None:
    fix = "Run without LoRAs, or on a machine with more memory"
    if int8 is not None and not int8.available and weights - int8.saved_gib <= ram:
        # Quantized, they would fit in memory, and LoRAs load into int8 layers.
        fix += f", or `pip install 'openreel[quant]'`: int8 weights ({weights - int8.saved_gib:.0f} GiB) fit"
    raise SpecError(
        f"{card.id} with LoRAs needs its {weights:.0f} GiB of weights in system memory (about "
        f"{ram / 0.9:.0f} GiB here): a LoRA cannot load into weights offloaded to disk. {fix}",
        param="loras",
    )


def _lowest(
    card: ModelCard,
    hardware: Hardware,
    ram: float,
    weights: float,
    have: str,
    int8: Int8Choice,
    *,
    loras: bool = False,
) -> MemoryPlan:
    """--memory low: the least device memory this device can run with, at some speed. int8
    weight-only wherever torchao is installed (in place of float8 storage); its components stay
    in memory when the rest goes to disk, as diffusers cannot write torchao's tensors to files."""
    quantize = int8.components if int8.available else ()
    int8_words = f", {int8.words()}" if quantize else ""
    hint = "" if quantize else f"; {int8.hint()}"
    # diffusers cannot write torchao's tensors to files: int8 components offload in memory.
    kept = f" but the int8 {' and '.join(quantize)}" if quantize else ""
    on_disk = f"offloaded weights on disk (all{kept})" if kept else "offloaded weights on disk"
    if hardware.device == "cpu":
        # On a CPU the weights are already in system memory: the saving left is to keep the
        # offloaded blocks on disk and load each when it runs (not with LoRAs: see plan_memory).
        where = f"to disk (all{kept})" if kept else "to disk"
        if loras:
            where = "in memory (LoRAs cannot load into weights on disk)"
        return MemoryPlan(
            "low",
            vae_tiling=True,
            vae_slicing=True,
            group_offload=True,
            offload_to_disk=not loras,
            quantize=quantize,
            reason=f"low: {have}: VAE tiling and slicing{int8_words}, block-level offloading {where}{hint}",
        )
    resident = weights - int8.saved_gib if quantize else weights
    if resident > ram and loras:
        _refuse_disk_with_loras(card, weights, ram, int8)
    cuda = hardware.device == "cuda"
    fp8 = cuda and not quantize
    return MemoryPlan(
        "low",
        vae_tiling=True,
        vae_slicing=True,
        group_offload=True,
        offload_type="leaf_level",
        offload_streams=cuda,
        offload_to_disk=resident > ram,
        layerwise_fp8=fp8,
        quantize=quantize,
        reason=(
            f"low: {have}: VAE tiling and slicing, leaf-level group offloading"
            + (" with CUDA streams" if cuda else "")
            + (", float8 weight storage" if fp8 else int8_words)
            + (f", {on_disk}" if resident > ram else "")
            + hint
        ),
    )


def _system_gib() -> float:
    from openreel.hardware import _system_available_gib

    return _system_available_gib()
