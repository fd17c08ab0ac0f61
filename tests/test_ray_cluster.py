"""openreel on a real local Ray cluster: a head on 127.0.0.1 (free ports, never 6379) hosting two
worker actors, the server's app in front of them, PostgreSQL as the queue, tiny twins as models.

One cluster and one app serve the whole module (starting them takes seconds); each test makes
its own jobs and reads what a user gets: job rows through the store and the API, files on disk,
decoded frames."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db_fixtures import database_url, postgres_database  # noqa: F401 - fixtures

pytest.importorskip("ray", reason="Ray is not installed (pip install 'openreel[ray]')")

from openreel.jobs.cluster import ClusterWorker  # noqa: E402
from openreel.jobs.cluster_local import LocalRayCluster, free_port  # noqa: E402
from openreel.jobs.store import LOCAL_OWNER, JobRecord, JobStore, WorkerRecord, this_host  # noqa: E402
from openreel.spec import VideoSpec  # noqa: E402

pytestmark = pytest.mark.ray

WORKER_MEMORY_GIB = 16.0  # what each test worker says its device holds (placement reads it)
VIDEO_FILES = {"video.mp4", "video.jpg", "video.sprites.jpg", "video.json"}


def submit(
    store: JobStore, model: str, *, frames: int = 9, steps: int = 2, width: int = 64, seed: int = 1
) -> str:
    """A job as the API writes it after checking the request."""
    spec = VideoSpec(
        prompt="a red fox in snow",
        model=model,
        seconds=frames / 16,
        fps=16,
        width=width,
        height=64,
        steps=steps,
        seed=seed,
    )
    return store.create_job(
        owner=LOCAL_OWNER,
        model=model,
        resolved_model=model,
        prompt=spec.prompt,
        size=f"{width}x64",
        seconds=f"{spec.seconds:g}",
        spec=spec.to_dict(),
    ).id


def wait_for(store: JobStore, job_ids: list[str], done, timeout: float = 90.0) -> list[JobRecord]:
    deadline = time.monotonic() + timeout
    while True:
        records = [store.get(job_id, include_deleted=True) for job_id in job_ids]
        if all(record is not None and done(record) for record in records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {[(r.id, r.status, r.stage, r.progress) for r in records]}")
        time.sleep(0.2)


def terminal(record: JobRecord) -> bool:
    return record.terminal


def denoising(record: JobRecord) -> bool:
    return record.status == "in_progress" and (record.step or 0) >= 2


@pytest.fixture(scope="module")
def cluster(
    session_home: Path,
    postgres_database,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    from fastapi.testclient import TestClient

    from openreel.models.catalog import get_card
    from openreel.models.weights import ensure_tiny
    from openreel.server.app import build_app
    from openreel.server.settings import Settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENREEL_HOME", str(session_home))  # the actors get it from here
        for model in ("tiny-wan", "tiny-ltx"):
            ensure_tiny(get_card(model))  # built once here, not raced by two actors
        url = postgres_database()
        outputs = tmp_path_factory.mktemp("cluster-outputs")
        settings = Settings(
            executor="ray",
            ray_workers=2,
            ray_worker_memory_gib=WORKER_MEMORY_GIB,
            database_url=url,
            output_dir=outputs,
            idle_poll_s=0.2,
            heartbeat_s=1.0,
            stale_after_s=5.0,
        )
        with LocalRayCluster(num_cpus=4) as head:
            settings.ray_address = head.address
            with TestClient(build_app(settings), client=("127.0.0.1", 50000)) as client:
                app = client.app
                yield {
                    "head": head,
                    "client": client,
                    "store": app.state.store,
                    "executor": app.state.executor,
                    "outputs": outputs,
                    "url": url,
                }


def test_jobs_spread_over_workers_and_stay_with_the_warm_model(cluster: dict[str, Any]) -> None:
    store: JobStore = cluster["store"]
    # Long jobs of one model, short ones of another, interleaved: first-come order would make each
    # worker switch model at almost every job.
    ids = []
    for index in range(4):
        ids.append(submit(store, "tiny-wan", frames=33, steps=12, seed=index))
        ids.append(submit(store, "tiny-ltx", width=128, seed=index))
    records = wait_for(store, ids, terminal)
    assert [record.status for record in records] == ["completed"] * len(ids), [
        r.error_message for r in records
    ]
    by_worker: dict[str, list[JobRecord]] = {}
    for record in records:
        by_worker.setdefault(record.claimed_by, []).append(record)
    assert len(by_worker) == 2, "both workers took jobs"
    assert all(str(os.getpid()) not in name for name in by_worker), "the jobs ran in the actors"
    switches = 0
    for jobs in by_worker.values():
        models = [job.model for job in sorted(jobs, key=lambda job: job.started_at)]
        switches += sum(1 for a, b in zip(models, models[1:], strict=False) if a != b)
    assert switches <= 2, {name: [j.model for j in jobs] for name, jobs in by_worker.items()}

    # `openreel cluster status` shows both workers, their devices and the models they keep warm.
    from typer.testing import CliRunner

    from openreel.cli import app

    result = CliRunner().invoke(app, ["cluster", "status", "--json", "--database-url", cluster["url"]])
    assert result.exit_code == 0, result.output
    import json

    shown = json.loads(result.stdout)["workers"]
    assert {row["name"] for row in shown} == set(by_worker)
    assert all(
        row["alive"] and row["device"] == "cpu" and row["memory_gib"] == WORKER_MEMORY_GIB for row in shown
    )
    assert {row["loaded_model"] for row in shown} <= {"tiny-wan", "tiny-ltx"}


def test_delete_through_the_api_stops_the_job_on_its_remote_worker(cluster: dict[str, Any]) -> None:
    store: JobStore = cluster["store"]
    job_id = submit(store, "tiny-wan", frames=33, steps=200)
    (running,) = wait_for(store, [job_id], denoising)
    assert str(os.getpid()) not in running.claimed_by
    started = time.monotonic()
    response = cluster["client"].delete(f"/v1/videos/{job_id}")
    assert response.status_code == 200, response.text
    (record,) = wait_for(store, [job_id], lambda r: r.status == "cancelled", timeout=30)
    # Stopped within a few steps: 200 steps would take far longer than this.
    assert time.monotonic() - started < 10
    assert record.step is None or record.step < 150
    assert not (cluster["outputs"] / job_id).exists()
    assert cluster["client"].get(f"/v1/videos/{job_id}").status_code == 404


def test_a_killed_worker_loses_nothing_and_its_job_completes_elsewhere_once(cluster: dict[str, Any]) -> None:
    store: JobStore = cluster["store"]
    # Long enough (several seconds of denoising) to be caught in the middle on a quiet machine too.
    job_id = submit(store, "tiny-wan", frames=33, steps=300, width=96)
    (running,) = wait_for(store, [job_id], denoising)
    victim = running.claimed_by
    pid = int(victim.split(":")[1])
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)  # an actor process of the cluster this module started
    (record,) = wait_for(store, [job_id], terminal, timeout=90)
    assert record.status == "completed", record.error_message
    assert record.attempts == 2
    assert record.claimed_by != victim
    assert len(record.outputs) == 1
    folder = cluster["outputs"] / job_id
    assert {path.name for path in folder.iterdir()} == VIDEO_FILES, "no partial files of the dead run"
    from openreel.render.encode import read_frames

    frames = list(read_frames(folder / "video.mp4"))
    assert len(frames) == 33 and frames[0].shape == (64, 96, 3)
    # The cluster carries on: Ray started the actor again and the queue keeps moving.
    (after,) = wait_for(store, [submit(store, "tiny-ltx", width=128)], terminal)
    assert after.status == "completed"


def test_jobs_no_worker_can_run_fail_with_the_reason(cluster: dict[str, Any]) -> None:
    store: JobStore = cluster["store"]
    too_big = submit(store, "hunyuanvideo")  # ~49 GiB; the workers have 16
    no_weights = submit(store, "cogvideox-2b")  # fits 16 GiB, but no weights on this machine
    big, missing = wait_for(store, [too_big, no_weights], terminal, timeout=60)
    assert (big.status, big.error_code) == ("failed", "no_worker_fits")
    assert "49.4 GiB" in big.error_message and "16.0 GiB" in big.error_message
    assert (missing.status, missing.error_code) == ("failed", "weights_missing"), missing.error_message
    assert "cogvideox-2b" in missing.error_message or "CogVideoX" in missing.error_message


def test_ray_ports_stay_off_redis(cluster: dict[str, Any]) -> None:
    import ray

    nodes = ray.nodes()
    ports = {node["NodeManagerPort"] for node in nodes} | {node["ObjectManagerPort"] for node in nodes}
    gcs = int(ray.get_runtime_context().gcs_address.rpartition(":")[2])
    assert gcs == cluster["head"].port
    assert 6379 not in ports | {gcs}


def test_serve_says_in_one_sentence_when_the_cluster_is_unreachable(session_home: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "openreel", "serve", "--executor", "ray", "--ray-address", address],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ | {"OPENREEL_HOME": str(session_home)},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"no Ray cluster answers at {address}" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # one sentence, wrapped at most once


def test_claim_keeps_models_warm_and_fails_what_fits_nowhere(database_url: str, tmp_path: Path) -> None:  # noqa: F811
    """The placement rule against the store alone (SQLite and PostgreSQL), without Ray."""
    store = JobStore(database_url)
    now = time.time()

    def register(label: str, loaded: str | None) -> str:
        name = f"{this_host()}:{os.getpid()}:{label}"
        store.register_worker(WorkerRecord(name, this_host(), "cpu", "CPU", 16.0, loaded, None, now, now))
        return name

    other = register("other", "tiny-wan")
    worker = ClusterWorker(store, label="me", memory_gib=16.0, device="cpu", outputs_dir=tmp_path)
    worker.name = register("me", "tiny-ltx")
    worker.loaded_model = "tiny-ltx"
    wan, cog, ltx, huge = (
        submit(store, m) for m in ("tiny-wan", "tiny-cogvideox", "tiny-ltx", "hunyuanvideo")
    )

    claimed = worker._claim(worker.name)
    assert claimed is not None and claimed.id == ltx, "the warm model's job first, though two are older"
    worker._job_id = None
    assert worker._claim(worker.name) is None  # it took the huge job only to fail it
    failed = store.get(huge)
    assert (failed.status, failed.error_code) == ("failed", "no_worker_fits")
    assert worker._claim(worker.name).id == cog  # the oldest one no free warm worker wants
    assert worker._claim(worker.name) is None, "tiny-wan is left to the free worker that has it loaded"
    store.update_worker(other, job_id="busy")
    assert worker._claim(worker.name).id == wan, "...unless that worker is busy"
    later = submit(store, "tiny-wan")
    store.update_worker(other, job_id=None, heartbeat_at=time.time() - 60)
    assert worker._claim(worker.name).id == later, "...or has missed its heartbeats (died idle)"
    store.close()
