"""The editing modes end to end: the real server, the real engine (tiny-ltx, random weights), the
official ``openai`` SDK — image-to-video, remix, edit, extend, characters, the Images API, and
openreel's recut, loop, blend and storyboard — with the MP4s checked frame for frame.

SQLite only: the queue itself is covered on PostgreSQL by tests/test_server_sdk.py."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types import Video
from PIL import Image

from openreel.render.encode import probe
from remote_server import RemoteServer

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]

# Small, short and few steps: each job takes a second or two on a CPU.
SIZE, FPS = "256x128", 24
FAST = {"steps": 2, "seed": 7}


@pytest.fixture(scope="module")
def server(session_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteServer]:
    folder = tmp_path_factory.mktemp("modes")
    remote = RemoteServer(session_home, f"sqlite:///{folder / 'openreel.db'}")
    try:
        yield remote
    finally:
        remote.stop()


@pytest.fixture(scope="module")
def client(server: RemoteServer) -> openai.OpenAI:
    return server.client()


@pytest.fixture(scope="module")
def parent(client: openai.OpenAI) -> Video:
    """A 1 s tiny-ltx clip made from an image: the source of the edits below."""
    video = client.videos.create_and_poll(
        model="tiny-ltx",
        prompt="a kite over a beach",
        seconds="1",
        size=SIZE,
        input_reference=("ref.png", png(), "image/png"),
        extra_body=FAST,
    )
    assert video.status == "completed", video.error
    return video


def png(width: int = 64, height: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (230, 120, 20)).save(buffer, format="PNG")
    return buffer.getvalue()


def download(client: openai.OpenAI, video: Video, path: Path):
    assert video.status == "completed", video.error
    client.videos.download_content(video.id).write_to_file(path)
    info = probe(path)
    assert (info.codec, info.fps) == ("h264", FPS)
    return info


def by_id(video_id: str, **extra: object) -> dict:
    """``video[id]`` for edit/extend. openai 3.57 refuses ``video={"id": ...}`` on the client
    (its multipart file extraction asserts a file); the same field goes through extra_body,
    which the SDK serialises exactly as ``video[id]``."""
    return {"video": openai.omit, "extra_body": {**FAST, **extra, "video": {"id": video_id}}}


def openreel_post(client: openai.OpenAI, route: str, body: dict) -> Video:
    """openreel's own routes through the SDK's generic request method (same auth, same errors)."""
    return client.post(f"/openreel/{route}", body=body, cast_to=Video)


def test_image_to_video_has_the_exact_shape(client: openai.OpenAI, parent: Video, tmp_path: Path) -> None:
    assert parent.openreel["operation"] == "i2v" and parent.openreel["has_input_reference"]
    info = download(client, parent, tmp_path / "i2v.mp4")
    assert (info.width, info.height, info.frames) == (256, 128, 24)


def test_remix_edit_and_extend(client: openai.OpenAI, parent: Video, tmp_path: Path) -> None:
    remix = client.videos.remix(
        parent.id, prompt="the beach in snow", extra_body={**FAST, "strength": "subtle"}
    )
    assert remix.remixed_from_video_id == parent.id and remix.openreel["strength"] == 0.3
    edit = client.videos.edit(prompt="at dusk", **by_id(parent.id))
    extend = client.videos.extend(prompt="the kite flies higher", seconds="1", **by_id(parent.id))
    assert extend.seconds == "2"  # the stitched total, as the SDK documents
    for video, frames in ((remix, 24), (edit, 24), (extend, 48)):
        done = client.videos.poll(video.id)
        assert done.remixed_from_video_id == parent.id
        info = download(client, done, tmp_path / f"{video.id}.mp4")
        assert (info.width, info.height, info.frames) == (256, 128, frames)


def test_characters_from_a_video(client: openai.OpenAI, parent: Video, tmp_path: Path) -> None:
    client.videos.download_content(parent.id).write_to_file(tmp_path / "clip.mp4")
    character = client.videos.create_character(
        name="mira", video=("clip.mp4", (tmp_path / "clip.mp4").read_bytes(), "video/mp4")
    )
    assert character.id.startswith("char_") and character.name == "mira" and character.created_at > 0
    fetched = client.videos.get_character(character.id)
    assert (fetched.id, fetched.name) == (character.id, "mira")
    video = client.videos.create_and_poll(
        model="tiny-ltx",
        prompt="mira waves",
        seconds="1",
        size=SIZE,
        extra_body={**FAST, "character": "mira"},
    )
    assert video.openreel["operation"] == "i2v" and video.openreel["character"] == "mira"
    info = download(client, video, tmp_path / "mira.mp4")
    assert (info.width, info.height, info.frames) == (256, 128, 24)
    with pytest.raises(openai.NotFoundError):
        client.videos.get_character("char_nope")
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create_character(name="broken", video=("x.mp4", b"not a video", "video/mp4"))
    assert bad.value.code == "invalid_video" and bad.value.param == "video"


def test_images_generate_in_both_formats(client: openai.OpenAI, server: RemoteServer) -> None:
    result = client.images.generate(
        model="tiny-ltx", prompt="a lighthouse at dusk", size=SIZE, extra_body=FAST
    )
    with Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))) as image:
        assert (image.format, image.size) == ("PNG", (256, 128))
    as_url = client.images.generate(
        model="tiny-ltx", prompt="a lighthouse at dusk", size=SIZE, response_format="url", extra_body=FAST
    )
    url = as_url.data[0].url
    assert url.startswith(server.url) and as_url.data[0].b64_json is None
    response = httpx.get(url, headers={"Authorization": f"Bearer {client.api_key}"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.size == (256, 128)
    with pytest.raises(openai.BadRequestError) as bad:
        client.images.generate(model="tiny-ltx", prompt="x", n=11)  # up to 10: OpenAI's maximum
    assert bad.value.param == "n"


def split_png(horizontal: bool) -> bytes:
    """Two colours split down the middle, or across it: two images no remix could confuse."""
    image = Image.new("RGB", (64, 32), (220, 40, 40))
    box = (32, 0, 64, 32) if horizontal else (0, 16, 64, 32)
    image.paste((30, 60, 230), box)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_edit_remixes_the_uploaded_image(client: openai.OpenAI, server: RemoteServer) -> None:
    import numpy as np

    def edit(data: bytes, **options) -> np.ndarray:
        result = client.images.edit(
            model="tiny-ltx",
            image=("source.png", data, "image/png"),
            prompt="the same flag at night",
            extra_body={"strength": 0.5, **FAST},
            **options,
        )
        with Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json))) as made:
            return np.asarray(made.convert("RGB"), dtype=np.int16)

    left_right = edit(split_png(horizontal=True))
    assert left_right.shape == (64, 128, 3)  # size "auto": the image's own shape, 64 px at least
    # The same seed from another image makes another picture: the upload is what was remixed.
    assert np.abs(left_right - edit(split_png(horizontal=False))).mean() > 2
    assert edit(split_png(horizontal=True), size=SIZE).shape == (128, 256, 3)

    refusals = [
        ({"mask": ("mask.png", png(), "image/png")}, "mask"),
        ({"stream": True}, "stream"),
        ({"image": [("a.png", png(), "image/png"), ("b.png", png(), "image/png")]}, "image"),
        ({"image": ("a.png", b"not an image", "image/png")}, "image"),
        ({"model": "tiny-mochi"}, "model"),
    ]
    for options, param in refusals:
        arguments = {"image": ("a.png", png(), "image/png"), "prompt": "x", "model": "tiny-ltx", **options}
        with pytest.raises(openai.BadRequestError) as refused:
            client.images.edit(**arguments)
        assert refused.value.body["param"] == param, refused.value.body

    # Each edit's source image belongs to its still: deleting the stills removes them.
    kept = list((server.home / "uploads").glob("image_edit_*"))
    assert len(kept) == 3 and not any(p.name.startswith(".") for p in kept)
    headers = {"Authorization": f"Bearer {client.api_key}"}
    stills = httpx.get(f"{server.url}/v1/openreel/stills", params={"limit": 100}, headers=headers).json()[
        "data"
    ]
    for still in stills:
        assert (
            httpx.delete(f"{server.url}/v1/openreel/stills/{still['id']}", headers=headers).status_code == 200
        )
    assert list((server.home / "uploads").glob("image_edit_*")) == []


def test_recut_loop_and_blend(client: openai.OpenAI, parent: Video, tmp_path: Path) -> None:
    longer = client.videos.extend(prompt="more", seconds="1", **by_id(parent.id))
    longer = client.videos.poll(longer.id)
    recut = openreel_post(client, "recut", {"video_id": longer.id, "start": 0.5, "end": 1.5})
    assert recut.seconds == "1" and recut.openreel["parents"] == [longer.id]
    loop = openreel_post(client, "loop", {"video_id": parent.id, **FAST})
    blend = openreel_post(
        client,
        "blend",
        {"video_id": parent.id, "video_id_b": longer.id, "seconds": "1", "curve": "ease", **FAST},
    )
    assert loop.openreel["parents"] == [parent.id] and blend.openreel["parents"] == [parent.id, longer.id]
    image = "data:image/png;base64," + base64.b64encode(png()).decode()
    cards = [
        {"at": 0, "text": "dawn on the beach"},
        {"at": 0.5, "image_url": image},
        {"at": 1, "video_id": parent.id},
    ]
    board = openreel_post(
        client, "storyboard", {"cards": cards, "seconds": "1.5", "model": "tiny-ltx", "size": SIZE, **FAST}
    )
    assert board.openreel["parents"] == [parent.id] and board.prompt == "dawn on the beach"
    for video, frames in ((recut, 24), (loop, 24), (blend, 24), (board, 36)):
        done = client.videos.poll(video.id)
        info = download(client, done, tmp_path / f"{video.id}.mp4")
        assert (info.width, info.height, info.frames) == (256, 128, frames), video.openreel["operation"]
    assert recut.id in [v.id for v in client.videos.list(limit=100)]


def test_unsupported_and_malformed_requests(client: openai.OpenAI, parent: Video) -> None:
    mochi = client.videos.create_and_poll(
        model="tiny-mochi", prompt="a fox", seconds="1", size=SIZE, extra_body=FAST
    )
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.remix(mochi.id, prompt="x")
    assert bad.value.code == "unsupported_mode" and bad.value.param == "model"
    assert "tiny-ltx" in bad.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.extend(prompt="x", seconds="1", **by_id(mochi.id, backward=True))
    assert bad.value.code == "unsupported_mode" and "tiny-ltx" in bad.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.remix(parent.id, prompt="x", extra_body={"strength": "enormous"})
    assert bad.value.param == "strength"
    with pytest.raises(openai.NotFoundError):
        client.videos.edit(prompt="x", **by_id("video_nope"))
    waiting = client.videos.create(
        model="tiny-ltx", prompt="slow", seconds="1", size=SIZE, extra_body={"steps": 30}
    )
    with pytest.raises(openai.BadRequestError) as conflict:
        client.videos.remix(waiting.id, prompt="x")
    assert conflict.value.code == "video_not_ready"
    client.videos.delete(waiting.id)
    with pytest.raises(openai.BadRequestError) as bad:
        openreel_post(client, "recut", {"video_id": parent.id, "start": 0, "end": 5})
    assert bad.value.param == "end"
