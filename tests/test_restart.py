"""A server killed with SIGKILL in the middle of a job loses nothing: started again on the same
database, it runs the job again (counting the attempt) and the queued job behind it, and no file
under the data folder is left half-written."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from openreel.jobs.store import IN_PROGRESS, JobStore
from remote_server import RemoteServer

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")]

FINISHED_FILES = {"video.mp4", "video.jpg", "video.sprites.jpg", "video.json"}


def test_sigkill_while_running_then_restart_completes(session_home: Path, tmp_path: Path) -> None:
    import av

    url = f"sqlite:///{tmp_path / 'openreel.db'}"
    outputs = tmp_path / "outputs"
    env = {"OPENREEL_OUTPUT_DIR": str(outputs)}
    first = RemoteServer(session_home, url, env=env)
    try:
        client = first.client()
        # Long enough on CPU to be caught in the middle of denoising.
        running = client.videos.create(
            prompt="a slow pan",
            model="tiny-wan",
            seconds="2",
            size="320x192",
            extra_body={"steps": 30, "seed": 9},
        )
        waiting = client.videos.create(
            prompt="next in line", model="tiny-wan", seconds="1", size="160x96", extra_body={"steps": 1}
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            video = client.videos.retrieve(running.id)
            if video.status == "in_progress" and video.openreel["stage"] == "denoising":
                break
            assert video.status in ("queued", "in_progress"), video
            time.sleep(0.05)
        else:
            raise AssertionError("the job never started denoising")
    finally:
        first.kill()

    store = JobStore(url)
    killed = store.get(running.id)
    assert killed.status == IN_PROGRESS and killed.attempts == 1  # exactly as the kill left it
    store.close()

    with RemoteServer(session_home, url, env=env) as second:
        client = second.client()
        done = client.videos.poll(running.id)
        assert done.status == "completed", done.error
        assert done.openreel["attempts"] == 2 and done.openreel["outputs"][0]["seed"] == 9
        assert client.videos.poll(waiting.id).status == "completed"
        client.videos.download_content(running.id).write_to_file(tmp_path / "restarted.mp4")

    with av.open(str(tmp_path / "restarted.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 48  # 2 s at 24 fps, every frame whole
    for job_id in (running.id, waiting.id):
        assert {p.name for p in (outputs / job_id).iterdir()} == FINISHED_FILES
    leftovers = [p for p in tmp_path.rglob("*") if p.name.startswith(".") or p.suffix in (".tmp", ".part")]
    assert leftovers == []
    with sqlite3.connect(tmp_path / "openreel.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_server_killed_after_denoising_resumes_from_the_saved_latents(
    session_home: Path, tmp_path: Path
) -> None:
    import os
    import signal

    import av
    import httpx

    url = f"sqlite:///{tmp_path / 'openreel.db'}"
    outputs = tmp_path / "outputs"
    env = {"OPENREEL_OUTPUT_DIR": str(outputs)}
    first = RemoteServer(session_home, url, env=env)
    try:
        # The model's own size and fps (no refinement pass): the decode, watermark and encode of
        # 80 frames take long enough (~1 s) to be caught in. No seed: the job's own seed must be
        # the same on the rerun for the saved latents to fit it.
        video = first.client().videos.create(
            prompt="a slow pan",
            model="tiny-wan",
            seconds="5",
            size="96x64",
            extra_body={"steps": 2, "fps": 16},
        )
        latents = outputs / video.id / "video.latents.pt"
        deadline = time.monotonic() + 120
        while not latents.exists():
            assert time.monotonic() < deadline, "the job never reached its VAE decode"
            time.sleep(0.002)
        os.kill(first.process.pid, signal.SIGSTOP)  # frozen where it was: after the denoising
    finally:
        first.kill()
    assert latents.exists() and not (outputs / video.id / "video.mp4").exists()

    with RemoteServer(session_home, url, env=env) as second:
        done = second.client().videos.poll(video.id)
        assert done.status == "completed", done.error
        assert done.openreel["attempts"] == 2
        recipe = httpx.get(f"{second.url}/v1/openreel/videos/{video.id}/recipe", timeout=30).json()
        second.client().videos.download_content(video.id).write_to_file(tmp_path / "resumed.mp4")

    # Decoded from the saved latents, not denoised again; the latents go once the video is whole.
    assert recipe["variations"][0]["resumed_from_latents"] is True
    assert {p.name for p in (outputs / video.id).iterdir()} == FINISHED_FILES
    with av.open(str(tmp_path / "resumed.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 80
