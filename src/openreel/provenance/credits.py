"""Who made what a video is made of: the model's authors and licence, the style's author, LoRAs.

One record, three places: the C2PA manifest (assertion ``org.openreel.credits``), the API's
video object (``openreel.credits``) and the recipe. ``to_dict`` is that shape, so all three agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _version() -> str:
    from openreel import __version__

    return __version__


@dataclass(frozen=True)
class LoraCredit:
    id: str
    author: str | None = None
    licence: str | None = None


@dataclass(frozen=True)
class Credits:
    model_id: str
    model_revision: str | None = None
    model_licence: str | None = None
    model_licence_url: str | None = None
    model_authors: tuple[str, ...] = ()
    style_id: str | None = None
    style_author: str | None = None
    style_licence: str | None = None
    loras: tuple[LoraCredit, ...] = ()
    openreel_version: str = field(default_factory=_version)

    @classmethod
    def from_card(
        cls,
        card: Any,
        style: Any | None = None,
        *,
        revision: str | None = None,
        loras: tuple[LoraCredit, ...] = (),
    ) -> Credits:
        """From a ``ModelCard`` and a ``Style`` (duck-typed, so this module imports neither)."""
        return cls(
            model_id=card.id,
            model_revision=revision or getattr(card, "revision", None),
            model_licence=getattr(card, "licence", None),
            model_licence_url=getattr(card, "licence_url", None),
            model_authors=tuple(getattr(card, "authors", ()) or ()),
            style_id=getattr(style, "id", None),
            style_author=getattr(style, "author", None),
            style_licence=getattr(style, "licence", None),
            loras=loras,
        )

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "software": {"name": "openreel", "version": self.openreel_version},
            "model": {
                "id": self.model_id,
                "revision": self.model_revision,
                "licence": self.model_licence,
                "licence_url": self.model_licence_url,
                "authors": list(self.model_authors),
            },
        }
        if self.style_id is not None:
            record["style"] = {
                "id": self.style_id,
                "author": self.style_author,
                "licence": self.style_licence,
            }
        if self.loras:
            record["loras"] = [{"id": lo.id, "author": lo.author, "licence": lo.licence} for lo in self.loras]
        return record

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credits:
        model = data.get("model") or {}
        style = data.get("style") or {}
        software = data.get("software") or {}
        return cls(
            model_id=model.get("id", ""),
            model_revision=model.get("revision"),
            model_licence=model.get("licence"),
            model_licence_url=model.get("licence_url"),
            model_authors=tuple(model.get("authors") or ()),
            style_id=style.get("id"),
            style_author=style.get("author"),
            style_licence=style.get("licence"),
            loras=tuple(
                LoraCredit(lo["id"], lo.get("author"), lo.get("licence")) for lo in data.get("loras") or ()
            ),
            openreel_version=software.get("version") or _version(),
        )
