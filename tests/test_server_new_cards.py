"""The newest cards' twins through the real server and the official ``openai`` SDK, as a developer
would call them: Wan 2.2 A14B (both experts), HunyuanVideo 1.5, SkyReels-V2 diffusion forcing and
LTX-2 (with its sound). What is checked is the MP4 a client downloads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from PIL import Image

from openreel.models.catalog import get_card
from remote_server import RemoteServer

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]

NEW_TWINS = [
    "tiny-wan2.2-t2v-a14b",
    "tiny-wan2.2-i2v-a14b",
    "tiny-hunyuan15",
    "tiny-hunyuanvideo-1.5-i2v",
    "tiny-skyreels",
    "tiny-ltx-2",
]


@pytest.fixture(scope="module")
def client(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    folder = tmp_path_factory.mktemp("new-cards")
    remote = RemoteServer(
        session_home, f"sqlite:///{folder / 'openreel.db'}", env={"OPENREEL_OUTPUT_DIR": str(folder / "out")}
    )
    try:
        yield remote.client()
    finally:
        remote.stop()


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("model", NEW_TWINS)
def test_each_new_twin_makes_the_asked_video_through_the_sdk(
    client: openai.OpenAI, model: str, tmp_path: Path
) -> None:
    import av

    card = get_card(model)
    size = f"{card.native_width}x{card.native_height}"
    # The image-to-video checkpoints need the image they start from.
    image = {} if "t2v" in card.modes else {"input_reference": ("start.png", png(96, 64), "image/png")}
    video = client.videos.create_and_poll(
        model=model, prompt="a kite over the sea", seconds="1", size=size,
        extra_body={"steps": 2, "fps": card.fps, "seed": 4}, **image,
    )  # fmt: skip
    assert video.status == "completed", video.error
    assert video.openreel["model"] == model
    path = tmp_path / "made.mp4"
    client.videos.download_content(video.id).write_to_file(path)
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        kinds = sorted(stream.type for stream in container.streams)
    assert len(frames) == card.fps and frames[0].shape == (card.native_height, card.native_width, 3)
    # Sound where the model makes it (LTX-2), and only there.
    assert kinds == (["audio", "video"] if card.makes_audio else ["video"])
