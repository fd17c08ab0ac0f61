"""Webhooks (issue 14 item 11): video.completed and video.failed, signed as OpenAI signs its
webhooks and checked here with the official SDK's ``client.webhooks.verify_signature``; delivered
from a persistent outbox with retries, and resumed by a new server on the same database."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from openreel.jobs.outbox import pending_count
from openreel.server.app import build_app
from openreel.server.settings import Settings
from test_api import LOOPBACK, FakeEngine, wait_for

SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes!!!!").decode()


class Receiver:
    """An HTTP endpoint that records what it is sent and answers the statuses it is told to."""

    def __init__(self, statuses: list[int] | None = None):
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.received.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, count: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} deliveries"
            time.sleep(0.02)


def make_settings(tmp_path: Path, url: str) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'openreel.db'}",
        output_dir=tmp_path / "outputs",
        upload_dir=tmp_path / "uploads",
        sora_2_model="tiny-wan",
        sora_2_pro_model="tiny-ltx",
        idle_poll_s=0.05,
        default_size="160x96",
        default_seconds="1",
        webhook_url=url,
        webhook_secret=SECRET,
        webhook_poll_s=0.05,
        webhook_backoff_s=0.1,
    )


def verified(body: bytes, headers: dict[str, str], secret: str = SECRET) -> dict:
    sdk = openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1")
    sdk.webhooks.verify_signature(body, headers, secret=secret)  # raises when the signature is wrong
    with pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.webhooks.verify_signature(body + b" ", headers, secret=secret)
    return json.loads(body)


def test_completed_and_failed_events_are_signed_like_openai(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver(statuses=[500])  # the first delivery fails: it is retried
    try:
        with TestClient(
            build_app(make_settings(tmp_path, receiver.url), engine_factory=FakeEngine), client=LOOPBACK
        ) as http:
            done = wait_for(http, http.post("/v1/videos", json={"prompt": "ok"}).json()["id"])
            receiver.wait(2)
            first, retried = receiver.received[0], receiver.received[1]
            assert first[1]["webhook-id"] == retried[1]["webhook-id"]  # the same event, sent again
            event = verified(*retried)
            assert event["object"] == "event" and event["type"] == "video.completed"
            assert event["data"] == {"id": done["id"]} and event["id"] == retried[1]["webhook-id"]
            assert abs(event["created_at"] - time.time()) < 60

            def broken(*args, **kwargs):
                raise RuntimeError("the engine broke")

            monkeypatch.setattr(FakeEngine, "generate", broken)
            failed = wait_for(http, http.post("/v1/videos", json={"prompt": "bad"}).json()["id"])
            assert failed["status"] == "failed"
            receiver.wait(3)
            event = verified(*receiver.received[2])
            assert event["type"] == "video.failed" and event["data"] == {"id": failed["id"]}
            time.sleep(0.3)
            assert len(receiver.received) == 3 and pending_count(http.app.state.store) == 0
    finally:
        receiver.close()


def test_undelivered_events_survive_a_restart(tmp_path: Path) -> None:
    receiver = Receiver()
    down = receiver.url.replace(str(receiver.server.server_address[1]), "9")  # nothing listens there
    settings = make_settings(tmp_path, down)
    with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as http:
        done = wait_for(http, http.post("/v1/videos", json={"prompt": "ok"}).json()["id"])
        time.sleep(0.3)
        assert pending_count(http.app.state.store) == 1
    try:
        # A new server on the same database; the receiver is reachable at last.
        from openreel.jobs.store import JobStore, webhook_outbox

        store = JobStore(settings.database_url)
        with store._write() as conn:
            conn.execute(webhook_outbox.update().values(url=receiver.url, next_attempt_at=time.time()))
        store.close()
        with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as http:
            receiver.wait(1)
            event = verified(*receiver.received[0])
            assert event["type"] == "video.completed" and event["data"] == {"id": done["id"]}
    finally:
        receiver.close()


def test_a_webhook_url_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        Settings(webhook_url="https://example.org/hooks")


def test_a_key_with_its_own_webhook_gets_its_events_signed_with_its_secret(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from openreel.cli import app
    from openreel.jobs.store import JobStore
    from openreel.server.auth import create_api_key

    own_secret = "whsec_" + base64.b64encode(b"alice's own secret, 32 bytes!!!!").decode()
    server_hooks, alice_hooks = Receiver(), Receiver()
    settings = make_settings(tmp_path, server_hooks.url)
    store = JobStore(settings.database_url)
    keys = {name: create_api_key(store, name)[1] for name in ("alice", "bob")}
    store.close()
    cli = CliRunner()
    database = ["--database-url", settings.database_url]
    given = cli.invoke(
        app, ["keys", "webhook", "alice", "--url", alice_hooks.url, "--secret", own_secret, *database]
    )
    assert given.exit_code == 0, given.output
    listed = cli.invoke(app, ["keys", "list", *database], env={"COLUMNS": "200"}).output
    assert alice_hooks.url in listed
    half = cli.invoke(app, ["keys", "webhook", "bob", "--url", alice_hooks.url, *database])
    assert half.exit_code == 2 and "both --url and --secret" in half.output
    try:
        with TestClient(build_app(settings, engine_factory=FakeEngine), client=LOOPBACK) as http:
            as_alice = {"Authorization": f"Bearer {keys['alice']}"}
            as_bob = {"Authorization": f"Bearer {keys['bob']}"}
            alices = wait_for(
                http,
                http.post("/v1/videos", json={"prompt": "a"}, headers=as_alice).json()["id"],
                headers=as_alice,
            )
            bobs = wait_for(
                http,
                http.post("/v1/videos", json={"prompt": "b"}, headers=as_bob).json()["id"],
                headers=as_bob,
            )
            alice_hooks.wait(1)
            server_hooks.wait(1)
            # Alice's event went to her URL, signed with her secret (not the server's); Bob's, with
            # no webhook of his own, to the server's.
            assert verified(*alice_hooks.received[0], secret=own_secret)["data"] == {"id": alices["id"]}
            with pytest.raises(openai.InvalidWebhookSignatureError):
                verified(*alice_hooks.received[0])
            assert verified(*server_hooks.received[0])["data"] == {"id": bobs["id"]}

            removed = cli.invoke(app, ["keys", "webhook", "alice", "--remove", *database])
            assert removed.exit_code == 0, removed.output
            again = wait_for(
                http,
                http.post("/v1/videos", json={"prompt": "c"}, headers=as_alice).json()["id"],
                headers=as_alice,
            )
            server_hooks.wait(2)
            assert verified(*server_hooks.received[1])["data"] == {"id": again["id"]}
            assert len(alice_hooks.received) == 1
    finally:
        server_hooks.close()
        alice_hooks.close()
