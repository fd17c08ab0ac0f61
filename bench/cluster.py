"""Queue throughput and time-to-start: the local executor against 1, 2 and 4 Ray workers, in one run.

Every configuration gets the same tiny jobs (a tiny twin, few frames and steps) on a fresh queue:
first one warm-up job per worker (imports torch, loads the pipeline: not measured), then ``--jobs``
jobs submitted at once. Reported per configuration:
  jobs/s         - jobs / (last completion - submission), warm workers;
  start p50/p99  - time from a job's creation to a worker claiming it (queueing included);
and each figure's ratio to the local executor's. On a machine with fewer cores than workers the
workers share the CPU, so the scaling says more about the queue's overhead than about speed-up.
Each worker computes with one thread, as Ray gives an actor of one CPU (OMP_NUM_THREADS=1): on a
busy 2-core machine torch's default of one thread per core made the local executor ~4x slower on
these tiny jobs, which would be a thread-count comparison, not a queue one.

    python bench/cluster.py [--jobs 16] [--workers 1 2 4] [--model tiny-wan] [--steps 2] [--frames 9]
                            [--database-url postgresql://...]   (default: SQLite in a temp folder)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported (see above)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def submit(store: Any, args: argparse.Namespace, seed: int) -> str:
    from openreel.jobs.store import LOCAL_OWNER
    from openreel.spec import VideoSpec

    spec = VideoSpec(
        prompt="a red fox in snow",
        model=args.model,
        seconds=args.frames / 16,
        fps=16,
        width=64,
        height=64,
        steps=args.steps,
        seed=seed,
    )
    return store.create_job(
        owner=LOCAL_OWNER,
        model=args.model,
        resolved_model=args.model,
        prompt=spec.prompt,
        size="64x64",
        seconds=f"{spec.seconds:g}",
        spec=spec.to_dict(),
    ).id


def wait(store: Any, ids: list[str], timeout: float = 600.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        records = [store.get(job_id) for job_id in ids]
        if all(record.terminal for record in records):
            failed = [record.error_message for record in records if record.status != "completed"]
            if failed:
                raise SystemExit(f"jobs failed: {failed[:3]}")
            return records
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for jobs")
        time.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(executor: Any, store: Any, args: argparse.Namespace, warm: int) -> dict[str, float]:
    executor.start()
    try:
        wait(store, [submit(store, args, seed) for seed in range(warm)])
        began = time.time()
        ids = [submit(store, args, 100 + seed) for seed in range(args.jobs)]
        records = wait(store, ids)
    finally:
        executor.stop()
    starts = [record.started_at - record.created_at for record in records]
    return {
        "jobs_per_s": len(records) / (max(record.completed_at for record in records) - began),
        "p50": statistics.median(starts),
        "p99": percentile(starts, 0.99),
        "workers_used": len({record.claimed_by for record in records}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--model", default="tiny-wan")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from openreel.jobs.cluster_local import LocalRayCluster
    from openreel.jobs.executor import LocalExecutor
    from openreel.jobs.ray_executor import RayExecutor
    from openreel.jobs.store import JobStore
    from openreel.models.catalog import get_card
    from openreel.models.weights import ensure_tiny

    scratch = Path(tempfile.mkdtemp(prefix="openreel-bench-cluster-"))
    os.environ.setdefault("OPENREEL_HOME", str(scratch / "home"))
    ensure_tiny(get_card(args.model))
    timings = dict(idle_poll_s=0.1, heartbeat_s=1.0, stale_after_s=30.0)

    def fresh_store(name: str) -> Any:
        if args.database_url:
            store = JobStore(args.database_url)
            from openreel.jobs.store import jobs

            with store._write() as conn:  # a bench database: start each configuration empty
                conn.execute(jobs.delete())
            return store
        return JobStore(f"sqlite:///{scratch / name}.db")

    results: dict[str, dict[str, float]] = {}
    store = fresh_store("local")
    local = LocalExecutor(store, outputs_dir=scratch / "out-local", workers=1, **timings)
    results["local, 1 thread"] = measure(local, store, args, warm=1)
    store.close()
    with LocalRayCluster(num_cpus=max(args.workers)) as head:
        for count in args.workers:
            store = fresh_store(f"ray{count}")
            executor = RayExecutor(
                store,
                address=head.address,
                workers=count,
                memory_gib=16.0,
                device="cpu",
                outputs_dir=scratch / f"out-ray{count}",
                **timings,
            )
            results[f"ray, {count} worker(s)"] = measure(executor, store, args, warm=count)
            store.close()

    base = results["local, 1 thread"]
    print(
        f"\n{args.jobs} jobs of {args.model} ({args.frames} frames, {args.steps} steps, 64x64), "
        f"{os.cpu_count()} CPU cores, {'PostgreSQL' if args.database_url else 'SQLite'} queue"
    )
    print(f"{'executor':<20} {'jobs/s':>8} {'x local':>8} {'start p50':>10} {'start p99':>10} {'workers':>8}")
    for name, row in results.items():
        print(
            f"{name:<20} {row['jobs_per_s']:8.2f} {row['jobs_per_s'] / base['jobs_per_s']:8.2f} "
            f"{row['p50']:9.2f}s {row['p99']:9.2f}s {row['workers_used']:8d}"
        )


if __name__ == "__main__":
    main()
