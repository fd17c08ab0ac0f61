"""LoRAs over the API: a request names a LoRA the server offers, never a path or a Hub download.

A caller may only pick from what the person running the server put in its LoRA folder
(``--lora-dir``, default ``$OPENREEL_HOME/loras``): a ``.safetensors`` file or a folder holding
one, named without its suffix or with it. A path would let a caller probe or read the server's
files, and a Hub id would let them fill its disk, so both are refused with a sentence that says
what to do instead. The engine then checks the file as for the CLI: a LoRA, for this model's family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openreel.errors import SpecError

SUFFIX = ".safetensors"


def offered(folder: Path) -> list[Path]:
    """The LoRAs in ``folder``: its .safetensors files and the sub-folders that hold one."""
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        is_file = entry.is_file() and entry.suffix == SUFFIX
        if is_file or (entry.is_dir() and any(entry.glob(f"*{SUFFIX}"))):
            found.append(entry)
    return found


def offered_name(path: Path) -> str:
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name


def resolve(entries: tuple[dict[str, Any], ...], folder: Path) -> tuple[dict[str, Any], ...]:
    """The spec's LoRAs with each name replaced by its file or folder in ``folder``."""
    if not entries:
        return ()
    by_name = {offered_name(path): path for path in offered(folder)}
    resolved = []
    for entry in entries:
        name = str(entry["source"])
        if "/" in name or "\\" in name or name.startswith((".", "~")):
            raise SpecError(
                f"LoRA {name!r} is not a name: over the API a LoRA is one the server offers "
                f"(GET /v1/openreel/loras lists them); ask its operator to put the file in its LoRA folder",
                param="loras",
            )
        path = by_name.get(offered_name(Path(name)))
        if path is None:
            choices = ", ".join(sorted(by_name)) or "none yet"
            raise SpecError(
                f"this server offers no LoRA named {name!r} (it offers: {choices})", param="loras"
            )
        resolved.append({**entry, "source": str(path)})
    return tuple(resolved)


def describe(path: Path) -> dict[str, Any]:
    """What the studio shows of an offered LoRA: its name, the family it is for, its credit; a file
    that is no LoRA is listed with the reason, so the operator sees why it cannot be picked."""
    from openreel.models.lora import credit, family_of, title

    name = offered_name(path)
    try:
        family = family_of(str(path))
        made_by = credit(str(path))
    except SpecError as exc:
        return {"id": name, "family": None, "family_title": None, "author": None, "licence": None,
                "error": str(exc).replace(str(path), name)}  # fmt: skip
    return {
        "id": name,
        "family": family,
        "family_title": title(family) if family else None,
        "author": made_by.author,
        "licence": made_by.licence,
        "error": None,
    }
