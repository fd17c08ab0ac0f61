"""The OpenAI Videos API: ``OpenAIServingVideos`` does the work on plain data and raises
openreel errors; the router below only moves HTTP in and out (vLLM's serving/router split).

Uploads (``input_reference``) are checked here before anything is queued: size on the wire, the
type by its content (Pillow, not the file name), the pixel count from the header before any
decoding (decompression bombs), then a full decode, so a broken image is a 400, never a crash
inside a worker.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from openreel import __version__
from openreel.characters import conditions as character_conditions
from openreel.errors import UnsupportedModeError
from openreel.jobs.executor import LocalExecutor, remove_job_files, remove_upload_path
from openreel.jobs.store import COMPLETED, FAILED, IN_PROGRESS, QUEUED, JobRecord, JobStore, new_job_id
from openreel.models.catalog import all_cards, get_card
from openreel.provenance import label as labels
from openreel.server import loras as server_loras
from openreel.server.auth import Principal, authenticate, optional_principal
from openreel.server.bodies import RequestBody, parse_body, read_body  # noqa: F401 (editing imports them here)
from openreel.server.media import (  # noqa: F401 (re-exported)
    ImageUpload,
    as_webp,
    check_image,
    decode_image_url,
    fetch_image_url,
)
from openreel.server.protocol import (
    OPENREEL_FIELDS,
    ApiError,
    ErrorResponse,
    Health,
    ModelList,
    ModelObject,
    NotFound,
    NotReady,
    OpenreelInfo,
    OpenreelOutput,
    PayloadTooLarge,
    Video,
    VideoCreateRequest,
    VideoDeleted,
    VideoError,
    VideoList,
    public_message,
)
from openreel.server.settings import Settings

log = logging.getLogger("openreel.server")
RequestModel = TypeVar("RequestModel", bound=BaseModel)

# The kinds of job the Videos routes show and delete (stills have their own routes).
VIDEO_KINDS = ("video", "recut")
VARIANTS = {
    "video": ("video", "video/mp4"),
    "thumbnail": ("thumbnail", "image/jpeg"),
    "spritesheet": ("spritesheet", "image/jpeg"),
}


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


remove_upload = remove_upload_path  # the name editing.py imports


def poll_after_ms(
    job: JobRecord, *, position: int, running_etas: list[float | None], workers: int, settings: Settings
) -> int | None:
    """How long a poller should wait before asking again: a fraction of the time the job is
    expected to need, so it hears promptly and a queue of pollers does not hammer the server."""
    if job.status == IN_PROGRESS:
        wait_s = (job.eta_seconds / 4) if job.eta_seconds else 1.0
    elif job.status == QUEUED:
        known = [eta for eta in running_etas if eta is not None]
        first_free = min(known) if known else 1.0
        per_job = max(known) if known else 2.0
        wait_s = (first_free + (position // max(workers, 1)) * per_job) / 2
    else:
        return None
    return int(min(max(wait_s * 1000, settings.poll_min_ms), settings.poll_max_ms))


class OpenAIServingVideos:
    def __init__(self, store: JobStore, executor: LocalExecutor, settings: Settings):
        self.store = store
        self.executor = executor
        self.settings = settings

    # --- conversions ---

    def to_video(self, job: JobRecord, *, queue_position: int | None = None) -> Video:
        status = job.status if job.status in (QUEUED, IN_PROGRESS, COMPLETED, FAILED) else FAILED
        error = (
            VideoError(
                code=job.error_code or "failed",
                message=public_message(job.error_message or "", self.settings.private_roots()),
            )
            if status == FAILED
            else None
        )
        progress = 100 if status == COMPLETED else int(min(job.progress * 100, 99))
        extras = {name: job.extras.get(name) for name in OPENREEL_FIELDS}
        info = OpenreelInfo(
            model=job.resolved_model,
            **extras,
            stage=job.stage,
            step=job.step,
            total_steps=job.total_steps,
            eta_seconds=job.eta_seconds,
            queue_position=queue_position,
            attempts=job.attempts,
            worker=job.claimed_by,
            has_input_reference=job.input_reference is not None,
            outputs=[OpenreelOutput(variation=o["variation"], seed=o["seed"]) for o in job.outputs],
            credits=job.outputs[0].get("credits") if job.outputs else None,
            operation="recut" if job.kind == "recut" else job.spec.get("mode", "t2v"),
            parents=job.parents,
            strength=job.spec.get("strength") if job.kind == "video" else None,
            backward=job.spec.get("backward") or None if job.kind == "video" else None,
            character=job.extras.get("character"),
        )
        return Video(
            id=job.id,
            model=job.model,
            status=status,
            progress=progress,
            created_at=int(job.created_at),
            completed_at=int(job.completed_at)
            if job.completed_at and status in (COMPLETED, FAILED)
            else None,
            expires_at=int(job.expires_at) if job.expires_at else None,
            prompt=job.prompt,
            size=job.size,
            seconds=job.seconds,
            remixed_from_video_id=job.remixed_from_video_id,
            error=error,
            openreel=info,
        )

    def _get(self, video_id: str, owner: str) -> JobRecord:
        job = self.store.get(video_id, owner)
        if job is None or job.kind == "still":  # stills have their own routes (/v1/openreel/stills)
            raise NotFound(f"no video with id {video_id!r}", param="video_id", code="video_not_found")
        return job

    # --- operations ---

    def create(self, request: VideoCreateRequest, upload: bytes | None, owner: str) -> Video:
        settings = self.settings
        asked_model = request.model or "sora-2"
        model = settings.resolve_model(asked_model)
        image: ImageUpload | None = None
        if request.input_reference is not None:
            if upload is not None:
                raise ApiError(
                    "give input_reference once: as a file or as image_url", param="input_reference"
                )
            if "file_id" in request.input_reference:
                from openreel.server.files import file_bytes

                upload = file_bytes(self, request.input_reference["file_id"], owner)
            elif "image_url" in request.input_reference:
                url = request.input_reference["image_url"]
                if settings.fetch_image_urls and not url.startswith("data:"):
                    upload = fetch_image_url(
                        url,
                        max_bytes=settings.max_upload_bytes,
                        timeout_s=settings.fetch_timeout_s,
                        allow_private=settings.fetch_private_urls,
                    )
                else:
                    upload = decode_image_url(url)
            else:
                raise ApiError(
                    "input_reference needs image_url (a data URL) or file_id (POST /v1/files)",
                    param="input_reference",
                    code="missing_required_parameter",
                )
        if upload is not None:
            image = check_image(
                upload,
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_upload_pixels,
                max_decoded_bytes=settings.max_decoded_bytes,
            )
        start_image: str | None = None
        character_images: list[str] = []
        if request.character is not None:
            if image is not None:
                raise ApiError(
                    "give either input_reference or character: both say what the video starts from",
                    param="character",
                )
            character = self.store.get_character(request.character, owner)
            if character is None:
                raise NotFound(
                    f"no character {request.character!r}; POST /v1/videos/characters makes one",
                    param="character",
                    code="character_not_found",
                )
            # The character's own files: the job must not own (and delete) them.
            character_images = list(character.images)
        # Only catalog ids: the engine would also take a folder path, which must not let a
        # client name files on the server.
        card = get_card(model)
        references: tuple[str, ...] = ()
        if character_images:
            # Reference images where the model takes them (Wan VACE), else its first image as the
            # start: one rule for the CLI and the server (openreel.characters).
            start_image, references = character_conditions(card, character_images)
        job_id = new_job_id()
        reference: str | None = None
        if image is not None:
            if "i2v" not in card.modes:  # before anything is written
                self._unable(card.id, "input_reference")
            path = settings.uploads_path / f"{job_id}{image.suffix}"
            write_atomically(path, image.data)
            reference = start_image = str(path)
        mode = "i2v" if start_image else "t2v"
        if mode == "i2v" and "i2v" not in card.modes:
            self._unable(card.id, "character")
        try:
            spec = request.to_spec(
                model=model,
                default_size=settings.default_size,
                default_seconds=settings.default_seconds,
                mode=mode,
            )
            # Decided now, from the request or the server's --label, so every worker lays the same.
            label = labels.for_request(request.label, settings.label)
            spec = replace(spec, extra={**spec.extra, **labels.to_extra(label)})
            loras = server_loras.resolve(spec.loras, settings.loras_path)
            resolved = self.executor.check(
                replace(spec, image=start_image, references=references, loras=loras)
            )
        except BaseException:
            if reference:
                Path(reference).unlink(missing_ok=True)
            raise
        extras = request.extras() | {"label": label.to_dict() if label is not None else None}
        if request.character is not None:
            extras["character"] = request.character
        job = self.store.create_job(
            job_id=job_id,
            owner=owner,
            model=asked_model,
            resolved_model=resolved.model,
            prompt=resolved.prompt,
            size=resolved.size,
            seconds=f"{resolved.seconds:g}",
            spec=resolved.to_dict(),
            extras=extras,
            input_reference=reference,
            max_attempts=settings.max_attempts,
        )
        self.executor.notify()
        return self.to_video(job, queue_position=self.store.queue_position(job))

    @staticmethod
    def _unable(model: str, param: str) -> None:
        able = [c.id for c in all_cards() if "i2v" in c.modes]
        raise UnsupportedModeError(
            f"{model} cannot start from an image ({param}); models that can: {', '.join(able) or 'none yet'}",
            param=param,
        )

    def retrieve(self, video_id: str, owner: str) -> tuple[Video, int | None]:
        job = self._get(video_id, owner)
        position = self.store.queue_position(job) if job.status == QUEUED else None
        etas = self.store.running_etas() if job.status == QUEUED else []
        after = poll_after_ms(
            job,
            position=position or 0,
            running_etas=etas,
            workers=self.settings.workers,
            settings=self.settings,
        )
        return self.to_video(job, queue_position=position), after

    def list(self, owner: str, *, after: str | None, limit: int, order: str) -> VideoList:
        try:
            jobs, has_more = self.store.list(
                owner, after=after, limit=limit, order=order, exclude_kinds=("still",)
            )
        except KeyError:
            raise NotFound(
                f"no video with id {after!r} to list after", param="after", code="video_not_found"
            ) from None
        data = [self.to_video(job) for job in jobs]
        return VideoList(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=has_more,
        )

    def delete(self, video_id: str, owner: str) -> VideoDeleted:
        job = self.store.delete(video_id, owner, kinds=VIDEO_KINDS)
        if job is None:
            raise NotFound(f"no video with id {video_id!r}", param="video_id", code="video_not_found")
        # A job running here is stopped by its worker, which then removes the folder itself
        # (removing it under a writing encoder would only turn the cancel into an error).
        if not self.executor.cancel(job.id) and job.status != IN_PROGRESS:
            remove_job_files(self.executor.job_dir(job.id))
        remove_upload(job.input_reference)
        return VideoDeleted(id=job.id)

    def content_path(self, video_id: str, owner: str, variant: str, variation: int) -> tuple[Path, str]:
        job = self._get(video_id, owner)
        if job.status != COMPLETED:
            detail = (
                f"it failed: {job.error_message}"
                if job.status == FAILED
                else f"it is {job.status.replace('_', ' ')} ({int(job.progress * 100)}%)"
            )
            raise NotReady(f"video {video_id} has no content yet: {detail}", code="video_not_ready")
        key, media_type = VARIANTS[variant]
        output = next((o for o in job.outputs if o["variation"] == variation), None)
        if output is None:
            raise ApiError(
                f"video {video_id} has variations 1..{len(job.outputs)}; {variation} was asked",
                param="variation",
            )
        relative = output.get(key)
        path = self.executor.job_dir(job.id) / relative if relative else None
        if path is None or not path.is_file():
            raise NotFound(f"the {variant} of video {video_id} is missing on the server", param="variant")
        if variant != "video":
            webp = as_webp(path)  # the spec's type for previews; the JPEG stays for the page
            if webp is not None:
                return webp, "image/webp"
        return path, media_type

    def models(self) -> ModelList:
        data = [
            ModelObject(id=card.id, owned_by=card.authors[0] if card.authors else "openreel")
            for card in all_cards()
        ]
        for alias, target in self.settings.model_aliases().items():
            data.append(ModelObject(id=alias, owned_by=f"openreel (maps to {target})"))
        return ModelList(data=data)

    def model(self, model_id: str) -> ModelObject:
        for item in self.models().data:
            if item.id == model_id:
                return item
        raise NotFound(
            f"no model {model_id!r}; GET /v1/models lists them", param="model", code="model_not_found"
        )

    def health(self, owner: str | None) -> Health:
        alive = self.executor.alive_workers()
        return Health(
            status="ok" if alive >= self.settings.workers else "degraded",
            version=__version__,
            database=self.store.dialect,
            workers=alive,
            workers_configured=self.settings.workers,
            jobs=self.store.counts(owner) if owner is not None else None,
        )


# --- HTTP ------------------------------------------------------------------------------------

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in ((400, "Invalid request"), (401, "Missing or wrong API key"), (404, "No such video"))
}

_CREATE_SCHEMA = VideoCreateRequest.model_json_schema()
_MULTIPART_SCHEMA = {
    **_CREATE_SCHEMA,
    "properties": {
        **{k: v for k, v in _CREATE_SCHEMA["properties"].items() if k != "input_reference"},
        "input_reference": {
            "type": "string",
            "format": "binary",
            "description": "A PNG, JPEG or WebP image.",
        },
    },
}
CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
            "application/json": {"schema": _CREATE_SCHEMA},
        },
    }
}

router = APIRouter()


def get_serving(request: Request) -> OpenAIServingVideos:
    return request.app.state.serving


async def read_create_body(request: Request, settings: Settings) -> tuple[VideoCreateRequest, bytes | None]:
    """The create body: fields, and the input_reference image if one was uploaded as a file."""
    body = await read_body(request, settings, file_fields=lambda name: name == "input_reference")
    upload = body.file("input_reference")
    if upload is not None and len(upload) > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"the image is {len(upload)} bytes; the limit is {settings.max_upload_bytes} bytes",
            param="input_reference",
            code="file_too_large",
        )
    return parse_body(VideoCreateRequest, body.fields), upload


@router.post(
    "/v1/videos",
    response_model=Video,
    responses=ERRORS | {413: {"model": ErrorResponse}},
    openapi_extra=CREATE_BODY,
    summary="Create a video",
    tags=["videos"],
)
async def create_video(
    request: Request,
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> Video:
    body, upload = await read_create_body(request, serving.settings)
    return await run_in_threadpool(serving.create, body, upload, principal.owner)


@router.get("/v1/videos", response_model=VideoList, responses=ERRORS, summary="List videos", tags=["videos"])
def list_videos(
    after: str | None = Query(None, description="The last id of the previous page."),
    limit: int = Query(20, ge=0, le=100),
    order: Literal["asc", "desc"] = Query("desc"),
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> VideoList:
    return serving.list(principal.owner, after=after, limit=limit, order=order)


@router.get(
    "/v1/videos/{video_id}",
    response_model=Video,
    responses=ERRORS,
    summary="Retrieve a video",
    tags=["videos"],
)
def retrieve_video(
    video_id: str,
    response: Response,
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> Video:
    video, after_ms = serving.retrieve(video_id, principal.owner)
    if after_ms is not None:
        response.headers["openai-poll-after-ms"] = str(after_ms)
    return video


@router.delete(
    "/v1/videos/{video_id}",
    response_model=VideoDeleted,
    responses=ERRORS,
    summary="Delete a video (cancels it if it is still being made)",
    tags=["videos"],
)
def delete_video(
    video_id: str,
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> VideoDeleted:
    return serving.delete(video_id, principal.owner)


@router.get(
    "/v1/videos/{video_id}/content",
    responses=ERRORS
    | {
        400: {
            "model": ErrorResponse,
            "description": "Invalid request, or not completed yet (video_not_ready)",
        },
        200: {"content": {"video/mp4": {}, "image/webp": {}}},
    },
    response_class=FileResponse,
    summary="Download the video, its thumbnail or its spritesheet",
    tags=["videos"],
)
def download_content(
    video_id: str,
    variant: Literal["video", "thumbnail", "spritesheet"] = Query("video"),
    variation: int = Query(1, ge=1, description="openreel: which variation, when more than one was made."),
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> FileResponse:
    path, media_type = serving.content_path(video_id, principal.owner, variant, variation)
    return FileResponse(path, media_type=media_type, filename=f"{video_id}-{variant}{path.suffix}")


@router.get("/v1/models", response_model=ModelList, summary="List models", tags=["models"])
def list_models(
    principal: Principal = Depends(authenticate), serving: OpenAIServingVideos = Depends(get_serving)
) -> ModelList:
    return serving.models()


@router.get("/v1/models/{model_id}", response_model=ModelObject, responses=ERRORS, tags=["models"])
def retrieve_model(
    model_id: str,
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> ModelObject:
    return serving.model(model_id)


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "A worker thread has died"}},
    summary="Liveness, live workers, and the caller's job counts",
    tags=["server"],
)
def healthz(
    response: Response,
    principal: Principal | None = Depends(optional_principal),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> Health:
    health = serving.health(principal.owner if principal else None)
    if health.status != "ok":
        response.status_code = 503  # a load balancer or supervisor should notice, and restart us
    return health


def attach_router(app: FastAPI) -> None:
    app.include_router(router)
