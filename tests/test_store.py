"""JobStore on both databases: migrations, atomic claims, cursors, recovery, owners, API keys."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then taken as arguments)
from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from db_fixtures import database_url, postgres_database  # noqa: F401
from openreel.jobs import store as store_module
from openreel.jobs.store import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    QUEUED,
    JobStore,
    WorkerRecord,
    normalize_url,
    this_host,
)


def make_job(store: JobStore, owner: str = "alice", prompt: str = "a red fox", **kw):
    return store.create_job(
        owner=owner,
        model="tiny-wan",
        resolved_model="tiny-wan",
        prompt=prompt,
        size="160x96",
        seconds="1",
        spec={"prompt": prompt, "model": "tiny-wan"},
        extras=kw.pop("extras", {"seed": 7}),
        **kw,
    )


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture
def store(database_url: str):
    job_store = JobStore(database_url)
    yield job_store
    job_store.close()


def test_migrations_run_once_in_order(store: JobStore) -> None:
    names = [step.__name__ for step in store_module.MIGRATIONS]
    assert names == sorted(names) and names[0] == "m001_jobs"
    assert store.applied_migrations() == names
    assert store.migrate() == []  # opening again applies nothing
    assert JobStore(store.url).migrate() == []


def test_an_old_database_gains_new_columns(database_url: str) -> None:
    """A database made before the progress and attempts steps keeps its jobs and gains the columns."""
    engine = sa.create_engine(normalize_url(database_url))
    old_steps = store_module.MIGRATIONS[:2]
    with engine.begin() as conn:
        store_module.migrations_table.create(conn)
        for step in old_steps:
            step(conn)
            conn.execute(
                store_module.migrations_table.insert().values(name=step.__name__, applied_at=time.time())
            )
        conn.execute(
            sa.text(
                "INSERT INTO jobs (id, owner, status, model, prompt, size, seconds, spec, extras, "
                "created_at) VALUES "
                "('video_old', 'local', 'queued', 'tiny-wan', 'old', '160x96', '1', '{}', '{}', 1.0)"
            )
        )
    engine.dispose()
    store = JobStore(database_url)
    assert store.applied_migrations()[2:] == [
        "m003_job_progress",
        "m004_job_attempts",
        "m005_job_kind_parents",
        "m006_characters",
        "m007_webhook_outbox",
        "m008_files",
        "m009_workers",
        "m010_key_webhooks",
        "m011_worker_devices",
    ]
    old = store.get("video_old")
    assert old is not None and old.progress == 0 and old.attempts == 0 and old.max_attempts == 3
    assert (old.kind, old.parents) == ("video", [])
    claimed = store.claim("w")
    assert claimed is not None and claimed.id == "video_old" and claimed.attempts == 1
    store.close()


def test_create_get_and_owner_isolation(store: JobStore) -> None:
    job = make_job(store, owner="alice", extras={"seed": 7, "steps": 2})
    assert job.id.startswith("video_") and job.status == QUEUED and job.extras == {"seed": 7, "steps": 2}
    assert store.get(job.id, "alice").prompt == "a red fox"
    assert store.get(job.id, "bob") is None
    assert store.get(job.id) is not None  # workers see every job
    assert store.delete(job.id, "bob") is None
    assert store.list("bob") == ([], False)


def test_cursor_pagination_both_orders(store: JobStore) -> None:
    ids = [make_job(store, prompt=f"clip {i}").id for i in range(7)]
    make_job(store, owner="bob")
    page, more = store.list("alice", limit=3, order="asc")
    assert [j.id for j in page] == ids[:3] and more
    page, more = store.list("alice", after=page[-1].id, limit=3, order="asc")
    assert [j.id for j in page] == ids[3:6] and more
    page, more = store.list("alice", after=page[-1].id, limit=3, order="asc")
    assert [j.id for j in page] == ids[6:] and not more
    page, more = store.list("alice", limit=4, order="desc")
    assert [j.id for j in page] == ids[::-1][:4] and more
    # A deleted job still works as a cursor, and is not listed.
    store.delete(ids[2], "alice")
    page, more = store.list("alice", after=ids[3], order="desc")
    assert [j.id for j in page] == [ids[1], ids[0]] and not more
    page, _ = store.list("alice", after=ids[2], order="asc", limit=2)
    assert [j.id for j in page] == ids[3:5]
    with pytest.raises(KeyError):
        store.list("alice", after="video_nope")
    with pytest.raises(KeyError):  # someone else's id is no cursor either
        store.list("bob", after=ids[0])


def test_claim_is_fifo_and_skips_deleted(store: JobStore) -> None:
    first, second, third = (make_job(store, prompt=p) for p in ("one", "two", "three"))
    store.delete(first.id, "alice")
    claimed = store.claim("w1")
    assert claimed.id == second.id and claimed.status == IN_PROGRESS and claimed.claimed_by == "w1"
    assert claimed.attempts == 1 and claimed.started_at is not None
    assert store.claim("w2").id == third.id
    assert store.claim("w3") is None


def test_two_workers_never_run_one_job(store: JobStore) -> None:
    jobs = [make_job(store, prompt=f"job {i}").id for i in range(24)]
    claims: dict[str, list[str]] = {}
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker(name: str) -> None:
        start.wait()
        while (job := store.claim(name)) is not None:
            with lock:
                claims.setdefault(job.id, []).append(name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(claims) == sorted(jobs)
    assert all(len(names) == 1 for names in claims.values()), claims
    assert store.counts() == {IN_PROGRESS: 24}


def test_only_the_claimer_updates_and_delete_revokes_the_claim(store: JobStore) -> None:
    job = make_job(store)
    store.claim("w1")
    assert not store.update_progress(job.id, "w2", fraction=0.5)
    assert store.update_progress(
        job.id, "w1", fraction=0.5, stage="denoising", step=2, total_steps=4, eta_seconds=3
    )
    current = store.get(job.id)
    assert (current.progress, current.stage, current.step, current.total_steps) == (0.5, "denoising", 2, 4)
    assert store.delete(job.id, "alice").status == IN_PROGRESS
    assert not store.update_progress(job.id, "w1", fraction=0.6)
    assert not store.complete(job.id, "w1", [])
    assert store.get(job.id) is None
    assert store.get(job.id, include_deleted=True).status == IN_PROGRESS  # until its worker has stopped
    store.finish_cancelled(job.id)
    assert store.get(job.id, include_deleted=True).status == CANCELLED


def test_complete_fail_and_release(store: JobStore) -> None:
    done, failed, released = make_job(store), make_job(store), make_job(store)
    store.claim("w")
    store.claim("w")
    store.claim("w")
    outputs = [{"variation": 1, "seed": 3, "video": "video.mp4"}]
    assert store.complete(done.id, "w", outputs)
    assert store.fail(failed.id, "w", "out_of_memory", "not enough memory")
    assert store.release(released.id, "w")
    done, failed, released = (store.get(j.id) for j in (done, failed, released))
    assert done.status == COMPLETED and done.progress == 1.0 and done.outputs == outputs and done.completed_at
    assert failed.status == FAILED and failed.error_code == "out_of_memory"
    assert released.status == QUEUED and released.attempts == 0 and released.claimed_by is None


def test_recover_requeues_dead_claims_a_bounded_number_of_times(store: JobStore) -> None:
    host = this_host()
    dead = f"{host}:{dead_pid()}:w0"
    again, exhausted, alive, far_away, deleted = (make_job(store, max_attempts=2) for _ in range(5))
    claims = {
        again.id: dead,
        exhausted.id: dead,
        alive.id: f"{host}:1:w0",
        far_away.id: "other-host:42:w0",
        deleted.id: dead,
    }
    for _ in claims:
        job = store.claim("tmp")
        with store.engine.begin() as conn:
            conn.execute(
                store_module.jobs.update()
                .where(store_module.jobs.c.id == job.id)
                .values(claimed_by=claims[job.id])
            )
    with store.engine.begin() as conn:  # one attempt used already: the next recovery is its last
        conn.execute(
            store_module.jobs.update().where(store_module.jobs.c.id == exhausted.id).values(attempts=2)
        )
        conn.execute(
            store_module.jobs.update()
            .where(store_module.jobs.c.id == far_away.id)
            .values(heartbeat_at=time.time() - 3600)
        )
    store.delete(deleted.id, "alice")
    cleaned: list[str] = []
    report = store.recover(stale_after=120, on_requeue=lambda job: cleaned.append(job.id))
    assert sorted(report.requeued) == sorted([again.id, far_away.id])
    assert report.failed == [exhausted.id]
    assert report.cleaned == [deleted.id]
    assert set(cleaned) == {again.id, far_away.id, exhausted.id, deleted.id}
    assert store.get(again.id).status == QUEUED and store.get(again.id).attempts == 1
    lost = store.get(exhausted.id)
    assert lost.status == FAILED and lost.error_code == "worker_lost" and "2 times" in lost.error_message
    # pid 1 lives and its heartbeat is fresh: not touched
    assert store.get(alive.id).status == IN_PROGRESS
    # requeued jobs run again and count the attempt
    assert store.claim("w").attempts == 2


def test_queue_position_and_counts(store: JobStore) -> None:
    jobs = [make_job(store) for _ in range(3)]
    assert [store.queue_position(j) for j in jobs] == [0, 1, 2]
    store.claim("w")
    assert store.queue_position(store.get(jobs[2].id)) == 1
    assert store.counts() == {QUEUED: 2, IN_PROGRESS: 1}


def test_api_keys(store: JobStore) -> None:
    assert store.active_key_count() == 0
    alice = store.add_key(key_id="key_a", name="alice", prefix="ork-abc", key_hash="h1")
    store.add_key(key_id="key_b", name="bob", prefix="ork-def", key_hash="h2")
    assert store.key_by_hash("h1").id == alice.id and store.key_by_hash("nope") is None
    assert store.active_key_count() == 2
    assert [k.id for k in store.revoke_key("bob")] == ["key_b"]
    assert store.revoke_key("bob") == []
    assert store.active_key_count() == 1 and not store.key_by_hash("h2").active
    assert [k.name for k in store.list_keys(include_revoked=True)] == ["alice", "bob"]
    store.touch_key("key_a")
    assert store.key_by_hash("h1").last_used_at is not None


def test_specs_round_trip_as_json(store: JobStore) -> None:
    job = make_job(store)
    with store.engine.connect() as conn:
        raw = conn.execute(
            sa.select(store_module.jobs.c.spec).where(store_module.jobs.c.id == job.id)
        ).scalar()
    assert json.loads(raw) == {"prompt": "a red fox", "model": "tiny-wan"}


def test_default_url_is_sqlite_in_the_openreel_folder(openreel_home) -> None:
    assert normalize_url(None) == f"sqlite:///{openreel_home / 'openreel.db'}"
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"


def test_cluster_status_shows_how_many_gpus_each_worker_holds(database_url: str) -> None:
    """A worker registered before workers recorded their device count reads as one device; a
    worker of four GPUs says so in `openreel cluster status` (table and JSON)."""
    from typer.testing import CliRunner

    from openreel.cli import app

    engine = sa.create_engine(normalize_url(database_url))
    with engine.begin() as conn:
        store_module.migrations_table.create(conn)
        for step in store_module.MIGRATIONS[:10]:  # up to m010: workers without a device count
            step(conn)
            conn.execute(
                store_module.migrations_table.insert().values(name=step.__name__, applied_at=time.time())
            )
        conn.execute(
            sa.text(
                "INSERT INTO workers (name, host, device, device_name, memory_gib, started_at, heartbeat_at)"
                " VALUES ('old:1:w', 'old', 'cpu', 'cpu', 8.0, :now, :now)"
            ),
            {"now": time.time()},
        )
    engine.dispose()
    store = JobStore(database_url)
    now = time.time()
    store.register_worker(
        WorkerRecord(
            "gpu:2:w", "gpu", "cuda", "NVIDIA H100", 78.0, "wan2.1-t2v-14b", None, now, now, devices=4
        )
    )
    store.close()
    shown = CliRunner().invoke(app, ["cluster", "status", "--json", "--database-url", database_url])
    assert shown.exit_code == 0, shown.output
    devices = {row["name"]: row["devices"] for row in json.loads(shown.stdout)["workers"]}
    assert devices == {"old:1:w": 1, "gpu:2:w": 4}
    table = CliRunner().invoke(app, ["cluster", "status", "--database-url", database_url])
    assert table.exit_code == 0, table.output
    assert "cuda x4" in table.stdout and "cpu x" not in table.stdout  # one device: no count shown
