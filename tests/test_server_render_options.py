"""quality, memory and LoRAs over the API: the real server and engine (tiny-wan) driven by the
official ``openai`` SDK with ``extra_body``, as the CLI's --quality, --memory and --lora.

LoRAs over the API are names of files in the server's LoRA folder (--lora-dir); what is checked
is what a client gets: the echo, the credits, the recipe (names, never server paths), frames that
change with the LoRA, and one clear 400 for each bad entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from tests.test_lora import offered_loras

from remote_server import RemoteServer

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]

SMALL = {"model": "tiny-wan", "seconds": "1", "size": "96x64"}


@pytest.fixture(scope="module")
def server(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    folder = tmp_path_factory.mktemp("render-options")
    loras = offered_loras(folder / "loras")
    remote = RemoteServer(
        session_home,
        f"sqlite:///{folder / 'openreel.db'}",
        args=("--lora-dir", str(loras)),
        env={"OPENREEL_OUTPUT_DIR": str(folder / "outputs")},
    )
    try:
        yield remote
    finally:
        remote.stop()


def made(client: openai.OpenAI, **extra_body) -> openai.types.Video:
    video = client.videos.create(prompt="a harbour at dawn", **SMALL, extra_body=extra_body)
    deadline = time.monotonic() + 120
    while video.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        video = client.videos.retrieve(video.id)
    assert video.status == "completed", video.error
    return video


def frames(client: openai.OpenAI, video_id: str, tmp_path: Path) -> np.ndarray:
    import av

    path = tmp_path / f"{video_id}.mp4"
    client.videos.download_content(video_id).write_to_file(path)
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_the_studio_lists_the_loras_the_server_offers(server: RemoteServer) -> None:
    listed = httpx.get(f"{server.url}/v1/openreel/loras", timeout=30).json()["data"]
    by_id = {lora["id"]: lora for lora in listed}
    assert set(by_id) == {"harbour-look", "ltx-look", "notes"}
    assert by_id["harbour-look"]["family"] == "wan" and by_id["harbour-look"]["author"] == "Ada Lovelace"
    assert by_id["ltx-look"]["family"] == "ltx" and by_id["ltx-look"]["error"] is None
    assert "not a readable safetensors file" in by_id["notes"]["error"]
    assert str(server.home) not in json.dumps(listed) and "/loras" not in json.dumps(listed)


def test_quality_memory_and_a_lora_reach_the_video(server: RemoteServer, tmp_path: Path) -> None:
    client = server.client()
    plain = made(client, seed=7, steps=2)
    styled = made(client, seed=7, steps=2, quality="draft", memory="low", loras=["harbour-look:0.7"])

    echo = styled.openreel
    assert echo["quality"] == "draft" and echo["memory"] == "low"
    assert echo["worker"].endswith(":w0")  # the server's one worker thread made it
    assert echo["loras"] == [{"source": "harbour-look", "scale": 0.7}]
    assert echo["credits"]["loras"] == [
        {"id": "harbour-look.safetensors", "author": "Ada Lovelace", "licence": "CC-BY-4.0"}
    ]
    recipe = httpx.get(f"{server.url}/v1/openreel/videos/{styled.id}/recipe", timeout=30).json()
    assert recipe["spec"]["quality"] == "draft" and recipe["spec"]["memory"] == "low"
    assert recipe["spec"]["loras"] == [{"source": "harbour-look", "scale": 0.7}]  # a name, not a path
    assert "draft" in recipe["plan"]["quality_note"]

    # The LoRA changed the pictures (the same seed and steps make the same frames without it).
    difference = frames(client, styled.id, tmp_path).astype(int) - frames(client, plain.id, tmp_path)
    assert np.abs(difference).max() > 8


@pytest.mark.parametrize(
    ("extra", "param", "says"),
    [
        ({"loras": ["../../etc/passwd"]}, "loras", "is not a name"),
        ({"loras": ["/etc/passwd"]}, "loras", "is not a name"),
        ({"loras": ["Org/some-lora"]}, "loras", "is not a name"),
        ({"loras": ["sunset"]}, "loras", "no LoRA named 'sunset' (it offers: harbour-look, ltx-look, notes)"),
        ({"loras": ["ltx-look"]}, "loras", "is for LTX-Video, not Wan"),
        ({"loras": ["notes"]}, "loras", "is not a readable safetensors file"),
        ({"loras": ["harbour-look:many"]}, "loras", "offers no LoRA named 'harbour-look:many'"),
        ({"loras": ["harbour-look:99"]}, "loras", "LoRA scale must be between"),
        ({"quality": "turbo"}, "quality", "draft"),
        ({"memory": "huge"}, "memory", "auto"),
    ],
)
def test_bad_render_options_are_one_clear_400(
    server: RemoteServer, extra: dict, param: str, says: str
) -> None:
    client = server.client()
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(prompt="a harbour at dawn", **SMALL, extra_body=extra)
    error = refused.value.body
    assert error["param"] == param and says in error["message"], error
    assert str(server.home) not in error["message"]


def test_a_remix_takes_the_render_options_too(server: RemoteServer) -> None:
    client = server.client()
    source = made(client, seed=3, steps=2)
    remix = client.videos.remix(
        source.id, prompt="the harbour at night", extra_body={"quality": "final", "loras": ["harbour-look"]}
    )
    assert remix.openreel["quality"] == "final"
    assert remix.openreel["loras"] == [{"source": "harbour-look", "scale": 1.0}]
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.remix(source.id, prompt="again", extra_body={"loras": ["../x"]})
    assert refused.value.body["param"] == "loras"


def test_sound_is_on_where_the_model_makes_it_and_off_when_asked(
    server: RemoteServer, tmp_path: Path
) -> None:
    import av

    client = server.client()

    def tracks(**extra_body) -> tuple[openai.types.Video, list[str]]:
        video = client.videos.create_and_poll(
            prompt="a drummer in a jazz club", model="tiny-ltx-2", seconds="1", size="128x64",
            extra_body={"steps": 2, **extra_body},
        )  # fmt: skip
        assert video.status == "completed", video.error
        path = tmp_path / f"{video.id}.mp4"
        client.videos.download_content(video.id).write_to_file(path)
        with av.open(str(path)) as container:
            return video, [stream.type for stream in container.streams]

    # As with Sora 2: sound by default where the model makes it; audio=false makes a silent video.
    _, with_sound = tracks()
    assert sorted(with_sound) == ["audio", "video"]
    silent, without = tracks(audio=False)
    assert without == ["video"] and silent.openreel["audio"] is False
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(prompt="a quiet lake", **SMALL, extra_body={"audio": True})
    assert refused.value.body["param"] == "audio" and "sound" in refused.value.body["message"]
