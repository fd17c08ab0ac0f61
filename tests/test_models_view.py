"""The studio's models routes (issue 15, item 2): what is on disk and its size, whether it fits,
a download that runs as a child process on the server (offline it fails with a sentence that says
so), cancel, a restart that starts it again, and delete that frees the Hugging Face cache."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.test_first_hour import fake_download, hf_cache  # noqa: F401 - a fixture
from tests.test_studio_api import LOOPBACK, FakeEngine, assert_error, make_settings

from openreel.server import downloads
from openreel.server.app import build_app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of its own: download records must not leak between tests."""
    folder = tmp_path / "home"
    monkeypatch.setenv("OPENREEL_HOME", str(folder))
    return folder


@pytest.fixture
def client(tmp_path: Path, home: Path):
    app = build_app(make_settings(tmp_path), engine_factory=FakeEngine)
    with TestClient(app, client=LOOPBACK) as test_client:
        yield test_client


@pytest.fixture
def slow_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """A download that stays under way until killed (the hub is offline here: a real one fails)."""
    monkeypatch.setattr(
        downloads, "_child_command", lambda model_id: [sys.executable, "-c", "import time; time.sleep(60)"]
    )


def models(client: TestClient) -> dict[str, dict]:
    response = client.get("/v1/openreel/models")
    assert response.status_code == 200, response.text
    return {card["id"]: card for card in response.json()["data"]}


def settled(client: TestClient, model_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        download = models(client)[model_id]["download"]
        if download and download["status"] != "downloading":
            return download
        time.sleep(0.2)
    raise AssertionError(f"the download of {model_id} is still under way")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # A killed child nobody reaped yet is a zombie: gone in every way that matters.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def test_a_downloaded_model_shows_its_size_and_delete_frees_it(client, hf_cache):  # noqa: F811
    fake_download(hf_cache, "THUDM/CogVideoX-2b", {"model_index.json": b"{}", "vae/w.bin": b"x" * 4096})
    cards = models(client)
    cog = cards["cogvideox-2b"]
    assert cog["downloaded"] and cog["size_on_disk_bytes"] == 4098
    assert isinstance(cog["fits"], bool) and cog["licence"] and "t2v" in cog["modes"]
    assert cards["wan2.1-t2v-1.3b"]["downloaded"] is False
    assert cards["wan2.1-t2v-1.3b"]["size_on_disk_bytes"] == 0

    removed = client.delete("/v1/openreel/models/cogvideox-2b")
    assert removed.status_code == 200, removed.text
    body = removed.json()
    # The weights, counted once (the snapshot's links are not more bytes), plus the 40-byte ref.
    assert (body["id"], body["deleted"], body["freed_bytes"]) == ("cogvideox-2b", True, 4098 + 40)
    assert not (hf_cache / "models--THUDM--CogVideoX-2b").exists()
    cog = models(client)["cogvideox-2b"]
    assert not cog["downloaded"] and cog["size_on_disk_bytes"] == 0
    assert "not downloaded" in assert_error(client.delete("/v1/openreel/models/cogvideox-2b"), 400)["message"]
    assert_error(client.delete("/v1/openreel/models/no-such-model"), 400, code="model_not_found")


def test_offline_the_download_fails_and_says_why(client):
    started = client.post("/v1/openreel/models/wan2.1-t2v-1.3b/download")
    assert started.status_code == 200, started.text
    assert started.json()["status"] in ("downloading", "failed")
    download = settled(client, "wan2.1-t2v-1.3b")
    assert download["status"] == "failed" and download["error_code"] == "weights_missing"
    assert "could not download Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in download["error"]
    assert "Check the network" in download["error"]
    assert models(client)["wan2.1-t2v-1.3b"]["downloaded"] is False


def test_cancel_stops_the_child(client, slow_child):
    started = client.post("/v1/openreel/models/wan2.1-t2v-1.3b/download").json()
    assert started["status"] == "downloading"
    pid = downloads.read("wan2.1-t2v-1.3b").pid
    assert alive(pid)
    # A second click changes nothing: the same child goes on.
    client.post("/v1/openreel/models/wan2.1-t2v-1.3b/download")
    assert downloads.read("wan2.1-t2v-1.3b").pid == pid
    cancelled = client.delete("/v1/openreel/models/wan2.1-t2v-1.3b/download")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and "Cancelled" in cancelled.json()["error"]
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    assert_error(client.delete("/v1/openreel/models/cogvideox-2b/download"), 404)


def test_a_restarted_server_starts_the_download_again(tmp_path, home, slow_child):
    """A record left "downloading" by a server that stopped (its child gone) starts again."""
    folder = home / "downloads"
    folder.mkdir(parents=True)
    record = {"model": "cogvideox-2b", "status": "downloading", "started_at": 1, "pid": 2**22 + 7}
    (folder / "cogvideox-2b.json").write_text(json.dumps(record))
    app = build_app(make_settings(tmp_path), engine_factory=FakeEngine)
    with TestClient(app, client=LOOPBACK) as client:
        resumed = downloads.read("cogvideox-2b")
        assert resumed.status == "downloading" and resumed.pid != record["pid"] and alive(resumed.pid)
        assert models(client)["cogvideox-2b"]["download"]["status"] == "downloading"
        client.delete("/v1/openreel/models/cogvideox-2b/download")
