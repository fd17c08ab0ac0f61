"""Sora's editing modes on open models: what conditions reach the pipeline, and the exact result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from openreel.cli import app
from openreel.errors import SpecError, UnsupportedModeError
from openreel.render.encode import probe, read_frames

runner = CliRunner()
# Sizes at which the tiny models generate without an upscale stage: the spies see one call.
LTX_SIZE, WAN_SIZE = "128x64", "96x64"


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fail(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0 and "Traceback" not in result.output
    return " ".join(result.output.split())


def frames_of(path: Path) -> np.ndarray:
    return np.stack(list(read_frames(path))).astype(np.float32)


def assert_same_clip(ours: np.ndarray, source: np.ndarray) -> None:
    """``ours`` is ``source`` re-encoded: frame i matches source frame i clearly better than its
    neighbour. (Tiny models make noise, which a CRF 20 re-encode changes by up to ~10 levels.)"""
    same = np.abs(ours - source).mean()
    shifted = np.abs(ours[1:] - source[:-1]).mean()
    assert same < 0.75 * shifted, (same, shifted)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sources")
    made = {}
    for name, model, size in (("ltx", "tiny-ltx", LTX_SIZE), ("wan", "tiny-wan", WAN_SIZE)):
        out = folder / f"{name}.mp4"
        cli(
            "generate",
            f"a {name} source",
            "--model",
            model,
            "--seconds",
            "2",
            "--size",
            size,
            "--steps",
            "2",
            "--seed",
            "1",
            "--output",
            str(out),
            "-q",
        )
        made[name] = out
    y, x = np.mgrid[0:96, 0:160]
    Image.fromarray(np.stack([x % 255, y * 2 % 255, (x + y) % 255], -1).astype("uint8")).save(
        folder / "ref.png"
    )
    made["image"] = folder / "ref.png"
    return made


@pytest.fixture
def spy(monkeypatch):
    """Record the keyword arguments of every call of a pipeline class."""

    def install(cls) -> list[dict]:
        calls: list[dict] = []
        real = cls.__call__

        def record(self, *args, **kwargs):
            calls.append(kwargs)
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", record)
        return calls

    return install


def test_image_to_video_ltx_conditions_frame_zero_on_the_image(clips, tmp_path, spy):
    from diffusers import LTXConditionPipeline

    calls = spy(LTXConditionPipeline)
    out = tmp_path / "i2v.mp4"
    cli(
        "generate",
        "the scene comes alive",
        "--image",
        str(clips["image"]),
        "--model",
        "tiny-ltx",
        "--seconds",
        "1",
        "--size",
        LTX_SIZE,
        "--steps",
        "2",
        "--output",
        str(out),
        "-q",
    )
    (condition,) = calls[0]["conditions"]
    assert condition.frame_index == 0 and len(condition.video) == 1
    expected = np.asarray(
        Image.open(clips["image"]).convert("RGB").resize((128, 64), Image.Resampling.LANCZOS)
    )
    assert np.abs(np.asarray(condition.video[0]).astype(int) - expected.astype(int)).mean() < 8
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (128, 64, 24, 24)
    assert json.loads((tmp_path / "i2v.json").read_text())["spec"]["mode"] == "i2v"


def test_remix_strength_reaches_the_video_to_video_pipeline(clips, tmp_path, spy):
    from diffusers import WanVideoToVideoPipeline

    calls = spy(WanVideoToVideoPipeline)
    out = tmp_path / "snow.mp4"
    cli(
        "remix",
        str(clips["wan"]),
        "make it snow",
        "--strength",
        "subtle",
        "--model",
        "tiny-wan",
        "--steps",
        "2",
        "--output",
        str(out),
        "-q",
    )
    (call,) = calls
    assert call["strength"] == 0.3 and len(call["video"]) == 33  # 2 s at 16 fps on the 4k+1 grid
    source, remixed = probe(clips["wan"]), probe(out)
    assert (remixed.width, remixed.height, remixed.fps, remixed.frames) == (
        source.width,
        source.height,
        source.fps,
        source.frames,
    )
    recipe = json.loads((tmp_path / "snow.json").read_text())
    assert recipe["plan"]["inputs"]["strength"] == 0.3 and recipe["spec"]["video"] == str(
        clips["wan"].resolve()
    )
    report = json.loads(cli("verify", str(out), "--json"))
    assert report["manifest"]["trusted"]
    assert [i["title"] for i in report["manifest"]["claims"]["ingredients"]] == ["wan.mp4"]


def test_remix_with_ltx_starts_from_the_source_latents(clips, tmp_path, spy):
    from diffusers import LTXConditionPipeline

    calls = spy(LTXConditionPipeline)
    cli(
        "remix",
        str(clips["ltx"]),
        "at night",
        "--strength",
        "0.6",
        "--model",
        "tiny-ltx",
        "--steps",
        "2",
        "--output",
        str(tmp_path / "night.mp4"),
        "-q",
    )
    (call,) = calls
    assert call["denoise_strength"] == 0.6 and call["latents"].shape[2] == 7  # 49 frames -> 7 latent frames


def test_remix_by_a_model_that_cannot_names_the_ones_that_can(clips, tmp_path):
    text = fail("remix", str(clips["wan"]), "x", "--model", "tiny-mochi", "--output", str(tmp_path / "x.mp4"))
    assert (
        "tiny-mochi cannot do remix; models that can:" in text and "tiny-ltx" in text and "tiny-wan" in text
    )
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("model", "source", "size"), [("tiny-ltx", "ltx", LTX_SIZE), ("tiny-wan", "wan", WAN_SIZE)]
)
def test_extend_forward_is_the_clip_plus_the_new_seconds(clips, tmp_path, model, source, size):
    out = tmp_path / "longer.mp4"
    cli(
        "extend",
        str(clips[source]),
        "the kite flies higher",
        "--seconds",
        "1",
        "--model",
        model,
        "--steps",
        "2",
        "--output",
        str(out),
        "-q",
    )
    before, after = probe(clips[source]), probe(out)
    assert (after.width, after.height, after.fps) == (before.width, before.height, before.fps)
    assert after.frames == before.frames + 24
    # The clip itself opens the output (re-encoded, watermarked afresh: close, not equal).
    assert_same_clip(frames_of(out)[: before.frames], frames_of(clips[source]))
    plan = json.loads((tmp_path / "longer.json").read_text())["plan"]
    assert plan["windows"][0]["overlap"] > 0 and plan["source_frames"] is None


def test_extend_backward_conditions_the_end_of_the_window(clips, tmp_path, spy):
    from diffusers import LTXConditionPipeline

    calls = spy(LTXConditionPipeline)
    out = tmp_path / "before.mp4"
    cli(
        "extend",
        str(clips["ltx"]),
        "earlier",
        "--seconds",
        "1",
        "--backward",
        "--model",
        "tiny-ltx",
        "--steps",
        "2",
        "--output",
        str(out),
        "-q",
    )
    plan = json.loads((tmp_path / "before.json").read_text())["plan"]
    (condition,) = calls[0]["conditions"]
    assert condition.frame_index == plan["windows"][0]["num_frames"] - plan["trailing"]
    assert len(condition.video) == plan["trailing"]
    assert probe(out).frames == probe(clips["ltx"]).frames + 24
    # The clip itself closes the output.
    assert_same_clip(frames_of(out)[24:], frames_of(clips["ltx"]))
    text = fail(
        "extend",
        str(clips["wan"]),
        "x",
        "--backward",
        "--model",
        "tiny-wan",
        "--output",
        str(tmp_path / "x.mp4"),
    )
    assert "tiny-wan cannot do backward extension; models that can:" in text and "tiny-ltx" in text


def test_recut_keeps_the_source_pixels_exactly(clips, tmp_path):
    out = tmp_path / "cut.mp4"
    cli("recut", str(clips["ltx"]), "--start", "0.5", "--end", "1.5", "--output", str(out))
    info = probe(out)
    assert (info.frames, info.fps, info.codec, info.pix_fmt) == (24, 24.0, "h264", "yuv420p")
    assert np.array_equal(frames_of(out), frames_of(clips["ltx"])[12:36])
    report = json.loads(cli("verify", str(out), "--json"))
    assert (
        report["manifest"]["trusted"] and report["manifest"]["claims"]["ingredients"][0]["title"] == "ltx.mp4"
    )
    assert "past it" in fail("recut", str(clips["ltx"]), "--end", "9", "--output", str(tmp_path / "y.mp4"))
    assert "is empty" in fail(
        "recut", str(clips["ltx"]), "--start", "1", "--end", "1", "--output", str(tmp_path / "y.mp4")
    )


def test_loop_ends_in_its_own_start(clips, tmp_path, spy):
    from diffusers import LTXConditionPipeline

    calls = spy(LTXConditionPipeline)
    out = tmp_path / "loop.mp4"
    cli(
        "loop", str(clips["ltx"]), "a loop", "--model", "tiny-ltx", "--steps", "2", "--output", str(out), "-q"
    )
    plan = json.loads((tmp_path / "loop.json").read_text())["plan"]
    start, end = calls[0]["conditions"]
    assert start.frame_index == 0 and len(start.video) == plan["windows"][0]["overlap"]
    assert end.frame_index == plan["windows"][0]["num_frames"] - plan["trailing"]
    # The clip's first frames condition the bridge's last ones: the end leads into the start.
    head = (frames_of(clips["ltx"])[0]).astype(int)
    assert np.abs(np.asarray(end.video[0]).astype(int) - head).mean() < 8
    assert probe(out).frames == probe(clips["ltx"]).frames  # keeps the clip's length
    assert plan["source_frames"] + plan["out_frames"] == probe(out).frames
    assert "cannot do loop" in fail(
        "loop", str(clips["wan"]), "x", "--model", "tiny-wan", "--output", str(tmp_path / "x.mp4")
    )
    assert "keeps or shortens" in fail(
        "loop",
        str(clips["ltx"]),
        "x",
        "--seconds",
        "5",
        "--model",
        "tiny-ltx",
        "--output",
        str(tmp_path / "x.mp4"),
    )


def test_blend_follows_the_curve_and_names_both_parents(clips, tmp_path, spy):
    from diffusers import WanVideoToVideoPipeline

    calls = spy(WanVideoToVideoPipeline)
    out = tmp_path / "blend.mp4"
    other = tmp_path / "other.mp4"
    cli(
        "generate",
        "another source",
        "--model",
        "tiny-wan",
        "--seconds",
        "2",
        "--size",
        WAN_SIZE,
        "--steps",
        "2",
        "--seed",
        "9",
        "--output",
        str(other),
        "-q",
    )
    cli(
        "blend",
        str(clips["wan"]),
        str(other),
        "--seconds",
        "1.5",
        "--curve",
        "linear",
        "--model",
        "tiny-wan",
        "--steps",
        "2",
        "--output",
        str(out),
        "-q",
    )
    (call,) = calls
    mixed = np.stack([np.asarray(frame).astype(np.float32) for frame in call["video"]])
    a, b = frames_of(clips["wan"]), frames_of(other)
    # Linear: the first frame is (nearly) one of clip A's, the last one of clip B's. (Each clip is
    # resampled to the model's frame rate, so compare with the nearest frame of each clip.)

    def nearest(frame: np.ndarray, clip: np.ndarray) -> float:
        return min(float(np.abs(frame - other).mean()) for other in clip)

    assert nearest(mixed[0], a) < 0.5 * nearest(mixed[0], b)
    assert nearest(mixed[-1], b) < 0.5 * nearest(mixed[-1], a)
    assert probe(out).frames == 36
    report = json.loads(cli("verify", str(out), "--json"))
    assert sorted(i["title"] for i in report["manifest"]["claims"]["ingredients"]) == ["other.mp4", "wan.mp4"]
    assert "curve applies to blend" in fail(
        "blend",
        str(clips["wan"]),
        str(other),
        "--curve",
        "wobbly",
        "--model",
        "tiny-wan",
        "--output",
        str(tmp_path / "x.mp4"),
    )


def test_storyboard_cards_steer_their_segments(clips, tmp_path, spy):
    from diffusers import LTXConditionPipeline

    calls = spy(LTXConditionPipeline)
    board = tmp_path / "board.toml"
    board.write_text(
        'seconds = 12\nmodel = "tiny-ltx"\n'
        '[[card]]\nat = 0\ntext = "a lighthouse at dusk"\n'
        f'[[card]]\nat = 4\nimage = "{clips["image"]}"\n'
        '[[card]]\nat = 10\ntext = "a storm rolls in"\n'
    )
    out = tmp_path / "board.mp4"
    cli("storyboard", str(board), "--size", LTX_SIZE, "--steps", "2", "--output", str(out), "-q")
    plan = json.loads((tmp_path / "board.json").read_text())["plan"]
    windows = plan["windows"]
    assert windows[0]["prompt"] == "a lighthouse at dusk" and windows[-1]["prompt"] == "a storm rolls in"
    (keyframe,) = calls[0]["conditions"]  # window 0 holds second 4 (frame 96)
    assert keyframe.frame_index == 96 and len(keyframe.video) == 1
    assert (probe(out).frames, probe(out).width) == (288, 128)
    board.write_text(board.read_text().replace('model = "tiny-ltx"', 'model = "tiny-wan"'))
    text = fail("storyboard", str(board), "--output", str(tmp_path / "x.mp4"))
    assert "tiny-wan cannot do keyframes; models that can:" in text and "tiny-ltx" in text


def test_still_is_one_signed_watermarked_frame(tmp_path):
    out = tmp_path / "lighthouse.png"
    cli(
        "still",
        "a lighthouse at dusk",
        "--model",
        "tiny-ltx",
        "--size",
        "640x384",
        "--steps",
        "2",
        "--seed",
        "3",
        "--output",
        str(out),
        "-q",
    )
    assert Image.open(out).size == (640, 384)
    report = json.loads(cli("verify", str(out), "--json"))
    assert report["manifest"]["trusted"] and report["watermark"]["found"]
    assert json.loads((tmp_path / "lighthouse.json").read_text())["plan"]["out_frames"] == 1


@pytest.mark.parametrize(
    ("changes", "error", "fragment"),
    [
        ({"mode": "i2v"}, SpecError, "i2v needs an input image"),
        ({"mode": "remix", "video": "x.mp4", "strength": "huge"}, SpecError, "subtle, mild, strong"),
        ({"mode": "remix", "video": "x.mp4", "strength": 1.5}, SpecError, "in (0, 1]"),
        ({"mode": "t2v", "video": "x.mp4"}, SpecError, "t2v takes no input video"),
        ({"mode": "blend", "video": "x.mp4"}, SpecError, "blend needs an input video b"),
        ({"mode": "storyboard", "cards": [{"at": 0, "image": "a.png"}]}, SpecError, "at least one text card"),
        ({"mode": "storyboard", "cards": [{"at": 9, "text": "late"}]}, SpecError, "outside the board"),
        (
            {"mode": "storyboard", "cards": [{"at": 0, "text": "a", "image": "b"}]},
            SpecError,
            "exactly one of",
        ),
        ({"mode": "t2v", "backward": True}, SpecError, "backward only applies to extend"),
    ],
)
def test_malformed_mode_requests(changes, error, fragment):
    from openreel.spec import VideoSpec

    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        VideoSpec(prompt="x", seconds=4, **changes).validated()


def test_inputs_are_checked_by_content(clips, tmp_path):
    from openreel.engine import Engine
    from openreel.spec import VideoSpec

    fake_image, fake_video = tmp_path / "cat.png", tmp_path / "clip.mp4"
    fake_image.write_bytes(b"not a png at all")
    fake_video.write_bytes(b"\x00" * 2048)
    engine = Engine()
    with pytest.raises(SpecError, match="not a readable image") as info:
        engine.resolve(VideoSpec(prompt="x", model="tiny-ltx", mode="i2v", image=str(fake_image)))
    assert info.value.param == "image"
    with pytest.raises(SpecError, match="not a readable video"):
        engine.resolve(VideoSpec(prompt="x", model="tiny-ltx", mode="remix", video=str(fake_video)))
    with pytest.raises(SpecError, match="does not exist"):
        engine.resolve(
            VideoSpec(prompt="x", model="tiny-ltx", mode="extend", video=str(tmp_path / "none.mp4"))
        )
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10_000, 6_000)).save(bomb)  # 60 megapixels in a few kilobytes
    with pytest.raises(SpecError, match="more than 50 megapixels"):
        engine.resolve(VideoSpec(prompt="x", model="tiny-ltx", mode="i2v", image=str(bomb)))
    with pytest.raises(UnsupportedModeError, match="tiny-pyramid-flow cannot do extend"):
        engine.plan(VideoSpec(prompt="x", model="tiny-pyramid-flow", mode="extend", video=str(clips["ltx"])))


def test_characters_on_the_cli(clips, tmp_path, spy):
    """A kept character conditions by reference images where the model takes them (Wan VACE),
    and is the opening image elsewhere; one rule (openreel.characters.conditions) for CLI and server."""
    from diffusers import WanVACEPipeline

    cli("character", "create", str(clips["image"]), "--name", "mira")
    assert "mira" in cli("character", "list")
    calls = spy(WanVACEPipeline)
    cli(
        "generate",
        "mira on a beach",
        "--character",
        "mira",
        "--model",
        "tiny-wan-vace",
        "--seconds",
        "1",
        "--size",
        "128x64",
        "--steps",
        "2",
        "--output",
        str(tmp_path / "vace.mp4"),
        "-q",
    )
    (reference,) = calls[0]["reference_images"]
    # Fitted inside the frame whole (not cropped): the picture's own aspect ratio is kept.
    width, height = Image.open(clips["image"]).size
    assert reference.size[0] * height == reference.size[1] * width and reference.size[0] <= 128
    cli(
        "generate",
        "mira on a beach",
        "--character",
        "mira",
        "--model",
        "tiny-ltx",
        "--seconds",
        "1",
        "--size",
        LTX_SIZE,
        "--steps",
        "2",
        "--output",
        str(tmp_path / "ltx.mp4"),
        "-q",
    )
    spec = json.loads((tmp_path / "ltx.json").read_text())["spec"]
    assert spec["mode"] == "i2v" and spec["image"].endswith("characters/mira/01.png")
    assert "no character 'nobody'" in fail("generate", "x", "--character", "nobody", "--model", "tiny-ltx")
    assert "either --character or --image" in fail(
        "generate", "x", "--character", "mira", "--image", str(clips["image"]), "--model", "tiny-ltx"
    )
    assert "1 to 4 reference images" in fail("character", "create", *[str(clips["image"])] * 5, "--name", "x")
    assert "character name" in fail("character", "create", str(clips["image"]), "--name", "../up")
