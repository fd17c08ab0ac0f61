"""An optional visible label ("AI-generated") in a corner of every frame, as Sora does.

The invisible watermark says the same thing to a machine; the label says it to a person. It is
off unless asked for: ``--label`` on a command, or the owner's default, ``OPENREEL_LABEL=1`` or
``enabled = true`` in ``label.toml`` in the openreel folder, which also sets its text, corner and
size (``OPENREEL_LABEL_TEXT`` overrides the text)::

    enabled = true
    text = "AI-generated"
    corner = "bottom-right"   # or top-left, top-right, bottom-left
    size = 0.04               # text height as a share of the frame height

It is laid at the output size, before the invisible mark and the encoder: the mark is laid over
it and still reads, since the label covers a few of the mark's cells at most. The patch is drawn
once per frame size with Pillow's default font (it ships with Pillow); each frame then costs one
blend of a small corner.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import tomllib

from openreel import paths
from openreel.errors import OpenreelError

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
ENV = "OPENREEL_LABEL"
TEXT_ENV = "OPENREEL_LABEL_TEXT"
CONFIG = "label.toml"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
MIN_TEXT_PX = 8  # below this the default font is no longer legible
# Opacity of the dark box behind the text: the text stays readable on a white sky.
_BOX_ALPHA = 0.55


class LabelError(OpenreelError):
    code = "invalid_label"
    status = 400


@dataclass(frozen=True)
class Label:
    text: str = "AI-generated"
    corner: str = "bottom-right"
    size: float = 0.04  # text height / frame height

    def __post_init__(self) -> None:
        if self.corner not in CORNERS:
            raise LabelError(f"label corner {self.corner!r}: use one of {', '.join(CORNERS)}")
        if not 0.01 <= self.size <= 0.25:
            raise LabelError(f"label size {self.size}: give a share of the frame height, 0.01 to 0.25")
        if not self.text.strip() or len(self.text) > 64:
            raise LabelError("label text: give 1 to 64 characters")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _config() -> dict[str, Any]:
    path = paths.home() / CONFIG
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LabelError(f"{path} is not valid TOML: {exc}") from None


def configured() -> Label:
    """The label as the owner styled it (text, corner, size), whether or not it is on."""
    config = _config()
    fields = {key: config[key] for key in ("text", "corner", "size") if key in config}
    if os.environ.get(TEXT_ENV):
        fields["text"] = os.environ[TEXT_ENV]
    try:
        return Label(**fields)
    except TypeError as exc:
        raise LabelError(f"{paths.home() / CONFIG}: {exc}") from None


def owner_default() -> bool:
    """Whether outputs are labelled when a command does not say: the env var, else label.toml."""
    value = os.environ.get(ENV)
    if value is not None:
        if value.strip().lower() not in _TRUE | _FALSE:
            raise LabelError(f"{ENV}={value!r}: use 1 or 0")
        return value.strip().lower() in _TRUE
    return bool(_config().get("enabled", False))


def resolve(choice: bool | Label | None) -> Label | None:
    """The label a run lays: ``choice`` if given (True: the owner's style), else the owner's default."""
    if isinstance(choice, Label):
        return choice
    on = owner_default() if choice is None else choice
    return configured() if on else None


def for_request(asked: bool | dict[str, Any] | None, server_default: bool | None = None) -> Label | None:
    """The label a server request lays, decided when it is queued (so every worker, here or on a
    Ray node, lays the same): the request's ``label`` (true, false, or its own text/corner/size
    over the owner's style), else the server's (``openreel serve --label``), else the owner's."""
    if isinstance(asked, dict):
        try:
            return Label(**{**configured().to_dict(), **asked})
        except TypeError as exc:
            raise LabelError(f"label: {exc}; give text, corner and size") from None
    return resolve(asked if asked is not None else server_default)


def to_extra(label: Label | None) -> dict[str, Any]:
    """How a decided label travels in ``VideoSpec.extra`` to the engine (``from_extra``): its
    fields, or false for none, so a worker does not decide again from its own settings."""
    return {"label": label.to_dict() if label is not None else False}


def from_extra(extra: dict[str, Any], default: Label | None) -> Label | None:
    """The label ``extra`` carries (None: a request that asked for none), else ``default``."""
    if "label" not in extra:
        return default
    value = extra["label"]
    return Label(**value) if value else None


@lru_cache(maxsize=8)
def _patch(label: Label, width: int, height: int) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(x, y, colour, alpha) of the label at this frame size: premultiplied RGB and its alpha."""
    from PIL import Image, ImageDraw, ImageFont

    px = max(MIN_TEXT_PX, round(label.size * height))
    try:
        font = ImageFont.load_default(size=px)
    except (TypeError, OSError):  # a Pillow without FreeType has only the fixed-size bitmap font
        font = ImageFont.load_default()
    left, top, right, bottom = font.getbbox(label.text)
    pad = max(2, px // 4)
    w = min(width, right - left + 2 * pad)
    h = min(height, bottom - top + 2 * pad)
    text = Image.new("L", (w, h), 0)
    ImageDraw.Draw(text).text((pad - left, pad - top), label.text, fill=255, font=font)
    ink = np.asarray(text, dtype=np.float32)[..., None] / 255
    # White text over a translucent dark box: alpha is the box, raised to 1 where the text is.
    alpha = np.maximum(ink, _BOX_ALPHA)
    colour = ink * 255.0
    margin = max(2, round(0.02 * height))
    x = margin if label.corner.endswith("left") else max(0, width - w - margin)
    y = margin if label.corner.startswith("top") else max(0, height - h - margin)
    return x, y, colour, alpha


def lay(frame: np.ndarray, label: Label) -> np.ndarray:
    """``frame`` (RGB uint8, H x W x 3) with the label in its corner; the rest is untouched."""
    height, width = frame.shape[:2]
    x, y, colour, alpha = _patch(label, width, height)
    box = (slice(y, y + alpha.shape[0]), slice(x, x + alpha.shape[1]))
    out = frame.copy()
    out[box] = np.rint(out[box].astype(np.float32) * (1 - alpha) + colour).astype(np.uint8)
    return out


def label_frames(frames: Iterable[np.ndarray], label: Label | None) -> Iterator[np.ndarray]:
    """Stream frames through ``lay`` (unchanged when ``label`` is None)."""
    for frame in frames:
        yield frame if label is None else lay(frame, label)
