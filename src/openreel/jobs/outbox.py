"""Webhooks: ``video.completed`` and ``video.failed`` events, signed as OpenAI signs its webhooks
(Standard Webhooks: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64
HMAC-SHA256 of "id.timestamp.body">`` with the ``whsec_`` secret), delivered from the
``webhook_outbox`` table with retries and exponential backoff.

An event row is written in the transaction that finishes its job (``JobStore.complete``/``fail``
with ``event=``), so a crash loses none; a dispatcher thread in every server delivers due rows,
taking each for a lease first so two servers sharing a database do not both send it. A row stays
until delivered (any 2xx) or given up after ``max_attempts``, so restarts resume delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from openreel.jobs.store import JobStore, webhook_outbox

log = logging.getLogger("openreel.webhooks")

EVENT_TYPES = {"completed": "video.completed", "failed": "video.failed"}


def new_event(
    url: str, event_type: str, video_id: str, now: float | None = None, *, key_id: str | None = None
) -> dict[str, Any]:
    """An outbox row for ``event_type`` about ``video_id``; the body follows OpenAI's webhook events.
    ``key_id``: the API key whose own webhook it goes to (signed with that key's secret)."""
    now = time.time() if now is None else now
    event_id = f"evt_{uuid.uuid4().hex}"
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created_at": int(now),
        "data": {"id": video_id},
    }
    return {
        "id": event_id,
        "url": url,
        "type": event_type,
        "payload": json.dumps(body, separators=(",", ":")),
        "created_at": now,
        "next_attempt_at": now,
        "key_id": key_id,
    }


def signing_key(secret: str) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>`` decodes, any other text is used as it is."""
    return base64.b64decode(secret[len("whsec_") :]) if secret.startswith("whsec_") else secret.encode()


def signature_headers(
    secret: str, event_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


@dataclass(frozen=True)
class Due:
    id: str
    url: str
    payload: str
    attempts: int
    key_id: str | None = None


def take_due(store: JobStore, now: float, *, lease_s: float, limit: int = 20) -> list[Due]:
    """Undelivered rows whose time has come, each pushed ``lease_s`` ahead so no other dispatcher
    takes it meanwhile (a dispatcher that dies mid-delivery only delays the event by the lease)."""
    pending = sa.and_(webhook_outbox.c.delivered_at.is_(None), webhook_outbox.c.gave_up_at.is_(None))
    due = (
        sa.select(webhook_outbox)
        .where(pending, webhook_outbox.c.next_attempt_at <= now)
        .order_by(webhook_outbox.c.next_attempt_at)
        .limit(limit)
    )
    # A read first: every server polls, and an idle poll must not take SQLite's write lock.
    with store._read() as conn:
        if not conn.execute(due).first():
            return []
    with store._write() as conn:
        rows = conn.execute(due).all()
        taken = []
        for row in rows:
            claimed = conn.execute(
                webhook_outbox.update()
                .where(webhook_outbox.c.id == row.id, webhook_outbox.c.next_attempt_at == row.next_attempt_at)
                .values(next_attempt_at=now + lease_s, attempts=row.attempts + 1)
            )
            if claimed.rowcount == 1:
                taken.append(Due(row.id, row.url, row.payload, row.attempts + 1, row.key_id))
    return taken


def mark(store: JobStore, event_id: str, **values: Any) -> None:
    with store._write() as conn:
        conn.execute(webhook_outbox.update().where(webhook_outbox.c.id == event_id).values(**values))


def pending_count(store: JobStore) -> int:
    with store._read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    webhook_outbox.c.delivered_at.is_(None), webhook_outbox.c.gave_up_at.is_(None)
                )
            ).scalar()
            or 0
        )


class WebhookDispatcher:
    """Delivers due events. ``secret`` signs the server's own events (--webhook-secret); an event
    for a key's own webhook is signed with that key's secret, read at each attempt."""

    def __init__(
        self,
        store: JobStore,
        secret: str | None,
        *,
        poll_s: float = 1.0,
        backoff_s: float = 5.0,
        max_backoff_s: float = 3600.0,
        max_attempts: int = 12,
        timeout_s: float = 10.0,
    ):
        self.store = store
        self.secret = secret
        self.poll_s = poll_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="openreel-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.deliver_due()
            except Exception:  # the database may be restarting; try again at the next poll
                log.exception("webhook delivery pass failed")
            self._stopping.wait(self.poll_s)

    def deliver_due(self, now: float | None = None) -> int:
        """One pass: send every due event once; returns how many were delivered."""
        import httpx

        delivered = 0
        lease = self.timeout_s * 3
        for due in take_due(self.store, time.time() if now is None else now, lease_s=lease):
            body = due.payload.encode()
            secret = self._secret(due)
            if secret is None:
                # The key was revoked or its webhook taken away: no one may sign for it now.
                log.warning("webhook %s to %s given up: its key has no webhook secret now", due.id, due.url)
                mark(self.store, due.id, gave_up_at=time.time(), last_error="no secret to sign with")
                continue
            try:
                # Signed at each attempt: the timestamp is the sending time (receivers refuse old ones).
                response = httpx.post(
                    due.url,
                    content=body,
                    headers=signature_headers(secret, due.id, body),
                    timeout=self.timeout_s,
                    follow_redirects=False,
                )
                error = None if response.is_success else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            if error is None:
                mark(self.store, due.id, delivered_at=time.time(), last_error=None)
                delivered += 1
            elif due.attempts >= self.max_attempts:
                log.warning(
                    "webhook %s to %s given up after %s attempts: %s", due.id, due.url, due.attempts, error
                )
                mark(self.store, due.id, gave_up_at=time.time(), last_error=error)
            else:
                wait = min(self.backoff_s * 2 ** (due.attempts - 1), self.max_backoff_s)
                mark(self.store, due.id, next_attempt_at=time.time() + wait, last_error=error)
        return delivered

    def _secret(self, due: Due) -> str | None:
        if due.key_id is None:
            return self.secret
        key = self.store.get_key(due.key_id)
        if key is None or not key.active or key.webhook_url != due.url:
            return None
        return key.webhook_secret
