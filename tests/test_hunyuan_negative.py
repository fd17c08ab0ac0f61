"""HunyuanVideo and negative prompts: a user's negative prompt turns on true classifier-free
guidance (two transformer passes a step); a style's alone is dropped, and no recipe names a
negative prompt the run did not apply. Checked at the pipeline call and the transformer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openreel.cli import app
from openreel.engine import Engine
from openreel.errors import SpecError
from openreel.spec import VideoSpec

STEPS = 2


@pytest.fixture
def hunyuan_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each HunyuanVideoPipeline call: its keyword arguments and how often the transformer ran."""
    import diffusers

    calls: list[dict[str, Any]] = []
    original = diffusers.HunyuanVideoPipeline.__call__

    def spy(self, *args: Any, **kwargs: Any) -> Any:
        record = {"kwargs": kwargs, "transformer_passes": 0}

        def count(*_: Any) -> None:
            record["transformer_passes"] += 1

        handle = self.transformer.register_forward_hook(count)
        try:
            return original(self, *args, **kwargs)
        finally:
            handle.remove()
            calls.append(record)

    monkeypatch.setattr(diffusers.HunyuanVideoPipeline, "__call__", spy)
    return calls


def spec(**changes: Any) -> VideoSpec:
    values: dict[str, Any] = dict(
        prompt="a red car on a wet street at night",
        model="tiny-hunyuan",
        seconds=1.0,
        fps=24,
        width=96,
        height=64,
        steps=STEPS,
        seed=5,
    )
    values.update(changes)
    return VideoSpec(**values)


def test_a_users_negative_prompt_runs_true_cfg(tmp_path: Path, hunyuan_calls: list) -> None:
    Engine().generate(spec(negative_prompt="blurry, low quality", guidance=5.0), tmp_path / "v.mp4")
    (call,) = hunyuan_calls
    kwargs = call["kwargs"]
    assert kwargs["negative_prompt"] == "blurry, low quality"
    # The asked guidance as true CFG; the embedded guidance neutral, so it is not applied twice.
    assert kwargs["true_cfg_scale"] == 5.0 and kwargs["guidance_scale"] == 1.0
    assert call["transformer_passes"] == 2 * STEPS
    recipe = json.loads((tmp_path / "v.json").read_text())
    assert recipe["plan"]["negative_prompt"] == "blurry, low quality"
    assert "true CFG 5" in recipe["plan"]["guidance_note"]


def test_a_styles_negative_prompt_alone_is_dropped(tmp_path: Path, hunyuan_calls: list) -> None:
    Engine().generate(spec(style="film-noir"), tmp_path / "v.mp4")
    (call,) = hunyuan_calls
    assert "negative_prompt" not in call["kwargs"] and "true_cfg_scale" not in call["kwargs"]
    assert call["transformer_passes"] == STEPS
    recipe = json.loads((tmp_path / "v.json").read_text())
    # Nothing in the recipe claims the style's negative prompt was used ...
    assert recipe["plan"]["negative_prompt"] is None
    assert recipe["spec"]["negative_prompt"] is None
    # ... and the plan says it was not.
    assert "not applied" in recipe["plan"]["guidance_note"]


def test_a_users_negative_prompt_takes_the_styles_along(tmp_path: Path, hunyuan_calls: list) -> None:
    Engine().generate(spec(style="film-noir", negative_prompt="blurry"), tmp_path / "v.mp4")
    (call,) = hunyuan_calls
    assert call["kwargs"]["negative_prompt"] == "blurry, colour, bright, flat lighting, cartoon"
    assert call["transformer_passes"] == 2 * STEPS
    recipe = json.loads((tmp_path / "v.json").read_text())
    assert recipe["plan"]["negative_prompt"] == call["kwargs"]["negative_prompt"]


def test_a_negative_prompt_without_guidance_is_refused() -> None:
    with pytest.raises(SpecError, match="--guidance above 1") as error:
        Engine().plan(spec(negative_prompt="blurry", guidance=1.0))
    assert error.value.param == "negative_prompt"


def test_dry_run_says_how_guidance_runs() -> None:
    args = ["generate", "a red car", "--model", "tiny-hunyuan", "--seconds", "1", "--dry-run"]
    with_negative = CliRunner().invoke(app, [*args, "--negative", "blurry"], catch_exceptions=False)
    assert with_negative.exit_code == 0, with_negative.output
    assert "true CFG" in with_negative.output and "twice a step" in with_negative.output
    styled = CliRunner().invoke(app, [*args, "--style", "film-noir"], catch_exceptions=False)
    assert "not applied" in " ".join(styled.output.split())


def test_the_estimate_counts_the_second_pass() -> None:
    plain = Engine().plan(spec(seconds=1.0, steps=30)).estimated_seconds
    guided = Engine().plan(spec(seconds=1.0, steps=30, negative_prompt="blurry")).estimated_seconds
    assert guided > 1.5 * plain
