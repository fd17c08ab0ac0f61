"""An ASGI guard in front of every route: what it refuses, no route ever sees.

- URLs no route could store or answer safely (NUL bytes in the path or query, which PostgreSQL
  cannot hold in text).
- DNS rebinding: a server bound to a loopback address answers only requests addressed to a
  loopback name (or a name in ``allowed_hosts``); a page on ``rebind.example`` that resolves to
  127.0.0.1 gets a 400, not the caller's videos.
- Cross-site request forgery: a state-changing request a browser sends from another origin
  (``Origin`` that is not this server, or ``Sec-Fetch-Site: cross-site``) without an API key is
  refused. A request that carries ``Authorization`` is not forgeable: a page cannot attach it to
  a cross-origin request without a CORS preflight, which this server never grants.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from openreel.server.auth import is_loopback
from openreel.server.protocol import error_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def refusal(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param, code=code), status_code=status)


def host_name(authority: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    return (urlsplit(f"//{authority}").hostname or "").lower()


def is_loopback_name(name: str) -> bool:
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


class RequestGuard:
    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] = ()):
        self.app = app
        self.allowed_hosts = frozenset(name.lower() for name in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = self.url_problem(scope) or self.host_problem(scope) or self.origin_problem(scope)
            if problem is not None:
                await problem(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def url_problem(scope: Scope) -> JSONResponse | None:
        query = scope.get("query_string", b"").lower()
        if "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query:
            return refusal(400, "the URL may not contain NUL bytes", "invalid_value")
        return None

    def host_problem(self, scope: Scope) -> JSONResponse | None:
        server = scope.get("server")
        if not server or not is_loopback(str(server[0])):
            return None  # bound to a network: API keys guard it, and its public names are many
        name = host_name(Headers(scope=scope).get("host", ""))
        if is_loopback_name(name) or name in self.allowed_hosts:
            return None
        return refusal(
            400,
            "this server answers only to localhost and 127.0.0.1 (the Host header names another); "
            "add the name with --allowed-host if it is really this machine",
            "invalid_host",
        )

    @staticmethod
    def origin_problem(scope: Scope) -> JSONResponse | None:
        if scope.get("method", "GET") in SAFE_METHODS:
            return None
        headers = Headers(scope=scope)
        if "authorization" in headers:
            return None
        origin = headers.get("origin")
        cross = headers.get("sec-fetch-site") == "cross-site"
        if origin is not None:
            parts = urlsplit(origin)
            cross = cross or origin == "null" or parts.netloc.lower() != headers.get("host", "").lower()
        if not cross:
            return None
        return refusal(
            403,
            "cross-origin requests that change anything need an API key (Authorization header)",
            "cross_origin_refused",
        )
