"""API keys and who is asking.

Keys are random 256-bit secrets shown once and stored as SHA-256 digests: a secret that long
cannot be guessed from its digest, so a slow password hash would only slow every request down.
With no keys the server is single-user, and then only safe on a loopback address: binding
anything else without keys is refused unless the person says ``--insecure-no-auth``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
import uuid
from dataclasses import dataclass

from fastapi import Depends, Request

from openreel.jobs.store import LOCAL_OWNER, ApiKeyRecord, JobStore
from openreel.server.protocol import AuthenticationFailed
from openreel.server.settings import Settings, get_settings

KEY_PREFIX = "ork-"
# Writing last_used_at on every request would turn every read into a write; once a minute is enough.
_TOUCH_EVERY_S = 60.0


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(store: JobStore, name: str) -> tuple[ApiKeyRecord, str]:
    """Make a key; returns its record and the secret, which is never stored or shown again."""
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name, e.g. `openreel keys create --name alice`")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    record = store.add_key(
        key_id=f"key_{uuid.uuid4().hex[:16]}",
        name=name,
        prefix=secret[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(secret),
    )
    return record, secret


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class UnsafeBindError(RuntimeError):
    pass


def check_bind(host: str, has_keys: bool, insecure_no_auth: bool) -> None:
    """Refuse to serve a network without keys: anyone who can reach it could use the GPUs and
    read every video."""
    if has_keys or insecure_no_auth or is_loopback(host):
        return
    raise UnsafeBindError(
        f"refusing to listen on {host} without API keys: anyone on the network could use this server. "
        "Create a key first (`openreel keys create --name NAME`), bind 127.0.0.1, "
        "or pass --insecure-no-auth if the network is trusted"
    )


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: ``owner`` is the key id, or "local" in single-user mode."""

    owner: str
    key: ApiKeyRecord | None = None


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def authenticate(
    request: Request, settings: Settings = Depends(get_settings), store: JobStore = Depends(get_store)
) -> Principal:
    if store.active_key_count() == 0:
        client = request.client.host if request.client else None
        if settings.insecure_no_auth or is_loopback(client):
            return Principal(owner=LOCAL_OWNER)
        raise AuthenticationFailed(
            "this server has no API keys yet and only serves its own machine; "
            "create one with `openreel keys create --name NAME`"
        )
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise AuthenticationFailed(
            "no API key given: send 'Authorization: Bearer <key>' (the openai SDK does this with api_key=...)"
        )
    key = store.key_by_hash(hash_key(secret.strip()))
    if key is None or not key.active:
        raise AuthenticationFailed(
            "incorrect or revoked API key; `openreel keys list` on the server shows the active keys"
        )
    if key.last_used_at is None or time.time() - key.last_used_at > _TOUCH_EVERY_S:
        store.touch_key(key.id)
    return Principal(owner=key.id, key=key)


def optional_principal(
    request: Request, settings: Settings = Depends(get_settings), store: JobStore = Depends(get_store)
) -> Principal | None:
    """Who asks, or None for an anonymous caller (routes open to all, such as /healthz, show such a
    caller nothing that belongs to a key)."""
    try:
        return authenticate(request, settings, store)
    except AuthenticationFailed:
        return None
