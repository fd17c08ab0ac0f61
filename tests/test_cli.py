"""The CLI end to end: real tiny pipelines, real encoder, the MP4 checked with PyAV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from openreel.cli import app
from openreel.models.catalog import TINY_CARDS
from openreel.render.encode import probe, read_frames

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def files_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.mark.parametrize(
    # One twin per family (test_twin_modes.py runs every twin's modes).
    "card",
    [card for card in TINY_CARDS if "t2v" in card.modes and card.id == f"tiny-{card.family}"],
    ids=lambda card: card.id,
)
def test_every_tiny_family_makes_the_exact_video(card, tmp_path):
    out = tmp_path / "clip.mp4"
    # Two steps keep it quick; a distilled card's schedule fixes its own count.
    steps = [] if "timesteps" in card.options else ["--steps", "2"]
    result = invoke(
        "generate",
        "a paper boat on a rainy street",
        "--model",
        card.id,
        "--seconds",
        "2",
        "--size",
        "256x144",
        "--fps",
        "12",
        *steps,
        "--seed",
        "3",
        "--output",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 256, 144)
    assert info.fps == 12 and info.frames == 24
    recipe = json.loads((tmp_path / "clip.json").read_text())
    assert recipe["spec"]["seed"] == 3 and recipe["model"]["id"] == card.id
    assert recipe["variations"][0]["seed"] == 3
    assert {"clip.mp4", "clip.json", "clip.jpg", "clip.sprites.jpg"} <= files_in(tmp_path)


def test_issue_example_variations_style_and_replay(tmp_path):
    out = tmp_path / "boat.mp4"
    result = invoke(
        "generate",
        "a paper boat drifting down a rainy street at night",
        "--model",
        "tiny-wan",
        "--seconds",
        "4",
        "--resolution",
        "480p",
        "--aspect",
        "16:9",
        "--fps",
        "24",
        "--style",
        "film-noir",
        "--seed",
        "7",
        "--variations",
        "2",
        "--output",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    for name in ("boat.mp4", "boat-2.mp4"):
        info = probe(tmp_path / name)
        assert (info.width, info.height, info.fps, info.frames) == (854, 480, 24, 96)
    recipe = json.loads((tmp_path / "boat.json").read_text())
    assert [v["seed"] for v in recipe["variations"]] == [7, 8]
    assert recipe["plan"]["prompt"].startswith("film noir, a paper boat")
    assert recipe["spec"]["style"] == "film-noir"
    assert recipe["credits"]["model"]["id"] == "tiny-wan"
    assert recipe["openreel_version"]
    first = list(read_frames(tmp_path / "boat.mp4"))
    second = list(read_frames(tmp_path / "boat-2.mp4"))
    assert not np.array_equal(first[10], second[10]), "variations must differ"

    replay = tmp_path / "replay" / "again.mp4"
    replay.parent.mkdir()
    result = invoke("generate", "--recipe", str(tmp_path / "boat.json"), "--output", str(replay), "-q")
    assert result.exit_code == 0, result.output
    for original, again in (("boat.mp4", "again.mp4"), ("boat-2.mp4", "again-2.mp4")):
        a = np.stack(list(read_frames(tmp_path / original)))
        b = np.stack(list(read_frames(replay.parent / again)))
        assert np.array_equal(a, b), f"{again} differs from {original}"


def test_default_output_name_does_not_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = invoke(
            "a tiny test", "--model", "tiny-wan", "--seconds", "1", "--size", "128x128", "--steps", "1", "-q"
        )
        assert result.exit_code == 0, result.output
    assert {"a-tiny-test.mp4", "a-tiny-test-2.mp4"} <= files_in(tmp_path)


def test_dry_run_prints_plan_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("generate", "a boat", "--model", "wan2.1-t2v-1.3b", "--seconds", "5", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "848x480, 81 frames at 16 fps" in result.output
    assert "854x480, 120 frames at 24 fps" in result.output
    assert files_in(tmp_path) == set()


def test_dry_run_shows_brackets_as_written():
    # Plan text is shown as words, not as console markup: "[red]" in a prompt, like the hint
    # "pip install 'openreel[quant]'", must not vanish.
    result = invoke("generate", "a [red] boat at [dawn]", "--model", "tiny-wan", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "a [red] boat at [dawn]" in " ".join(result.output.split())


BAD_INPUTS = [
    (["--model", "sora-3"], "unknown model 'sora-3'"),
    # An error echoes what was asked as written: its brackets are not console markup.
    (["--model", "sora[red]"], "unknown model 'sora[red]'"),
    (["--style", "vaporwave"], "unknown style 'vaporwave'"),
    (["--seconds", "0"], "seconds must be more than 0"),
    (["--seconds", "25"], "tiny-wan makes at most 20 s (in windows of 5.06 s)"),
    (["--size", "1000x1001"], "must be even"),
    (["--size", "big"], "is not WIDTHxHEIGHT"),
    (["--resolution", "4k"], "unknown resolution '4k'"),
    (["--aspect", "4:3"], "unknown aspect ratio '4:3'"),
    (["--variations", "5"], "variations must be between 1 and 4"),
    (["--output", "/nonexistent-dir/x.mp4"], "folder /nonexistent-dir does not exist"),
    (["--output", "clip.mov"], "must end in .mp4"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_is_one_clear_line(extra, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["generate", "a boat", "--model", "tiny-wan", "-q", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") <= 1, result.output
    assert not any(p.suffix in (".mp4", ".json") for p in tmp_path.iterdir())


def test_unreadable_recipe(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = runner.invoke(app, ["generate", "--recipe", str(bad)])
    assert result.exit_code == 2
    assert "is not valid JSON" in result.output and "Traceback" not in result.output


def test_missing_real_weights_is_one_paragraph(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["generate", "a boat", "--model", "wan2.1-t2v-1.3b", "--seconds", "1", "-q"])
    assert result.exit_code == 1
    assert "openreel models pull wan2.1-t2v-1.3b" in result.output
    assert "--model tiny-wan" in result.output
    assert "Traceback" not in result.output
    assert files_in(tmp_path) == {"hf"} or files_in(tmp_path) == set()


def test_interrupt_leaves_no_partial_file(tmp_path, monkeypatch):
    """Ctrl-C during denoising: exit 130, nothing written."""
    from openreel.render import runner as runner_module

    real_run = runner_module.Runner.run_window

    def interrupted(self, card, folder, plan, window, seed, **kwargs):
        def step(done, total, phase):
            if done == 1:
                raise KeyboardInterrupt

        return real_run(self, card, folder, plan, window, seed, **{**kwargs, "on_step": step})

    monkeypatch.setattr(runner_module.Runner, "run_window", interrupted)
    out = tmp_path / "stopped.mp4"
    result = runner.invoke(
        app,
        [
            "generate",
            "a boat",
            "--model",
            "tiny-wan",
            "--seconds",
            "1",
            "--size",
            "128x128",
            "--steps",
            "3",
            "--output",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 130
    assert "no partial file" in result.output
    assert files_in(tmp_path) == set()


def test_models_and_styles_lists():
    assert invoke("models").exit_code == 0
    cards = {card["id"]: card for card in json.loads(invoke("models", "list", "--json").output)}
    expected = {
        "cogvideox-2b",
        "cogvideox-5b",
        "cogvideox1.5-5b",
        "mochi-1",
        "ltx-video-2b",
        "ltx-video-13b",
        "wan2.1-t2v-1.3b",
        "wan2.1-t2v-14b",
        "wan2.2-ti2v-5b",
        "hunyuanvideo",
    }
    assert expected | {card.id for card in TINY_CARDS} <= set(cards)
    assert cards["tiny-wan"]["random_weights"] and not cards["wan2.1-t2v-1.3b"]["downloaded"]
    result = invoke("styles", "list")
    assert result.exit_code == 0 and "film-noir" in result.output


def test_outputs_are_signed_and_watermarked(tmp_path):
    out = tmp_path / "signed.mp4"
    result = invoke(
        "generate",
        "a lantern",
        "--model",
        "tiny-ltx",
        "--seconds",
        "1",
        "--size",
        "320x192",
        "--steps",
        "2",
        "--style",
        "anime",
        "--output",
        str(out),
        "-q",
    )
    assert result.exit_code == 0, result.output
    result = invoke("verify", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["manifest"]["trusted"] and not report["manifest"]["tampered"]
    assert report["watermark"]["found"]
    credits = json.loads((tmp_path / "signed.json").read_text())["credits"]
    assert credits["model"]["id"] == "tiny-ltx" and credits["style"]["id"] == "anime"
    for still in ("signed.jpg", "signed.sprites.jpg"):
        report = json.loads(invoke("verify", str(tmp_path / still), "--json").output)
        assert report["manifest"]["trusted"], still


def test_blocked_prompt_names_the_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["generate", "a deepfake porn clip", "--model", "tiny-wan", "-q"])
    assert result.exit_code == 2
    assert "non_consensual_intimate" in result.output and "Traceback" not in result.output
    assert files_in(tmp_path) == set()
