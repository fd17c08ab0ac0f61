"""A throwaway Ray cluster on this machine (tests and bench/cluster.py): a head on 127.0.0.1 with
every port chosen free and stated, so it never lands on Redis's 6379 (Ray's default GCS port) or
on another cluster's ports, and its own temp folder, so it never touches a cluster already here.

It is stopped by ending the process group it started (``ray stop`` would end every Ray process
of the machine, other people's included).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Ports other services here hold: never hand them to Ray even if they look free now.
RESERVED_PORTS = frozenset({6379, 5432, 8000, 8265})


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in RESERVED_PORTS:
            return port


class LocalRayCluster:
    """``ray start --head --block`` in its own session; ``address`` is its GCS host:port."""

    def __init__(self, *, num_cpus: int = 4, resources: dict[str, float] | None = None):
        self.num_cpus = num_cpus
        self.resources = resources or {}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Short: Ray's socket paths live under it and a Unix socket path has ~100 characters.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="orray", dir="/tmp"))
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        ray = str(Path(sys.executable).with_name("ray"))
        ports = {
            "--port": self.port,
            "--node-manager-port": free_port(),
            "--object-manager-port": free_port(),
            "--dashboard-agent-listen-port": free_port(),
            "--dashboard-agent-grpc-port": free_port(),
            "--metrics-export-port": free_port(),
            "--runtime-env-agent-port": free_port(),
        }
        args = [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1"]
        args += [f"{flag}={port}" for flag, port in ports.items()]
        # Worker processes take ports from a range of their own, clear of 6379.
        worker_base = 20000 + (self.port % 200) * 100
        args += [f"--min-worker-port={worker_base}", f"--max-worker-port={worker_base + 99}"]
        args += [
            f"--num-cpus={self.num_cpus}",
            "--num-gpus=0",
            f"--resources={json.dumps(self.resources)}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={self.temp_dir}",
        ]
        return args

    def start(self, timeout_s: float = 60.0) -> LocalRayCluster:
        env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0"}
        log = open(self.temp_dir / "head.log", "wb")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start failed: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ray start did not open {self.address} in {timeout_s:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self.temp_dir / "head.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # The group this object started: the head and every process it spawned.
            # `ray start --block` takes many seconds over SIGTERM; nothing of a throwaway cluster
            # needs keeping, so the group is killed after a short grace.
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(2)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *_exc: Any) -> None:
        self.stop()
