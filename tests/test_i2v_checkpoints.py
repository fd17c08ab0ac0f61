"""Dedicated image-to-video checkpoints (Wan 2.1 I2V, CogVideoX-5b-I2V, HunyuanVideo-I2V) run
their families' own I2V pipelines: the image reaches the pipeline as ``image`` (and a loop's end as Wan's
``last_image``), the result has the exact size, fps and frames, and text alone is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from openreel.cli import app
from openreel.models.catalog import get_card
from openreel.render.encode import probe, read_frames

runner = CliRunner()
# The tiny cards' native size: generated as asked, no upscale stage.
SIZE = "96x64"


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fail(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0 and "Traceback" not in result.output
    return " ".join(result.output.split())


def spy_on(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[dict]:
    """Record the keyword arguments of every call of a pipeline class."""
    calls: list[dict] = []
    real = cls.__call__

    def record(self, *args, **kwargs):
        calls.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__call__", record)
    return calls


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    y, x = np.mgrid[0:96, 0:160]
    path = tmp_path_factory.mktemp("inputs") / "ref.png"
    Image.fromarray(np.stack([x % 255, y * 2 % 255, (x + y) % 255], -1).astype("uint8")).save(path)
    return path


@pytest.fixture(scope="module")
def wan_clip(reference: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """tiny-wan-i2v from the reference image, with the pipeline's calls: the i2v result, and the
    loop test's source."""
    from diffusers import WanImageToVideoPipeline

    out = tmp_path_factory.mktemp("wan") / "i2v.mp4"
    with pytest.MonkeyPatch.context() as monkeypatch:
        calls = spy_on(monkeypatch, WanImageToVideoPipeline)
        cli(
            "generate", "the scene comes alive", "--image", str(reference), "--model", "tiny-wan-i2v",
            "--seconds", "2", "--size", SIZE, "--fps", "16", "--steps", "2", "--seed", "1",
            "--output", str(out), "-q",
        )  # fmt: skip
    return out, calls


def expected_image(reference: Path) -> np.ndarray:
    return pixels(Image.open(reference).resize((96, 64), Image.Resampling.LANCZOS))


def test_wan_i2v_gives_the_image_to_its_own_pipeline(wan_clip, reference):
    out, calls = wan_clip
    (call,) = calls
    assert np.abs(pixels(call["image"]) - expected_image(reference)).mean() < 8
    assert "last_image" not in call
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (96, 64, 16, 32)
    assert json.loads(out.with_suffix(".json").read_text())["spec"]["mode"] == "i2v"


def test_wan_flf2v_loop_ends_in_the_clip_first_frame(wan_clip, reference, tmp_path, monkeypatch):
    from diffusers import WanImageToVideoPipeline

    clip, _ = wan_clip
    calls = spy_on(monkeypatch, WanImageToVideoPipeline)
    out = tmp_path / "loop.mp4"
    cli("loop", str(clip), "a loop", "--model", "tiny-wan-flf2v", "--steps", "2", "--output", str(out), "-q")
    plan = json.loads((tmp_path / "loop.json").read_text())["plan"]
    # One frame pinned at each end of the bridge: the kept part's last frame, the clip's first.
    assert plan["windows"][0]["overlap"] == plan["trailing"] == 1
    (call,) = calls
    source = np.stack(list(read_frames(clip))).astype(int)
    keep = plan["source_frames"]  # the clip and the model share 16 fps
    assert np.abs(pixels(call["image"]) - source[keep - 1]).mean() < 8
    assert np.abs(pixels(call["last_image"]) - source[0]).mean() < 8
    assert probe(out).frames == probe(clip).frames  # keeps the clip's length
    assert plan["source_frames"] + plan["out_frames"] == probe(out).frames
    # It needs both frames: an image alone is refused.
    message = fail(
        "generate", "x", "--image", str(reference), "--model", "tiny-wan-flf2v",
        "--output", str(tmp_path / "x.mp4"),
    )  # fmt: skip
    assert "tiny-wan-flf2v cannot do i2v; models that can:" in message and "tiny-wan-i2v" in message


def test_cogvideox_i2v_gives_the_image_to_its_own_pipeline(reference, tmp_path, monkeypatch):
    from diffusers import CogVideoXImageToVideoPipeline

    calls = spy_on(monkeypatch, CogVideoXImageToVideoPipeline)
    out = tmp_path / "i2v.mp4"
    # 16:9 asked of a model fixed at 96x64: generated at 96x64, cover-cropped to 160x90.
    cli(
        "generate", "the scene comes alive", "--image", str(reference), "--model", "tiny-cogvideox-i2v",
        "--seconds", "2", "--size", "160x90", "--fps", "12", "--steps", "2", "--output", str(out), "-q",
    )  # fmt: skip
    (call,) = calls
    assert (call["width"], call["height"]) == (96, 64)
    assert np.abs(pixels(call["image"]) - expected_image(reference)).mean() < 8
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (160, 90, 12, 24)


def test_hunyuan_i2v_gives_the_image_to_its_own_pipeline(reference, tmp_path, monkeypatch):
    from diffusers import HunyuanVideoImageToVideoPipeline

    calls = spy_on(monkeypatch, HunyuanVideoImageToVideoPipeline)
    out = tmp_path / "i2v.mp4"
    cli(
        "generate", "the scene comes alive", "--image", str(reference), "--model", "tiny-hunyuan-i2v",
        "--seconds", "1", "--size", SIZE, "--fps", "24", "--steps", "2", "--seed", "1",
        "--output", str(out), "-q",
    )  # fmt: skip
    (call,) = calls
    assert (call["width"], call["height"], call["num_frames"]) == (96, 64, 25)
    assert np.abs(pixels(call["image"]) - expected_image(reference)).mean() < 8
    # Token replacement keeps every frame (the 33-channel checkpoint's latent concat drops four).
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (96, 64, 24, 24)
    assert json.loads(out.with_suffix(".json").read_text())["spec"]["mode"] == "i2v"


@pytest.mark.parametrize(
    "model", ["tiny-wan-i2v", "tiny-cogvideox-i2v", "tiny-wan-flf2v", "tiny-hunyuan-i2v"]
)
def test_text_alone_is_refused_naming_models_that_can(model, wan_clip, tmp_path):
    message = fail("generate", "x", "--model", model, "--output", str(tmp_path / "x.mp4"))
    assert f"{model} cannot do t2v; models that can:" in message and "tiny-wan," in message
    if model != "tiny-wan-flf2v":
        # One image at the start is all these checkpoints take: no loops.
        clip, _ = wan_clip
        message = fail("loop", str(clip), "x", "--model", model, "--output", str(tmp_path / "y.mp4"))
        assert f"{model} cannot do loop; models that can:" in message and "tiny-wan-flf2v" in message


def test_i2v_cards_name_their_pipelines_and_modes():
    wan, cog = get_card("wan2.1-i2v-14b-480p"), get_card("cogvideox-5b-i2v")
    assert wan.hub_repo == "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
    assert cog.hub_repo == "THUDM/CogVideoX-5b-I2V"
    assert wan.options["pipeline"] == "WanImageToVideoPipeline" and wan.modes == {"i2v"}
    assert cog.options["pipeline"] == "CogVideoXImageToVideoPipeline" and cog.modes == {"i2v"}
    assert get_card("tiny-wan-i2v").modes == wan.modes and get_card("tiny-cogvideox-i2v").modes == cog.modes
    flf2v = get_card("wan2.1-flf2v-14b-720p")
    assert flf2v.hub_repo == "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers" and flf2v.modes == {"loop"}
    assert get_card("tiny-wan-flf2v").modes == flf2v.modes
    hunyuan = get_card("hunyuanvideo-i2v")
    assert hunyuan.hub_repo == "hunyuanvideo-community/HunyuanVideo-I2V" and hunyuan.modes == {"i2v"}
    assert hunyuan.options["pipeline"] == "HunyuanVideoImageToVideoPipeline"
    assert get_card("tiny-hunyuan-i2v").modes == hunyuan.modes


def test_a_local_i2v_folder_gets_its_checkpoint_card(wan_clip):
    from openreel.models.weights import card_for_folder, weights_folder

    # Saved by the fixture's run; model_index.json names WanImageToVideoPipeline.
    card = card_for_folder(weights_folder(get_card("tiny-wan-i2v")))
    assert card.options["pipeline"] == "WanImageToVideoPipeline" and card.modes == {"i2v"}


@pytest.mark.parametrize("name", ["wan-i2v", "wan-flf2v", "cogvideox-i2v", "hunyuan-i2v"])
def test_tiny_checkpoint_builds_are_deterministic_and_small(name, tmp_path):
    import hashlib

    from openreel.models.tiny import build_tiny_pipeline

    def digests(folder: Path) -> dict[str, str]:
        return {
            str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in folder.rglob("*")
            if path.is_file()
        }

    build_tiny_pipeline(name, tmp_path / "a")
    build_tiny_pipeline(name, tmp_path / "b")
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert sum(path.stat().st_size for path in (tmp_path / "a").rglob("*") if path.is_file()) < 5 * 2**20
