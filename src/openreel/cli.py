"""The ``openreel`` command.

Like llm, the common case needs no subcommand: ``openreel "a prompt"`` means
``openreel generate "a prompt"``. Nouns (``models``, ``styles``) are groups whose default is
``list``. Errors are one line naming the problem and what fixes it; never a traceback.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from openreel import __version__
from openreel.errors import Cancelled, OpenreelError

# No highlighting: rich colours the digits inside file names and model ids ("wan2.1-t2v-1.3b").
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class _DefaultToGenerate(TyperGroup):
    """Route ``openreel "prompt" ...`` to ``generate`` when the first word is no command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["generate", *args]
        return super().parse_args(ctx, args)


_TYPE_WORDS = {"str": "TEXT", "Path": "PATH", "int": "INTEGER", "float": "NUMBER", "bool": ""}


def _plain_help_type(original):
    """typer 0.29 shows each parameter's Python annotation in --help (``<bool>``, ``<list[Path]>``);
    a person reads click's words instead (PATH, TEXT), and a flag shows no type at all."""

    def display(self, ctx: click.Context) -> str | None:
        shown = original(self, ctx)
        found = re.fullmatch(r"<(?:list\[)?(\w+)\]?>(\.\.\.)?", shown or "")
        if not found:
            return shown
        word = _TYPE_WORDS.get(found.group(1), found.group(1).upper())
        return word or None

    return display


for _kind in (typer.core.TyperOption, typer.core.TyperArgument):
    _kind.display_type_rich = _plain_help_type(_kind.display_type_rich)


app = typer.Typer(
    cls=_DefaultToGenerate,
    help='openreel: an open video studio. `openreel "a prompt"` makes a video.',
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="The model catalog: list, pull.", invoke_without_command=True)
styles_app = typer.Typer(help="Style presets.", invoke_without_command=True)
app.add_typer(models_app, name="models")
app.add_typer(styles_app, name="styles")


character_app = typer.Typer(
    help="Characters: named reference images videos keep.", invoke_without_command=True
)
app.add_typer(character_app, name="character")


@character_app.callback()
def _character_default(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        character_list()


@character_app.command("create")
def character_create(
    images: Annotated[list[Path], typer.Argument(help="1-4 reference images (PNG, JPEG, WebP).")],
    name: Annotated[str, typer.Option("--name", help="What to call the character.")],
) -> None:
    """Keep reference images under a name; then `openreel generate ... --character NAME`.

    On a model that takes reference images (Wan VACE) the video is conditioned on all of them;
    on other image-to-video models it starts from the first."""
    from openreel.characters import create

    try:
        kept = create(name, images)
    except OpenreelError as error:
        _fail(error)
    console.print(f"[green]kept[/] {name}: {len(images)} image(s) in {kept}")


@character_app.command("list")
def character_list() -> None:
    """The characters kept on this machine."""
    from openreel.characters import all_names, images_of

    for name in all_names():
        console.print(f"{name}  ({len(images_of(name))} image(s))")


def _mount_server_commands() -> None:
    # The server's commands live with the server; importing them loads no FastAPI until run.
    from openreel.server.cli_commands import cluster_app, keys_app, serve_command

    app.command("serve")(serve_command)
    app.add_typer(keys_app, name="keys")
    app.add_typer(cluster_app, name="cluster")


def _fail(error: OpenreelError) -> None:
    err_console.print(f"[bold red]Error:[/] {escape(error.message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2 if error.status == 400 else 1)


def _version(value: bool) -> None:
    if value:
        console.print(f"openreel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """openreel: an open video studio on open video diffusion models."""


def _slug(prompt: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")
    return words[:48].rstrip("-") or "video"


def _free_output(prompt: str, suffix: str = ".mp4") -> Path:
    base = Path(_slug(prompt))
    candidate = base.with_suffix(suffix)
    number = 2
    while candidate.exists() or candidate.with_suffix(".json").exists():
        candidate = Path(f"{base}-{number}{suffix}")
        number += 1
    return candidate


# Options shared by the commands that make video, declared once.
Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Catalog id (`openreel models`) or a local diffusers folder. "
        "Default: the best model for this machine.",
    ),
]
Seconds = Annotated[float, typer.Option(help="Duration in seconds.")]
Resolution = Annotated[str | None, typer.Option(help="480p, 720p or 1080p (with --aspect). [default: 480p]")]
Aspect = Annotated[str, typer.Option(help="16:9, 9:16 or 1:1.")]
Size = Annotated[str | None, typer.Option(help="Exact WIDTHxHEIGHT, e.g. 1280x720; overrides --resolution.")]
Fps = Annotated[int | None, typer.Option(help="Frames per second of the finished video. [default: 24]")]
StyleOpt = Annotated[str | None, typer.Option("--style", "-s", help="Style preset (`openreel styles`).")]
Negative = Annotated[str | None, typer.Option("--negative", "-n", help="What the video should not show.")]
Seed = Annotated[int | None, typer.Option(help="Seed of the first variation (random if omitted).")]
Steps = Annotated[int | None, typer.Option(help="Denoising steps (default: the model's).")]
Guidance = Annotated[float | None, typer.Option(help="Guidance scale (default: the model's).")]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Output file; a recipe <name>.json is written beside it."),
]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan and make nothing.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
LabelOpt = Annotated[
    bool | None,
    typer.Option(
        "--label/--no-label",
        help='Lay a visible "AI-generated" label in a corner (default: the owner\'s, '
        "OPENREEL_LABEL or label.toml in the openreel folder).",
        show_default=False,
    ),
]

AudioOpt = Annotated[
    bool | None,
    typer.Option(
        "--audio/--no-audio",
        help="A sound track (default: on where the model makes sound, e.g. ltx-2, or the source "
        "clip has it; --no-audio makes a silent video).",
        show_default=False,
    ),
]

def _size(size: str | None, resolution: str | None, aspect: str, like: Path | None = None) -> tuple[int, int]:
    """--size, else --resolution/--aspect, else the source clip's size (its recipe's, else as
    probed), else 480p."""
    from openreel.spec import parse_size, size_for

    if size:
        return parse_size(size)
    if resolution or like is None:
        return size_for(resolution or "480p", aspect)
    made = (_clip_recipe(like) or {}).get("spec", {})
    if isinstance(made.get("width"), int) and isinstance(made.get("height"), int):
        return made["width"], made["height"]
    from openreel.render.inputs import probe_clip

    info = probe_clip(like)
    return info.width - info.width % 2, info.height - info.height % 2


def _source_fps(fps: int | None, like: Path | None) -> int:
    if fps is not None or like is None:
        return fps or 24
    made = (_clip_recipe(like) or {}).get("spec", {})
    if isinstance(made.get("fps"), int) and made["fps"] > 0:
        return made["fps"]
    from openreel.render.inputs import probe_clip

    return max(1, round(probe_clip(like).fps))


def _clip_recipe(clip: Path) -> dict | None:
    """The recipe openreel wrote beside ``clip`` (``boat.json`` for ``boat.mp4`` and for its
    variation ``boat-2.mp4``), if it is there and names this clip."""
    from openreel.errors import RecipeError
    from openreel.recipe import read_recipe

    clip = Path(clip)
    stems = [clip.stem, re.sub(r"-\d+$", "", clip.stem)]
    for stem in dict.fromkeys(stems):
        path = clip.with_name(f"{stem}.json")
        if not path.is_file():
            continue
        try:
            recipe = read_recipe(path)
        except RecipeError:
            continue
        names = {v.get("video") for v in recipe.get("variations", []) if isinstance(v, dict)}
        if clip.name in names or not names:
            return recipe
    return None


def _source_model(clip: Path, mode: str) -> str | None:
    """The model that made ``clip`` (its recipe, else its signed manifest), when that model can
    do ``mode``; else None, and the default model for ``mode`` runs."""
    recipe = _clip_recipe(clip)
    model = (recipe or {}).get("spec", {}).get("model") if recipe else _manifest_model(clip)
    if not isinstance(model, str) or not model:
        return None
    from openreel.models.weights import resolve_card

    try:
        card = resolve_card(model)
    except OpenreelError:
        return None  # a folder that moved, a model this version does not know
    return model if mode in card.modes else None


def _manifest_model(clip: Path) -> str | None:
    try:
        from openreel.provenance.c2pa import read_manifest

        report = read_manifest(clip)
    except Exception:  # noqa: BLE001 - no manifest, no c2pa: the default model runs
        return None
    for action in report.claims.get("actions", []):
        model = (action.get("parameters") or {}).get("model")
        if model:
            return model
    return None


def _make(
    spec, output: Path | None, *, quiet: bool, dry_run: bool, still: bool = False, label: bool | None = None
) -> None:
    """Plan or make ``spec``, with a progress bar, one-line errors and a clean stop on Ctrl-C.
    ``label``: lay the visible label (None: as the owner's default says)."""
    try:
        from openreel.engine import Engine

        engine = Engine(label=label)
        _say_default(engine, spec)
        if dry_run:
            _print_plan(engine.plan(spec))
            return
        target = output or _free_output(spec.prompt, ".png" if still else ".mp4")
        result = _run_with_progress(engine, spec, target, quiet, still=still)
    except OpenreelError as error:
        if isinstance(error, Cancelled):
            err_console.print("Stopped; no partial file was left.")
            raise typer.Exit(130) from None
        _fail(error)
    except KeyboardInterrupt:
        err_console.print("Stopped; no partial file was left.")
        raise typer.Exit(130) from None
    for item in result.outputs:
        console.print(f"[green]wrote[/] {item.video}  (seed {item.seed})")
    console.print(f"recipe: {result.outputs[0].recipe}")
    console.print(f"made in {_took(result.seconds)}")


def _took(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else _duration(seconds)


def _say_default(engine, spec) -> None:
    """When no model was named and none worth running is here, say so before any work starts."""
    if spec.model:
        return
    from openreel.engine import default_choice

    note = default_choice(engine.hardware, spec.mode).note
    if note:
        err_console.print(f"[yellow]Note:[/] {escape(note)}", soft_wrap=True)


@app.command()
def generate(
    prompt: Annotated[str | None, typer.Argument(help="What the video shows.", show_default=False)] = None,
    model: Model = None,
    seconds: Seconds = 4.0,
    resolution: Resolution = None,
    aspect: Aspect = "16:9",
    size: Size = None,
    fps: Fps = None,
    style: StyleOpt = None,
    negative: Negative = None,
    seed: Seed = None,
    variations: Annotated[
        int, typer.Option("--variations", "-v", help="How many videos, 1-4, each its own seed.")
    ] = 1,
    steps: Steps = None,
    guidance: Guidance = None,
    image: Annotated[
        Path | None, typer.Option("--image", "-i", help="Start from this image (image-to-video).")
    ] = None,
    character: Annotated[
        str | None,
        typer.Option("--character", "-c", help="A character (`openreel character create`) the video keeps."),
    ] = None,
    at: Annotated[
        list[str] | None,
        typer.Option("--at", help='Change the prompt at a time, "SECONDS:PROMPT"; repeat for more.'),
    ] = None,
    reference: Annotated[
        list[Path] | None,
        typer.Option(
            "--reference",
            help="A reference image of a character (models that take them, e.g. Wan VACE); repeat for more.",
        ),
    ] = None,
    output: Output = None,
    recipe: Annotated[
        Path | None, typer.Option(help="Replay a recipe JSON exactly (other options are ignored).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Finish a run from its saved latents (<video>.latents.pt) without denoising again.",
        ),
    ] = None,
    memory: Annotated[
        str,
        typer.Option(
            help="auto: the fewest memory savings that fit (--dry-run says which and why); "
            "fast: everything on the device, or an error; low: every saving (offloading, tiling).",
        ),
    ] = "auto",
    quality: Annotated[
        str,
        typer.Option(
            help="draft (turbo: fewer steps, cached transformer blocks), standard, or final (more steps).",
        ),
    ] = "standard",
    lora: Annotated[
        list[str] | None,
        typer.Option(
            "--lora",
            help="A LoRA on the model: FILE_OR_HUB_ID[:SCALE] (scale 1 by default); repeat for more.",
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option(
            help="Spread the run over N GPUs of this machine (context parallelism, Wan models); "
            "1 turns it off. By default a large clip uses every GPU that helps.",
            show_default=False,
        ),
    ] = None,
    dry_run: DryRun = False,
    label: LabelOpt = None,
    audio: AudioOpt = None,
    quiet: Quiet = False,
) -> None:
    """Make a video from a prompt (and, with --image, from a picture)."""
    from openreel.models.lora import parse_lora
    from openreel.spec import VideoSpec, parse_schedule_entry

    if resume is not None:
        _resume(resume, output, quiet=quiet)
        return
    try:
        if recipe is not None:
            from openreel.recipe import read_recipe, spec_from_recipe

            spec = spec_from_recipe(read_recipe(recipe))
        else:
            if not prompt:
                raise OpenreelError(
                    'give a prompt, e.g. openreel "a paper boat on a rainy street", or --recipe FILE'
                )
            width, height = _size(size, resolution, aspect)
            spec = VideoSpec(
                prompt=prompt,
                model=model,
                negative_prompt=negative,
                style=style,
                seconds=seconds,
                fps=_source_fps(fps, None),
                width=width,
                height=height,
                seed=seed,
                variations=variations,
                steps=steps,
                guidance=guidance,
                mode="i2v" if image else "t2v",
                image=str(image) if image else None,
                prompt_schedule=tuple(parse_schedule_entry(entry) for entry in at or ()),
                references=tuple(str(path) for path in reference or ()),
                memory=memory,
                quality=quality,
                loras=tuple(parse_lora(entry) for entry in lora or ()),
                audio=audio,
                gpus=gpus,
            )
            if character:
                spec = _with_character(spec, character)
    except OpenreelError as error:
        _fail(error)
    _make(spec, output, quiet=quiet, dry_run=dry_run, label=label)


def _resume(latents: Path, output: Path | None, *, quiet: bool) -> None:
    """Decode saved latents into the video they were denoised for (``generate --resume``)."""
    try:
        from openreel.engine import Engine

        engine = Engine()
        result = _run_with_progress(engine, latents, output, quiet, make=engine.resume)
    except OpenreelError as error:
        _fail(error)
    for item in result.outputs:
        console.print(f"[green]wrote[/] {item.video}  (seed {item.seed}, from {latents})")


def _with_character(spec, name: str):
    """The character's images as the chosen model takes them (openreel.characters.conditions)."""
    from dataclasses import replace

    from openreel.characters import conditions, images_of
    from openreel.engine import Engine

    if spec.image or spec.references:
        raise OpenreelError("give either --character or --image/--reference: both say who is in the video")
    card, _style = Engine().card_and_style(spec)
    start, references = conditions(card, images_of(name))
    return replace(spec, mode="i2v" if start else "t2v", image=start, references=references)


@app.command()
def remix(
    clip: Annotated[Path, typer.Argument(help="The video to remix.")],
    prompt: Annotated[str, typer.Argument(help="What it should show now.")],
    strength: Annotated[
        str, typer.Option(help="subtle, mild, strong, or a number in (0, 1]: how much is re-made.")
    ] = "mild",
    model: Model = None,
    resolution: Resolution = None,
    aspect: Aspect = "16:9",
    size: Size = None,
    fps: Fps = None,
    style: StyleOpt = None,
    negative: Negative = None,
    seed: Seed = None,
    steps: Steps = None,
    guidance: Guidance = None,
    output: Output = None,
    dry_run: DryRun = False,
    label: LabelOpt = None,
    audio: AudioOpt = None,
    quiet: Quiet = False,
) -> None:
    """Re-make a clip with a new prompt, keeping its layout and motion (video-to-video)."""
    from openreel.spec import VideoSpec

    try:
        width, height = _size(size, resolution, aspect, like=clip)
        spec = VideoSpec(
            prompt=prompt,
            model=model or _source_model(clip, "remix"),
            negative_prompt=negative,
            style=style,
            fps=_source_fps(fps, clip),
            width=width,
            height=height,
            seed=seed,
            steps=steps,
            guidance=guidance,
            mode="remix",
            video=str(clip),
            strength=strength,
            audio=audio,
        )
    except OpenreelError as error:
        _fail(error)
    _make(spec, output, quiet=quiet, dry_run=dry_run, label=label)


@app.command()
def extend(
    clip: Annotated[Path, typer.Argument(help="The video to continue.")],
    prompt: Annotated[str, typer.Argument(help="What happens next (or before, with --backward).")],
    seconds: Annotated[float, typer.Option(help="Seconds to add.")] = 4.0,
    backward: Annotated[bool, typer.Option("--backward", help="Add the new part before the clip.")] = False,
    model: Model = None,
    resolution: Resolution = None,
    aspect: Aspect = "16:9",
    size: Size = None,
    fps: Fps = None,
    style: StyleOpt = None,
    negative: Negative = None,
    seed: Seed = None,
    steps: Steps = None,
    guidance: Guidance = None,
    output: Output = None,
    dry_run: DryRun = False,
    label: LabelOpt = None,
    audio: AudioOpt = None,
    quiet: Quiet = False,
) -> None:
    """Continue a clip: the output is the clip plus SECONDS of new video, joined seamlessly."""
    from openreel.spec import VideoSpec

    try:
        width, height = _size(size, resolution, aspect, like=clip)
        spec = VideoSpec(
            prompt=prompt,
            model=model or _source_model(clip, "extend_backward" if backward else "extend"),
            negative_prompt=negative,
            style=style,
            seconds=seconds,
            fps=_source_fps(fps, clip),
            width=width,
            height=height,
            seed=seed,
            steps=steps,
            guidance=guidance,
            mode="extend",
            video=str(clip),
            backward=backward,
            audio=audio,
        )
    except OpenreelError as error:
        _fail(error)
    _make(spec, output, quiet=quiet, dry_run=dry_run, label=label)


@app.command()
def loop(
    clip: Annotated[Path, typer.Argument(help="The video to make loop.")],
    prompt: Annotated[str, typer.Argument(help="What the clip shows (steers the re-made end).")],
    seconds: Annotated[float | None, typer.Option(help="Length of the loop (default: the clip's).")] = None,
    model: Model = None,
    resolution: Resolution = None,
    aspect: Aspect = "16:9",
    size: Size = None,
    fps: Fps = None,
    style: StyleOpt = None,
    seed: Seed = None,
    steps: Steps = None,
    output: Output = None,
    dry_run: DryRun = False,
    label: LabelOpt = None,
    audio: AudioOpt = None,
    quiet: Quiet = False,
) -> None:
    """Make a clip loop seamlessly: its end is re-made to lead into its start (conditioned on both)."""
    from openreel.render.inputs import probe_clip
    from openreel.spec import VideoSpec

    try:
        rate = _source_fps(fps, clip)
        length = seconds if seconds is not None else round(probe_clip(clip).seconds * rate) / rate
        width, height = _size(size, resolution, aspect, like=clip)
        spec = VideoSpec(
            prompt=prompt,
            model=model or _source_model(clip, "loop"),
            style=style,
            seconds=length,
            fps=rate,
            width=width,
            height=height,
            seed=seed,
            steps=steps,
            mode="loop",
            video=str(clip),
            audio=audio,
        )
    except OpenreelError as error:
        _fail(error)
    _make(spec, output, quiet=quiet, dry_run=dry_run, label=label)


@app.command()
def blend(
    first: Annotated[Path, typer.Argument(help="The clip the blend starts as.")],
    second: Annotated[Path, typer.Argument(help="The clip it becomes.")],
    prompt: Annotated[str, typer.Argument(help="What the blend shows.")] = "a smooth transition",
    seconds: Annotated[float, typer.Option(help="Length of the blend.")] = 4.0,
    curve: Annotated[
        str, typer.Option(help="Influence of the second clip over time: linear, ease, ease-in or ease-out.")
    ] = "ease",
    strength: Annotated[
        str, typer.Option(help="How much the model re-makes the mix (as for remix).")
    ] = "mild",
    model: Model = None,
    resolution: Resolution = None,
    aspect: Aspect = "16:9",
    size: Size = None,
    fps: Fps = None,
    style: StyleOpt = None,
    seed: Seed = None,
    steps: Steps = None,
    output: Output = None,
    dry_run: DryRun = False,
    label: LabelOpt = None,
    audio: AudioOpt = None,
    quiet: Quiet = False,
) -> None:
    """Blend two clips: the first turns into the second along an influence curve, re-made as one scene."""
    from openreel.spec import VideoSpec

    try:
        width, height = _size(size, resolution, aspect, like=first)
        spec = VideoSpec(
            prompt=prompt,
            model=model or _source_model(first, "blend"),
            style=style,
            seconds=seconds,
            fps=_source_fps(fps, first),
            width=width,
            height=height,
            seed=seed,
            steps=steps,
            mode="blend",
            video=str(first),
            video_b=str(second),
            curve=curve,
            strength=strength,
            audio=audio,
        )
    except OpenreelError as error:
        _fail(error)
    _make(spec, output, quiet=quiet, dry_run=dry_run, label=label)


@app.command()
def storyboard(
    board: Annotated[Path, typer.Argument(help="A TOML storyboard: seconds, model and [[card]]s.")],
    model: Model = None,
    resolution: Resolution = None,
    aspect: Aspect = "16:9",
    size: Size = None,
    fps: Fps = None,
    style: StyleOpt = None,
    seed: Seed = None,
    steps: Steps = None,
    output: Output = None,
    dry_run: DryRun = False,
    label: LabelOpt = None,
    quiet: Quiet = False,
) -> None:
    """Render a storyboard: cards (text, image or video) placed at times become one clip.

    \b
    seconds = 8
    model = "tiny-ltx"          # optional; --model wins
    [[card]]
    at = 0
    text = "a lighthouse at dusk"
    [[card]]
    at = 4
    image = "storm.png"         # paths are relative to the board file
    """
    from openreel.spec import VideoSpec

    try:
        data = _read_board(board)
        cards = tuple(data["card"])
        width, height = _size(size, resolution or data.get("resolution"), aspect)
        spec = VideoSpec(
            prompt=next((c["text"] for c in cards if c.get("text")), ""),
            model=model or data.get("model"),
            style=style or data.get("style"),
            seconds=float(data.get("seconds", 8)),
            fps=_source_fps(fps, None),
            width=width,
            height=height,
            seed=seed,
            steps=steps,
            mode="storyboard",
            cards=cards,
        )
    except OpenreelError as error:
        _fail(error)
    _make(spec, output, quiet=quiet, dry_run=dry_run, label=label)


def _read_board(path: Path) -> dict:
    import tomllib

    from openreel.errors import SpecError

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read storyboard {path}: {exc.strerror or exc}", param="board") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"storyboard {path} is not valid TOML: {exc}", param="board") from None
    if not isinstance(data.get("card"), list) or not data["card"]:
        raise SpecError(f"storyboard {path} has no [[card]] entries", param="board")
    for card in data["card"]:
        for kind in ("image", "video"):
            if isinstance(card, dict) and card.get(kind):
                card[kind] = str((path.parent / card[kind]).resolve())
    return data


@app.command()
def still(
    prompt: Annotated[str, typer.Argument(help="What the picture shows.")],
    model: Model = None,
    resolution: Resolution = None,
    aspect: Aspect = "16:9",
    size: Size = None,
    style: StyleOpt = None,
    negative: Negative = None,
    seed: Seed = None,
    steps: Steps = None,
    guidance: Guidance = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="PNG, JPEG or WebP to write.")] = None,
    label: LabelOpt = None,
    quiet: Quiet = False,
) -> None:
    """Make a still image with a video model (one frame), signed and watermarked like videos."""
    from openreel.spec import VideoSpec

    try:
        width, height = _size(size, resolution, aspect)
        spec = VideoSpec(
            prompt=prompt,
            model=model,
            negative_prompt=negative,
            style=style,
            width=width,
            height=height,
            seed=seed,
            steps=steps,
            guidance=guidance,
        )
    except OpenreelError as error:
        _fail(error)
    _make(spec, output, quiet=quiet, dry_run=False, still=True, label=label)


@app.command()
def recut(
    clip: Annotated[Path, typer.Argument(help="The video to trim.")],
    start: Annotated[float, typer.Option(help="First second to keep.")] = 0.0,
    end: Annotated[float | None, typer.Option(help="Second to stop at (default: the end).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The trimmed MP4.")] = Path("recut.mp4"),
) -> None:
    """Trim a clip to [start, end) without new compression artefacts (lossless re-encode)."""
    from openreel.render.edit import recut as recut_clip

    try:
        written = recut_clip(clip, output, start=start, end=end)
    except OpenreelError as error:
        _fail(error)
    console.print(f"[green]wrote[/] {written}")


def _run_with_progress(engine, spec, target: Path, quiet: bool, still: bool = False, make=None):
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    make = make or (engine.still if still else engine.generate)
    if quiet:
        return make(spec, target)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeRemainingColumn(),
    )
    # Transient: the bar goes away when the run ends, so an error is not printed under "loading 0%".
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("loading", total=1.0, detail="")

        def show(update) -> None:
            label = (
                update.stage
                if update.variations == 1
                else f"{update.stage} {update.variation}/{update.variations}"
            )
            detail = f"step {update.step}/{update.total_steps}" if update.stage == "denoising" else ""
            bar.update(task, completed=update.fraction, description=label, detail=detail)

        return make(spec, target, on_progress=show)


def _print_plan(plan) -> None:
    from openreel.hardware import detect

    windows = plan.windows
    if len(windows) > 1:
        spans = ", ".join(f"{w.start}-{w.start + w.num_frames - 1}" for w in windows)
        window_text = f"{len(windows)} windows of native frames {spans} (overlap {windows[1].overlap})"
    elif plan.long_clip == "diffusion forcing":
        window_text = f"none: diffusion forcing, {plan.long_clip_reason}"
    else:
        window_text = "1 (the model's native length covers it)"
    if plan.long_clip == "windows":
        window_text += f": {plan.long_clip_reason}"
    upscale = plan.upscale
    rows = [
        ("model", plan.model_id),
        ("prompt", plan.prompt),
        ("negative prompt", plan.negative_prompt or "-"),
        ("generate", f"{plan.width}x{plan.height}, {plan.num_frames} frames at {plan.native_fps} fps"),
        ("windows", window_text),
        ("steps / guidance", f"{plan.steps} / {plan.guidance:g}"),
        *([("guidance", plan.guidance_note)] if plan.guidance_note else []),
        ("upscale", f"{upscale.method}: {upscale.reason}" if upscale.reason else upscale.method),
        ("frame rate", f"{plan.retime.method}: {plan.retime.reason}"),
        ("output", f"{plan.out_width}x{plan.out_height}, {plan.out_frames} frames at {plan.out_fps} fps"),
        ("seeds", ", ".join(map(str, plan.seeds))),
        ("device", f"{plan.device} ({plan.dtype})"),
        ("memory", plan.memory.reason),
        *([("parallel", plan.context_parallel_reason)] if plan.context_parallel_reason else []),
        *([("quality", plan.quality_note)] if plan.quality_note else []),
        ("estimated time", f"~{_duration(plan.estimated_seconds)} on {detect().name}"),
    ]
    table = Table(show_header=False, box=None)
    for key, value in rows:
        # Plain text, not markup: a prompt's or a hint's brackets ("openreel[quant]") are words
        # (the same holds for errors, notes and verify's report: escape() there).
        table.add_row(f"[bold]{key}", Text(value))
    console.print(table)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


Wide = Annotated[bool, typer.Option("--wide", "-w", help="Every column; nothing is shortened.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the cards as JSON.")]


@models_app.callback()
def _models_default(ctx: typer.Context, wide: Wide = False, as_json: AsJson = False) -> None:
    if ctx.invoked_subcommand is None:
        models_list(wide=wide, as_json=as_json)


@models_app.command("list")
def models_list(wide: Wide = False, as_json: AsJson = False) -> None:
    """Every model: id, family, memory it needs, whether it fits this machine, its size on disk.

    --wide adds modes, native size, length and licence; --json gives everything."""
    from openreel.engine import fits
    from openreel.hardware import detect
    from openreel.models.catalog import all_cards
    from openreel.models.weights import disk_bytes

    hardware = detect()
    rows = [(card, fits(card, hardware), disk_bytes(card)) for card in all_cards()]
    if as_json:
        import json

        print(json.dumps([_card_json(card, fit, size) for card, fit, size in rows], indent=2))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    # An id is what a person types: its column never wraps or shortens.
    table.add_column("id", no_wrap=True, min_width=max(len(card.id) for card, _, _ in rows))
    table.add_column("family", no_wrap=True)
    if wide:
        for column in ("modes", "native", "max length", "licence", "authors"):
            table.add_column(column, no_wrap=True)
    table.add_column("memory", justify="right", no_wrap=True)
    table.add_column("fits", no_wrap=True)
    table.add_column("on disk", justify="right", no_wrap=True)
    for card, fit, size in rows:
        extra = (
            (
                ",".join(sorted(card.modes)) + (" +sound" if card.makes_audio else ""),
                f"{card.native_width}x{card.native_height} @ {card.fps} fps",
                f"{card.max_seconds:.1f} s ({card.max_frames} f)",
                card.licence,
                ", ".join(card.authors),
            )
            if wide
            else ()
        )
        memory = f"{card.memory_gib:g} GiB"
        table.add_row(card.id, card.family, *extra, memory, "yes" if fit else "no", _gib(size))
    out = Console(width=max(console.width, 400), highlight=False) if wide else console
    out.print(table)
    out.print(
        "[dim]tiny-* models have random weights: they run offline in seconds and their output is "
        "noise. Download a real one with `openreel models pull ID`; remove one with "
        "`openreel models rm ID`.[/]",
        soft_wrap=wide,
    )


def _gib(size: int) -> str:
    if not size:
        return "-"
    return f"{size / 2**30:.1f} GiB" if size >= 2**28 else f"{size / 2**20:.1f} MiB"


def _card_json(card, fit: bool, size: int) -> dict:
    from openreel.models.weights import is_downloaded

    return {
        "id": card.id,
        "family": card.family,
        "title": card.title,
        "source": card.source,
        "modes": sorted(card.modes),
        "native_width": card.native_width,
        "native_height": card.native_height,
        "fps": card.fps,
        "max_frames": card.max_frames,
        "max_seconds": round(card.max_seconds, 3),
        "licence": card.licence,
        "licence_url": card.licence_url,
        "authors": list(card.authors),
        # Makes a synchronised sound track with the frames (on by default; --no-audio).
        "audio": card.makes_audio,
        "memory_gib": card.memory_gib,
        "weights_gib": card.weights_gib,
        "fits": fit,
        "downloaded": is_downloaded(card),
        "size_on_disk_bytes": size,
        "random_weights": card.is_tiny,
        "twin_of": card.twin_of,
    }


@models_app.command("rm")
def models_rm(
    model_id: Annotated[str, typer.Argument(help="Catalog id to remove from this machine.")],
) -> None:
    """Delete a model's weights from this machine (the Hugging Face cache, or a tiny build)."""
    from openreel.models.catalog import get_card
    from openreel.models.weights import remove

    try:
        freed = remove(get_card(model_id))
    except OpenreelError as error:
        _fail(error)
    console.print(f"[green]removed[/] {model_id}: {_gib(freed)} freed")


@models_app.command("pull")
def models_pull(model_id: Annotated[str, typer.Argument(help="Catalog id to download.")]) -> None:
    """Download a model into the Hugging Face cache (tiny models: build them)."""
    from openreel.models.catalog import get_card
    from openreel.models.weights import pull

    try:
        folder = pull(get_card(model_id))
    except OpenreelError as error:
        _fail(error)
    console.print(f"[green]ready[/] {model_id}: {folder}")


@styles_app.callback()
def _styles_default(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        styles_list()


@styles_app.command("list")
def styles_list() -> None:
    """Style presets: built-in and your own ($OPENREEL_HOME/styles/*.toml)."""
    from openreel.styles import all_styles

    try:
        styles = all_styles()
    except OpenreelError as error:
        _fail(error)
    table = Table(title="openreel styles")
    for column in ("id", "name", "description", "author", "licence"):
        table.add_column(column)
    for style in styles.values():
        table.add_row(
            style.id + ("" if style.builtin else " (yours)"),
            style.name,
            style.description,
            style.author,
            style.licence,
        )
    console.print(table)


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="An MP4, JPEG, PNG or WebP to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
) -> None:
    """Check a file's C2PA manifest (valid, trusted, tampered) and its invisible watermark."""
    from openreel.provenance import verify as verify_file

    try:
        report = verify_file(file)
    except OpenreelError as error:
        _fail(error)
    if as_json:
        import json

        print(json.dumps(report.to_dict(), indent=2))
        return
    manifest = report.summary.split("; ", 1)[0]
    console.print(f"[bold]manifest[/]: {escape(manifest)}", highlight=False)
    claims = report.manifest.to_dict().get("claims") or {}
    for key, value in claims.items():
        console.print(f"  [bold]{escape(str(key))}[/]: {escape(str(value))}", highlight=False)
    console.print(f"[bold]watermark[/]: {escape(report.mark_summary)}", highlight=False)
    if report.record_summary:
        console.print(f"[bold]on record[/]: {escape(report.record_summary)}", highlight=False)


@app.command()
def doctor() -> None:
    """What openreel sees on this machine: device, memory, versions, folders."""
    import importlib.metadata as md

    from openreel import paths
    from openreel.engine import default_model
    from openreel.hardware import detect

    hardware = detect()
    table = Table(show_header=False, box=None)
    table.add_row("[bold]device", f"{hardware.name} ({hardware.device}, {hardware.dtype})")
    table.add_row("[bold]memory", f"{hardware.memory_gib:.1f} GiB available")
    table.add_row("[bold]default model", default_model(hardware).id)
    table.add_row("[bold]openreel folder", str(paths.home()))
    for package in ("torch", "diffusers", "transformers", "av"):
        try:
            table.add_row(f"[bold]{package}", md.version(package))
        except md.PackageNotFoundError:
            table.add_row(f"[bold]{package}", "[red]not installed")
    console.print(table)


_mount_server_commands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("Stopped.")
        sys.exit(130)


if __name__ == "__main__":
    main()
