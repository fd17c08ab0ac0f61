"""The real server, the real engine (tiny-wan), driven by the official ``openai`` SDK exactly as
a developer's code would drive OpenAI — once on SQLite and once on PostgreSQL."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then taken as arguments)
from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from PIL import Image

from db_fixtures import postgres_database  # noqa: F401
from openreel.jobs.store import JobStore
from openreel.server.auth import create_api_key
from remote_server import RemoteServer

# Every videos.* method is marked deprecated in the SDK (the hosted API shut down): expected here.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]

# Small and short: the point is the API, not the pictures. steps=1 keeps each job ~1-2 s on CPU.
FAST = {"steps": 1}
UPLOAD_LIMIT = 200_000


class Server:
    def __init__(self, remote: RemoteServer, keys: dict[str, str], outputs: Path):
        self.remote, self.keys, self.outputs = remote, keys, outputs

    def client(self, who: str = "alice") -> openai.OpenAI:
        return self.remote.client(self.keys[who])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, session_home: Path, tmp_path_factory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp(f"sdk-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'openreel.db'}"
    else:
        url = request.getfixturevalue("postgres_database")()
    store = JobStore(url)
    keys = {name: create_api_key(store, name)[1] for name in ("alice", "bob", "carol")}
    store.close()
    # The session's openreel folder: tiny model builds are shared with the other servers.
    remote = RemoteServer(
        session_home,
        url,
        env={"OPENREEL_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT), "OPENREEL_OUTPUT_DIR": str(folder)},
    )
    try:
        yield Server(remote, keys, folder)
    finally:
        remote.stop()


def wait_until(client: openai.OpenAI, video_id: str, statuses: tuple[str, ...], timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = client.videos.retrieve(video_id)
        if video.status in statuses:
            return video
        time.sleep(0.05)
    raise AssertionError(f"{video_id} is still {video.status}")


def png(width: int = 32, height: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_create_and_poll_then_download_every_variant(server: Server, tmp_path: Path) -> None:
    import av

    client = server.client()
    video = client.videos.create_and_poll(
        model="sora-2",
        prompt="a lighthouse at dusk",
        seconds="1",
        size="160x96",
        extra_body={**FAST, "seed": 1234, "fps": 8},
    )
    assert video.status == "completed", video.error
    assert (video.object, video.model, video.size, video.seconds, video.progress) == (
        "video",
        "sora-2",
        "160x96",
        "1",
        100,
    )
    assert video.completed_at >= video.created_at and video.error is None
    extras = video.openreel  # extra fields of the SDK's model are kept as plain dicts
    assert extras["model"] == "tiny-wan" and extras["seed"] == 1234 and extras["fps"] == 8
    assert extras["outputs"] == [{"variation": 1, "seed": 1234}] and extras["attempts"] == 1

    client.videos.download_content(video.id).write_to_file(tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.codec_context.width, stream.codec_context.height) == (160, 96)
        assert stream.average_rate == 8 and frames == 8
    for variant in ("thumbnail", "spritesheet"):
        path = tmp_path / f"{variant}.webp"
        client.videos.download_content(video.id, variant=variant).write_to_file(path)
        with Image.open(path) as image:
            assert image.format == "WEBP"  # the type OpenAI's spec lists for previews
            if variant == "thumbnail":
                assert image.size == (160, 96)
    assert client.videos.retrieve(video.id).id == video.id
    assert any(model.id == "tiny-wan" for model in client.models.list())


def test_list_pages_through_both_orders(server: Server) -> None:
    client = server.client("carol")  # carol's videos are this test's alone
    ids = [
        client.videos.create(
            prompt=f"clip {i}", model="tiny-wan", seconds="1", size="160x96", extra_body=FAST
        ).id
        for i in range(5)
    ]
    first = client.videos.list(limit=2, order="asc")
    assert [v.id for v in first.data] == ids[:2] and first.has_more and first.last_id == ids[1]
    assert [v.id for v in client.videos.list(limit=2, order="asc")] == ids  # the SDK follows after=last_id
    assert [v.id for v in client.videos.list(limit=3, order="desc")] == ids[::-1]
    page = client.videos.list(after=ids[3], order="desc")
    assert [v.id for v in page.data] == ids[2::-1] and not page.has_more
    for video_id in ids:
        deleted = client.videos.delete(video_id)
        assert (deleted.id, deleted.deleted, deleted.object) == (video_id, True, "video.deleted")
    assert list(client.videos.list()) == []


def test_delete_cancels_a_running_job(server: Server) -> None:
    client = server.client()
    video = client.videos.create(
        prompt="a long take", model="tiny-wan", seconds="3", size="320x192", extra_body={"steps": 40}
    )
    assert video.status == "queued"
    running = wait_until(client, video.id, ("in_progress", "completed", "failed"))
    assert running.status == "in_progress"
    raw = client.videos.with_raw_response.retrieve(video.id)
    assert int(raw.headers["openai-poll-after-ms"]) >= 250
    with pytest.raises(openai.BadRequestError) as conflict:
        client.videos.download_content(video.id)
    assert conflict.value.code == "video_not_ready"
    assert client.videos.delete(video.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    deadline = time.monotonic() + 30
    while (server.outputs / video.id).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (server.outputs / video.id).exists()
    # The worker stopped within a step and is free for the next job.
    after = client.videos.create_and_poll(
        prompt="next", model="tiny-wan", seconds="1", size="160x96", extra_body=FAST
    )
    assert after.status == "completed"


def test_every_error_class_the_sdk_knows(server: Server) -> None:
    client = server.client()
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="x", model="tiny-wan", size="1281x720")
    assert bad.value.param == "size" and bad.value.status_code == 400
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="x", model="tiny-wan", seconds="25")
    assert bad.value.param == "seconds" and "at most" in bad.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="x", model="sora-9")
    assert bad.value.code == "model_not_found"
    # The owner's local prompt policy: refused at once, naming the rule; nothing is queued.
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="a deepfake porn clip of my neighbour", model="tiny-wan")
    assert bad.value.code == "moderation_blocked" and "non_consensual_intimate" in bad.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="x", extra_body={"colour": "red"})
    assert bad.value.code == "unknown_parameter" and bad.value.param == "colour"
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(
            prompt="x", model="tiny-wan", input_reference=("ref.png", b"not an image", "image/png")
        )
    assert bad.value.code == "invalid_image"
    with pytest.raises(openai.APIStatusError) as too_large:
        client.videos.create(prompt="x", input_reference=("ref.png", b"\0" * (UPLOAD_LIMIT + 1), "image/png"))
    assert too_large.value.status_code == 413 and too_large.value.code == "file_too_large"
    with pytest.raises(openai.AuthenticationError) as unauthorised:
        server.remote.client("ork-not-a-key").videos.list()
    assert unauthorised.value.code == "invalid_api_key"
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("video_does_not_exist")
    with pytest.raises(openai.NotFoundError):
        client.videos.delete("video_does_not_exist")
    with pytest.raises(openai.NotFoundError) as missing:
        client.videos.remix("video_does_not_exist", prompt="x")
    assert missing.value.code == "video_not_found"


def test_keys_see_only_their_own_videos(server: Server) -> None:
    alice, bob = server.client("alice"), server.client("bob")
    video = alice.videos.create(
        prompt="alice's", model="tiny-wan", seconds="1", size="160x96", extra_body=FAST
    )
    assert video.id not in [v.id for v in bob.videos.list()]
    assert video.id in [v.id for v in alice.videos.list()]
    for attempt in (bob.videos.retrieve, bob.videos.delete, bob.videos.download_content):
        with pytest.raises(openai.NotFoundError):
            attempt(video.id)
    assert alice.videos.poll(video.id).status == "completed"
