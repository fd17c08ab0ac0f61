"""Ten seconds and more at 1080p: windows, their seams, the model upscale stage, interpolation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from openreel.cli import app
from openreel.engine import Engine
from openreel.hardware import detect
from openreel.models.catalog import TINY_CARDS, get_card
from openreel.models.weights import weights_folder
from openreel.plan import make_plan
from openreel.render.encode import probe
from openreel.spec import VideoSpec

runner = CliRunner()
# One twin per family (its first card's): every twin's modes run in test_twin_modes.py, and ten
# seconds at 1080p is the slowest thing the suite does.
WINDOWED = [
    card
    for card in TINY_CARDS
    if card.id == f"tiny-{card.family}" and card.max_total_seconds >= 10 and "t2v" in card.modes
]


@pytest.mark.slow
@pytest.mark.parametrize("card", WINDOWED, ids=lambda card: card.id)
def test_ten_seconds_at_1080p_from_every_family(card, tmp_path):
    out = tmp_path / "long.mp4"
    result = runner.invoke(
        app,
        [
            "generate",
            "a kite over the sea",
            "--model",
            card.id,
            "--seconds",
            "10",
            "--resolution",
            "1080p",
            "--fps",
            "24",
            "--steps",
            "2",
            "--seed",
            "5",
            "--output",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (1920, 1080, 24, 240)
    plan = json.loads((tmp_path / "long.json").read_text())["plan"]
    windows = plan["windows"]
    assert sum(w["num_frames"] - w["overlap"] for w in windows) >= 10 * card.fps
    if plan.get("long_clip") == "diffusion forcing":
        # One call whose passes continue each other (SkyReels-V2 DF), not windows.
        assert len(windows) == 1 and windows[0]["num_frames"] >= 10 * card.fps
    elif 10 * card.fps > card.max_frames:
        assert len(windows) > 1
    for before, after in zip(windows, windows[1:], strict=False):
        assert after["start"] + after["overlap"] == before["start"] + before["num_frames"]
    expected = {"latent": "latent", "v2v": "lanczos", None: "lanczos"}[card.upscaler]
    assert plan["upscale"]["method"] == expected and plan["upscale"]["reason"]


def test_pyramid_flow_keeps_its_own_length(tmp_path):
    card = get_card("tiny-pyramid-flow")
    assert card.max_total_seconds == pytest.approx(121 / 24)
    result = runner.invoke(app, ["generate", "x", "--model", card.id, "--seconds", "10", "--dry-run"])
    assert result.exit_code == 2 and "makes at most 5.04 s" in result.output


def window_plan(model: str, seconds: float):
    card = get_card(model)
    spec = VideoSpec(
        prompt="a kite",
        model=model,
        seconds=seconds,
        width=card.native_width,
        height=card.native_height,
        fps=card.fps,
        steps=2,
        seed=11,
    ).validated()
    plan = make_plan(spec, card, detect())
    assert len(plan.windows) >= 2
    return card, plan


def card_seconds(model: str) -> float:
    card = get_card(model)
    return card.max_frames / card.fps + 2


def test_ltx_windows_are_conditioned_through_its_pipeline(monkeypatch):
    from diffusers import LTXConditionPipeline

    card, plan = window_plan("tiny-ltx", seconds=12)
    calls: list[dict] = []
    real_call = LTXConditionPipeline.__call__

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(LTXConditionPipeline, "__call__", spy)
    engine = Engine()
    folder = weights_folder(card)
    first = engine.runner.run_window(card, folder, plan, plan.windows[0], plan.seeds[0])
    window = plan.windows[1]
    engine.runner.run_window(card, folder, plan, window, plan.seeds[0], tail=first.native[-window.overlap :])
    assert "conditions" not in calls[0]
    condition = calls[1]["conditions"][0]
    assert condition.frame_index == 0 and condition.strength == 1.0
    assert len(condition.video) == window.overlap
    # The condition is the previous window's own tail, frame for frame (as 8-bit images).
    tail = (np.clip(first.native[-window.overlap :], 0, 1) * 255).round().astype("uint8")
    assert np.array_equal(np.asarray(condition.video[0]), tail[0])


def test_clip_joins_windows_at_the_planned_seams(monkeypatch):
    """The stream is window 0 whole, then each later window without its conditioned overlap."""
    from openreel.render import runner as runner_module

    card, plan = window_plan("tiny-wan", seconds=12)
    made: list = []
    real = runner_module.Runner.run_window

    def record(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        made.append((args[3], result.final))
        return result

    monkeypatch.setattr(runner_module.Runner, "run_window", record)
    engine = Engine()
    clock = __import__("openreel.engine", fromlist=["_ProgressClock"])._ProgressClock(plan, None)
    stream = list(engine._model_frames(card, weights_folder(card), plan, plan.seeds[0], clock, None))
    expected = []
    for window, frames in made:
        expected.extend((np.clip(f, 0, 1) * 255).round().astype("uint8") for f in frames[window.overlap :])
    assert len(stream) == plan.num_frames == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(stream, expected, strict=True))


def test_v2v_refinement_runs_at_the_planned_size(monkeypatch, tmp_path):
    from diffusers import WanVideoToVideoPipeline

    seen: list[dict] = []
    real_call = WanVideoToVideoPipeline.__call__

    def spy(self, *args, **kwargs):
        seen.append(kwargs)
        return real_call(self, *args, **kwargs)

    monkeypatch.setattr(WanVideoToVideoPipeline, "__call__", spy)
    out = tmp_path / "refined.mp4"
    result = runner.invoke(
        app,
        [
            "generate",
            "a kite",
            "--model",
            "tiny-wan",
            "--seconds",
            "1",
            "--size",
            "384x216",
            "--steps",
            "2",
            "--output",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads((tmp_path / "refined.json").read_text())["plan"]
    assert plan["upscale"]["method"] == "v2v"
    (call,) = seen
    assert call["strength"] == 0.3
    assert (call["width"], call["height"]) == (plan["upscale"]["width"], plan["upscale"]["height"])
    assert call["video"][0].size == (plan["upscale"]["width"], plan["upscale"]["height"])
    assert len(call["video"]) == plan["num_frames"]
    info = probe(out)
    assert (info.width, info.height, info.frames) == (384, 216, 24)


def test_ltx_latent_upsampler_path(monkeypatch, tmp_path):
    from diffusers import LTXLatentUpsamplePipeline

    upsampled: list = []
    real_call = LTXLatentUpsamplePipeline.__call__

    def spy(self, *args, **kwargs):
        output = real_call(self, *args, **kwargs)
        upsampled.append((kwargs["latents"].shape, output.frames.shape))
        return output

    monkeypatch.setattr(LTXLatentUpsamplePipeline, "__call__", spy)
    out = tmp_path / "up.mp4"
    result = runner.invoke(
        app,
        [
            "generate",
            "a kite",
            "--model",
            "tiny-ltx",
            "--seconds",
            "1",
            "--resolution",
            "720p",
            "--steps",
            "2",
            "--output",
            str(out),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    (before, after) = upsampled[0]
    assert after[-2:] == (before[-2] * 2, before[-1] * 2)  # twice the latent height and width
    assert probe(out).width == 1280


def test_dry_run_explains_the_plan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(
        app,
        [
            "generate",
            "a kite",
            "--model",
            "wan2.1-t2v-1.3b",
            "--seconds",
            "12",
            "--resolution",
            "1080p",
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "3 windows of native frames 0-80, 72-152, 144-192 (overlap 9)" in text
    assert "motion-compensated interpolation 16 -> 24 fps" in text
    assert "1920x1080, 288 frames at 24 fps" in text
    assert "estimated time ~" in text and "upscale lanczos: a refinement at 1920x1088" in text
    assert list(Path(tmp_path).iterdir()) == []
