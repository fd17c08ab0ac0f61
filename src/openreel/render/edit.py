"""Edits that need no model: re-cut (trim) a clip.

A re-cut decodes the source once and re-encodes exactly the frames in the range losslessly
(x264 at qp 0, from the decoded YUV planes, no colour conversion), so the trimmed video shows the
source's own pixels: no second generation of compression artefacts, and its watermark stays.
The source's sound, if it has any, is cut at the same instants (re-encoded as AAC; the frames are
not touched by that).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from openreel import __version__
from openreel.errors import SpecError


def recut(source: str | Path, output: str | Path, *, start: float = 0.0, end: float | None = None) -> Path:
    """Write frames [start, end) seconds of ``source`` to ``output`` (MP4), then sign it as an
    edit of ``source`` and write an edit record ``<output>.json`` beside it."""
    import av

    from openreel.atomic import atomic_path
    from openreel.provenance import Credits, sign_file
    from openreel.render.encode import VideoWriter
    from openreel.render.inputs import probe_clip

    source, output = Path(source), Path(output)
    info = probe_clip(source)
    end = info.seconds if end is None else end
    if not 0 <= start < end:
        raise SpecError(f"the range {start:g}-{end:g} s is empty; start must be before end", param="start")
    if end > info.seconds + 1e-6:
        raise SpecError(f"{source.name} is {info.seconds:.2f} s; end {end:g} s is past it", param="end")
    if output.suffix.lower() != ".mp4":
        raise SpecError(f"output {output} must end in .mp4", param="output")
    if not output.parent.is_dir():
        raise SpecError(f"cannot write {output}: folder {output.parent} does not exist", param="output")
    from openreel.render.audio import read_audio

    fps = round(info.fps)
    first, stop = math.floor(start * info.fps + 1e-6), math.ceil(end * info.fps - 1e-6)
    sound = read_audio(source)
    with (
        av.open(str(source)) as container,
        VideoWriter(
            output, width=info.width, height=info.height, fps=fps, lossless=True, audio=sound is not None
        ) as writer,
    ):
        if sound is not None:
            # The kept frames' own instants: frame ``first`` becomes the new file's time 0.
            writer.audio = sound.between(first / info.fps, stop / info.fps)
        for index, frame in enumerate(container.decode(video=0)):
            if index >= stop:
                break
            if index >= first:
                writer.write_yuv(
                    frame if frame.format.name == "yuv420p" else frame.reformat(format="yuv420p")
                )
    # The edit keeps the source's credits, when openreel made it.
    record = _source_recipe(source)
    credits = Credits.from_dict(record["credits"]) if record.get("credits") else Credits(model_id="unknown")
    sign_file(output, credits=credits, action="c2pa.edited", parents=[source])
    edit = {
        "format": "openreel.edit/1",
        "openreel_version": __version__,
        "operation": "recut",
        "source": str(source.resolve()),
        "start": start,
        "end": end,
        "frames": stop - first,
        "credits": record.get("credits", {}),
    }
    with atomic_path(output.with_suffix(".json")) as temp:
        temp.write_text(json.dumps(edit, indent=2) + "\n", encoding="utf-8")
    return output


def _source_recipe(source: Path) -> dict:
    """The recipe openreel wrote beside ``source``, if there is one."""
    try:
        return json.loads(source.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
