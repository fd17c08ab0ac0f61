"""Load on the OpenAI Videos API: N concurrent SDK clients create M tiny jobs and poll them to the end.

    python bench/api_load.py --clients 8 --jobs 24 [--workers 1] [--database-url postgresql://...]
    python bench/api_load.py --base-url http://127.0.0.1:8000/v1 --api-key ...   # an existing server

Starts a server (``python -m openreel.server``) on a free port with a fresh database unless
--base-url is given. Prints throughput, p50/p99 latency of create and retrieve, and checks that
every job completed exactly once (one attempt each, one output folder each). Numbers, not
assertions: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import httpx

warnings.filterwarnings("ignore", message="The Sora API", category=DeprecationWarning)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(args: argparse.Namespace, folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    command = [
        sys.executable,
        "-m",
        "openreel.server",
        "--port",
        str(port),
        "--database-url",
        url,
        "--workers",
        str(args.workers),
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "OPENREEL_OUTPUT_DIR": str(folder / "outputs"), "HF_HUB_OFFLINE": "1"}
    log = open(folder / "server.log", "wb")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited:\n{(folder / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, f"{base}/v1"
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    sys.exit("the server did not start in 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=24, help="jobs in all, shared among the clients")
    parser.add_argument("--workers", type=int, default=1, help="server worker threads (started server only)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--base-url", default=None, help="use a running server instead of starting one")
    parser.add_argument("--api-key", default="bench")
    parser.add_argument("--model", default="tiny-wan")
    parser.add_argument("--size", default="160x96")
    parser.add_argument("--seconds", default="1")
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args()

    import openai

    folder = Path(tempfile.mkdtemp(prefix="openreel-bench-"))
    process = None
    base_url = args.base_url
    if base_url is None:
        process, base_url = start_server(args, folder)

    create_ms: list[float] = []
    retrieve_ms: list[float] = []
    finished: dict[str, object] = {}
    errors: list[str] = []
    lock = threading.Lock()
    per_client = [
        args.jobs // args.clients + (1 if i < args.jobs % args.clients else 0) for i in range(args.clients)
    ]
    start_line = threading.Barrier(args.clients)

    def client_run(index: int, count: int) -> None:
        client = openai.OpenAI(base_url=base_url, api_key=args.api_key, max_retries=0, timeout=120)
        start_line.wait()
        mine: list[str] = []
        try:
            for n in range(count):
                began = time.perf_counter()
                video = client.videos.create(
                    prompt=f"client {index} job {n}",
                    model=args.model,
                    seconds=args.seconds,
                    size=args.size,
                    extra_body={"steps": args.steps, "seed": index * 1000 + n},
                )
                with lock:
                    create_ms.append((time.perf_counter() - began) * 1000)
                mine.append(video.id)
            pending = list(mine)
            while pending:
                for video_id in list(pending):
                    began = time.perf_counter()
                    raw = client.videos.with_raw_response.retrieve(video_id)
                    elapsed = (time.perf_counter() - began) * 1000
                    video = raw.parse()
                    with lock:
                        retrieve_ms.append(elapsed)
                    if video.status in ("completed", "failed"):
                        pending.remove(video_id)
                        with lock:
                            finished[video_id] = video
                # Honour the server's hint as the SDK's poll() does, capped so all jobs keep moving.
                hint = int(raw.headers.get("openai-poll-after-ms", "250"))
                time.sleep(min(hint, 1000) / 1000)
        except Exception as exc:  # report, do not hide: a bench that swallows errors lies
            with lock:
                errors.append(f"client {index}: {type(exc).__name__}: {exc}")

    began = time.perf_counter()
    threads = [threading.Thread(target=client_run, args=(i, c)) for i, c in enumerate(per_client)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began

    statuses = [v.status for v in finished.values()]
    attempts = [v.openreel.get("attempts") for v in finished.values()]
    completed = statuses.count("completed")
    folders = len(list((folder / "outputs").iterdir())) if process and (folder / "outputs").is_dir() else None
    once = completed == args.jobs and all(a == 1 for a in attempts) and (folders in (None, args.jobs))

    print(
        f"server:    {'started here' if process else base_url}, {args.workers} worker(s), "
        f"db={'sqlite' if not args.database_url else args.database_url.split(':')[0]}"
    )
    print(
        f"load:      {args.clients} clients x {args.jobs} jobs ({args.model} {args.size} {args.seconds}s, "
        f"{args.steps} step)"
    )
    print(
        f"wall:      {wall:.1f} s   throughput {completed / wall:.2f} jobs/s   "
        f"API {(len(create_ms) + len(retrieve_ms)) / wall:.0f} requests/s"
    )
    print(
        f"create:    n={len(create_ms)}  p50 {percentile(create_ms, 0.5):.1f} ms  "
        f"p99 {percentile(create_ms, 0.99):.1f} ms  max {max(create_ms, default=float('nan')):.1f} ms"
    )
    print(
        f"retrieve:  n={len(retrieve_ms)}  p50 {percentile(retrieve_ms, 0.5):.1f} ms  "
        f"p99 {percentile(retrieve_ms, 0.99):.1f} ms  mean {statistics.fmean(retrieve_ms or [0]):.1f} ms"
    )
    print(
        f"outcome:   {completed}/{args.jobs} completed, {statuses.count('failed')} failed, "
        f"attempts {sorted(set(attempts))}, output folders {folders}"
    )
    print(f"exactly once: {'yes' if once else 'NO'}")
    for error in errors:
        print("error:", error)

    if process is not None:
        process.terminate()
        process.wait(30)
    sys.exit(0 if once and not errors else 1)


if __name__ == "__main__":
    main()
