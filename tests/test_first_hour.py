"""An artist's first hour (issue 15): the README's default command works on a machine with no
weights, edits keep the source clip's model, and what the CLI prints reads without Python.

The Hugging Face cache is a temporary folder laid out as huggingface_hub writes it, so "downloaded"
means what it means on a real machine: a snapshot with the model's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openreel.cli import app
from openreel.hardware import Hardware
from openreel.render.encode import probe

runner = CliRunner()
CPU_64 = Hardware("cpu", "float32", "CPU", 64.0, 2)
GPU_80 = Hardware("cuda", "bfloat16", "GPU 80", 80.0, 2)
GPU_24 = Hardware("cuda", "bfloat16", "GPU 24", 24.0, 2)


def fake_download(cache: Path, repo: str, files: dict[str, bytes], commit: str = "a" * 40) -> None:
    """A snapshot in huggingface_hub's cache layout: blobs, a snapshot of links, refs/main."""
    import hashlib

    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    for name, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = folder / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def machine(monkeypatch):
    """Set what openreel.hardware.detect reports, for the engine, the CLI and the server alike."""

    def use(hardware: Hardware) -> None:
        import openreel.engine
        import openreel.hardware

        monkeypatch.setattr(openreel.hardware, "detect", lambda: hardware)
        monkeypatch.setattr(openreel.engine, "detect", lambda: hardware)

    return use


def planned_model(*args: str) -> str:
    result = runner.invoke(app, [*args, "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    row = next(line.split() for line in result.output.splitlines() if line.split()[:1] == ["model"])
    return row[-1]


def test_default_is_the_best_downloaded_model_that_fits(hf_cache, machine):
    fake_download(hf_cache, "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", {"model_index.json": b"{}"})
    fake_download(hf_cache, "Wan-AI/Wan2.1-T2V-14B-Diffusers", {"model_index.json": b"{}"})
    machine(GPU_80)
    assert planned_model("a lighthouse at dusk") == "wan2.1-t2v-14b"
    # 49 GiB does not fit 24: the downloaded one that fits runs, not a bigger or absent one.
    machine(GPU_24)
    assert planned_model("a lighthouse at dusk") == "wan2.1-t2v-1.3b"
    # On a CPU the smaller of the downloaded ones (cogvideox-2b is smaller but not here).
    machine(CPU_64)
    assert planned_model("a lighthouse at dusk") == "wan2.1-t2v-1.3b"


def test_server_maps_sora_2_to_what_the_cli_runs(hf_cache, machine):
    from openreel.server.settings import Settings

    fake_download(hf_cache, "Lightricks/LTX-Video-0.9.5", {"model_index.json": b"{}"})
    machine(GPU_24)
    cli_default = planned_model("a lighthouse at dusk")
    assert cli_default == "ltx-video-2b"
    aliases = Settings().model_aliases()
    assert aliases["sora-2"] == aliases["sora-2-pro"] == cli_default
    configured = Settings(sora_2_model="tiny-wan").model_aliases()
    assert configured["sora-2"] == "tiny-wan" and configured["sora-2-pro"] == cli_default


def test_readme_example_on_a_bare_machine_makes_noise_and_says_so(hf_cache, machine, tmp_path, monkeypatch):
    """Nothing downloaded: the default command still makes a video, with a tiny twin, and says
    plainly that it is noise and which command pulls the best model that fits."""
    machine(CPU_64)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["a lighthouse at dusk", "--seconds", "1", "--size", "128x64"])
    assert result.exit_code == 0, result.output
    assert "noise" in result.output
    recipe = json.loads((tmp_path / "a-lighthouse-at-dusk.json").read_text())
    from openreel.models.catalog import get_card

    made_with = get_card(recipe["model"]["id"])
    assert made_with.is_tiny
    # It names the pull of the real model the twin stands for, which fits this machine.
    assert f"openreel models pull {made_with.twin_of}" in result.output
    assert get_card(made_with.twin_of).memory_gib <= 64
    assert probe(tmp_path / "a-lighthouse-at-dusk.mp4").width == 128


def test_still_on_a_bare_machine(hf_cache, machine, tmp_path):
    machine(CPU_64)
    out = tmp_path / "still.png"
    result = runner.invoke(app, ["still", "a red kite", "--size", "128x64", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "noise" in result.output


@pytest.fixture(scope="module")
def wan_clip(tmp_path_factory) -> Path:
    """A clip made by tiny-wan at its own 96x64 and 16 fps: no edit default matches it by chance."""
    folder = tmp_path_factory.mktemp("clip")
    out = folder / "boat.mp4"
    args = ["a boat", "--model", "tiny-wan", "--seconds", "1", "--size", "96x64", "--fps", "16"]
    result = runner.invoke(app, ["generate", *args, "--steps", "2", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_remix_defaults_to_the_clip_model_size_and_fps(wan_clip, tmp_path):
    out = tmp_path / "snow.mp4"
    result = runner.invoke(
        app, ["remix", str(wan_clip), "make it snow", "--steps", "2", "-o", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert recipe["model"]["id"] == "tiny-wan"
    info = probe(out)
    assert (info.width, info.height, info.fps) == (96, 64, 16)


def test_edit_without_a_recipe_reads_the_model_from_the_manifest(wan_clip, tmp_path):
    import shutil

    lone = tmp_path / "lone.mp4"
    shutil.copy(wan_clip, lone)  # the signed clip, without its recipe beside it
    assert planned_model("extend", str(lone), "the boat sails on", "--seconds", "1") == "tiny-wan"
    assert planned_model("blend", str(lone), str(wan_clip), "--seconds", "1") == "tiny-wan"
    # Wan 2.1 1.3B cannot loop: the default for looping runs instead of an error.
    from openreel.models.catalog import get_card

    assert "loop" in get_card(planned_model("loop", str(lone), "a boat")).modes


def test_help_shows_words_not_python_types():
    for command in (["generate", "--help"], ["character", "create", "--help"], ["remix", "--help"]):
        text = runner.invoke(app, command, env={"COLUMNS": "120"}).output
        assert "<bool>" not in text and "<list[" not in text and "<str>" not in text, command
        assert "PATH" in text or "TEXT" in text


def test_first_tiny_build_and_errors_print_no_noise(tmp_path, monkeypatch, hf_cache):
    monkeypatch.setenv("OPENREEL_HOME", str(tmp_path / "fresh"))  # the twin is built in this run
    out = tmp_path / "a.mp4"
    args = ["generate", "a boat", "--model", "tiny-wan", "--seconds", "1", "--size", "96x64"]
    result = runner.invoke(app, [*args, "--steps", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Writing model shards" not in result.output
    recipe_line = next(line for line in result.output.splitlines() if line.startswith("recipe:"))
    assert recipe_line.split() == ["recipe:", str(out.with_suffix(".json"))]
    assert any(line.startswith("made in ") for line in result.output.splitlines())
    # An error ends a run that showed progress: the error is all there is.
    failed = runner.invoke(app, ["generate", "a boat", "--model", "wan2.1-t2v-1.3b", "--seconds", "1"])
    assert failed.exit_code == 1
    assert failed.output.lstrip().startswith("Error:"), failed.output


def test_numbers_in_names_are_not_coloured(tmp_path):
    """With colour on, rich would split `tiny-ltx-video-13b-distilled` and a path's digits with
    escape codes around the numbers: what a person copies must be what they type."""
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200", "OPENREEL_HOME": str(tmp_path / "home2")}

    def openreel(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "openreel", *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    twin = "tiny-ltx-video-13b-distilled"
    pulled = openreel("models", "pull", twin)
    assert "\x1b[" in pulled  # colour is on
    assert f"{twin}: {tmp_path / 'home2'}" in pulled
    assert f"{twin}: " in openreel("models", "rm", twin)
