"""The server under faults and hostile input (issue 14): workers that outlive any job error,
bad input answered 400 at the door instead of a 500 or a failed job later, limits enforced while
reading, no leaks. TestClient over the real queue (SQLite) with test_api's fake engine."""

from __future__ import annotations

import base64
import io
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from openreel.server.app import build_app
from openreel.server.settings import Settings
from test_api import LOOPBACK, FakeEngine, assert_error, png, wait_for


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'openreel.db'}",
        output_dir=tmp_path / "outputs",
        upload_dir=tmp_path / "uploads",
        sora_2_model="tiny-wan",
        sora_2_pro_model="tiny-ltx",
        idle_poll_s=0.05,
        default_size="160x96",
        default_seconds="1",
    )


@pytest.fixture
def client(settings: Settings):
    FakeEngine.gate = None
    with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as test_client:
        yield test_client


# --- 1. workers survive any job error ---------------------------------------------------------


def test_a_storage_error_fails_the_job_and_the_worker_lives_on(settings: Settings, tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the output folder should be")
    settings.output_dir = blocker / "outputs"  # mkdir under a file fails, as on a read-only disk
    with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as http:
        failed = wait_for(http, http.post("/v1/videos", json={"prompt": "a"}).json()["id"])
        assert failed["status"] == "failed" and failed["error"]["code"] == "storage_unavailable"
        assert str(tmp_path) not in failed["error"]["message"]
        health = http.get("/healthz")
        assert health.status_code == 200 and health.json()["workers"] == 1
        blocker.unlink()  # the disk is back: the same worker makes the next job
        done = wait_for(http, http.post("/v1/videos", json={"prompt": "b"}).json()["id"])
        assert done["status"] == "completed"


def test_a_database_that_refuses_the_failure_does_not_kill_the_worker(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.app.state.store
    calls = []

    def full_disk(*args, **kwargs):
        calls.append(args)
        raise OSError("database or disk is full")

    def broken_generate(*args, **kwargs):
        raise RuntimeError("the engine broke")

    monkeypatch.setattr(store, "fail", full_disk)
    monkeypatch.setattr(FakeEngine, "generate", broken_generate)
    first = client.post("/v1/videos", json={"prompt": "a"}).json()["id"]
    deadline = time.monotonic() + 10
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert calls, "the worker never tried to record the failure"
    monkeypatch.undo()  # the database has room again, the engine works again
    time.sleep(0.3)
    health = client.get("/healthz").json()
    assert health["workers"] == health["workers_configured"] == 1 and health["status"] == "ok"
    done = wait_for(client, client.post("/v1/videos", json={"prompt": "b"}).json()["id"])
    assert done["status"] == "completed", done
    assert client.get(f"/v1/videos/{first}").json()["status"] == "in_progress"  # until recovery takes it


def test_healthz_reports_dead_workers(settings: Settings) -> None:
    def engine_that_exits():
        if threading.current_thread().name.startswith("openreel-worker-"):
            raise SystemExit("a worker thread that ends for good")
        return FakeEngine()  # the request path's checking engine

    with TestClient(build_app(settings, engine_factory=engine_that_exits), client=LOOPBACK) as http:
        assert http.get("/healthz").json()["workers"] == 1
        http.post("/v1/videos", json={"prompt": "a"})
        deadline = time.monotonic() + 5
        while http.get("/healthz").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        response = http.get("/healthz")
        assert response.status_code == 503, response.json()
        assert response.json()["status"] == "degraded" and response.json()["workers"] == 0


# --- 5. hostile values are 400s, never 500s ---------------------------------------------------


@pytest.fixture
def finished(client: TestClient) -> str:
    return wait_for(client, client.post("/v1/videos", json={"prompt": "source"}).json()["id"])["id"]


def _json(client: TestClient, path: str, raw: bytes):
    return client.post(path, content=raw, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    "seconds",
    ["1e308", "nan", "inf", 1e308, "-inf", True],
    ids=["1e308", "nan", "inf", "float", "-inf", "bool"],
)
def test_impossible_seconds_are_400(client: TestClient, finished: str, seconds) -> None:
    assert_error(client.post("/v1/videos", json={"prompt": "a", "seconds": seconds}), 400, param="seconds")
    extension = {"prompt": "a", "seconds": seconds, "video": {"id": finished}}
    assert_error(client.post("/v1/videos/extensions", json=extension), 400, param="seconds")
    assert_error(client.post("/v1/openreel/loop", json={"video_id": finished, "seconds": seconds}), 400)


def test_nan_and_inf_numbers_are_400(client: TestClient, finished: str) -> None:
    for raw in (b'{"video_id": "%s", "end": NaN}', b'{"video_id": "%s", "start": Infinity}'):
        assert_error(_json(client, "/v1/openreel/recut", raw % finished.encode()), 400)
    assert_error(client.post("/v1/videos", json={"prompt": "a", "guidance": "nan"}), 400, param="guidance")


def test_text_that_cannot_be_stored_is_400(client: TestClient) -> None:
    assert_error(_json(client, "/v1/videos", b'{"prompt": "\\ud800"}'), 400, param="prompt")
    assert_error(client.post("/v1/videos", json={"prompt": "a\x00b"}), 400, param="prompt")
    assert_error(client.post("/v1/videos", data={"prompt": "a\x00b"}), 400, param="prompt")
    assert_error(client.get("/v1/videos/video_1%002"), 400)
    assert_error(client.get("/v1/videos?after=a%00b"), 400)


def test_deep_nesting_is_400(client: TestClient) -> None:
    deep = b'{"prompt": "a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_error(_json(client, "/v1/videos", deep), 400)
    assert_error(_json(client, "/v1/videos", b'{"prompt": ' + b'{"a": ' * 50 + b"1" + b"}" * 51), 400)
    assert_error(client.post("/v1/videos", data={"prompt": "a", "x" + "[a]" * 5000: "1"}), 400)


# --- 6. inputs checked by content and range at the door ---------------------------------------


def _clip(path: Path, frames: int = 24) -> bytes:
    from openreel.render.encode import encode_video

    moving = [np.full((64, 96, 3), (i * 10) % 255, np.uint8) for i in range(frames)]
    return encode_video(moving, path, fps=24).read_bytes()


def _edit(client: TestClient, data: bytes, name: str = "clip.mp4"):
    return client.post("/v1/videos/edits", files={"prompt": (None, "x"), "video": (name, data, "video/mp4")})


def test_an_image_or_a_truncated_clip_is_not_a_video(client: TestClient, tmp_path: Path) -> None:
    assert_error(_edit(client, png(64, 64)), 400, "invalid_video", "video")
    whole = _clip(tmp_path / "whole.mp4")
    assert_error(_edit(client, whole[: len(whole) * 2 // 3]), 400, "invalid_video", "video")
    accepted = _edit(client, whole)
    assert accepted.status_code == 200, accepted.text
    assert not [p for p in (tmp_path.parent / "uploads").glob("upload_*") if p.stat().st_size < len(whole)]


def test_out_of_range_numbers_are_refused_at_the_door(client: TestClient, finished: str) -> None:
    remix = f"/v1/videos/{finished}/remix"
    assert_error(client.post(remix, json={"prompt": "x", "strength": 1e-300}), 400, param="strength")
    assert_error(client.post("/v1/videos", json={"prompt": "a", "fps": True}), 400, param="fps")
    assert_error(client.post("/v1/videos", json={"prompt": "a", "steps": False}), 400, param="steps")
    assert client.post(remix, json={"prompt": "x", "strength": 0.5}).status_code == 200


# --- 4. decoded-size budget before decoding, on every route that takes an image --------------


def _png_bomb(width: int, height: int, rows: int | None = None) -> bytes:
    """A 16-bit RGBA PNG of one colour: tiny on the wire, huge once decoded (written by hand).
    ``rows``: compress only that many rows (a header that promises more than the file holds)."""
    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    row = b"\x00" + b"\x00" * (width * 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(rows or height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def test_image_bombs_are_refused_before_decoding(client: TestClient, finished: str) -> None:
    bomb = _png_bomb(4000, 4000)  # 122 MiB decoded, within the pixel limit, ~0.1 MB on the wire
    assert len(bomb) < 1_000_000
    started = time.monotonic()
    form = {"prompt": (None, "a"), "model": (None, "tiny-ltx")}
    created = client.post("/v1/videos", files={**form, "input_reference": ("a.png", bomb, "image/png")})
    assert_error(created, 400, "image_too_large", "input_reference")
    character = client.post(
        "/v1/videos/characters", files={"name": (None, "bob"), "image": ("a.png", bomb, "image/png")}
    )
    assert_error(character, 400, "image_too_large", "image")
    verify = client.post("/v1/openreel/verify", files={"file": ("a.png", bomb, "image/png")})
    assert_error(verify, 400, "image_too_large")
    huge = client.post(
        "/v1/openreel/verify", files={"file": ("a.png", _png_bomb(30000, 30000, rows=10), "image/png")}
    )
    assert_error(huge, 400, "image_too_large")
    assert time.monotonic() - started < 10  # no decode of gigabytes happened


# --- 3. body limits enforced while reading ----------------------------------------------------


@pytest.fixture
def live_url(settings: Settings):
    """The app on a real socket (uvicorn in a thread): TestClient reads a whole body before the
    app sees it, so only a real server shows when reading stops."""
    import socket

    import uvicorn

    settings.max_body_bytes = 1 << 20
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build_app(settings, engine_factory=FakeEngine)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x"])
def test_a_chunked_body_is_refused_once_it_passes_the_limit(live_url: str, content_type: str) -> None:
    """2 MiB of a chunked body that never ends: the 413 must come while the body is still arriving
    (a server that reads the whole body first would wait for the rest forever)."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(live_url)
    head = (
        f"POST /v1/videos HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b" " * (64 << 10)
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        conn.sendall(head)
        for _ in range(32):
            conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        answer = conn.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"code":"payload_too_large"' in answer.replace(" ", "")


# --- 2. DNS rebinding and cross-site requests against the no-key loopback server --------------


@pytest.fixture
def loopback(settings: Settings):
    """A client that reaches the app as uvicorn bound to 127.0.0.1 would (scope server 127.0.0.1)."""
    settings.allowed_hosts = ["studio.example"]
    app = build_app(settings, engine_factory=FakeEngine)
    with TestClient(app, base_url="http://127.0.0.1:8000", client=LOOPBACK) as test_client:
        yield test_client


def test_a_rebound_host_name_is_refused(loopback: TestClient) -> None:
    made = loopback.post("/v1/videos", json={"prompt": "mine"})
    assert made.status_code == 200, made.text
    for host in ("rebind.example", "rebind.example:8000", "127.0.0.1.rebind.example"):
        headers = {"host": host}
        assert_error(loopback.get("/v1/videos", headers=headers), 400, "invalid_host")
        assert_error(loopback.delete(f"/v1/videos/{made.json()['id']}", headers=headers), 400, "invalid_host")
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "studio.example"):
        assert loopback.get("/v1/videos", headers={"host": host}).status_code == 200, host
    assert loopback.get(f"/v1/videos/{made.json()['id']}").json()["status"] != "deleted"


def test_cross_site_simple_requests_are_refused(loopback: TestClient) -> None:
    evil = {"origin": "https://evil.example"}
    attempts = [
        loopback.post("/v1/videos", data={"prompt": "csrf"}, headers=evil),  # form-urlencoded
        loopback.post("/v1/videos", files={"prompt": (None, "csrf")}, headers=evil),  # multipart
        loopback.post(
            "/v1/videos", content=b'{"prompt": "csrf"}', headers={**evil, "content-type": "text/plain"}
        ),
        loopback.post("/v1/videos", json={"prompt": "csrf"}, headers={"sec-fetch-site": "cross-site"}),
        loopback.post("/v1/videos", json={"prompt": "csrf"}, headers={"origin": "null"}),
    ]
    for response in attempts:
        assert_error(response, 403, "cross_origin_refused")
    # Without an Origin a body that is not JSON is not read as JSON (what a <form> could send).
    plain = loopback.post("/v1/videos", content=b'{"prompt": "x"}', headers={"content-type": "text/plain"})
    assert_error(plain, 415)
    assert loopback.get("/v1/videos").json()["data"] == []
    # The page itself (same origin) and the SDK (no Origin) still work.
    same = loopback.post("/v1/videos", json={"prompt": "ok"}, headers={"origin": "http://127.0.0.1:8000"})
    assert same.status_code == 200, same.text
    assert loopback.post("/v1/videos", json={"prompt": "sdk"}).status_code == 200


# --- 7. leaks ---------------------------------------------------------------------------------


def test_messages_never_show_server_paths(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from openreel.errors import SpecError

    def plan_that_names_the_file(self, spec):
        raise SpecError(f"the image {spec.image} is too dark", param="input_reference")

    def generate_that_names_the_file(self, spec, output, **kwargs):
        raise RuntimeError(f"could not write {output}")

    form = {"prompt": (None, "a"), "model": (None, "tiny-ltx")}
    with monkeypatch.context() as patch:
        patch.setattr(FakeEngine, "plan", plan_that_names_the_file)
        refused = client.post("/v1/videos", files={**form, "input_reference": ("a.png", png(), "image/png")})
    error = assert_error(refused, 400, param="input_reference")
    assert str(tmp_path) not in error["message"] and "upload" not in error["message"], error
    assert "<server file>" in error["message"]
    monkeypatch.setattr(FakeEngine, "generate", generate_that_names_the_file)
    failed = wait_for(client, client.post("/v1/videos", json={"prompt": "a"}).json()["id"])
    assert failed["status"] == "failed" and str(tmp_path) not in failed["error"]["message"], failed
    assert "outputs" not in failed["error"]["message"]


def test_healthz_shows_job_counts_only_to_their_owner(client: TestClient) -> None:
    from openreel.server.auth import create_api_key

    store = client.app.state.store
    wait_for(client, client.post("/v1/videos", json={"prompt": "before keys"}).json()["id"])
    _, alice = create_api_key(store, "alice")
    _, bob = create_api_key(store, "bob")
    made = client.post("/v1/videos", json={"prompt": "a"}, headers={"authorization": f"Bearer {alice}"})
    assert made.status_code == 200
    anonymous = client.get("/healthz").json()
    assert anonymous["jobs"] is None and anonymous["workers"] == 1
    assert (
        sum(client.get("/healthz", headers={"authorization": f"Bearer {alice}"}).json()["jobs"].values()) == 1
    )
    assert client.get("/healthz", headers={"authorization": f"Bearer {bob}"}).json()["jobs"] == {}


def test_a_still_is_not_deleted_through_the_videos_route(client: TestClient) -> None:
    still = client.post("/v1/openreel/stills", json={"prompt": "a", "model": "tiny-wan", "size": "64x64"})
    assert still.status_code == 200, still.text
    still_id = still.json()["id"]
    assert_error(client.get(f"/v1/videos/{still_id}"), 404)
    assert_error(client.delete(f"/v1/videos/{still_id}"), 404)
    assert client.get(f"/v1/openreel/stills/{still_id}").status_code == 200


# --- 10. OpenAI compatibility: limit=0, a not-finished video is not retried -------------------


def test_limit_zero_is_a_valid_page(client: TestClient, finished: str) -> None:
    page = client.get("/v1/videos?limit=0")
    assert page.status_code == 200, page.text
    assert page.json()["data"] == [] and page.json()["has_more"] is True


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_sdk_asks_once_for_an_unfinished_video(live_url: str) -> None:
    """The SDK retries 409 and 5xx (twice by default): a not-finished download must not be one."""
    import httpx
    import openai

    FakeEngine.gate = threading.Event()  # the job stays in progress
    requests: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda request: requests.append(request.url.path)]})
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key="unused", http_client=http)
    try:
        video = client.videos.create(prompt="slow", model="sora-2", seconds="1", size="160x96")
        with pytest.raises(openai.BadRequestError) as refused:
            client.videos.download_content(video.id)
        assert refused.value.code == "video_not_ready"
        assert requests.count(f"/v1/videos/{video.id}/content") == 1
    finally:
        FakeEngine.gate.set()


# --- 8. retention: expires_at, the sweep, characters and stills listed and deleted ------------


def test_finished_videos_expire_and_the_sweep_removes_files_and_rows(settings: Settings) -> None:
    settings.retention = "1h"
    with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as http:
        form = {"prompt": (None, "a"), "model": (None, "tiny-ltx")}
        made = http.post("/v1/videos", files={**form, "input_reference": ("a.png", png(), "image/png")})
        video = wait_for(http, made.json()["id"])
        assert video["status"] == "completed"
        assert video["expires_at"] == pytest.approx(video["completed_at"] + 3600, abs=2)
        kept = wait_for(http, http.post("/v1/videos", json={"prompt": "kept"}).json()["id"])
        executor, store = http.app.state.executor, http.app.state.store
        folder, upload = executor.job_dir(video["id"]), store.get(video["id"]).input_reference
        assert folder.is_dir() and Path(upload).is_file()
        assert executor.sweep(now=video["completed_at"] + 60) == []  # not yet
        with store._write() as conn:  # the first one finished long ago
            from openreel.jobs.store import jobs

            conn.execute(jobs.update().where(jobs.c.id == video["id"]).values(expires_at=time.time() - 1))
        assert executor.sweep() == [video["id"]]
        assert not folder.exists() and not Path(upload).exists()
        assert store.get(video["id"], include_deleted=True) is None
        assert_error(http.get(f"/v1/videos/{video['id']}"), 404)
        assert http.get(f"/v1/videos/{kept['id']}").json()["status"] == "completed"
        # A deleted video's row goes too, once the grace for paging cursors has passed.
        http.delete(f"/v1/videos/{kept['id']}")
        assert executor.sweep(now=time.time() + executor.deleted_grace_s + 1) == [kept["id"]]


def test_retention_is_read_from_durations() -> None:
    assert Settings(retention="7d").retention == 7 * 86400
    assert Settings(retention="90").retention == 90
    assert Settings(retention="never").retention is None
    with pytest.raises(ValueError):
        Settings(retention="soon")


def test_characters_and_stills_are_listed_and_deleted(client: TestClient, settings: Settings) -> None:
    made = client.post(
        "/v1/videos/characters", files={"name": (None, "bob"), "image": ("a.png", png(), "image/png")}
    )
    assert made.status_code == 200, made.text
    character = made.json()
    listed = client.get("/v1/videos/characters").json()
    assert listed["object"] == "list" and [c["id"] for c in listed["data"]] == [character["id"]]
    folder = settings.uploads_path / "characters" / character["id"]
    assert folder.is_dir()
    deleted = client.delete(f"/v1/videos/characters/{character['id']}").json()
    assert deleted == {"id": character["id"], "object": "video.character.deleted", "deleted": True}
    assert not folder.exists() and client.get("/v1/videos/characters").json()["data"] == []
    assert_error(client.get(f"/v1/videos/characters/{character['id']}"), 404)
    assert_error(client.delete(f"/v1/videos/characters/{character['id']}"), 404)

    still = client.post(
        "/v1/openreel/stills", json={"prompt": "a", "model": "tiny-wan", "size": "64x64"}
    ).json()
    client.post("/v1/videos", json={"prompt": "a video is not a still"})
    deadline = time.monotonic() + 10
    while client.get(f"/v1/openreel/stills/{still['id']}").json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    page = client.get("/v1/openreel/stills").json()
    assert [s["id"] for s in page["data"]] == [still["id"]] and page["has_more"] is False
    folder = client.app.state.executor.job_dir(still["id"])
    assert folder.is_dir()
    gone = client.delete(f"/v1/openreel/stills/{still['id']}").json()
    assert gone == {"id": still["id"], "object": "openreel.still.deleted", "deleted": True}
    assert not folder.exists() and client.get("/v1/openreel/stills").json()["data"] == []
    assert_error(client.get(f"/v1/openreel/stills/{still['id']}"), 404)


# --- 9. the Images API as OpenAI documents it -------------------------------------------------


def test_ordinary_openai_image_requests_are_answered(client: TestClient) -> None:
    from PIL import Image

    body = {
        "model": "gpt-image-1",
        "prompt": "a lighthouse",
        "size": "96x64",
        "n": 2,
        "quality": "high",
        "background": "opaque",
        "moderation": "low",
        "output_format": "jpeg",
        "output_compression": 40,
        "style": "vivid",
        "seed": 3,
    }
    response = client.post("/v1/images/generations", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["data"]) == 2 and answer["output_format"] == "jpeg" and answer["quality"] == "high"
    assert all(set(item) == {"b64_json"} for item in answer["data"])  # no nulls for non-nullable keys
    for item in answer["data"]:
        with Image.open(io.BytesIO(base64.b64decode(item["b64_json"]))) as image:
            assert (image.format, image.size) == ("JPEG", (96, 64))
    stills = client.get("/v1/openreel/stills").json()["data"]
    assert sorted(s["openreel"]["seed"] for s in stills) == [3, 4]
    assert {s["openreel"]["model"] for s in stills} == {"tiny-wan"}  # gpt-image-1 -> the sora-2 model
    assert_error(
        client.post("/v1/images/generations", json={"prompt": "x", "stream": True}), 400, param="stream"
    )
    transparent = client.post("/v1/images/generations", json={"prompt": "x", "background": "transparent"})
    assert_error(transparent, 400, "unsupported_parameter", "background")


def test_previews_are_served_as_webp(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    made = FakeEngine.generate

    def with_real_previews(self, spec, output, **kwargs):
        result = made(self, spec, output, **kwargs)
        for path, size in (
            (output.with_suffix(".jpg"), (160, 96)),
            (output.with_suffix(".sprites.jpg"), (800, 480)),
        ):
            Image.new("RGB", size, (10, 200, 30)).save(path, format="JPEG")
        return result

    monkeypatch.setattr(FakeEngine, "generate", with_real_previews)
    video = wait_for(client, client.post("/v1/videos", json={"prompt": "a"}).json()["id"])
    for variant, size in (("thumbnail", (160, 96)), ("spritesheet", (800, 480))):
        response = client.get(f"/v1/videos/{video['id']}/content", params={"variant": variant})
        assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(response.content)) as image:
            assert (image.format, image.size) == ("WEBP", size)
    assert client.get(f"/v1/videos/{video['id']}/content").headers["content-type"] == "video/mp4"


# --- 10. the Files API and input_reference by file_id -----------------------------------------


def test_an_uploaded_file_is_an_input_reference(client: TestClient, settings: Settings) -> None:
    from openreel.server.auth import create_api_key

    uploaded = client.post(
        "/v1/files", files={"file": ("ref.png", png(), "image/png")}, data={"purpose": "vision"}
    )
    assert uploaded.status_code == 200, uploaded.text
    record = uploaded.json()
    assert (record["object"], record["purpose"], record["filename"]) == ("file", "vision", "ref.png")
    assert record["bytes"] == len(png()) and record["expires_at"] is None
    assert [f["id"] for f in client.get("/v1/files").json()["data"]] == [record["id"]]
    assert client.get(f"/v1/files/{record['id']}/content").content == png()
    body = {"prompt": "a", "model": "tiny-ltx", "input_reference": {"file_id": record["id"]}}
    video = wait_for(client, client.post("/v1/videos", json=body).json()["id"])
    assert video["status"] == "completed" and video["openreel"]["has_input_reference"]
    missing = {**body, "input_reference": {"file_id": "file-nope"}}
    assert_error(client.post("/v1/videos", json=missing), 404, "file_not_found", "input_reference")
    spare = client.post(
        "/v1/files", files={"file": ("c.png", png(), "image/png")}, data={"purpose": "vision"}
    )
    assert client.delete(f"/v1/files/{spare.json()['id']}").json() == {
        "id": spare.json()["id"],
        "object": "file",
        "deleted": True,
    }
    assert_error(client.post("/v1/files", files={"file": ("a", b"x")}, data={"purpose": "nonsense"}), 400)
    # Another key neither sees nor uses it.
    _, bob = create_api_key(client.app.state.store, "bob")
    as_bob = {"authorization": f"Bearer {bob}"}
    assert_error(client.get(f"/v1/files/{record['id']}", headers=as_bob), 404)
    assert_error(client.post("/v1/videos", json=body, headers=as_bob), 404, "file_not_found")
    expiring = client.post(
        "/v1/files",
        files={"file": ("b.png", png(), "image/png")},
        data={
            "purpose": "user_data",
            "expires_after[anchor]": "created_at",
            "expires_after[seconds]": "3600",
        },
        headers=as_bob,
    ).json()
    assert expiring["expires_at"] == expiring["created_at"] + 3600
    executor = client.app.state.executor
    executor.sweep(now=time.time() + 3601)
    assert_error(client.get(f"/v1/files/{expiring['id']}", headers=as_bob), 404)
    assert not list((settings.uploads_path / "files").glob(expiring["id"]))


def test_image_urls_are_fetched_only_when_asked_and_never_from_private_addresses(settings: Settings) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    image, big = png(), png(64, 64) + b"\0" * 4096

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = big if self.path == "/big.png" else image
            self.send_response(200)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{server.server_address[1]}"
    body = {"prompt": "a", "model": "tiny-ltx", "input_reference": {"image_url": f"{local}/ref.png"}}
    try:
        for opt_in, private in ((False, False), (True, False), (True, True)):
            settings.fetch_image_urls, settings.fetch_private_urls = opt_in, private
            settings.max_upload_bytes = len(image) + 100
            with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as http:
                response = http.post("/v1/videos", json=body)
                if not private:
                    assert_error(response, 400, "invalid_image_url", "input_reference")
                    https_local = {**body, "input_reference": {"image_url": "https://127.0.0.1/ref.png"}}
                    refused = http.post("/v1/videos", json=https_local)
                    refused = assert_error(refused, 400, "invalid_image_url")
                    assert ("private or local" in refused["message"]) == opt_in, refused
                    continue
                assert response.status_code == 200, response.text
                assert wait_for(http, response.json()["id"])["openreel"]["has_input_reference"]
                too_big = {**body, "input_reference": {"image_url": f"{local}/big.png"}}
                assert_error(http.post("/v1/videos", json=too_big), 413, "file_too_large")
    finally:
        server.shutdown()
        server.server_close()
