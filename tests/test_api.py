"""The API at unit level: FastAPI's TestClient, a fake engine on the real queue (SQLite), and
dependency overrides where a test needs a particular caller. The real SDK against the real
server is tests/test_server_sdk.py."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from openreel.errors import Cancelled, SpecError
from openreel.jobs.store import IN_PROGRESS, QUEUED, JobRecord
from openreel.models.catalog import get_card
from openreel.server.app import build_app
from openreel.server.auth import Principal, UnsafeBindError, authenticate, check_bind, create_api_key
from openreel.server.openai_videos import check_image, poll_after_ms
from openreel.server.settings import Settings

LOOPBACK = ("127.0.0.1", 50000)


class FakeEngine:
    """The engine's contract without torch: checks like the planner, writes small files."""

    gate: threading.Event | None = None  # when set by a test, generate waits on it (a "running" job)
    created = 0

    def __init__(self) -> None:
        FakeEngine.created += 1

    def resolve(self, spec):
        spec = spec.validated()
        get_card(spec.model)
        return spec

    def plan(self, spec):
        card = get_card(spec.model)
        if card.frames_for(spec.seconds) > card.max_frames:
            raise SpecError(f"{card.id} makes at most {card.max_seconds:.2f} s", param="seconds")
        return SimpleNamespace(steps=4)

    def generate(self, spec, output: Path, *, on_progress=None, should_cancel=None):
        for step in range(4):
            while FakeEngine.gate is not None and not FakeEngine.gate.is_set():
                if should_cancel():
                    raise Cancelled("cancelled")
                time.sleep(0.01)
            if should_cancel():
                raise Cancelled("cancelled")
            on_progress(
                SimpleNamespace(
                    fraction=step / 4, stage="denoising", step=step, total_steps=4, eta_seconds=1.0
                )
            )
        output.write_bytes(b"mp4 " + spec.prompt.encode())
        thumbnail, sprites, recipe = (output.with_suffix(s) for s in (".jpg", ".sprites.jpg", ".json"))
        thumbnail.write_bytes(b"jpeg thumbnail")
        sprites.write_bytes(b"jpeg sprites")
        recipe.write_text("{}")
        out = SimpleNamespace(
            video=output,
            thumbnail=thumbnail,
            spritesheet=sprites,
            recipe=recipe,
            seed=spec.seed or 5,
            variation=1,
        )
        return SimpleNamespace(outputs=[out])


@pytest.fixture(autouse=True)
def _reset_fake() -> None:
    FakeEngine.gate = None


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
    with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as test_client:
        yield test_client


def wait_for(client: TestClient, video_id: str, statuses=("completed", "failed"), headers=None) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        video = client.get(f"/v1/videos/{video_id}", headers=headers).json()
        if video["status"] in statuses:
            return video
        time.sleep(0.02)
    raise AssertionError(f"{video_id} stayed {video['status']}")


def png(width: int = 16, height: int = 16) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def assert_error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == ("server_error" if status >= 500 else "invalid_request_error")
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


# --- create, retrieve, content ---


def test_multipart_create_runs_to_completion(client: TestClient) -> None:
    form = {
        "prompt": "a red fox",
        "model": "sora-2",
        "seconds": "1",
        "size": "160x96",
        "seed": "42",
        "steps": "3",
        "negative_prompt": "blur",
    }
    # (None, value) parts: multipart fields without a file, exactly what the SDK sends.
    response = client.post("/v1/videos", files={key: (None, value) for key, value in form.items()})
    assert response.status_code == 200, response.text
    video = response.json()
    assert video["object"] == "video" and video["status"] == "queued" and video["model"] == "sora-2"
    assert (video["size"], video["seconds"], video["progress"]) == ("160x96", "1", 0)
    assert video["openreel"]["model"] == "tiny-wan"
    assert video["openreel"]["seed"] == 42 and video["openreel"]["steps"] == 3
    assert video["openreel"]["negative_prompt"] == "blur"
    done = wait_for(client, video["id"])
    assert (
        done["status"] == "completed"
        and done["progress"] == 100
        and done["completed_at"] >= done["created_at"]
    )
    assert done["error"] is None and done["openreel"]["outputs"] == [{"variation": 1, "seed": 42}]
    content = client.get(f"/v1/videos/{video['id']}/content")
    assert content.status_code == 200 and content.content == b"mp4 a red fox"
    assert content.headers["content-type"] == "video/mp4"
    thumb = client.get(f"/v1/videos/{video['id']}/content", params={"variant": "thumbnail"})
    assert thumb.content == b"jpeg thumbnail" and thumb.headers["content-type"] == "image/jpeg"
    sprites = client.get(f"/v1/videos/{video['id']}/content", params={"variant": "spritesheet"})
    assert sprites.content == b"jpeg sprites"
    assert_error(
        client.get(f"/v1/videos/{video['id']}/content", params={"variant": "gif"}), 400, param="variant"
    )
    assert_error(
        client.get(f"/v1/videos/{video['id']}/content", params={"variation": 2}), 400, param="variation"
    )


def test_json_create_takes_numbers_and_defaults(client: TestClient) -> None:
    response = client.post("/v1/videos", json={"prompt": "waves", "model": "tiny-wan", "seconds": 1.5})
    video = response.json()
    assert response.status_code == 200, video
    assert video["seconds"] == "1.5" and video["size"] == "160x96"
    assert wait_for(client, video["id"])["status"] == "completed"
    with_aspect = client.post(
        "/v1/videos", json={"prompt": "tall", "resolution": "480p", "aspect": "9:16"}
    ).json()
    assert with_aspect["size"] == "480x854" and with_aspect["model"] == "sora-2"


def test_poll_after_header_while_waiting(client: TestClient) -> None:
    FakeEngine.gate = threading.Event()
    first = client.post("/v1/videos", json={"prompt": "one"}).json()
    second = client.post("/v1/videos", json={"prompt": "two"}).json()
    wait_for(client, first["id"], statuses=("in_progress",))
    queued = client.get(f"/v1/videos/{second['id']}")
    assert queued.json()["status"] == "queued" and queued.json()["openreel"]["queue_position"] == 0
    assert 250 <= int(queued.headers["openai-poll-after-ms"]) <= 10_000
    assert "openai-poll-after-ms" in client.get(f"/v1/videos/{first['id']}").headers
    assert_error(client.get(f"/v1/videos/{second['id']}/content"), 409, code="video_not_ready")
    FakeEngine.gate.set()
    wait_for(client, second["id"])
    assert "openai-poll-after-ms" not in client.get(f"/v1/videos/{second['id']}").headers


def test_poll_after_follows_eta_and_queue(settings: Settings) -> None:
    def job(status: str, eta: float | None = None) -> JobRecord:
        return SimpleNamespace(status=status, eta_seconds=eta)  # type: ignore[return-value]

    running = poll_after_ms(job(IN_PROGRESS, 8.0), position=0, running_etas=[], workers=1, settings=settings)
    assert running == 2000
    near = poll_after_ms(job(QUEUED), position=0, running_etas=[4.0], workers=1, settings=settings)
    far = poll_after_ms(job(QUEUED), position=6, running_etas=[4.0], workers=1, settings=settings)
    assert near == 2000 and far == settings.poll_max_ms
    assert poll_after_ms(job("completed"), position=0, running_etas=[], workers=1, settings=settings) is None


# --- errors ---


def test_validation_errors_name_the_parameter(client: TestClient) -> None:
    assert_error(
        client.post("/v1/videos", data={"prompt": "x", "colour": "red"}), 400, "unknown_parameter", "colour"
    )
    assert_error(
        client.post("/v1/videos", json={"model": "tiny-wan"}), 400, "missing_required_parameter", "prompt"
    )
    assert_error(client.post("/v1/videos", json={"prompt": "x", "size": "big"}), 400, param="size")
    assert_error(client.post("/v1/videos", json={"prompt": "x", "size": "1281x720"}), 400, param="size")
    assert_error(client.post("/v1/videos", json={"prompt": "x", "seconds": "four"}), 400, param="seconds")
    assert_error(client.post("/v1/videos", json={"prompt": "x", "seconds": "25"}), 400, param="seconds")
    assert_error(client.post("/v1/videos", json={"prompt": " "}), 400, param="prompt")
    assert_error(client.post("/v1/videos", json={"prompt": "x", "seed": "abc"}), 400, "invalid_value", "seed")
    assert_error(client.post("/v1/videos", json={"prompt": "x", "variations": 9}), 400, param="variations")
    assert_error(
        client.post("/v1/videos", json={"prompt": "x", "model": "sora-3"}), 400, "model_not_found", "model"
    )
    # A folder path is a model for the CLI, never for a network client.
    assert_error(client.post("/v1/videos", json={"prompt": "x", "model": "/etc"}), 400, "model_not_found")
    both = client.post("/v1/videos", json={"prompt": "x", "size": "160x96", "resolution": "720p"})
    assert_error(both, 400, param="size")
    assert_error(
        client.post("/v1/videos", content=b"{nope", headers={"content-type": "application/json"}),
        400,
        "invalid_json",
    )
    assert client.get("/v1/videos").json()["data"] == []  # nothing was queued


def test_not_found_everywhere(client: TestClient) -> None:
    for method, path in (
        ("get", "/v1/videos/video_nope"),
        ("delete", "/v1/videos/video_nope"),
        ("get", "/v1/videos/video_nope/content"),
        ("get", "/v1/nothing-here"),
        ("get", "/v1/models/nope"),
    ):
        assert_error(getattr(client, method)(path), 404)
    assert_error(client.get("/v1/videos", params={"after": "video_nope"}), 404, param="after")
    assert_error(client.put("/v1/videos"), 405, "method_not_allowed")
    assert_error(client.get("/v1/videos", params={"limit": 0}), 400, param="limit")
    assert_error(client.post("/v1/videos/video_x/remix", json={"prompt": "x"}), 400, "unsupported_mode")


def test_list_pages_in_both_orders(client: TestClient) -> None:
    ids = [client.post("/v1/videos", json={"prompt": f"clip {i}"}).json()["id"] for i in range(5)]
    page = client.get("/v1/videos", params={"limit": 2, "order": "asc"}).json()
    assert page["object"] == "list" and [v["id"] for v in page["data"]] == ids[:2] and page["has_more"]
    assert (page["first_id"], page["last_id"]) == (ids[0], ids[1])
    rest = client.get("/v1/videos", params={"limit": 10, "order": "asc", "after": page["last_id"]}).json()
    assert [v["id"] for v in rest["data"]] == ids[2:] and not rest["has_more"]
    newest = client.get("/v1/videos", params={"limit": 3}).json()
    assert [v["id"] for v in newest["data"]] == ids[::-1][:3]
    empty = client.get("/v1/videos", params={"after": ids[0]}).json()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


# --- delete and cancel ---


def test_delete_cancels_a_running_job_and_removes_files(client: TestClient, settings: Settings) -> None:
    FakeEngine.gate = threading.Event()
    running = client.post("/v1/videos", json={"prompt": "running"}).json()
    queued = client.post("/v1/videos", json={"prompt": "queued"}).json()
    wait_for(client, running["id"], statuses=("in_progress",))
    folder = settings.outputs_path / running["id"]
    assert folder.is_dir()
    assert client.delete(f"/v1/videos/{running['id']}").json() == {
        "id": running["id"],
        "deleted": True,
        "object": "video.deleted",
    }
    assert client.delete(f"/v1/videos/{queued['id']}").json()["deleted"] is True
    assert_error(client.get(f"/v1/videos/{running['id']}"), 404)
    assert_error(client.delete(f"/v1/videos/{running['id']}"), 404)
    deadline = time.monotonic() + 5
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not folder.exists()
    store = client.app.state.store
    assert store.get(running["id"], include_deleted=True).status == "cancelled"
    assert store.counts() == {}
    # The worker is free again and the next job runs.
    FakeEngine.gate.set()
    assert (
        wait_for(client, client.post("/v1/videos", json={"prompt": "next"}).json()["id"])["status"]
        == "completed"
    )


def test_delete_a_completed_video_removes_its_files(client: TestClient, settings: Settings) -> None:
    video = client.post("/v1/videos", json={"prompt": "done"}).json()
    wait_for(client, video["id"])
    assert (settings.outputs_path / video["id"] / "video.mp4").is_file()
    client.delete(f"/v1/videos/{video['id']}")
    assert not (settings.outputs_path / video["id"]).exists()


def test_one_engine_per_worker_stays_warm(client: TestClient) -> None:
    before = FakeEngine.created
    for prompt in ("a", "b", "c"):
        wait_for(client, client.post("/v1/videos", json={"prompt": prompt}).json()["id"])
    assert client.app.state.executor.engines_created == 1
    assert FakeEngine.created - before == 2  # the worker's, and the request checker's


# --- uploads ---


def test_input_reference_uploads_are_checked_by_content(client: TestClient, settings: Settings) -> None:
    def create(data: bytes, name: str = "ref.png", mime: str = "image/png"):
        return client.post(
            "/v1/videos", data={"prompt": "from an image"}, files={"input_reference": (name, data, mime)}
        )

    # A good image reaches the mode check: no tiny model starts from an image yet.
    error = assert_error(create(png()), 400, "unsupported_mode", "input_reference")
    assert "tiny-wan" in error["message"]
    assert_error(
        create(b"#!/bin/sh\necho not an image\n", "ref.png"), 400, "invalid_image", "input_reference"
    )
    assert_error(create(png()[:60]), 400, "invalid_image", "input_reference")  # truncated
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    assert_error(create(gif.getvalue(), "ref.gif", "image/gif"), 400, "invalid_image_format")
    assert_error(create(b"\0" * (settings.max_upload_bytes + 1)), 413, "file_too_large")
    data_url = "data:image/png;base64," + base64.b64encode(png()).decode()
    as_json = client.post("/v1/videos", json={"prompt": "x", "input_reference": {"image_url": data_url}})
    assert_error(as_json, 400, "unsupported_mode")
    as_form = client.post("/v1/videos", data={"prompt": "x", "input_reference[image_url]": data_url})
    assert_error(as_form, 400, "unsupported_mode")
    remote = client.post(
        "/v1/videos", json={"prompt": "x", "input_reference": {"image_url": "http://10.0.0.1/a.png"}}
    )
    assert_error(remote, 400, "invalid_image_url")
    assert_error(
        client.post("/v1/videos", json={"prompt": "x", "input_reference": {"file_id": "file_1"}}),
        400,
        "unsupported_parameter",
    )
    assert client.get("/v1/videos").json()["data"] == []


def test_pixel_bombs_are_refused_before_decoding() -> None:
    with pytest.raises(Exception) as caught:
        check_image(png(200, 200), max_bytes=10**6, max_pixels=100 * 100)
    assert caught.value.code == "image_too_large" and caught.value.status == 400
    image = check_image(png(40, 30), max_bytes=10**6, max_pixels=100 * 100)
    assert (image.format, image.width, image.height, image.suffix) == ("PNG", 40, 30, ".png")


def test_whole_body_limit_is_413(settings: Settings) -> None:
    settings.max_body_bytes = 1000
    with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as client:
        response = client.post(
            "/v1/videos", data={"prompt": "x"}, files={"input_reference": ("a.png", b"0" * 5000)}
        )
        assert_error(response, 413)


# --- auth ---


def test_single_user_mode_serves_only_loopback(settings: Settings) -> None:
    app = build_app(settings, engine_factory=FakeEngine)
    with TestClient(app, client=("192.168.1.20", 40000)) as remote:
        assert_error(remote.get("/v1/videos"), 401, "invalid_api_key")
    settings.insecure_no_auth = True
    with TestClient(app, client=("192.168.1.20", 40000)) as remote:
        assert remote.get("/v1/videos").status_code == 200


def test_keys_isolate_owners(client: TestClient) -> None:
    local = client.post("/v1/videos", json={"prompt": "before keys"}).json()
    store = client.app.state.store
    _, alice = create_api_key(store, "alice")
    _, bob = create_api_key(store, "bob")
    as_alice, as_bob = ({"Authorization": f"Bearer {key}"} for key in (alice, bob))
    assert_error(client.get("/v1/videos"), 401, "invalid_api_key")
    assert_error(client.get("/v1/videos", headers={"Authorization": "Bearer ork-wrong"}), 401)
    assert_error(client.get("/v1/videos", headers={"Authorization": alice}), 401)  # no scheme
    video = client.post("/v1/videos", json={"prompt": "alice's"}, headers=as_alice).json()
    assert [v["id"] for v in client.get("/v1/videos", headers=as_alice).json()["data"]] == [video["id"]]
    assert client.get("/v1/videos", headers=as_bob).json()["data"] == []
    assert_error(client.get(f"/v1/videos/{video['id']}", headers=as_bob), 404)
    assert_error(client.get(f"/v1/videos/{local['id']}", headers=as_alice), 404)
    assert_error(client.delete(f"/v1/videos/{video['id']}", headers=as_bob), 404)
    assert_error(client.get(f"/v1/videos/{video['id']}/content", headers=as_bob), 404)
    wait_for(client, video["id"], headers=as_alice)
    store.revoke_key("alice")
    assert_error(client.get(f"/v1/videos/{video['id']}", headers=as_alice), 401)
    assert store.key_by_hash(__import__("hashlib").sha256(bob.encode()).hexdigest()).last_used_at


def test_dependency_override_scopes_every_route(client: TestClient) -> None:
    client.app.dependency_overrides[authenticate] = lambda: Principal(owner="carol")
    video = client.post("/v1/videos", json={"prompt": "carol's"}).json()
    assert client.app.state.store.get(video["id"]).owner == "carol"
    client.app.dependency_overrides.clear()
    assert_error(client.get(f"/v1/videos/{video['id']}"), 404)  # back to the local user


def test_binding_a_network_needs_keys() -> None:
    check_bind("127.0.0.1", False, False)
    check_bind("::1", False, False)
    check_bind("0.0.0.0", True, False)
    check_bind("0.0.0.0", False, True)
    with pytest.raises(UnsafeBindError, match="keys create"):
        check_bind("0.0.0.0", False, False)


# --- the rest of the surface ---


def test_models_health_and_openapi(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    ids = {m["id"] for m in models["data"]}
    assert models["object"] == "list" and {"tiny-wan", "wan2.1-t2v-14b", "sora-2", "sora-2-pro"} <= ids
    assert client.get("/v1/models/sora-2").json()["owned_by"] == "openreel (maps to tiny-wan)"
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["database"] == "sqlite"
    schema = client.get("/openapi.json").json()
    assert {
        "/v1/videos",
        "/v1/videos/{video_id}",
        "/v1/videos/{video_id}/content",
        "/v1/models",
        "/healthz",
    } <= set(schema["paths"])
    body = schema["paths"]["/v1/videos"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert client.get("/docs").status_code == 200


def test_the_server_never_imports_torch(tmp_path: Path) -> None:
    """Start the app with the real engine factories and accept a job: no torch in the process
    (no worker runs here, so only the request path is measured)."""
    code = f"""
import sys
from fastapi.testclient import TestClient
from openreel.server.app import build_app
from openreel.server.settings import Settings
settings = Settings(database_url="sqlite:///{tmp_path}/db.sqlite", workers=0, output_dir="{tmp_path}")
with TestClient(build_app(settings), client=("127.0.0.1", 1)) as client:
    response = client.post("/v1/videos", data={{"prompt": "x", "model": "tiny-wan", "seconds": "1"}})
    assert response.status_code == 200, response.text
    bad = client.post("/v1/videos", data={{"prompt": "x", "model": "tiny-wan", "seconds": "25"}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "seconds", bad.text
heavy = [name for name in ("torch", "diffusers", "transformers", "av") if name in sys.modules]
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_keys_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from openreel.jobs.store import JobStore
    from openreel.server.auth import hash_key
    from openreel.server.cli_commands import keys_app

    runner = CliRunner()
    url = ["--database-url", f"sqlite:///{tmp_path / 'keys.db'}"]
    created = runner.invoke(keys_app, ["create", "--name", "alice", *url])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("ork-") and len(secret) > 40
    store = JobStore(url[1])
    assert store.key_by_hash(hash_key(secret)).name == "alice"  # stored hashed, found by its hash
    listed = runner.invoke(keys_app, ["list", *url])
    assert "alice" in listed.stdout and secret not in listed.stdout
    assert runner.invoke(keys_app, ["revoke", "alice", *url]).exit_code == 0
    assert runner.invoke(keys_app, ["revoke", "alice", *url]).exit_code == 1
    assert store.active_key_count() == 0
    store.close()


def test_shutdown_hands_a_running_job_back_to_the_queue(settings: Settings) -> None:
    FakeEngine.gate = threading.Event()
    app = build_app(settings, engine_factory=FakeEngine)
    with TestClient(app, client=LOOPBACK) as client:
        video = client.post("/v1/videos", json={"prompt": "interrupted"}).json()
        wait_for(client, video["id"], statuses=("in_progress",))
        store = app.state.store
    job = store.get(video["id"])  # the lifespan has stopped the workers
    assert (job.status, job.attempts, job.claimed_by) == (QUEUED, 0, None)
    assert not (settings.outputs_path / video["id"]).exists()
