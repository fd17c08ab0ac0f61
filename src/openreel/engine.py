"""The engine: one call from a VideoSpec to finished files.

    spec -> resolve (model, style, checks) -> Plan -> Runner (diffusers) -> post (exact size,
    fps, frames) -> encoder (H.264 MP4, thumbnail, spritesheet) -> recipe

Used by the CLI, the server's workers and the Python API alike. An Engine keeps its Runner, so
the last model stays loaded between calls; use one Engine per worker thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import Cancelled, SpecError
from openreel.hardware import Hardware, detect
from openreel.models.catalog import ModelCard, all_cards
from openreel.models.turbo import DRAFT_LORA, DRAFT_OF, draft_card, draft_lora
from openreel.models.weights import fingerprint, resolve_card, split_revision, weights_folder
from openreel.plan import Plan, make_plan
from openreel.provenance import Credits, sign_file
from openreel.recipe import build_recipe, write_recipe
from openreel.render.latents import LatentsFile, latents_path
from openreel.spec import VideoSpec
from openreel.styles import Style, get_style

log = logging.getLogger("openreel.engine")

if TYPE_CHECKING:
    import numpy as np

    from openreel.provenance.label import Label
    from openreel.render.audio import Audio, Timeline
    from openreel.render.runner import Runner

# Share of one variation's work spent after denoising (VAE decode, post-processing, encode).
_FINISH_SHARE = 0.15
SPRITE_COLUMNS, SPRITE_ROWS = 5, 5
STILL_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class Progress:
    fraction: float
    stage: str  # "loading", "denoising", "finishing", "done"
    step: int
    total_steps: int
    variation: int
    variations: int
    eta_seconds: float | None


@dataclass(frozen=True)
class VideoOutput:
    video: Path
    thumbnail: Path
    spritesheet: Path
    recipe: Path
    seed: int
    variation: int


@dataclass
class GenerationResult:
    spec: VideoSpec
    plan: Plan
    card: ModelCard
    outputs: list[VideoOutput] = field(default_factory=list)
    seconds: float = 0.0
    # Who made what it is made of (provenance.Credits.to_dict()): also in the recipe and manifest.
    credits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DefaultChoice:
    """What runs when no model is named, and what to tell the person about it."""

    card: ModelCard
    # The real model a person should pull: the best that fits this machine.
    best_fit: ModelCard
    # A plain sentence when the choice is a tiny model (its output is noise); else None.
    note: str | None = None


def fits(card: ModelCard, hardware: Hardware) -> bool:
    # Leave a tenth of the memory to everything else (the OS, the encoder, the page).
    return card.memory_gib <= hardware.memory_gib * 0.9


def _ranked(cards: list[ModelCard], hardware: Hardware) -> ModelCard:
    """The best of ``cards`` here: on an accelerator the highest quality; on a CPU the smallest,
    since every step of a larger model costs minutes there."""
    if not hardware.accelerated:
        return min(cards, key=lambda card: (card.memory_gib, -card.quality))
    return max(cards, key=lambda card: (card.quality, -card.memory_gib))


def default_choice(hardware: Hardware, mode: str = "t2v") -> DefaultChoice:
    """The best downloaded model that fits this machine and makes ``mode``; when none is
    downloaded, the tiny twin of the best one that fits, with a note naming the pull command."""
    from openreel.models.catalog import twin_for
    from openreel.models.weights import is_downloaded

    real = [card for card in all_cards() if not card.is_tiny and mode in card.modes]
    real = real or [card for card in all_cards() if not card.is_tiny and "t2v" in card.modes]
    fitting = [card for card in real if fits(card, hardware)]
    best_fit = _ranked(fitting or real, hardware)
    ready = [card for card in fitting if is_downloaded(card)]
    if ready:
        return DefaultChoice(_ranked(ready, hardware), best_fit)
    twin = twin_for(best_fit.id)
    note = (
        f"No downloaded model fits this machine, so openreel uses {twin.id}, a tiny test model with "
        f"random weights: its output is noise. For real video, download {best_fit.title} "
        f"({best_fit.weights_gib or best_fit.memory_gib:g} GiB) with `openreel models pull {best_fit.id}`."
    )
    return DefaultChoice(twin, best_fit, note)


def default_model(hardware: Hardware, mode: str = "t2v") -> ModelCard:
    """What runs when no model is named (``default_choice`` says why)."""
    return default_choice(hardware, mode).card


def output_paths(output: Path, variation: int) -> tuple[Path, Path, Path]:
    """video, thumbnail and spritesheet paths of one variation (1-based)."""
    stem = output.stem if variation == 1 else f"{output.stem}-{variation}"
    folder = output.parent
    return folder / f"{stem}{output.suffix or '.mp4'}", folder / f"{stem}.jpg", folder / f"{stem}.sprites.jpg"


def recipe_path(output: Path) -> Path:
    return output.with_suffix(".json")


class _ProgressClock:
    """Turns step callbacks into a job-wide fraction and an ETA from the pace so far."""

    def __init__(self, plan: Plan, report: Callable[[Progress], None] | None):
        self.plan = plan
        self.report = report
        self.variations = len(plan.seeds)
        self.unit = 1.0 / self.variations
        self.started = time.monotonic()
        self.variation = 1

    def emit(self, stage: str, within: float, step: int = 0) -> None:
        if self.report is None:
            return
        fraction = min(1.0, (self.variation - 1 + within) * self.unit)
        elapsed = time.monotonic() - self.started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0.02 else None
        self.report(Progress(fraction, stage, step, self.plan.steps, self.variation, self.variations, eta))

    def window_step(self, window: int) -> Callable[[int, int, str], None]:
        """The runner's on_step for one window: windows share the work evenly; a refinement
        pass (the 1080p model stage) takes the last quarter of its window."""
        windows = len(self.plan.windows) or 1
        refines = self.plan.upscale.method in ("v2v", "latent")

        def step(done: int, total: int, phase: str) -> None:
            part = done / max(total, 1)
            if refines:
                part = 0.75 + 0.25 * part if phase == "refining" else 0.75 * part
            self.emit(phase, (1 - _FINISH_SHARE) * (window + part) / windows, done)

        return step


class Engine:
    def __init__(self, hardware: Hardware | None = None, *, label: bool | Label | None = None):
        """``label``: lay the visible "AI-generated" label (True), not (False), or as the owner's
        default says (None: ``provenance.label.owner_default``, read at each run)."""
        self._hardware = hardware
        self._runner: Runner | None = None
        self._label = label

    @property
    def label(self) -> Label | None:
        from openreel.provenance.label import resolve

        return resolve(self._label)

    def label_for(self, spec: VideoSpec) -> Label | None:
        """The label ``spec`` lays: the one a server request decided (``spec.extra``), else ours."""
        from openreel.provenance.label import from_extra

        return from_extra(spec.extra, self.label)

    @property
    def hardware(self) -> Hardware:
        if self._hardware is None:
            self._hardware = detect()
        return self._hardware

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            from openreel.render.runner import Runner

            self._runner = Runner()
        return self._runner

    # -- deciding -------------------------------------------------------------------------

    def resolve(self, spec: VideoSpec) -> VideoSpec:
        """Validate and fill in the model, so the stored spec names exactly what will run."""
        spec = spec.validated()
        if not spec.model:
            spec = replace(spec, model=default_model(self.hardware, spec.mode).id)
        card = resolve_card(spec.model)
        if spec.quality == "draft" and DRAFT_OF not in spec.extra:
            faster, _ = draft_card(card, spec.mode)
            if faster is not None:
                # The stored spec names what runs: the distilled sibling, and what was asked of.
                spec = replace(spec, model=faster.id, extra={**spec.extra, DRAFT_OF: card.id})
                card = faster
        if spec.quality == "draft" and DRAFT_LORA not in spec.extra:
            turbo, _ = draft_lora(card)
            if turbo is not None:
                # The LoRA's own schedule: its step count and guidance, unless the person gave theirs.
                spec = replace(
                    spec,
                    loras=(*spec.loras, {"source": turbo["path"], "scale": float(turbo.get("scale", 1.0))}),
                    steps=spec.steps or turbo["steps"],
                    guidance=turbo["guidance"] if spec.guidance is None else spec.guidance,
                    extra={**spec.extra, DRAFT_LORA: turbo["source"]},
                )
        style = get_style(spec.style) if spec.style else None
        if spec.loras or (style is not None and style.loras):
            spec = replace(spec, loras=_checked_loras(spec.loras, card, style))
        if spec.image:
            from openreel.render.inputs import load_image

            load_image(spec.image, 64, 64)  # readable, not a decompression bomb
            spec = replace(spec, image=str(Path(spec.image).resolve()))
        if spec.references:
            from openreel.render.inputs import load_image

            for path in spec.references:
                load_image(path, 64, 64, param="references")
            spec = replace(spec, references=tuple(str(Path(path).resolve()) for path in spec.references))
        if spec.video:
            from openreel.render.inputs import probe_clip

            clip = probe_clip(spec.video)
            spec = replace(spec, video=str(Path(spec.video).resolve()))
            if spec.mode == "remix":
                # A remix keeps the clip's duration, on the output's frame grid.
                spec = replace(spec, seconds=max(1, round(clip.seconds * spec.fps)) / spec.fps)
            if spec.mode == "loop" and spec.seconds > clip.seconds + 1e-6:
                raise SpecError(
                    f"a loop keeps or shortens the clip: it is {clip.seconds:.2f} s, "
                    f"{spec.seconds:g} s was asked",
                    param="seconds",
                )
        if spec.video_b:
            from openreel.render.inputs import probe_clip

            probe_clip(spec.video_b)
            spec = replace(spec, video_b=str(Path(spec.video_b).resolve()))
        if spec.cards:
            spec = replace(spec, cards=tuple(_checked_card(card) for card in spec.cards))
        from openreel.safety import check_prompt

        # The owner's local policy; nothing leaves the machine and nobody else approves.
        check_prompt(spec.prompt)
        if spec.negative_prompt:
            check_prompt(spec.negative_prompt)
        return spec

    def card_and_style(self, spec: VideoSpec) -> tuple[ModelCard, Style | None]:
        return resolve_card(spec.model or default_model(self.hardware, spec.mode).id), (
            get_style(spec.style) if spec.style else None
        )

    def plan(self, spec: VideoSpec) -> Plan:
        spec = self.resolve(spec)
        card, style = self.card_and_style(spec)
        _check_sound(spec, card)
        return make_plan(spec, card, self.hardware, style)

    # -- making ---------------------------------------------------------------------------

    def _prepare(
        self, spec: VideoSpec, on_progress: Callable[[Progress], None] | None, mode: str | None = None
    ) -> tuple[VideoSpec, ModelCard, Plan, _ProgressClock, Path, dict[str, Any], Credits]:
        """Everything a run needs before the model runs: the resolved spec (with its first seed,
        so a recipe replays the same seeds), card, plan, progress clock, weights and credits."""
        from openreel.plan import check_mode

        spec = self.resolve(spec)
        card, style = self.card_and_style(spec)
        if mode is not None:
            check_mode(card, mode)
        _check_sound(spec, card)
        plan = make_plan(spec, card, self.hardware, style)
        # The stored spec names the model plainly: its revision goes into the model record (and a
        # replay pins it from there), so a recipe's replay hashes to the same watermark id.
        spec = replace(spec, seed=plan.seeds[0], model=_plain_model(spec.model))
        clock = _ProgressClock(plan, on_progress)
        clock.emit("loading", 0.0)
        folder = weights_folder(card)
        model = model_record(card, folder)
        return (
            spec,
            card,
            plan,
            clock,
            folder,
            model,
            Credits.from_card(card, style, revision=model["revision"], loras=_lora_credits(spec)),
        )

    def generate(
        self,
        spec: VideoSpec,
        output: Path,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        video_id: str | None = None,
        resume: bool = False,
    ) -> GenerationResult:
        """Make every variation of ``spec``; variation 1 at ``output``, later ones at
        ``<stem>-N.mp4``. Each file appears only when whole; the recipe is rewritten after each
        variation, so a stop after variation 1 keeps a finished, replayable video.

        ``video_id`` goes into the invisible watermark (the server passes its job id); by default
        it is derived from the recipe, so replaying a recipe gives the very same frames.

        ``resume``: an earlier run of this spec at ``output`` stopped (a server job whose worker
        died): the variations its recipe lists as finished are kept, and one whose latents were
        saved before its decode is decoded from them instead of denoised again."""
        started = time.monotonic()
        output = Path(output)
        _check_writable(output)
        spec, card, plan, clock, folder, model, credit = self._prepare(spec, on_progress)
        result = GenerationResult(spec=spec, plan=plan, card=card, credits=credit.to_dict())
        done: list[dict[str, Any]] = _recorded_variations(recipe_path(output), spec, 0) if resume else []
        for index, seed in enumerate(plan.seeds, start=1):
            clock.variation = index
            video, thumbnail, sprites = output_paths(output, index)
            finished = next((entry for entry in done if entry.get("variation") == index), None)
            if finished is not None and finished.get("seed") == seed and video.is_file():
                kept = VideoOutput(video, thumbnail, sprites, recipe_path(output), seed, index)
                result.outputs.append(kept)
                continue
            done[:] = [entry for entry in done if entry.get("variation") != index]
            header = _latents_header(spec, plan, model, index, seed, output)
            latents = _resumable(latents_path(video), header) if resume else None
            latents = latents or LatentsFile(latents_path(video), header)
            result.outputs.append(
                self._variation(
                    card, folder, plan, spec, model, credit, output, index, latents, clock, should_cancel,
                    video_id, done,
                )
            )  # fmt: skip
        result.seconds = time.monotonic() - started
        if on_progress is not None:
            on_progress(Progress(1.0, "done", plan.steps, plan.steps, len(plan.seeds), len(plan.seeds), 0.0))
        return result

    def resume(
        self,
        latents: Path,
        output: Path | None = None,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        video_id: str | None = None,
    ) -> GenerationResult:
        """Finish a variation from its saved latents (``<video>.latents.pt``, written before each
        VAE decode) without denoising again: windows the file holds whole are only decoded, any
        later ones are made as planned. The run is planned again from the file's spec and must
        come out the same (same model weights, same plan), else a LatentsError says why.

        ``output``: the base output (variation 1's path), by default the one the run had. A server
        job that died after denoising calls this with its own output and ``video_id``."""
        from openreel.render.latents import LatentsError, plan_identity, read_latents

        started = time.monotonic()
        saved = read_latents(Path(latents))
        header = saved.header
        try:
            spec = VideoSpec.from_dict(header["spec"])
        except (SpecError, TypeError) as exc:
            raise LatentsError(f"{latents} holds an invalid spec: {exc}", param="resume") from None
        output = Path(output or header.get("output") or Path(latents).with_suffix("").with_suffix(".mp4"))
        _check_writable(output)
        spec, card, plan, clock, folder, model, credit = self._prepare(spec, on_progress)
        index, seed = int(header["variation"]), int(header["seed"])
        if plan_identity(plan) != header["plan_identity"] or plan.seeds[index - 1 : index] != (seed,):
            raise LatentsError(
                f"{latents} was made by another plan than this openreel plans for its spec now "
                "(a changed model card, style or openreel version): make the video again",
                param="resume",
            )
        if model.get("revision") != header["model"].get("revision") or model.get("fingerprint") != header[
            "model"
        ].get("fingerprint"):
            raise LatentsError(
                f"{latents} was made with other weights of {card.id} than those on this machine "
                f"({header['model'].get('revision') or header['model'].get('fingerprint')})",
                param="resume",
            )
        # The file keeps being the run's latents file: a resume that fails again loses nothing.
        saved.path, saved.resumed = Path(latents), True
        clock.variation = index
        result = GenerationResult(spec=spec, plan=plan, card=card, credits=credit.to_dict())
        done = _recorded_variations(recipe_path(output), spec, index)
        result.outputs.append(
            self._variation(
                card, folder, plan, spec, model, credit, output, index, saved, clock, should_cancel,
                video_id, done,
            )
        )  # fmt: skip
        result.seconds = time.monotonic() - started
        if on_progress is not None:
            on_progress(Progress(1.0, "done", plan.steps, plan.steps, index, len(plan.seeds), 0.0))
        return result

    def _variation(
        self,
        card: ModelCard,
        folder: Path,
        plan: Plan,
        spec: VideoSpec,
        model: dict[str, Any],
        credit: Credits,
        output: Path,
        index: int,
        latents: LatentsFile,
        clock: _ProgressClock,
        should_cancel: Callable[[], bool] | None,
        video_id: str | None,
        done: list[dict[str, Any]],
    ) -> VideoOutput:
        """Make, finish, sign and record variation ``index``; its latents file goes once the
        video is whole."""
        seed = plan.seeds[index - 1]
        video, thumbnail, sprites = output_paths(output, index)
        mark = _video_id(spec, model, seed) if video_id is None else f"{video_id}/{index}"
        payload, label = _payload(mark), self.label_for(spec)
        # The new part's sound, filled as the model makes it; None for a silent video.
        sound = _new_sound(spec, card, plan)
        with self.runner.adapters(card, folder, plan, self._loras(spec)):
            frames = self._new_frames(card, folder, plan, seed, clock, should_cancel, latents, sound)
            self._finish(frames, plan, video, thumbnail, sprites, should_cancel, payload, label, sound)
        clock.emit("finishing", 1 - _FINISH_SHARE / 2, plan.steps)
        # Derived outputs say so: edited, with the source clip (or image) as an ingredient.
        # (An image-to-video output is a creation: its image is named in the recipe.)
        sources = [spec.video, spec.video_b, *(card.get("video") for card in spec.cards)]
        parents = [Path(source) for source in sources if source]
        action = "c2pa.edited" if parents else "c2pa.created"
        shown = label.to_dict() if label is not None else None
        # The payload is handed over, not read back (a decode); the sheet's small tiles carry none.
        for path, carried in ((video, payload), (thumbnail, payload), (sprites, b"")):
            sign_file(
                path, credits=credit, prompt=spec.prompt, action=action, parents=parents,
                watermark=carried, label=shown,
            )  # fmt: skip
        entry = {
            "variation": index,
            "seed": seed,
            "video": video.name,
            "thumbnail": thumbnail.name,
            "spritesheet": sprites.name,
            "watermark_id": mark,
        }
        if label is not None:
            entry["label"] = label.to_dict()
        fallbacks = self.runner.decode_fallbacks
        if fallbacks:
            entry["decode_fallbacks"] = fallbacks
        if latents.resumed:
            entry["resumed_from_latents"] = True
        done.append(entry)
        done.sort(key=lambda item: item["variation"])
        recipe = write_recipe(recipe_path(output), build_recipe(spec, plan, model, done, credit.to_dict()))
        latents.path.unlink(missing_ok=True)
        clock.emit("finishing", 1.0, plan.steps)
        return VideoOutput(video, thumbnail, sprites, recipe, seed, index)

    def still(
        self,
        spec: VideoSpec,
        output: Path,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """One image from the prompt: a one-frame plan through the same runner, written as PNG,
        JPEG or WebP by ``output``'s suffix, watermarked and signed, with its recipe beside it."""
        started = time.monotonic()
        output = Path(output)
        _check_writable(output, suffixes=STILL_SUFFIXES)
        one_frame = replace(spec, seconds=1 / spec.fps, variations=1)
        spec, card, plan, clock, folder, model, credit = self._prepare(one_frame, on_progress, mode="still")

        from openreel.atomic import atomic_path
        from openreel.provenance import watermark_frames
        from openreel.provenance.label import label_frames
        from openreel.render.post import conform

        with self.runner.adapters(card, folder, plan, self._loras(spec)):
            frames = list(self._new_frames(card, folder, plan, plan.seeds[0], clock, should_cancel))
        (frame,) = conform(
            frames,
            src_fps=plan.native_fps,
            width=plan.out_width,
            height=plan.out_height,
            fps=plan.out_fps,
            num_frames=1,
        )
        mark = _video_id(spec, model, plan.seeds[0])
        payload, label = _payload(mark), self.label_for(spec)
        (frame,) = watermark_frames(label_frames([frame], label), payload)
        from PIL import Image

        with atomic_path(output) as temp:
            Image.fromarray(frame).save(temp, quality=95)
        shown = label.to_dict() if label is not None else None
        sign_file(output, credits=credit, prompt=spec.prompt, watermark=payload, label=shown)
        done = [{"variation": 1, "seed": plan.seeds[0], "image": output.name, "watermark_id": mark}]
        if label is not None:
            done[0]["label"] = label.to_dict()
        recipe = write_recipe(
            output.with_suffix(".json"), build_recipe(spec, plan, model, done, credit.to_dict())
        )
        result = GenerationResult(
            spec=spec, plan=plan, card=card, seconds=time.monotonic() - started, credits=credit.to_dict()
        )
        result.outputs.append(VideoOutput(output, output, output, recipe, plan.seeds[0], 1))
        if on_progress is not None:
            on_progress(Progress(1.0, "done", plan.steps, plan.steps, 1, 1, 0.0))
        return result

    @staticmethod
    def _loras(spec: VideoSpec) -> list[dict[str, Any]]:
        """The LoRAs a run loads: its style's first, then the request's."""
        style = get_style(spec.style) if spec.style else None
        return [*(style.loras if style is not None else ()), *spec.loras]

    def _new_frames(
        self,
        card: ModelCard,
        folder: Path,
        plan: Plan,
        seed: int,
        clock: _ProgressClock,
        should_cancel: Callable[[], bool] | None,
        latents: LatentsFile | None = None,
        sound: Timeline | None = None,
    ) -> Iterator[np.ndarray]:
        """What the model makes for this mode, at the model stage's size, as uint8 frames; its
        sound goes on ``sound`` (seconds from the new part's first frame) when that is given."""
        from openreel.plan import overlap_frames as overlap_frames_of
        from openreel.render.inputs import clip_at, load_image
        from openreel.render.post import float_to_uint8

        first = end = None
        keyframes: list[tuple[np.ndarray, int]] = []
        if plan.mode == "i2v":
            first = load_image(plan.inputs["image"], plan.width, plan.height)
        elif plan.mode == "blend":
            size = {"width": plan.width, "height": plan.height, "fps": plan.native_fps}
            a = _exactly(clip_at(plan.inputs["video"], **size), plan.num_frames)
            b = _exactly(clip_at(plan.inputs["video_b"], **size), plan.num_frames)
            weight = _curve(plan.inputs.get("curve", "ease"), plan.num_frames)[:, None, None, None]
            if sound is not None:
                # The two clips' sounds crossfade along the same curve as their pictures.
                sound.place(0.0, _blended_sound(plan, weight[:, 0, 0, 0]))
            # The curve-weighted mix, re-made by the model so the transition is one coherent scene.
            made = self.runner.run_remix(
                card,
                folder,
                plan,
                (1 - weight) * a + weight * b,
                seed,
                on_step=clock.window_step(0),
                should_cancel=should_cancel,
                latents=latents,
            )
            return float_to_uint8(made)
        elif plan.mode == "loop":
            source = clip_at(plan.inputs["video"], width=plan.width, height=plan.height, fps=plan.native_fps)
            keep = round(plan.source_frames / plan.out_fps * plan.native_fps)
            first = source[max(0, keep - plan.windows[0].overlap) : keep]
            end = source[: plan.trailing]
        elif plan.mode == "storyboard":
            for index, kind, path in plan.keyframes:
                if kind == "image":
                    frames = load_image(path, plan.width, plan.height)
                else:
                    clip = clip_at(path, width=plan.width, height=plan.height, fps=plan.native_fps)
                    frames = clip[: overlap_frames_of(card)]
                if index == 0:
                    first = frames
                else:
                    keyframes.append((frames, index))
        elif plan.mode in ("extend", "remix"):
            source = (
                # An image remixed into an image (POST /v1/images/edits): one frame, no clip to read.
                load_image(plan.inputs["video"], plan.width, plan.height, param="image")
                if Path(plan.inputs["video"]).suffix.lower() in STILL_SUFFIXES
                else clip_at(plan.inputs["video"], width=plan.width, height=plan.height, fps=plan.native_fps)
            )
            if plan.mode == "remix":
                if sound is not None:
                    # A remix keeps the clip's timing, so it keeps the clip's sound.
                    sound.place(0.0, _clip_sound(plan.inputs["video"]))
                # The source on the model's frame grid: padded with its last frame to a valid count.
                frames = _exactly(source, plan.num_frames)
                made = self.runner.run_remix(
                    card,
                    folder,
                    plan,
                    frames,
                    seed,
                    on_step=clock.window_step(0),
                    should_cancel=should_cancel,
                    latents=latents,
                )
                return float_to_uint8(made)
            if plan.trailing:
                end = source[: plan.trailing]
            else:
                first = source[-plan.windows[0].overlap :]
        # A character's reference images, whole (fitted within the frame, not cropped).
        references = [
            load_image(path, plan.width, plan.height, contain=True, param="references")
            for path in plan.inputs.get("references", ())
        ]
        return self._model_frames(
            card,
            folder,
            plan,
            seed,
            clock,
            should_cancel,
            first=first,
            end=end,
            keyframes=keyframes,
            references=references,
            latents=latents,
            sound=sound,
        )

    def _model_frames(
        self,
        card: ModelCard,
        folder: Path,
        plan: Plan,
        seed: int,
        clock: _ProgressClock,
        should_cancel: Callable[[], bool] | None,
        *,
        first: np.ndarray | None = None,
        end: np.ndarray | None = None,
        keyframes: list[tuple[np.ndarray, int]] | None = None,
        references: list[np.ndarray] | None = None,
        latents: LatentsFile | None = None,
        sound: Timeline | None = None,
    ) -> Iterator[np.ndarray]:
        """The clip's frames as the model stage makes them, window after window, as uint8.

        ``first`` conditions the first window's opening frames (an image, or the tail of a clip
        being extended: then they are the clip's own and skipped like any overlap); ``end`` the
        last window's closing ``plan.trailing`` frames (a clip's head, extending backwards);
        ``references`` (a character's images) every window, so it looks the same throughout.

        Lazy: post-processing and the encoder pull frames while later windows are still to be
        made, so a long clip is never held whole. Each window after the first begins with frames
        conditioned on the tail of the one before; those are the previous window's own frames,
        already given, so they are skipped.
        """
        from openreel.render.post import float_to_uint8

        tail = first
        last = len(plan.windows) - 1
        for window in plan.windows:
            made = self.runner.run_window(
                card,
                folder,
                plan,
                window,
                seed,
                tail=tail,
                end=end if window.index == last else None,
                # Storyboard keyframes that fall in this window's new frames, at its own index.
                extra=[
                    (frames, index - window.start)
                    for frames, index in keyframes or ()
                    if window.start + window.overlap <= index < window.start + window.num_frames
                ],
                references=references,
                on_step=clock.window_step(window.index),
                should_cancel=should_cancel,
                latents=latents,
            )
            stop = len(made.final) - (plan.trailing if window.index == last else 0)
            if sound is not None and made.audio is not None:
                # A window's sound starts at its first frame, overlap included: where it overlaps
                # the previous window's, the two crossfade (render.audio.Timeline).
                first_new = plan.windows[0].overlap
                sound.place((window.start - first_new) / plan.native_fps, made.audio)
            yield from float_to_uint8(made.final[window.overlap : stop])
            following = plan.windows[window.index + 1] if window.index + 1 < len(plan.windows) else None
            tail = made.native[-following.overlap :] if following else None

    def _finish(
        self,
        frames: Iterator[np.ndarray],
        plan: Plan,
        video: Path,
        thumbnail: Path,
        sprites: Path,
        should_cancel: Callable[[], bool] | None,
        payload: bytes,
        label: Label | None,
        sound: Timeline | None = None,
    ) -> None:
        from openreel.provenance import watermark_frames
        from openreel.provenance.label import label_frames
        from openreel.render.encode import VideoWriter, write_spritesheet, write_thumbnail
        from openreel.render.post import conform

        conformed = conform(
            frames,
            src_fps=plan.native_fps,
            width=plan.out_width,
            height=plan.out_height,
            fps=plan.out_fps,
            num_frames=plan.out_frames,
            interpolate=plan.retime.method == "minterpolate",
        )
        total = plan.out_frames
        count = 0
        if plan.source_frames != 0:
            # The clip itself, at the output's size and fps, then the new part (or new part first,
            # extending backwards): one continuous video. A loop keeps the clip's first part.
            import itertools

            from openreel.render.inputs import clip_frames, probe_clip

            count = plan.source_frames or round(probe_clip(plan.inputs["video"]).seconds * plan.out_fps)
            source = clip_frames(
                plan.inputs["video"],
                width=plan.out_width,
                height=plan.out_height,
                fps=plan.out_fps,
                num_frames=count,
            )
            conformed = (
                itertools.chain(conformed, source) if plan.trailing else itertools.chain(source, conformed)
            )
            total += count
        # Labelled, then marked, at the final size just before encoding: nothing after resamples.
        stream = watermark_frames(label_frames(conformed, label), payload)
        sample = _sprite_indices(total, SPRITE_COLUMNS * SPRITE_ROWS)
        picked: list[np.ndarray] = []
        poster: np.ndarray | None = None
        size = {"width": plan.out_width, "height": plan.out_height, "fps": plan.out_fps}
        with VideoWriter(video, **size, audio=sound is not None) as writer:
            for index, frame in enumerate(_cancellable(stream, should_cancel)):
                writer.write(frame)
                if index in sample:
                    picked.append(frame)
                if index == total // 2 or poster is None:
                    poster = frame
            if sound is not None:
                # Only now is the new part's sound whole (windows are made as frames are pulled).
                writer.audio = _final_sound(sound, plan, count)
        assert poster is not None
        write_thumbnail(poster, thumbnail)
        write_spritesheet(picked, sprites, columns=SPRITE_COLUMNS, rows=SPRITE_ROWS)


def _new_sound(spec: VideoSpec, card: ModelCard, plan: Plan) -> Timeline | None:
    """A timeline for the output's sound, or None for a silent video: sound is on by default
    where the model makes it or a source clip has it; ``spec.audio`` False turns it off."""
    if spec.audio is False:
        return None
    from openreel.render.audio import Timeline

    return Timeline() if card.makes_audio or _sources_sound(spec) else None


def _sources_sound(spec: VideoSpec) -> bool:
    """Whether a clip the spec edits (extend, loop, remix, blend) has a sound track."""
    from openreel.render.audio import has_audio

    sources = [spec.video, spec.video_b]
    return any(source and Path(source).is_file() and has_audio(source) for source in sources)


def _check_sound(spec: VideoSpec, card: ModelCard) -> None:
    """Sound asked for where there can be none is refused before anything runs."""
    if spec.audio and not card.makes_audio and not _sources_sound(spec):
        with_sound = ", ".join(c.id for c in all_cards() if c.makes_audio and not c.is_tiny)
        raise SpecError(
            f"{card.id} makes no sound{' and the clip has none' if spec.video else ''}: leave out "
            f"--audio, or choose a model that makes sound ({with_sound})",
            param="audio",
        )


def _clip_sound(path: str) -> Audio:
    from openreel.render.audio import Audio, read_audio

    return read_audio(path) or Audio.silence(0.0)


def _blended_sound(plan: Plan, weight: np.ndarray) -> Audio:
    """Blend: clip a's sound into clip b's, along the picture's curve (one weight per frame)."""
    from openreel.render.audio import crossfade

    seconds = plan.num_frames / plan.native_fps
    a = _clip_sound(plan.inputs["video"]).fit(seconds)
    b = _clip_sound(plan.inputs["video_b"]).fit(seconds)
    return crossfade(a, b, weight)


# The crossfade where a loop's bridge meets the clip's head.
LOOP_CROSSFADE_SECONDS = 0.05


def _final_sound(sound: Timeline, plan: Plan, source_count: int) -> Audio | None:
    """The whole output's sound: the new part's, and for an extension or loop the source clip's
    own sound for the clip's part (silence where a part has none), on the output's time axis."""
    from openreel.render.audio import Timeline, loop_seam

    new_seconds = plan.out_frames / plan.out_fps
    if source_count == 0:
        return sound.render(new_seconds)
    source_seconds = source_count / plan.out_fps
    whole = Timeline()
    clip = _clip_sound(plan.inputs["video"])
    source = clip.fit(source_seconds)
    # The model's sound over the clip's own frames (a forward extension's overlap, the clip's
    # head that a backward extension or loop ends on) is kept to crossfade with the clip's: the
    # new sound continues the clip's across those frames instead of starting at the join.
    lead = 0.0 if plan.trailing else plan.windows[0].overlap / plan.native_fps
    trail = plan.trailing / plan.native_fps
    new = sound.render(lead + new_seconds + trail, start=-lead)
    if plan.mode == "loop" and new is None:
        # A loop is [bridge, the clip's head]; the bridge's pictures carry on from the head's end,
        # so its sound is the clip's own from there, run a little into the head to crossfade with
        # it where the clip has sound that far (else it fades out and the head fades in, over a
        # few ms). Then the wrap (head's end -> bridge's start) is the clip's own continuous sound.
        end = min(clip.seconds, source_seconds + new_seconds + LOOP_CROSSFADE_SECONDS)
        new = clip.between(source_seconds, end) if end > source_seconds else None
    # Extending backwards puts the new part first (plan.trailing: it ends on the clip's head).
    source_at, new_at = (new_seconds, 0.0) if plan.trailing else (0.0, source_seconds - lead)
    whole.place(source_at, source)
    if new is not None:
        whole.place(new_at, new)
    track = whole.render(source_seconds + new_seconds)
    # A loop plays on into its own start: where the model made the bridge's sound, its end is
    # brought onto the first sample so the wrap has no step.
    made = plan.mode == "loop" and sound
    return loop_seam(track) if made and track is not None else track


def _checked_loras(
    loras: tuple[dict[str, Any], ...], card: ModelCard, style: Style | None
) -> tuple[dict[str, Any], ...]:
    """Every LoRA of the run checked against the card's family before anything loads; the
    request's local files made absolute (so a recipe replays them from anywhere)."""
    from openreel.models.lora import check_fits

    for lora in style.loras if style is not None else ():
        check_fits(lora["source"], card)
    checked = []
    for lora in loras:
        check_fits(lora["source"], card)
        given = Path(lora["source"]).expanduser()
        # Absolute, but through its links as given: a Hub cache file keeps its name (its blob's
        # is a hash), and the credit and recipe name what the person named.
        checked.append({**lora, "source": str(given.absolute()) if given.exists() else lora["source"]})
    return tuple(checked)


def _lora_credits(spec: VideoSpec) -> tuple[Any, ...]:
    from openreel.models.lora import credit

    return tuple(credit(lora["source"]) for lora in Engine._loras(spec))


def _payload(mark: str) -> bytes:
    from openreel.provenance import installation_id, make_payload

    return make_payload(installation_id(), mark)


def _latents_header(
    spec: VideoSpec, plan: Plan, model: dict[str, Any], variation: int, seed: int, output: Path
) -> dict[str, Any]:
    """What a latents file says about its run: enough to plan it again and check it is the same."""
    from openreel.render.latents import plan_identity

    return {
        "spec": spec.to_dict(),
        "model": model,
        "plan_identity": plan_identity(plan),
        "variation": variation,
        "seed": seed,
        "output": str(output.resolve()),
    }


def _resumable(path: Path, header: dict[str, Any]) -> LatentsFile | None:
    """The saved latents at ``path`` when they were made for exactly this variation (same spec,
    plan, weights and seed), else None: the variation is then made again, never failed for it."""
    from openreel.render.latents import LatentsError, read_latents

    if not path.is_file():
        return None
    try:
        saved = read_latents(path)
    except LatentsError as exc:
        log.warning("%s", exc.message)
        return None
    keys = ("spec", "model", "plan_identity", "variation", "seed")
    if any(saved.header.get(key) != header.get(key) for key in keys):
        log.warning("%s was saved for another run; making the variation again", path)
        return None
    saved.resumed = True
    return saved


def _recorded_variations(recipe: Path, spec: VideoSpec, skip: int) -> list[dict[str, Any]]:
    """The other variations an existing recipe of the same spec lists (a resumed variation joins
    them); none when there is no such recipe."""
    if not recipe.is_file():
        return []
    try:
        data = json.loads(recipe.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("spec") != spec.to_dict():
        return []
    return [v for v in data.get("variations", []) if isinstance(v, dict) and v.get("variation") != skip]


def _cancellable(
    frames: Iterator[np.ndarray], should_cancel: Callable[[], bool] | None
) -> Iterator[np.ndarray]:
    for index, frame in enumerate(frames):
        if should_cancel is not None and index % 8 == 0 and should_cancel():
            raise Cancelled("cancelled")
        yield frame


def _sprite_indices(total: int, tiles: int) -> set[int]:
    if total <= tiles:
        return set(range(total))
    return {round(i * (total - 1) / (tiles - 1)) for i in range(tiles)}


def _checked_card(card: dict[str, Any]) -> dict[str, Any]:
    """A storyboard card with its image or video checked by content and its path made absolute."""
    from openreel.render.inputs import load_image, probe_clip

    card = dict(card)
    if card.get("image"):
        load_image(card["image"], 64, 64)
        card["image"] = str(Path(card["image"]).resolve())
    if card.get("video"):
        probe_clip(card["video"])
        card["video"] = str(Path(card["video"]).resolve())
    return card


def _exactly(frames: np.ndarray, count: int) -> np.ndarray:
    """``count`` frames: trimmed, or padded by holding the last one."""
    import numpy as np

    if len(frames) >= count:
        return frames[:count]
    return np.concatenate([frames, np.repeat(frames[-1:], count - len(frames), 0)])


def _curve(name: str, count: int) -> np.ndarray:
    """The blend's influence of the second clip over ``count`` frames, 0 -> 1."""
    import numpy as np

    t = np.linspace(0.0, 1.0, count, dtype=np.float32)
    shapes = {
        "linear": t,
        "ease": t * t * (3 - 2 * t),  # smoothstep: slow out of A, slow into B
        "ease-in": t * t,
        "ease-out": 1 - (1 - t) ** 2,
    }
    return shapes[name]


def _check_writable(output: Path, suffixes: tuple[str, ...] = (".mp4",)) -> None:
    folder = output.parent if str(output.parent) else Path(".")
    if output.suffix.lower() not in suffixes:
        raise SpecError(f"output {output} must end in {' or '.join(suffixes)}", param="output")
    if not folder.is_dir():
        raise SpecError(f"cannot write {output}: folder {folder} does not exist", param="output")
    import os

    if not os.access(folder, os.W_OK):
        raise SpecError(f"cannot write {output}: folder {folder} is not writable", param="output")
    if output.is_dir():
        raise SpecError(f"cannot write {output}: it is a folder", param="output")


# How many GPUs ran it neither (context parallelism gives the same frames).
_UNMARKED = frozenset({"memory", "gpus"})


def _video_id(spec: VideoSpec, model: dict[str, Any], seed: int) -> str:
    """A stable id for what a recipe makes: the same recipe and seed name the same video."""
    # How the model fit in memory is not what the video is: the same recipe in any memory mode
    # (and recipes older than the field) keep one id.
    data = {k: v for k, v in spec.to_dict().items() if k not in _UNMARKED}
    if data.get("quality") == "standard":
        del data["quality"]  # recipes older than the field keep their id
    if not data.get("loras"):
        data.pop("loras", None)  # likewise for runs without LoRAs
    recipe = json.dumps({"spec": data, "model": model, "seed": seed}, sort_keys=True)
    return hashlib.sha256(recipe.encode()).hexdigest()[:20]


def model_record(card: ModelCard, folder: Path) -> dict[str, Any]:
    """What the recipe says about the weights. A hub model's ``revision`` is the commit the Hugging
    Face cache resolved (its snapshot folder's name), which a replay loads again; weights without
    a commit (tiny builds, local folders) get a ``fingerprint`` of their configuration instead."""
    record: dict[str, Any] = {
        "id": card.id,
        "family": card.family,
        "source": card.source,
        "revision": card.revision,
        "licence": card.licence,
    }
    if card.hub_repo and folder.parent.name == "snapshots":
        record["revision"] = folder.name
    elif not card.hub_repo:
        record["revision"] = None  # no hub commit: tiny builds and local folders have none
        record["fingerprint"] = fingerprint(folder)
    return record


def _plain_model(model: str | None) -> str | None:
    """The spec's model without a pinned revision (``ID@REVISION`` -> ``ID``); folders unchanged."""
    if model is None or Path(model).expanduser().is_dir():
        return model
    return split_revision(model)[0]
