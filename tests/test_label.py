"""The visible "AI-generated" label: off by default; with --label (or the owner's default) a
corner of every frame carries it, the rest of the frame is the same, the recipe and the manifest
say so, and the invisible mark still verifies. Signing is handed the mark's payload and does not
decode the video to find it. Checked on tiny Wan videos made end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.test_watermark import KEY, PAYLOAD, natural_frames, transcode
from typer.testing import CliRunner

from openreel.cli import app
from openreel.engine import Engine
from openreel.provenance import watermark
from openreel.provenance.c2pa import read_manifest
from openreel.provenance.label import Label, LabelError, label_frames, resolve
from openreel.provenance.verify import verify
from openreel.render.encode import read_frames
from openreel.spec import VideoSpec

# Large enough to carry the invisible mark (watermark.MIN_SIDE) and a legible label.
SPEC = VideoSpec(
    prompt="a lighthouse at dusk", model="tiny-wan", seconds=1.0, width=480, height=288, steps=2, seed=7
)


def _frames(path: Path) -> np.ndarray:
    return np.stack(list(read_frames(path))).astype(np.int16)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> dict[str, Path]:
    """The same video made plain, and labelled with the default label at bottom-right."""
    root = tmp_path_factory.mktemp("label")
    plain, labelled = root / "plain.mp4", root / "labelled.mp4"
    # Module-scoped, so made before the per-test home is set: point at it here (its keys).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENREEL_HOME", str(session_home))
        Engine(label=False).generate(SPEC, plain)
        Engine(label=True).generate(SPEC, labelled)
    return {"plain": plain, "labelled": labelled}


def _corner_mask(label: Label, width: int, height: int) -> np.ndarray:
    """Where ``label`` touches a frame: the pixels it changes on a mid-grey frame."""
    grey = np.full((height, width, 3), 128, np.uint8)
    (out,) = label_frames([grey], label)
    return np.any(out != grey, axis=2)


@pytest.mark.parametrize("corner", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_label_changes_only_its_corner(corner: str) -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    label = Label(corner=corner, size=0.05)
    (out,) = label_frames([frame], label)
    changed = np.any(out != frame, axis=2)
    ys, xs = np.nonzero(changed)
    # Text about 5% of the height (36 px) plus its box, tucked in the named corner.
    assert 30 <= ys.max() - ys.min() + 1 <= 80
    assert (ys.max() < 360) == corner.startswith("top")
    assert (xs.max() < 640) == corner.endswith("left")
    # Nothing outside the label's box changed.
    box = np.zeros_like(changed)
    box[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    assert not changed[~box].any()
    assert changed.mean() < 0.02


def test_label_size_follows_frame_height() -> None:
    small = _corner_mask(Label(size=0.04), 640, 360)
    large = _corner_mask(Label(size=0.04), 1920, 1080)
    rows = [np.nonzero(mask.any(axis=1))[0] for mask in (small, large)]
    heights = [r.max() - r.min() + 1 for r in rows]
    assert 2.5 < heights[1] / heights[0] < 3.5


def test_bad_label_settings_are_refused(openreel_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LabelError, match="corner"):
        Label(corner="middle")
    monkeypatch.setenv("OPENREEL_LABEL", "maybe")
    with pytest.raises(LabelError, match="OPENREEL_LABEL"):
        resolve(None)


def test_owner_default(openreel_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENREEL_LABEL", raising=False)
    assert resolve(None) is None  # off unless asked for
    (openreel_home / "label.toml").write_text('enabled = true\ntext = "Made with AI"\ncorner = "top-left"\n')
    try:
        assert resolve(None) == Label(text="Made with AI", corner="top-left")
        assert resolve(False) is None  # --no-label wins over the owner's default
        monkeypatch.setenv("OPENREEL_LABEL", "0")
        assert resolve(None) is None
        assert resolve(True) == Label(text="Made with AI", corner="top-left")
    finally:
        (openreel_home / "label.toml").unlink()


def test_labelled_video_differs_in_its_corner_only(made: dict[str, Path]) -> None:
    plain, labelled = _frames(made["plain"]), _frames(made["labelled"])
    assert plain.shape == labelled.shape
    corner = _corner_mask(Label(), SPEC.width, SPEC.height)
    diff = np.abs(labelled - plain).mean(axis=(0, 3))
    # The label is there: its box is clearly darker/brighter than what was under it...
    assert diff[corner].mean() > 20
    # ...and the rest is the same picture up to the encoder: away from the box (whose edges
    # shift a few macroblocks). x264 re-decides noisy content everywhere once any part changes
    # (the tiny model's frames are noise), so "the same" is: several times less change than
    # under the label.
    ys, xs = np.nonzero(corner)
    far = np.ones_like(corner)
    far[max(0, ys.min() - 16) :, max(0, xs.min() - 16) :] = False
    assert diff[far].mean() < diff[corner].mean() / 4


@pytest.mark.parametrize("crf", [23, 28])
def test_invisible_mark_reads_under_the_label(crf: int) -> None:
    """Labelled first, then marked, through a real H.264 encode: the payload still reads (the
    label covers a few of the mark's cells). That the engine keeps this order is checked by
    test_engine_lays_the_mark_over_the_label."""
    frames = list(label_frames(natural_frames(), Label(size=0.06)))
    marked = list(watermark.watermark_frames(frames, PAYLOAD, key=KEY))
    result = watermark.extract(transcode(marked, crf=crf), key=KEY)
    assert result.authentic and result.payload == PAYLOAD


def test_engine_lays_the_mark_over_the_label(tmp_path: Path) -> None:
    """The engine labels first, then marks: the label's white text carries the mark too (where
    the mark is negative it darkens a pixel by a level or more). A label laid after the mark
    would leave its text pure white and the mark wiped under it. Checked on the engine's PNG
    still, whose pixels are exact (through H.264 a level or two is within the encoder's noise)."""
    from PIL import Image

    label = Label(size=0.25)  # thick strokes: many pixels of pure text
    out = tmp_path / "still.png"
    Engine(label=label).still(SPEC, out)
    frame = np.asarray(Image.open(out).convert("RGB"))
    (on_black,) = label_frames([np.zeros_like(frame)], label)
    text = np.all(on_black == 255, axis=2)  # where the label is opaque white whatever is under it
    assert text.sum() > 500
    darkened = np.any(frame[text] < 255, axis=1).mean()
    assert darkened > 0.2, darkened


def test_labelled_video_carries_mark_payload_and_visible_label(made: dict[str, Path]) -> None:
    """The labelled MP4 as the engine wrote it (label laid, then the mark, then H.264): verify
    finds the mark and reads back the payload this run put in (the recipe's watermark id) on the
    tiny model's small, noisy frames; the decoded frames show the label's white text over its
    dark box, where the plain video has neither; the manifest says so."""
    from openreel.provenance import installation_id, make_payload

    report = verify(made["labelled"])
    recipe = json.loads(made["labelled"].with_suffix(".json").read_text())
    assert report.watermark.found and report.watermark.authentic
    mark = recipe["variations"][0]["watermark_id"]
    assert report.watermark.payload == make_payload(installation_id(), mark)
    assert "made by this installation" in report.summary
    assert report.manifest.valid
    assert report.manifest.claims["visible_label"] == Label().to_dict()
    assert report.manifest.claims.get("soft_binding")
    # Where the label is (mostly) text, and where it is only its translucent box: on mid-grey the
    # text is near white and the box alone darkens a pixel to about half.
    grey = np.full((SPEC.height, SPEC.width, 3), 128, np.uint8)
    (on_grey,) = label_frames([grey], Label())
    text = on_grey.mean(axis=2) > 200
    box = on_grey.mean(axis=2) < 100
    assert text.sum() > 100 and box.sum() > 500
    for name, visible in (("labelled", True), ("plain", False)):
        luma = _frames(made[name]).mean(axis=3)  # frames x height x width
        contrast = luma[:, text].mean(axis=1) - luma[:, box].mean(axis=1)  # per frame
        if visible:
            assert contrast.min() > 100, contrast
        else:
            assert np.abs(contrast).max() < 30, contrast


def test_recipe_records_the_label(made: dict[str, Path]) -> None:
    labelled = json.loads(made["labelled"].with_suffix(".json").read_text())
    plain = json.loads(made["plain"].with_suffix(".json").read_text())
    assert [v.get("label") for v in labelled["variations"]] == [Label().to_dict()]
    assert all("label" not in v for v in plain["variations"])
    assert "visible_label" not in read_manifest(made["plain"]).claims


def test_no_label_by_default(made: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENREEL_LABEL", raising=False)
    out = tmp_path / "default.mp4"
    Engine().generate(SPEC, out)
    assert np.array_equal(_frames(out), _frames(made["plain"]))


def test_signing_is_handed_the_mark_and_does_not_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The module, not the function of the same name the package exports.
    verify_module = sys.modules["openreel.provenance.verify"]
    reads: list[Path] = []
    original = verify_module.read_watermark
    monkeypatch.setattr(
        verify_module, "read_watermark", lambda path, **kw: reads.append(path) or original(path, **kw)
    )
    extracts: list[int] = []
    original_extract = watermark.extract
    monkeypatch.setattr(
        watermark, "extract", lambda *a, **kw: extracts.append(1) or original_extract(*a, **kw)
    )
    out = tmp_path / "signed.mp4"
    Engine(label=False).generate(SPEC, out)
    assert reads == [] and extracts == []
    # The soft binding is still there, on the video and its thumbnail, not on the sprite sheet.
    assert read_manifest(out).claims.get("soft_binding")
    assert read_manifest(out.with_suffix(".jpg")).claims.get("soft_binding")
    assert "soft_binding" not in read_manifest(out.with_name(out.stem + ".sprites.jpg")).claims


def test_cli_label_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENREEL_LABEL", raising=False)
    out = tmp_path / "cli.png"
    args = [
        "still",
        "a lighthouse",
        "--model",
        "tiny-wan",
        "--size",
        "320x192",
        "--steps",
        "2",
        "--seed",
        "7",
    ]
    result = CliRunner().invoke(app, [*args, "--label", "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert recipe["variations"][0]["label"] == Label().to_dict()
    assert read_manifest(out).claims["visible_label"] == Label().to_dict()
