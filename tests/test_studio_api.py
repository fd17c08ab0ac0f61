"""The studio's routes (/v1/openreel/...) and the page's static files, through FastAPI's TestClient
on the real queue (SQLite) with a fake engine; one slow test runs the real tiny-wan engine so the
provenance route checks a really signed MP4."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from openreel.errors import Cancelled, SpecError
from openreel.models.catalog import get_card
from openreel.server.app import build_app
from openreel.server.auth import create_api_key
from openreel.server.settings import Settings

LOOPBACK = ("127.0.0.1", 50000)


class FakeEngine:
    """The engine's contract without torch: writes small files and a recipe with credits."""

    gate: threading.Event | None = None  # set by a test: generate waits on it (a "running" job)

    def resolve(self, spec):
        spec = spec.validated()
        get_card(spec.model)
        return spec

    def plan(self, spec):
        card = get_card(spec.model)
        if card.frames_for(spec.seconds) > card.max_frames:
            raise SpecError(f"{card.id} makes at most {card.max_seconds:.2f} s", param="seconds")
        return SimpleNamespace(steps=2)

    def generate(self, spec, output: Path, *, on_progress=None, should_cancel=None, video_id=None):
        while FakeEngine.gate is not None and not FakeEngine.gate.is_set():
            if should_cancel():
                raise Cancelled("cancelled")
            time.sleep(0.01)
        outputs = []
        for variation in range(1, spec.variations + 1):
            video = output.with_name(f"video-{variation}.mp4")
            video.write_bytes(b"not really an mp4")
            thumbnail = video.with_suffix(".jpg")
            thumbnail.write_bytes(b"jpeg")
            recipe = output.with_suffix(".json")
            outputs.append(
                SimpleNamespace(
                    video=video,
                    thumbnail=thumbnail,
                    spritesheet=None,
                    recipe=recipe,
                    seed=100 + variation,
                    variation=variation,
                )
            )
        recipe_body = {
            "format": "openreel.recipe/1",
            "spec": spec.to_dict(),
            "variations": [{"variation": o.variation, "seed": o.seed} for o in outputs],
            "credits": {"model": {"id": spec.model, "licence": "Apache-2.0"}},
        }
        output.with_suffix(".json").write_text(json.dumps(recipe_body))
        return SimpleNamespace(outputs=outputs)


@pytest.fixture(autouse=True)
def _open_gate() -> None:
    FakeEngine.gate = None


def make_settings(tmp_path: Path) -> Settings:
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
def client(tmp_path: Path):
    app = build_app(make_settings(tmp_path), engine_factory=FakeEngine)
    with TestClient(app, client=LOOPBACK) as test_client:
        yield test_client


def finished(client: TestClient, video_id: str, headers: dict | None = None, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = client.get(f"/v1/videos/{video_id}", headers=headers).json()
        if video["status"] in ("completed", "failed"):
            return video
        time.sleep(0.02)
    raise AssertionError(f"{video_id} stayed {video['status']}")


def assert_error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def test_styles_carry_their_descriptions(client: TestClient) -> None:
    body = client.get("/v1/openreel/styles").json()
    assert body["object"] == "list"
    styles = {style["id"]: style for style in body["data"]}
    assert "anime" in styles and "cinematic" in styles
    anime = styles["anime"]
    assert anime["description"] and "{prompt}" in anime["prompt_template"]
    assert anime["author"] and anime["licence"] and anime["builtin"] is True


def test_models_say_what_each_can_do(client: TestClient) -> None:
    body = client.get("/v1/openreel/models").json()
    cards = {card["id"]: card for card in body["data"]}
    tiny = cards["tiny-wan"]
    assert "t2v" in tiny["modes"] and tiny["modes"] == sorted(tiny["modes"]) and tiny["random_weights"]
    assert (tiny["native_width"], tiny["native_height"], tiny["fps"]) == (96, 64, 16)
    assert tiny["max_seconds"] <= tiny["max_total_seconds"] and isinstance(tiny["downloaded"], bool)
    real = cards["wan2.1-t2v-1.3b"]
    assert real["random_weights"] is False and real["licence"] and real["memory_gib"] > 1
    # Offline test machines have no hub weights: the card says so rather than failing.
    assert real["downloaded"] is False
    assert body["aliases"] == {"sora-2": "tiny-wan", "sora-2-pro": "tiny-ltx"}
    assert body["defaults"] == {"model": "sora-2", "size": "160x96", "seconds": "1"}


def test_recipe_and_provenance_of_a_finished_video(client: TestClient) -> None:
    video = client.post(
        "/v1/videos", json={"prompt": "a red fox", "model": "tiny-wan", "variations": 2, "seed": 5}
    ).json()
    assert finished(client, video["id"])["status"] == "completed"

    recipe = client.get(f"/v1/openreel/videos/{video['id']}/recipe")
    assert recipe.status_code == 200, recipe.text
    body = recipe.json()
    assert body["spec"]["prompt"] == "a red fox" and body["spec"]["seed"] == 5
    assert body["credits"]["model"]["id"] == "tiny-wan"
    assert client.get(f"/v1/openreel/videos/{video['id']}/recipe", params={"variation": 2}).status_code == 200

    report = client.get(f"/v1/openreel/videos/{video['id']}/provenance", params={"variation": 2})
    assert report.status_code == 200, report.text
    report = report.json()
    # Not a real MP4: nothing valid in it, but a report all the same (not a 500).
    assert report["kind"] == "video" and report["manifest"]["valid"] is False
    assert report["watermark"]["found"] is False and report["summary"]
    assert report["path"] == "video-2.mp4"  # never the server's folder layout

    assert_error(
        client.get(f"/v1/openreel/videos/{video['id']}/recipe", params={"variation": 3}),
        400,
        param="variation",
    )
    assert_error(client.get(f"/v1/openreel/videos/{video['id']}/recipe", params={"variation": 0}), 400)


def test_unknown_and_unfinished_videos(client: TestClient) -> None:
    for route in ("recipe", "provenance"):
        assert_error(
            client.get(f"/v1/openreel/videos/video_nope/{route}"), 404, "video_not_found", "video_id"
        )
    FakeEngine.gate = threading.Event()
    waiting = client.post("/v1/videos", json={"prompt": "still going"}).json()
    for route in ("recipe", "provenance"):
        assert_error(client.get(f"/v1/openreel/videos/{waiting['id']}/{route}"), 400, "video_not_ready")
    FakeEngine.gate.set()
    finished(client, waiting["id"])


def test_keys_guard_the_studio_routes_and_isolate_owners(client: TestClient) -> None:
    store = client.app.state.store
    _, alice = create_api_key(store, "alice")
    _, bob = create_api_key(store, "bob")
    as_alice, as_bob = ({"Authorization": f"Bearer {key}"} for key in (alice, bob))
    for path in ("/v1/openreel/styles", "/v1/openreel/models"):
        assert_error(client.get(path), 401, "invalid_api_key")
        assert client.get(path, headers=as_alice).status_code == 200
    video = client.post("/v1/videos", json={"prompt": "alice's"}, headers=as_alice).json()
    finished(client, video["id"], headers=as_alice)
    for route in ("recipe", "provenance"):
        path = f"/v1/openreel/videos/{video['id']}/{route}"
        assert client.get(path, headers=as_alice).status_code == 200
        assert_error(client.get(path, headers=as_bob), 404, "video_not_found")
        assert_error(client.get(path), 401)


def test_the_page_is_served_at_the_root_without_shadowing_the_api(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "openreel studio" in page.text and 'src="app.js"' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css"), ("api.js", "javascript")):
        response = client.get(f"/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"], name
    # The API keeps its own answers: JSON envelopes, never the page or a file-server 405.
    assert_error(client.get("/v1/nothing-here"), 404)
    assert_error(client.post("/v1/nothing-here", json={}), 404)
    assert_error(client.get("/no-such-file.js"), 404)
    assert_error(client.put("/v1/videos"), 405, "method_not_allowed")
    assert client.get("/healthz").json()["status"] == "ok"
    assert "/v1/openreel/models" in client.get("/openapi.json").json()["paths"]


@pytest.mark.slow
def test_provenance_of_a_real_signed_video(tmp_path: Path) -> None:
    """The real engine (tiny-wan, random weights): the MP4 carries a valid C2PA manifest."""
    with TestClient(build_app(make_settings(tmp_path)), client=LOOPBACK) as client:
        video = client.post(
            "/v1/videos", json={"prompt": "a lighthouse", "model": "tiny-wan", "steps": 1, "style": "anime"}
        ).json()
        # Loading torch and the pipeline in this process takes most of it; loaded CI machines are slow.
        done = finished(client, video["id"], timeout=120)
        assert done["status"] == "completed", done["error"]
        recipe = client.get(f"/v1/openreel/videos/{video['id']}/recipe").json()
        assert recipe["credits"]["style"]["id"] == "anime" and recipe["credits"]["model"]["id"] == "tiny-wan"
        report = client.get(f"/v1/openreel/videos/{video['id']}/provenance").json()
        assert report["manifest"]["present"] and report["manifest"]["valid"], report
        assert not report["manifest"]["tampered"]
        # The same credits are on the video object, and any client can check the file itself.
        assert done["openreel"]["credits"]["model"]["id"] == "tiny-wan"
        data = client.get(f"/v1/videos/{video['id']}/content").content
        checked = client.post("/v1/openreel/verify", files={"file": ("clip.mp4", data, "video/mp4")}).json()
        assert checked["manifest"]["trusted"] and not checked["manifest"]["tampered"], checked
        assert checked["path"] == "upload.mp4"
        changed = bytearray(data)
        changed[len(data) // 2] ^= 0xFF
        flipped = client.post(
            "/v1/openreel/verify", files={"file": ("clip.mp4", bytes(changed), "video/mp4")}
        )
        report = flipped.json()["manifest"]
        assert report["tampered"] or not report["valid"], report


def test_verify_refuses_what_is_not_media(client: TestClient) -> None:
    response = client.post(
        "/v1/openreel/verify", files={"file": ("notes.txt", b"just some text", "text/plain")}
    )
    assert_error(response, 400, param="file")
    assert_error(client.post("/v1/openreel/verify", data={"x": "1"}), 400)
