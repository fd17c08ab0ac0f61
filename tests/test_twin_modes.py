"""Every mode a real card claims, run on its twin through the CLI: the user's command, the file it
writes and the recipe beside it. The twins carry the real cards' schedulers, patching and
settings, so a mode that breaks on a real card's configuration breaks here too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from openreel.cli import app
from openreel.models.catalog import CARDS, get_card, twin_for
from openreel.render.encode import probe

runner = CliRunner()

CASES = [(twin_for(card.id).id, mode) for card in CARDS for mode in sorted(card.modes)]


def run(*args: str) -> None:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """An image, and two short clips (any model's clip is a valid input to any other)."""
    folder = tmp_path_factory.mktemp("twin-inputs")
    y, x = np.mgrid[0:64, 0:128]
    Image.fromarray(np.stack([x * 2 % 255, y * 4 % 255, (x + y) % 255], -1).astype("uint8")).save(
        folder / "ref.png"
    )
    made = {"image": folder / "ref.png"}
    # One second keeps remixes and blends short; a loop re-makes a third of its clip, which must
    # leave whole frame groups of the slowest frame rule: two seconds.
    for name, seconds, seed in (("a", "1", "1"), ("b", "1", "2"), ("long", "2", "3")):
        made[name] = folder / f"{name}.mp4"
        run(
            "generate", f"clip {name}", "--model", "tiny-wan", "--seconds", seconds, "--size", "96x64",
            "--steps", "1", "--seed", seed, "--output", str(made[name]), "-q",
        )  # fmt: skip
    board = folder / "board.toml"
    board.write_text('seconds = 2\n[[card]]\nat = 0\ntext = "a kite"\n[[card]]\nat = 1\ntext = "a storm"\n')
    made["board"] = board
    keyframes = folder / "keyframes.toml"
    keyframes.write_text(
        'seconds = 2\n[[card]]\nat = 0\ntext = "a kite"\n[[card]]\nat = 1\nimage = "ref.png"\n'
    )
    made["keyframes"] = keyframes
    return made


def command(mode: str, inputs: dict[str, Path]) -> list[str]:
    image, clip, other = str(inputs["image"]), str(inputs["a"]), str(inputs["b"])
    return {
        "t2v": ["generate", "a kite over the sea", "--seconds", "1"],
        "i2v": ["generate", "the scene comes alive", "--image", image, "--seconds", "1"],
        "references": ["generate", "a kite", "--reference", image, "--seconds", "1"],
        "remix": ["remix", clip, "make it snow", "--strength", "mild"],
        "extend": ["extend", clip, "the kite flies on", "--seconds", "1"],
        "extend_backward": ["extend", clip, "before the kite", "--seconds", "1", "--backward"],
        "loop": ["loop", str(inputs["long"]), "a kite, looping"],
        "blend": ["blend", clip, other, "a kite becomes a storm"],
        "storyboard": ["storyboard", str(inputs["board"])],
        "keyframes": ["storyboard", str(inputs["keyframes"])],
        "still": ["still", "a lighthouse at dusk"],
    }[mode]


@pytest.mark.slow
@pytest.mark.parametrize(("model", "mode"), CASES)
def test_every_claimed_mode_runs_on_the_twin(model, mode, inputs, tmp_path):
    twin = get_card(model)
    out = tmp_path / ("still.png" if mode == "still" else "out.mp4")
    # Two steps keep it quick (or the fewest a step-distilled card runs); a distilled card's
    # schedule fixes its own count.
    steps = [] if "timesteps" in twin.options else ["--steps", str(max(2, twin.min_steps))]
    size = f"{twin.native_width}x{twin.native_height}"
    run(*command(mode, inputs), "--model", model, "--size", size, *steps, "--output", str(out), "-q")
    recipe = json.loads(out.with_suffix(".json").read_text())
    # How the recipe names what was made: a still is a one-frame video, keyframes are a storyboard.
    named = {"extend_backward": "extend", "keyframes": "storyboard", "references": "t2v", "still": "t2v"}
    assert recipe["spec"]["mode"] == named.get(mode, mode)
    assert recipe["model"]["id"] == model
    if mode == "still":
        assert Image.open(out).size == (twin.native_width, twin.native_height)
        return
    info = probe(out)
    assert (info.width, info.height) == (twin.native_width, twin.native_height)
    assert info.frames == recipe["plan"]["out_frames"] or mode in ("extend", "extend_backward", "loop")
    assert info.frames > 0
