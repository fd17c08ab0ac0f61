"""build_app: the FastAPI application, its lifespan, and every exception handler.

Every error leaves in OpenAI's envelope ``{"error": {message, type, param, code}}`` with the
status the SDK maps to its exception classes, whatever raised it: our own errors, FastAPI's
request validation, Starlette's 404/405, or a bug (500, details only in the log).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from openreel import __version__
from openreel.errors import OpenreelError
from openreel.jobs.executor import EngineLike, LocalExecutor, default_engine_factory
from openreel.jobs.outbox import WebhookDispatcher
from openreel.jobs.store import JobStore
from openreel.server.collections import attach_collections
from openreel.server.editing import attach_editing
from openreel.server.files import attach_files
from openreel.server.guard import RequestGuard
from openreel.server.images import attach_images
from openreel.server.openai_videos import OpenAIServingVideos, attach_router
from openreel.server.protocol import error_body, public_message
from openreel.server.settings import Settings
from openreel.server.studio_api import attach_studio

log = logging.getLogger("openreel.server")

_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param, code=code), status_code=status)


def _param_from_loc(loc: tuple) -> str | None:
    # FastAPI's loc starts with where the value came from ("query", "path", "body").
    parts = [str(part) for part in loc if part not in ("query", "path", "body", "header")]
    return ".".join(parts) or None


def install_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenreelError)
    async def openreel_error(request: Request, exc: OpenreelError) -> JSONResponse:
        if exc.status >= 500:
            log.error("request failed: %s (%s)", exc.message, exc.code)
        message = public_message(exc.message, request.app.state.settings.private_roots())
        return error_response(exc.status, message, param=exc.param, code=exc.code)

    @app.exception_handler(RequestValidationError)
    async def request_validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request", "type": ""}
        param = _param_from_loc(tuple(first.get("loc", ())))
        code = "missing_required_parameter" if first.get("type") == "missing" else "invalid_value"
        return error_response(400, f"Invalid value for '{param}': {first.get('msg')}", param=param, code=code)

    @app.exception_handler(ValidationError)
    async def model_validation_error(_request: Request, exc: ValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = _param_from_loc(tuple(first.get("loc", ())))
        return error_response(
            400, f"Invalid value for '{param}': {first.get('msg')}", param=param, code="invalid_value"
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        code = _HTTP_CODES.get(exc.status_code)
        response = error_response(exc.status_code, message, code=code)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(Exception)
    async def unexpected_error(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal server error; the server log has details", code="internal_error")


def make_executor(
    settings: Settings, store: JobStore, engine_factory: Callable[[], EngineLike] = default_engine_factory
) -> LocalExecutor:
    """Worker threads here (``local``), or Ray actors pulling from the same queue (``ray``)."""
    options = dict(
        outputs_dir=settings.outputs_path,
        idle_poll_s=settings.idle_poll_s,
        heartbeat_s=settings.heartbeat_s,
        stale_after_s=settings.stale_after_s,
        retention_s=settings.retention,
        sweep_every_s=settings.sweep_every_s,
        webhook_url=settings.webhook_url,
    )
    if settings.executor == "ray":
        from openreel.jobs.ray_executor import RayExecutor  # imports Ray only when it starts

        return RayExecutor(
            store,
            address=settings.ray_address,
            workers=settings.ray_workers,
            memory_gib=settings.ray_worker_memory_gib,
            gpus_per_worker=settings.ray_gpus_per_worker,
            **options,
        )
    return LocalExecutor(store, workers=settings.workers, engine_factory=engine_factory, **options)


def build_app(
    settings: Settings | None = None,
    *,
    store: JobStore | None = None,
    engine_factory: Callable[[], EngineLike] = default_engine_factory,
) -> FastAPI:
    """The app; the store is opened (and migrated) and the workers started in its lifespan.

    ``store`` may be passed in (the CLI opens it first to check keys before binding);
    ``engine_factory`` lets tests run the queue with a fake engine."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = store is None
        job_store = store or await run_in_threadpool(JobStore, settings.database_url)
        executor = make_executor(settings, job_store, engine_factory)
        await run_in_threadpool(executor.start)
        # Always running: an API key may get its own webhook (openreel keys webhook) at any time.
        dispatcher = WebhookDispatcher(
            job_store,
            settings.webhook_secret if settings.webhook_url else None,
            poll_s=settings.webhook_poll_s,
            backoff_s=settings.webhook_backoff_s,
            max_attempts=settings.webhook_max_attempts,
        )
        dispatcher.start()
        app.state.webhooks = dispatcher
        app.state.store = job_store
        app.state.executor = executor
        app.state.serving = OpenAIServingVideos(job_store, executor, settings)
        try:
            yield
        finally:
            await run_in_threadpool(dispatcher.stop)
            await run_in_threadpool(executor.stop)
            if owned:
                job_store.close()

    app = FastAPI(
        title="openreel",
        version=__version__,
        description="The OpenAI Videos API on open video diffusion models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(RequestGuard, allowed_hosts=tuple(settings.allowed_hosts))
    install_exception_handlers(app)
    attach_editing(app)
    attach_images(app)
    attach_collections(app)  # before the Videos router: /v1/videos/characters is not a video id
    attach_files(app)
    attach_router(app)
    attach_studio(app)
    return app
