"""An ASGI guard in front of every route: it refuses, before any route runs, requests whose URL
no route could store or answer safely (NUL bytes in the path or query, which PostgreSQL cannot
hold in text)."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from openreel.server.protocol import error_body


def refusal(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param, code=code), status_code=status)


class RequestGuard:
    def __init__(self, app: ASGIApp, **_: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.url_problem(scope)
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
