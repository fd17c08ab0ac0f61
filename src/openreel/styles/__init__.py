"""Style presets: data files, not code.

Built-in presets ship in ``presets/*.toml``; users add or override presets by dropping TOML files
of the same shape into ``$OPENREEL_HOME/styles``. A preset rewrites the prompt through its
template, adds a negative prompt, may suggest steps/guidance, and credits its author.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tomllib

from openreel import paths
from openreel.errors import SpecError

_BUILTIN = Path(__file__).parent / "presets"
_REQUIRED = ("name", "description", "prompt_template", "author", "licence")


@dataclass(frozen=True)
class Style:
    id: str
    name: str
    description: str
    prompt_template: str
    negative_prompt: str
    author: str
    licence: str
    steps: int | None = None
    guidance: float | None = None
    builtin: bool = True
    # LoRAs the style loads ({"source", "scale"}; a relative file is beside the preset), before
    # any the request adds.
    loras: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "prompt_template": self.prompt_template,
            "negative_prompt": self.negative_prompt,
            "author": self.author,
            "licence": self.licence,
            "steps": self.steps,
            "guidance": self.guidance,
            "builtin": self.builtin,
            "loras": [dict(lora) for lora in self.loras],
        }


def _load(path: Path, builtin: bool) -> Style:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"style preset {path} cannot be read: {exc}", param="style") from None
    missing = [key for key in _REQUIRED if not data.get(key)]
    if missing:
        raise SpecError(f"style preset {path} lacks {', '.join(missing)}", param="style")
    if "{prompt}" not in data["prompt_template"]:
        raise SpecError(f"style preset {path}: prompt_template must contain {{prompt}}", param="style")
    suggested = data.get("suggested", {})
    from openreel.models.lora import check_entries

    loras = tuple(
        {**lora, "source": _beside(path, lora["source"])} for lora in check_entries(data.get("loras", ()))
    )
    return Style(
        id=path.stem,
        name=data["name"],
        description=data["description"],
        prompt_template=data["prompt_template"],
        negative_prompt=data.get("negative_prompt", ""),
        author=data["author"],
        licence=data["licence"],
        steps=suggested.get("steps"),
        guidance=suggested.get("guidance"),
        builtin=builtin,
        loras=loras,
    )


def _beside(preset: Path, source: str) -> str:
    """A LoRA file named relative to its preset, made absolute; hub ids and absolute paths stay."""
    candidate = preset.parent / Path(source).expanduser()
    return str(candidate.resolve()) if candidate.exists() else source


def all_styles() -> dict[str, Style]:
    """Built-in presets, then the user's (a user preset with a built-in's name replaces it)."""
    styles = {p.stem: _load(p, True) for p in sorted(_BUILTIN.glob("*.toml"))}
    user_dir = paths.styles_dir()
    if user_dir.is_dir():
        styles.update({p.stem: _load(p, False) for p in sorted(user_dir.glob("*.toml"))})
    return styles


def get_style(style_id: str) -> Style:
    styles = all_styles()
    if style_id not in styles:
        raise SpecError(
            f"unknown style {style_id!r}; choose one of {', '.join(styles)} "
            f"(or add {style_id}.toml to {paths.styles_dir()})",
            param="style",
        )
    return styles[style_id]


def apply_style(style: Style, prompt: str, negative_prompt: str | None) -> tuple[str, str | None]:
    """The prompt and negative prompt the model sees under this style."""
    styled = style.prompt_template.replace("{prompt}", prompt)
    negatives = [n for n in (negative_prompt, style.negative_prompt) if n]
    return styled, ", ".join(negatives) or None
