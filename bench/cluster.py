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
                            [--cp-only | --no-cp] [--cp-model wan2.1-t2v-1.3b] [--cp-ranks N]

Context parallelism (issue 13; render.parallel): on a machine with 2 or more CUDA GPUs, seconds
per denoising step of a full-size Wan transformer (the card's reference configuration, random
weights, bf16) at the card's native size and length, in 1 process and over N ranks (NCCL,
Ulysses), the speed-up, and how far rank 0's output is from the one-process output. A step here
is one transformer call (classifier-free guidance makes two per step in a real run). Elsewhere the
GPU row says why it is skipped, and the tiny twin runs the same code on CPU ranks (gloo) as a
measured row: the same output, and no speed-up expected on shared cores.
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


# --- context parallelism ------------------------------------------------------------------------


def cp_inputs(job: dict[str, Any], device: Any, dtype: Any) -> dict:
    """A denoising step's transformer inputs at this size, the same on every rank (seeded)."""
    import torch

    config, scale = job["config"], job["vae_scale"]
    generator = torch.Generator("cpu").manual_seed(1)
    frames = (job["frames"] - 1) // 4 + 1
    latent = (1, config["in_channels"], frames, job["height"] // scale, job["width"] // scale)
    text = (1, 512 if config["text_dim"] >= 1024 else 16, config["text_dim"])
    return {
        "hidden_states": torch.randn(latent, generator=generator).to(device, dtype),
        "encoder_hidden_states": torch.randn(text, generator=generator).to(device, dtype),
        "timestep": torch.tensor([500], device=device),
        "return_dict": False,
    }


def cp_rank(rank: int, world: int, port: int, job: dict[str, Any], results: Any) -> None:
    """One rank: build the transformer with seeded random weights, enable Ulysses over ``world``
    ranks (none for 1), time ``steps`` calls after one warm-up; rank 0 reports."""
    import torch
    import torch.distributed as dist
    from diffusers import WanTransformer3DModel

    from openreel.render.parallel import enable_context_parallel

    cuda = job["device"] == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    else:
        torch.set_num_threads(1)  # one thread a rank, as every worker here (see the top)
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    dtype = getattr(torch, job["dtype"])
    if world > 1:
        backend = "nccl" if cuda else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        with torch.device(device):
            model = WanTransformer3DModel.from_config(job["config"]).to(dtype).eval()
        if world > 1:
            from types import SimpleNamespace

            enable_context_parallel(SimpleNamespace(transformer=model), world, job["device"])
        inputs = cp_inputs(job, device, dtype)
        with torch.inference_mode():
            output = model(**inputs)[0]
            times = []
            for _ in range(job["steps"]):
                if cuda:
                    torch.cuda.synchronize()
                if world > 1:
                    dist.barrier()
                began = time.perf_counter()
                output = model(**inputs)[0]
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - began)
        if rank == 0:
            # A NumPy copy, not a tensor: a shared tensor's memory goes with this process.
            results.put((statistics.median(times), output.float().cpu().numpy()))
    except BaseException as exc:  # the parent prints it and stops every rank
        results.put((None, f"rank {rank}: {type(exc).__name__}: {exc}"))
        raise
    finally:
        if world > 1:
            dist.destroy_process_group()


def cp_run(world: int, job: dict[str, Any]) -> tuple[float, Any]:
    """Seconds per call and rank 0's output, ``world`` rank processes."""
    import torch.multiprocessing as mp

    from openreel.render.parallel import free_port

    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    ranks = [context.Process(target=cp_rank, args=(r, world, port, job, results)) for r in range(world)]
    for process in ranks:
        process.start()
    try:
        seconds, output = results.get(timeout=1800)
    finally:
        for process in ranks:
            process.join(60)
            if process.is_alive():
                process.kill()
    if seconds is None:
        raise SystemExit(f"context-parallel bench failed: {output}")
    return seconds, output


def cp_row(name: str, world: int, job: dict[str, Any]) -> None:
    one, reference = cp_run(1, job)
    many, output = cp_run(world, job)
    difference = float(abs(output - reference).max())
    scale = float(abs(reference).mean())
    print(
        f"{name:<44} {one:9.3f}s {many:9.3f}s {one / many:8.2f}x   max |diff| {difference:.2e} "
        f"(mean |out| {scale:.2e})"
    )


def context_parallel(args: argparse.Namespace) -> None:
    import json

    import torch

    from openreel.models.catalog import get_card
    from openreel.models.reference import load_reference
    from openreel.models.weights import ensure_tiny
    from openreel.plan import transformer_tokens

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    print(f"\n{'context parallel (Ulysses), s per call':<44} {'1 rank':>10} {'N ranks':>10} {'speed-up':>9}")
    card = get_card(args.cp_model)
    tokens = transformer_tokens(card, card.native_width, card.native_height, card.max_frames)
    if gpus >= 2:
        world = args.cp_ranks or max(n for n in (2, 4, 8) if n <= gpus)
        config = load_reference(card.id)["components"]["transformer"]["config"]
        job = {
            "config": config, "device": "cuda", "dtype": "bfloat16", "steps": args.cp_steps,
            "frames": card.max_frames, "height": card.native_height, "width": card.native_width,
            "vae_scale": card.size_multiple // 2,  # the size multiple is the VAE's times the 2x2 patch
        }  # fmt: skip
        label = f"{card.id} {card.native_width}x{card.native_height}x{card.max_frames}, {world} GPUs"
        print(f"  ({tokens} tokens per call; {torch.cuda.get_device_name(0)})")
        cp_row(label, world, job)
    else:
        print(
            f"{card.id} on GPUs: skipped: {gpus} CUDA GPU{'s' if gpus != 1 else ''} here, "
            "context parallelism needs 2 or more"
        )
    twin = get_card("tiny-wan")
    folder = ensure_tiny(twin)
    config = json.loads((folder / "transformer" / "config.json").read_text())
    config = {key: value for key, value in config.items() if not key.startswith("_")}
    job = {
        "config": config, "device": "cpu", "dtype": "float32", "steps": args.cp_steps,
        "frames": 17, "height": 64, "width": 96, "vae_scale": twin.size_multiple // 2,
    }  # fmt: skip
    cp_row("tiny-wan 96x64x17, 2 CPU ranks x 1 thread", 2, job)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--model", default="tiny-wan")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--cp-only", action="store_true", help="only the context-parallel rows")
    parser.add_argument("--no-cp", action="store_true", help="no context-parallel rows")
    parser.add_argument("--cp-model", default="wan2.1-t2v-1.3b", help="a Wan card: its full-size transformer")
    parser.add_argument("--cp-ranks", type=int, default=None, help="GPUs (default: the most of 2, 4, 8 here)")
    parser.add_argument("--cp-steps", type=int, default=3, help="timed transformer calls per configuration")
    args = parser.parse_args()
    if args.cp_only:
        os.environ.setdefault("OPENREEL_HOME", tempfile.mkdtemp(prefix="openreel-bench-cp-"))
        context_parallel(args)
        return

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
    if not args.no_cp:
        context_parallel(args)


if __name__ == "__main__":
    main()
