"""Wan 2.1 VACE runs on its own pipeline (WanVACEPipeline): text alone, a first frame (i2v) and a
clip's tail (extend) reach it as a full-length control ``video`` with a ``mask`` that is 0 on the
given frames and 1 on the frames to make, and a character's images as ``reference_images`` — from
the CLI's ``--reference`` and from the server's ``character``. Results have the exact size, fps
and frames; models that take no reference images say which do."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from openreel.cli import app
from openreel.errors import SpecError
from openreel.models.catalog import get_card
from openreel.render.encode import probe, read_frames
from openreel.spec import VideoSpec

runner = CliRunner()
# The tiny card's native size: generated as asked, no upscale stage.
SIZE = "96x64"


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def fail(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0 and "Traceback" not in result.output
    return " ".join(result.output.split())


def spy_on(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Record the keyword arguments of every WanVACEPipeline call."""
    from diffusers import WanVACEPipeline

    calls: list[dict] = []
    real = WanVACEPipeline.__call__

    def record(self, *args, **kwargs):
        calls.append(kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(WanVACEPipeline, "__call__", record)
    return calls


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


def mask_values(call: dict) -> list[int]:
    """One value per mask frame (each frame is uniform: 0 keep, 255 generate)."""
    values = []
    for mask in call["mask"]:
        frame = np.asarray(mask)
        assert frame.min() == frame.max()
        values.append(int(frame[0, 0]))
    return values


def gradient(path: Path, width: int, height: int, shift: int = 0) -> Path:
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([(x + shift) % 255, y * 2 % 255, (x + y) % 255], -1).astype("uint8")
    Image.fromarray(image).save(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    gradient(folder / "ref.png", 160, 96)
    gradient(folder / "face.png", 40, 80, shift=90)  # portrait: kept whole, not cropped
    gradient(folder / "side.png", 64, 64, shift=30)
    return folder


@pytest.fixture(scope="module")
def t2v_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """2 s of tiny-wan-vace from text, with the pipeline's calls: the extend test's source."""
    out = tmp_path_factory.mktemp("vace") / "t2v.mp4"
    with pytest.MonkeyPatch.context() as monkeypatch:
        calls = spy_on(monkeypatch)
        cli(
            "generate", "a kite over a beach", "--model", "tiny-wan-vace", "--seconds", "2",
            "--size", SIZE, "--fps", "16", "--steps", "2", "--seed", "3", "--output", str(out), "-q",
        )  # fmt: skip
    return out, calls


def test_text_alone_is_plain_text_to_video(t2v_clip):
    out, calls = t2v_clip
    (call,) = calls
    assert not {"video", "mask", "reference_images"} & set(call)
    assert (call["width"], call["height"], call["num_frames"]) == (96, 64, 33)
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (96, 64, 16, 32)


def test_i2v_gives_the_image_as_the_first_frame_of_a_masked_video(inputs, tmp_path, monkeypatch):
    calls = spy_on(monkeypatch)
    out = tmp_path / "i2v.mp4"
    cli(
        "generate", "the scene comes alive", "--image", str(inputs / "ref.png"), "--model",
        "tiny-wan-vace", "--seconds", "2", "--size", "160x96", "--fps", "12", "--steps", "2",
        "--output", str(out), "-q",
    )  # fmt: skip
    (call,) = calls
    assert len(call["video"]) == len(call["mask"]) == call["num_frames"] == 33
    expected = pixels(Image.open(inputs / "ref.png").resize((96, 64), Image.Resampling.LANCZOS))
    assert np.abs(pixels(call["video"][0]) - expected).mean() < 8
    # The frames to make are mid-grey in the control video, as the pipeline's own example has it.
    assert {tuple(pixels(frame)[0, 0]) for frame in call["video"][1:]} == {(128, 128, 128)}
    assert mask_values(call) == [0] + [255] * 32
    assert "reference_images" not in call
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (160, 96, 12, 24)


def test_extend_keeps_the_clip_tail_under_mask_zero(t2v_clip, tmp_path, monkeypatch):
    clip, _ = t2v_clip
    calls = spy_on(monkeypatch)
    out = tmp_path / "extended.mp4"
    cli(
        "extend", str(clip), "the kite flies higher", "--seconds", "1", "--model", "tiny-wan-vace",
        "--steps", "2", "--output", str(out), "-q",
    )  # fmt: skip
    plan = json.loads(out.with_suffix(".json").read_text())["plan"]
    overlap = plan["windows"][0]["overlap"]
    assert overlap == 9  # 1 + 2 x 4 frames: whole latent frames of the causal VAE
    (call,) = calls
    assert len(call["video"]) == len(call["mask"]) == call["num_frames"] == plan["windows"][0]["num_frames"]
    assert mask_values(call) == [0] * overlap + [255] * (call["num_frames"] - overlap)
    source = np.stack(list(read_frames(clip))).astype(int)  # 16 fps, like the model
    given = np.stack([pixels(frame) for frame in call["video"][:overlap]])
    assert np.abs(given - source[-overlap:]).mean() < 8
    info = probe(out)
    assert (info.width, info.height, info.fps) == (96, 64, 16)
    assert info.frames == probe(clip).frames + 16
    # The clip itself comes first, unchanged but for the encode.
    head = np.stack(list(read_frames(out))[: probe(clip).frames]).astype(int)
    assert np.abs(head - source).mean() < 8


def test_references_reach_the_pipeline_whole(inputs, tmp_path, monkeypatch):
    calls = spy_on(monkeypatch)
    out = tmp_path / "mira.mp4"
    cli(
        "generate", "mira waves", "--model", "tiny-wan-vace", "--reference", str(inputs / "face.png"),
        "--reference", str(inputs / "side.png"), "--seconds", "1", "--size", SIZE, "--fps", "16",
        "--steps", "2", "--output", str(out), "-q",
    )  # fmt: skip
    (call,) = calls
    face, side = call["reference_images"]
    # Fitted within the 96x64 frame with their own aspect: the portrait is not cropped.
    assert face.size == (32, 64) and side.size == (64, 64)
    expected = pixels(Image.open(inputs / "face.png").resize((32, 64), Image.Resampling.LANCZOS))
    assert np.abs(pixels(face) - expected).mean() < 8
    assert "video" not in call
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (96, 64, 16, 16)
    recipe = json.loads(out.with_suffix(".json").read_text())
    given = [str((inputs / name).resolve()) for name in ("face.png", "side.png")]
    assert recipe["spec"]["references"] == given


def test_models_without_references_say_which_have_them(inputs, tmp_path):
    message = fail(
        "generate", "x", "--model", "tiny-wan", "--reference", str(inputs / "face.png"),
        "--output", str(tmp_path / "x.mp4"),
    )  # fmt: skip
    assert "tiny-wan cannot do reference images; models that can: wan2.1-vace-1.3b, tiny-wan-vace" in message
    message = fail(
        "generate", "x", "--model", "tiny-wan-vace", "--reference", str(tmp_path / "missing.png"),
        "--output", str(tmp_path / "x.mp4"),
    )  # fmt: skip
    assert "does not exist" in message


def test_reference_fields_are_checked():
    with pytest.raises(SpecError, match="t2v, i2v and extend") as error:
        VideoSpec(prompt="x", mode="remix", video="a.mp4", references=("a.png",)).validated()
    assert error.value.param == "references"
    with pytest.raises(SpecError, match="at most 4"):
        VideoSpec(prompt="x", references=tuple(f"{i}.png" for i in range(5))).validated()
    with pytest.raises(SpecError, match="list of image paths"):
        VideoSpec(prompt="x", references="a.png").validated()  # type: ignore[arg-type]
    # A recipe's JSON list comes back as the tuple.
    assert VideoSpec(prompt="x", references=["a.png"]).validated().references == ("a.png",)  # type: ignore[arg-type]


def test_the_server_keeps_a_character_by_its_reference_images(tmp_path, monkeypatch):
    """A character on VACE: its images reach the pipeline as reference_images; on another model
    the video starts from its first image as before."""
    from fastapi.testclient import TestClient

    from openreel.server.app import build_app
    from openreel.server.settings import Settings

    calls = spy_on(monkeypatch)
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'openreel.db'}",
        output_dir=tmp_path / "outputs",
        upload_dir=tmp_path / "uploads",
        idle_poll_s=0.05,
        default_size="96x64",
        default_seconds="1",
    )
    images = []
    for name, colour in (("a.png", (200, 30, 30)), ("b.png", (30, 200, 30))):
        Image.new("RGB", (48, 64), colour).save(tmp_path / name)
        images.append(("image", (name, (tmp_path / name).read_bytes(), "image/png")))
    with TestClient(build_app(settings), client=("127.0.0.1", 50000)) as client:
        character = client.post("/v1/videos/characters", data={"name": "mira"}, files=images).json()
        body = {"prompt": "mira waves", "model": "tiny-wan-vace", "character": "mira", "steps": 2, "fps": 16}
        video = client.post("/v1/videos", json=body)
        assert video.status_code == 200, video.text
        openreel = video.json()["openreel"]
        assert (openreel["operation"], openreel["character"]) == ("t2v", "mira")
        job = client.app.state.store.get(video.json()["id"])
        assert [Path(path).name for path in job.spec["references"]] == ["ref-0.png", "ref-1.png"]
        assert job.spec["image"] is None
        deadline = time.monotonic() + 60
        while (state := client.get(f"/v1/videos/{job.id}").json())["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert state["status"] == "completed", state
        (call,) = calls
        assert [pixels(image)[32, 24].tolist() for image in call["reference_images"]] == [
            [200, 30, 30],
            [30, 200, 30],
        ]
        content = client.get(f"/v1/videos/{job.id}/content")
        (tmp_path / "out.mp4").write_bytes(content.content)
        info = probe(tmp_path / "out.mp4")
        assert (info.width, info.height, info.fps, info.frames) == (96, 64, 16, 16)
        # Elsewhere a character is image-to-video from its first reference image.
        other = client.post("/v1/videos", json={**body, "model": "tiny-wan"}).json()
        assert other["openreel"]["operation"] == "i2v"
        other_job = client.app.state.store.get(other["id"])
        assert other_job.spec["image"].endswith("ref-0.png") and not other_job.spec["references"]
        assert character["reference_images"] == 2


def test_vace_cards_name_their_pipeline_and_modes():
    card = get_card("wan2.1-vace-1.3b")
    assert card.hub_repo == "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
    assert card.options["pipeline"] == "WanVACEPipeline" and card.options["conditioning"] == "video"
    assert card.modes == {"t2v", "i2v", "extend", "references"}
    assert get_card("tiny-wan-vace").modes == card.modes


def test_a_local_vace_folder_gets_its_checkpoint_card(t2v_clip):
    from openreel.models.weights import card_for_folder, weights_folder

    # Saved by the fixture's run; model_index.json names WanVACEPipeline.
    card = card_for_folder(weights_folder(get_card("tiny-wan-vace")))
    assert card.options["pipeline"] == "WanVACEPipeline" and "references" in card.modes


def test_tiny_vace_build_is_deterministic_and_small(tmp_path):
    import hashlib

    from openreel.models.tiny import build_tiny_pipeline

    def digests(folder: Path) -> dict[str, str]:
        return {
            str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in folder.rglob("*")
            if path.is_file()
        }

    build_tiny_pipeline("wan-vace", tmp_path / "a")
    build_tiny_pipeline("wan-vace", tmp_path / "b")
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert sum(path.stat().st_size for path in (tmp_path / "a").rglob("*") if path.is_file()) < 5 * 2**20
