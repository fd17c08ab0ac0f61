"""A real openreel server in a subprocess on a free port (the shape of vLLM's RemoteOpenAIServer):
waits on /healthz, hands out ``openai.OpenAI`` clients with ``max_retries=0``, and can be
stopped politely or killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RemoteServer:
    def __init__(
        self,
        home: Path,
        database_url: str,
        *,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        log: Path | None = None,
        port: int | None = None,
    ):
        self.home = Path(home)
        self.database_url = database_url
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or self.home / f"server-{self.port}.log"
        command = [
            sys.executable,
            "-m",
            "openreel.server",
            "--port",
            str(self.port),
            "--database-url",
            database_url,
            "--sora-2-model",
            "tiny-wan",
            "--sora-2-pro-model",
            "tiny-ltx",
            "--log-level",
            "warning",
            *args,
        ]
        environment = {**os.environ, "OPENREEL_HOME": str(self.home), "HF_HUB_OFFLINE": "1", **(env or {})}
        self._log_file = open(self.log, "ab")  # noqa: SIM115 (lives as long as the process)
        self.process = subprocess.Popen(
            command, env=environment, stdout=self._log_file, stderr=subprocess.STDOUT
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the server did not start in {timeout} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def client(self, api_key: str = "no-key-needed-on-loopback", **kwargs):
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=60, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no cleanup — a power cut as far as the queue knows."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log_file.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log_file.close()

    def __enter__(self) -> RemoteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
