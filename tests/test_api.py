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
from openreel.plan import check_mode
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
        check_mode(card, "extend_backward" if spec.backward else spec.mode)
        if card.frames_for(spec.seconds) > card.max_frames:
            raise SpecError(f"{card.id} makes at most {card.max_seconds:.2f} s", param="seconds")
        return SimpleNamespace(steps=4)

    def generate(self, spec, output: Path, *, on_progress=None, should_cancel=None, video_id=None):
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

    def still(self, spec, output: Path, *, on_progress=None, should_cancel=None):
        Image.new("RGB", (spec.width, spec.height), (1, 2, 3)).save(output)
        recipe = output.with_suffix(".json")
        recipe.write_text("{}")
        out = SimpleNamespace(
            video=output, thumbnail=output, spritesheet=output, recipe=recipe, seed=7, variation=1
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
    assert_error(client.get(f"/v1/videos/{second['id']}/content"), 400, code="video_not_ready")
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
    assert_error(client.get("/v1/videos", params={"limit": 101}), 400, param="limit")
    assert_error(client.post("/v1/videos/video_x/remix", json={"prompt": "x"}), 404, "video_not_found")


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

    # A good image makes an image-to-video job that starts from the stored upload.
    response = create(png())
    assert response.status_code == 200, response.text
    video = response.json()
    assert video["openreel"]["operation"] == "i2v" and video["openreel"]["has_input_reference"]
    job = client.app.state.store.get(video["id"])
    assert job.spec["image"] == job.input_reference and Path(job.input_reference).is_file()
    assert Path(job.input_reference).parent == settings.uploads_path
    assert wait_for(client, video["id"])["status"] == "completed"
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
    assert as_json.status_code == 200 and as_json.json()["openreel"]["operation"] == "i2v"
    as_form = client.post("/v1/videos", data={"prompt": "x", "input_reference[image_url]": data_url})
    assert as_form.status_code == 200 and as_form.json()["openreel"]["operation"] == "i2v"
    assert_error(
        client.post(
            "/v1/videos", json={"prompt": "x", "input_reference": {"image_url": data_url}, "character": "c"}
        ),
        400,
        param="character",
    )
    remote = client.post(
        "/v1/videos", json={"prompt": "x", "input_reference": {"image_url": "http://10.0.0.1/a.png"}}
    )
    assert_error(remote, 400, "invalid_image_url")
    assert_error(
        client.post("/v1/videos", json={"prompt": "x", "input_reference": {"file_id": "file_1"}}),
        404,
        "file_not_found",
    )
    # Only the three good requests were queued; the refused ones left no upload behind.
    assert len(client.get("/v1/videos").json()["data"]) == 3
    assert len(list(settings.uploads_path.iterdir())) == 3


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
    # The name comes back as typed, brackets and all (not read as console markup).
    unknown = runner.invoke(keys_app, ["revoke", "al[red]ice", *url])
    assert unknown.exit_code == 1 and "'al[red]ice'" in unknown.output
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


# --- editing modes (issue 4) ---


def finished(client: TestClient, headers=None, **body) -> dict:
    body = {"prompt": "a kite", "model": "tiny-ltx", **body}
    response = client.post("/v1/videos", json=body, headers=headers)
    assert response.status_code == 200, response.text
    video = wait_for(client, response.json()["id"], headers=headers)
    assert video["status"] == "completed"
    return video


def spec_of(client: TestClient, video_id: str) -> dict:
    return client.app.state.store.get(video_id).spec


def test_remix_edit_and_extend_record_their_parent(client: TestClient, settings: Settings) -> None:
    parent = finished(client, size="256x128", seconds="1", fps=12)
    source = str(settings.outputs_path / parent["id"] / "video.mp4")

    remix = client.post(f"/v1/videos/{parent['id']}/remix", json={"prompt": "snow", "strength": "subtle"})
    assert remix.status_code == 200, remix.text
    remix = remix.json()
    assert remix["remixed_from_video_id"] == parent["id"] and remix["openreel"]["operation"] == "remix"
    assert (remix["size"], remix["seconds"], remix["model"]) == ("256x128", "1", "tiny-ltx")
    assert remix["openreel"]["strength"] == 0.3
    assert spec_of(client, remix["id"])["video"] == source and spec_of(client, remix["id"])["fps"] == 12
    custom = client.post(f"/v1/videos/{parent['id']}/remix", json={"prompt": "rain", "strength": 0.35})
    assert custom.json()["openreel"]["strength"] == 0.35

    # The SDK's edit and extend: multipart with video[id].
    edit = client.post(
        "/v1/videos/edits", files={"prompt": (None, "dusk"), "video[id]": (None, parent["id"])}
    )
    assert edit.status_code == 200, edit.text
    assert edit.json()["remixed_from_video_id"] == parent["id"] and edit.json()["openreel"]["strength"] == 0.5

    fields = {"prompt": (None, "higher"), "seconds": (None, "2"), "video[id]": (None, parent["id"])}
    extend = client.post("/v1/videos/extensions", files=fields)
    assert extend.status_code == 200, extend.text
    extend = extend.json()
    # The SDK's seconds of an extension is the stitched total; the spec holds the added part.
    assert extend["seconds"] == "3" and spec_of(client, extend["id"])["seconds"] == 2
    assert extend["remixed_from_video_id"] == parent["id"] and extend["openreel"]["operation"] == "extend"
    backward = client.post("/v1/videos/extensions", files={**fields, "backward": (None, "true")}).json()
    assert backward["openreel"]["backward"] is True and backward["seconds"] == "3"
    for video in (remix, edit.json(), extend, backward):
        assert wait_for(client, video["id"])["status"] == "completed"


def test_editing_errors_are_clear(client: TestClient) -> None:
    FakeEngine.gate = threading.Event()
    running = client.post("/v1/videos", json={"prompt": "still going", "model": "tiny-ltx"}).json()
    assert_error(
        client.post(f"/v1/videos/{running['id']}/remix", json={"prompt": "x"}), 400, "video_not_ready"
    )
    FakeEngine.gate.set()
    wait_for(client, running["id"])
    mochi = finished(client, model="tiny-mochi")
    error = assert_error(
        client.post(f"/v1/videos/{mochi['id']}/remix", json={"prompt": "x"}), 400, "unsupported_mode", "model"
    )
    assert "tiny-ltx" in error["message"] and "tiny-mochi" in error["message"]
    parent = finished(client)
    remix = f"/v1/videos/{parent['id']}/remix"
    assert_error(client.post(remix, json={"prompt": "x", "strength": "huge"}), 400, param="strength")
    assert_error(client.post(remix, json={"prompt": "x", "strength": 1.5}), 400, param="strength")
    assert_error(
        client.post(remix, json={"prompt": "x", "colour": "red"}), 400, "unknown_parameter", "colour"
    )
    assert_error(client.post(remix, json={"prompt": "x", "variation": 2}), 400, param="variation")
    assert_error(client.post(remix, json={"prompt": "x", "model": "sora-3"}), 400, "model_not_found")
    assert_error(client.post(remix, json={}), 400, "missing_required_parameter", "prompt")
    edits = "/v1/videos/edits"
    assert_error(client.post(edits, files={"prompt": (None, "x")}), 400, param="video")
    both = {"prompt": (None, "x"), "video[id]": (None, parent["id"]), "video": ("a.mp4", b"mp4", "video/mp4")}
    assert_error(client.post(edits, files=both), 400, param="video")
    garbage = {"prompt": (None, "x"), "video": ("a.mp4", b"not a video at all", "video/mp4")}
    assert_error(client.post(edits, files=garbage), 400, "invalid_video", "video")
    assert_error(client.post(edits, files={"prompt": (None, "x"), "video[id]": (None, "video_nope")}), 404)
    extension = {"prompt": (None, "x"), "video[id]": (None, parent["id"])}
    assert_error(client.post("/v1/videos/extensions", files={**extension, "seconds": (None, "abc")}), 400)
    assert_error(client.post("/v1/videos/extensions", files=extension), 400, "missing_required_parameter")
    wan = finished(client, model="tiny-wan")
    error = assert_error(
        client.post(
            "/v1/videos/extensions",
            files={
                "prompt": (None, "x"),
                "seconds": (None, "1"),
                "video[id]": (None, wan["id"]),
                "backward": (None, "1"),
            },
        ),
        400,
        "unsupported_mode",
        "model",
    )
    assert "backward" in error["message"] and "tiny-ltx" in error["message"]
    # Only the finished parents are listed: nothing refused was queued or left behind.
    assert len(client.get("/v1/videos").json()["data"]) == 4
    assert not client.app.state.settings.uploads_path.exists() or not any(
        client.app.state.settings.uploads_path.iterdir()
    )


def test_another_owners_video_is_not_a_source(client: TestClient) -> None:
    parent = finished(client)
    client.app.dependency_overrides[authenticate] = lambda: Principal(owner="mallory")
    for path, body in (
        (f"/v1/videos/{parent['id']}/remix", {"prompt": "x"}),
        ("/v1/openreel/recut", {"video_id": parent["id"], "end": 0.5}),
        ("/v1/openreel/loop", {"video_id": parent["id"]}),
        ("/v1/openreel/blend", {"video_id": parent["id"], "video_id_b": parent["id"]}),
    ):
        assert_error(client.post(path, json=body), 404, "video_not_found")
    client.app.dependency_overrides.clear()


def test_characters_start_videos_from_their_image(client: TestClient, settings: Settings) -> None:
    files = [("image", ("a.png", png(), "image/png")), ("image", ("b.png", png(24, 24), "image/png"))]
    response = client.post("/v1/videos/characters", data={"name": "mira"}, files=files)
    assert response.status_code == 200, response.text
    character = response.json()
    assert character["id"].startswith("char_") and character["name"] == "mira"
    assert (character["reference_images"], character["source"]) == (2, "images")
    assert client.get(f"/v1/videos/characters/{character['id']}").json() == character
    for ref in (character["id"], "mira"):
        video = client.post(
            "/v1/videos", json={"prompt": "mira waves", "model": "tiny-ltx", "character": ref}
        )
        assert video.status_code == 200, video.text
        assert video.json()["openreel"]["operation"] == "i2v" and video.json()["openreel"]["character"] == ref
        job = client.app.state.store.get(video.json()["id"])
        assert job.spec["image"].endswith("ref-0.png") and job.input_reference is None
        wait_for(client, job.id)
        client.delete(f"/v1/videos/{job.id}")  # the character's image is not the job's to delete
        assert Path(job.spec["image"]).is_file()
    assert_error(
        client.post("/v1/videos", json={"prompt": "x", "character": "nobody"}), 404, "character_not_found"
    )
    assert_error(client.post("/v1/videos/characters", data={"name": "empty"}), 400, param="video")
    assert_error(
        client.post("/v1/videos/characters", files=[("image", ("a.png", png(), "image/png"))]),
        400,
        param="name",
    )
    bad = [("image", ("a.png", b"nope", "image/png"))]
    assert_error(
        client.post("/v1/videos/characters", data={"name": "x"}, files=bad), 400, "invalid_image", "image"
    )
    assert_error(client.get("/v1/videos/characters/char_nope"), 404, "character_not_found")
    client.app.dependency_overrides[authenticate] = lambda: Principal(owner="mallory")
    assert_error(client.get(f"/v1/videos/characters/{character['id']}"), 404)
    assert_error(client.post("/v1/videos", json={"prompt": "x", "character": "mira"}), 404)
    client.app.dependency_overrides.clear()


def test_loop_blend_and_storyboard_record_parents(client: TestClient, settings: Settings) -> None:
    a = finished(client, size="256x128", seconds="1")
    b = finished(client, prompt="a boat", size="256x128", seconds="1")
    loop = client.post("/v1/openreel/loop", json={"video_id": a["id"]})
    assert loop.status_code == 200, loop.text
    loop = loop.json()
    assert loop["openreel"]["parents"] == [a["id"]] and loop["openreel"]["operation"] == "loop"
    assert (loop["seconds"], loop["size"], loop["prompt"]) == ("1", "256x128", "a kite")
    assert client.post("/v1/openreel/loop", json={"video_id": a["id"], "seconds": 2}).json()["seconds"] == "2"
    wan = finished(client, model="tiny-wan")
    error = assert_error(
        client.post("/v1/openreel/loop", json={"video_id": wan["id"]}), 400, "unsupported_mode"
    )
    assert "tiny-ltx" in error["message"]

    blend = client.post(
        "/v1/openreel/blend",
        json={
            "video_id": a["id"],
            "video_id_b": b["id"],
            "seconds": "2",
            "curve": "ease-in",
            "strength": "strong",
        },
    ).json()
    assert blend["openreel"]["parents"] == [a["id"], b["id"]] and blend["openreel"]["strength"] == 0.75
    assert spec_of(client, blend["id"])["curve"] == "ease-in" and blend["prompt"] == "a kite, then a boat"
    assert_error(
        client.post(
            "/v1/openreel/blend", json={"video_id": a["id"], "video_id_b": b["id"], "curve": "wobbly"}
        ),
        400,
        param="curve",
    )

    data_url = "data:image/png;base64," + base64.b64encode(png()).decode()
    cards = [{"at": 0, "text": "dawn"}, {"at": 1, "image_url": data_url}, {"at": 2, "video_id": b["id"]}]
    board = client.post("/v1/openreel/storyboard", json={"cards": cards, "seconds": "3", "model": "tiny-ltx"})
    assert board.status_code == 200, board.text
    board = board.json()
    assert board["openreel"]["parents"] == [b["id"]] and board["prompt"] == "dawn" and board["seconds"] == "3"
    stored = spec_of(client, board["id"])["cards"]
    assert stored[1]["image"].startswith(str(settings.uploads_path / board["id"]))
    assert stored[2]["video"] == str(settings.outputs_path / b["id"] / "video.mp4")
    # Multipart, the image uploaded as cards[1][image].
    form = {
        "cards[0][at]": (None, "0"),
        "cards[0][text]": (None, "dusk"),
        "cards[1][at]": (None, "0.5"),
        "cards[1][image]": ("c.png", png(), "image/png"),
        "seconds": (None, "1"),
        "model": (None, "tiny-ltx"),
    }
    as_form = client.post("/v1/openreel/storyboard", files=form)
    assert as_form.status_code == 200, as_form.text
    for video in (loop, blend, board, as_form.json()):
        assert wait_for(client, video["id"])["status"] == "completed"
    client.delete(f"/v1/videos/{board['id']}")
    assert not (settings.uploads_path / board["id"]).exists()

    story = "/v1/openreel/storyboard"
    assert_error(client.post(story, json={"cards": [{"at": 0, "image_url": data_url}]}), 400, param="cards")
    assert_error(client.post(story, json={"cards": []}), 400, param="cards")
    two = [{"at": 0, "text": "a", "video_id": a["id"]}]
    assert_error(client.post(story, json={"cards": two}), 400, param="cards.0")
    late = [{"at": 0, "text": "a"}, {"at": 9, "text": "b"}]
    assert_error(
        client.post(story, json={"cards": late, "seconds": "2", "model": "tiny-ltx"}), 400, param="cards"
    )
    assert_error(
        client.post(story, json={"cards": [{"at": 0, "text": "a"}, {"at": 1, "video_id": "video_nope"}]}), 404
    )
    assert_error(
        client.post(
            story,
            json={"cards": [{"at": 0, "text": "a"}, {"at": 1, "image_url": "data:image/png;base64,AAAA"}]},
        ),
        400,
        "invalid_image",
    )
    assert sorted(p.name for p in settings.uploads_path.iterdir()) == [as_form.json()["id"]]


def test_recut_is_a_job_with_its_parent(client: TestClient) -> None:
    parent = finished(client, seconds="2", fps=8)
    recut = client.post("/v1/openreel/recut", json={"video_id": parent["id"], "start": 0.5, "end": 1.5})
    assert recut.status_code == 200, recut.text
    recut = recut.json()
    assert recut["seconds"] == "1" and recut["openreel"]["operation"] == "recut"
    assert recut["openreel"]["parents"] == [parent["id"]] and recut["size"] == parent["size"]
    assert recut["id"] in [v["id"] for v in client.get("/v1/videos").json()["data"]]
    whole = client.post("/v1/openreel/recut", json={"video_id": parent["id"], "start": 1}).json()
    assert whole["seconds"] == "1"
    assert_error(
        client.post("/v1/openreel/recut", json={"video_id": parent["id"], "end": 3}), 400, param="end"
    )
    bad = {"video_id": parent["id"], "start": 1.5, "end": 1}
    assert_error(client.post("/v1/openreel/recut", json=bad), 400, param="start")
    assert_error(
        client.post("/v1/openreel/recut", json={"video_id": parent["id"], "start": -1}), 400, param="start"
    )
    assert_error(client.post("/v1/openreel/recut", json={"video_id": "video_nope"}), 404, "video_not_found")


def test_stills_and_the_images_api(client: TestClient) -> None:
    response = client.post(
        "/v1/images/generations", json={"model": "tiny-ltx", "prompt": "a lighthouse", "size": "96x64"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["output_format"] == "png" and body["size"] == "96x64" and len(body["data"]) == 1
    with Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"]))) as image:
        assert (image.format, image.size) == ("PNG", (96, 64))
    as_url = client.post(
        "/v1/images/generations",
        json={
            "model": "tiny-ltx",
            "prompt": "a lighthouse",
            "size": "96x64",
            "response_format": "url",
            "output_format": "webp",
        },
    ).json()
    url = as_url["data"][0]["url"]
    assert url.startswith("http://testserver/v1/openreel/stills/still_") and url.endswith("/content")
    image = client.get(url.removeprefix("http://testserver"))
    assert image.status_code == 200 and image.headers["content-type"] == "image/webp"
    still_id = url.split("/")[-2]
    still = client.get(f"/v1/openreel/stills/{still_id}").json()
    assert (still["object"], still["status"], still["format"]) == ("openreel.still", "completed", "webp")
    # Stills are not videos: neither listed nor retrievable there.
    assert client.get("/v1/videos").json()["data"] == []
    assert_error(client.get(f"/v1/videos/{still_id}"), 404)
    queued = client.post(
        "/v1/openreel/stills", json={"prompt": "a boat", "model": "tiny-wan", "size": "96x64"}
    ).json()
    assert queued["status"] in ("queued", "in_progress", "completed") and queued["id"].startswith("still_")
    assert_error(client.post("/v1/images/generations", json={"prompt": "x", "n": 11}), 400, param="n")
    assert_error(
        client.post("/v1/images/generations", json={"prompt": "x", "model": "dall-e-4"}),
        400,
        "model_not_found",
    )
    assert_error(
        client.post("/v1/images/generations", json={"prompt": "x", "colour": "red"}), 400, "unknown_parameter"
    )
    assert_error(
        client.post("/v1/images/generations", json={"prompt": "x", "size": "big"}), 400, param="size"
    )
    assert_error(client.get("/v1/openreel/stills/still_nope"), 404, "still_not_found")


def test_editing_routes_are_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/videos/{video_id}/remix",
        "/v1/videos/edits",
        "/v1/videos/extensions",
        "/v1/videos/characters",
        "/v1/videos/characters/{character_id}",
        "/v1/openreel/recut",
        "/v1/openreel/loop",
        "/v1/openreel/blend",
        "/v1/openreel/storyboard",
        "/v1/openreel/stills",
        "/v1/images/generations",
    } <= set(paths)
    assert "multipart/form-data" in paths["/v1/videos/edits"]["post"]["requestBody"]["content"]
    assert "first reference image" in paths["/v1/videos/characters"]["post"]["description"]
