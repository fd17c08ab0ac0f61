"""Property-based requests from the server's own OpenAPI document (schemathesis): whatever a
client sends, the answer is never a 5xx. Bounded: a few examples per operation, against the app
with test_api's fake engine on a real socket."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from openreel.server.app import build_app  # noqa: E402
from openreel.server.settings import Settings  # noqa: E402
from test_api import FakeEngine  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    import uvicorn

    folder: Path = tmp_path_factory.mktemp("schema")
    config = Settings(
        database_url=f"sqlite:///{folder / 'openreel.db'}",
        output_dir=folder / "outputs",
        upload_dir=folder / "uploads",
        sora_2_model="tiny-wan",
        sora_2_pro_model="tiny-ltx",
        idle_poll_s=0.05,
        default_size="160x96",
        default_seconds="1",
        image_wait_s=2.0,
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(config, engine_factory=FakeEngine), host="127.0.0.1", port=port, log_level="error"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
    server.should_exit = True
    thread.join(10)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_request_is_a_server_error(case) -> None:
    response = case.call(timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
