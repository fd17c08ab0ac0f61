"""Stills and OpenAI's Images API over HTTP: ``POST /v1/openreel/stills`` and its reads,
``/v1/images/generations`` and ``/v1/images/edits``.

A still is a job in the same queue as a video (kind "still"): one frame planned and made by the
engine, watermarked and signed. The Images API waits for its stills and answers with them (b64_json,
or a URL on this server); an edit is the uploaded image remixed by the prompt. ``StillsServing``
works on plain data and raises openreel errors; the routes only move HTTP in and out.
"""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from openreel import spec as specs
from openreel.jobs.store import COMPLETED, IN_PROGRESS, QUEUED, JobRecord
from openreel.models.catalog import get_card
from openreel.provenance import label as labels
from openreel.server.auth import Principal, authenticate
from openreel.server.editing import OpenreelServingModes, body_doc
from openreel.server.openai_videos import (
    ERRORS,
    OpenAIServingVideos,
    check_image,
    get_serving,
    parse_body,
    read_body,
    remove_upload,
    write_atomically,
)
from openreel.server.protocol import (
    OPENAI_IMAGE_MODELS,
    ApiError,
    ErrorResponse,
    ImageData,
    ImageEditRequest,
    ImageGenerateRequest,
    ImagesResponse,
    NotFound,
    NotReady,
    Still,
    StillRequest,
)
from openreel.spec import VideoSpec

STILL_MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
DEFAULT_STILL_SIZE = "1024x1024"  # the Images API's default


class StillFailed(ApiError):
    """A still the Images API waited for did not come out; status from the job's error code."""

    status = 500
    _STATUS = {"weights_missing": 503, "out_of_memory": 507}

    def __init__(self, message: str, code: str):
        super().__init__(message, code=code)
        self.status = self._STATUS.get(code, 500)


class StillTimeout(ApiError):
    code = "timeout"
    status = 504


class StillsServing:
    def __init__(self, videos: OpenAIServingVideos):
        self.videos = videos
        self.store = videos.store
        self.executor = videos.executor
        self.settings = videos.settings


    def create_still(
        self,
        request: StillRequest,
        owner: str,
        *,
        image: str | None = None,
        strength: float | None = None,
    ) -> Still:
        """Queue one still; from ``image`` (a file this still owns: removed if the request fails,
        or with the still) it is that image remixed at ``strength`` (the Images API's edits)."""
        try:
            resolved = self.executor.check(self._spec(request, image, strength))
        except BaseException:
            remove_upload(image)  # refused: the upload goes now, nothing else owns it
            raise
        extras = request.model_dump(
            include={"negative_prompt", "seed", "style", "steps", "guidance"}, exclude_none=True
        )
        job = self.store.create_job(
            job_id=f"still_{uuid.uuid4().hex}",
            owner=owner,
            model=request.model or "sora-2",
            resolved_model=resolved.model,
            prompt=resolved.prompt,
            size=resolved.size,
            seconds="0",
            spec=resolved.to_dict(),
            extras=extras,
            kind="still",
            input_reference=image,
            max_attempts=self.settings.max_attempts,
        )
        self.executor.notify()
        return self.to_still(job)

    def _spec(self, request: StillRequest, image: str | None, strength: float | None) -> VideoSpec:
        from openreel.plan import check_mode

        asked = request.model or "sora-2"
        model = self.settings.resolve_model(asked)
        card = get_card(model)
        check_mode(card, "still")
        if image is not None:
            check_mode(card, "remix")
        width, height = specs.parse_size(request.size or DEFAULT_STILL_SIZE)
        source = {"mode": "remix", "video": image, "strength": strength} if image is not None else {}
        return VideoSpec(
            prompt=request.prompt,
            model=model,
            width=width,
            height=height,
            # One frame: exactly what Engine.still plans, so the check here is the worker's.
            seconds=1 / specs.DEFAULT_FPS,
            negative_prompt=request.negative_prompt,
            style=request.style,
            seed=request.seed,
            steps=request.steps,
            guidance=request.guidance,
            extra={"format": request.format} | labels.to_extra(labels.for_request(None, self.settings.label)),
            **source,
        )

    def to_still(self, job: JobRecord) -> Still:
        video = self.videos.to_video(job)
        return Still(
            id=job.id,
            model=job.model,
            status=video.status,
            progress=video.progress,
            created_at=video.created_at,
            completed_at=video.completed_at,
            prompt=job.prompt,
            size=job.size,
            format=job.spec.get("extra", {}).get("format", "png"),
            error=video.error,
            openreel=video.openreel,
        )

    def _still_job(self, still_id: str, owner: str) -> JobRecord:
        job = self.store.get(still_id, owner)
        if job is None or job.kind != "still":
            raise NotFound(f"no still with id {still_id!r}", param="still_id", code="still_not_found")
        return job

    def get_still(self, still_id: str, owner: str) -> Still:
        return self.to_still(self._still_job(still_id, owner))

    def still_path(self, still_id: str, owner: str) -> tuple[Path, str]:
        job = self._still_job(still_id, owner)
        if job.status != COMPLETED:
            raise NotReady(f"still {still_id} is {job.status.replace('_', ' ')}", code="still_not_ready")
        path = self.executor.job_dir(job.id) / job.outputs[0]["video"]
        if not path.is_file():
            raise NotFound(f"the image of still {still_id} is missing on the server", param="still_id")
        return path, STILL_MEDIA[job.spec.get("extra", {}).get("format", "png")]

    def wait_for_still(self, still_id: str, owner: str) -> JobRecord:
        deadline = time.monotonic() + self.settings.image_wait_s
        while True:
            job = self._still_job(still_id, owner)
            if job.status == COMPLETED:
                return job
            if job.status not in (QUEUED, IN_PROGRESS):
                raise StillFailed(
                    job.error_message or "the image could not be made", job.error_code or "failed"
                )
            if time.monotonic() > deadline:
                raise StillTimeout(
                    f"still {still_id} is not ready after {self.settings.image_wait_s:g} s; "
                    f"GET /v1/openreel/stills/{still_id} tells when it is"
                )
            time.sleep(0.1)

    def image_model(self, asked: str | None) -> str | None:
        """OpenAI's image model names mean the configured still model (None: what sora-2 means)."""
        if asked in OPENAI_IMAGE_MODELS:
            return self.settings.image_model or "sora-2"
        return asked

    def generate_image(self, request: ImageGenerateRequest, owner: str, base_url: str) -> ImagesResponse:
        _refuse_what_no_model_here_gives(request)
        size = None if request.size in (None, "auto") else request.size
        output_format = request.output_format or "png"
        stills = [
            self.create_still(
                StillRequest(
                    prompt=request.prompt,
                    model=self.image_model(request.model),
                    size=size,
                    format=output_format,
                    negative_prompt=request.negative_prompt,
                    seed=None if request.seed is None else request.seed + index,
                    style=request.openreel_style(),
                    steps=request.steps,
                    guidance=request.guidance,
                ),
                owner,
            )
            for index in range(request.n or 1)
        ]
        return self._images_response(stills, owner, request, base_url)

    def edit_image(
        self, request: ImageEditRequest, images: list[bytes], owner: str, base_url: str
    ) -> ImagesResponse:
        """POST /v1/images/edits: the uploaded image remixed ``n`` times (seeds seed, seed+1, ...)."""
        _refuse_what_no_model_here_gives(request)
        if len(images) != 1:
            raise ApiError(
                f"send one image to edit (got {len(images)}): this server remixes one image at a time",
                param="image",
                code="missing_required_parameter" if not images else "invalid_value",
            )
        settings = self.settings
        image = check_image(
            images[0],
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_upload_pixels,
            max_decoded_bytes=settings.max_decoded_bytes,
            param="image",
        )
        strength = OpenreelServingModes._strength(request.strength)  # None: the remix default (mild)
        size = request.size if request.size not in (None, "auto") else _edit_size(image.width, image.height)
        output_format = request.output_format or "png"
        stills = []
        for index in range(request.n or 1):
            # One copy per still: each is the still's own upload, removed with it.
            path = settings.uploads_path / f"image_edit_{uuid.uuid4().hex}{image.suffix}"
            write_atomically(path, image.data)
            still = StillRequest(
                prompt=request.prompt,
                model=self.image_model(request.model),
                size=size,
                format=output_format,
                negative_prompt=request.negative_prompt,
                seed=None if request.seed is None else request.seed + index,
                style=request.style,
                steps=request.steps,
                guidance=request.guidance,
            )
            stills.append(self.create_still(still, owner, image=str(path), strength=strength))
        return self._images_response(stills, owner, request, base_url)

    def _images_response(
        self, stills: list[Still], owner: str, request: ImageGenerateRequest | ImageEditRequest, base_url: str
    ) -> ImagesResponse:
        """The Images API's answer once every still is made."""
        jobs = [self.wait_for_still(still.id, owner) for still in stills]
        return ImagesResponse(
            created=int(jobs[0].created_at),
            data=[self._image_item(job, owner, request, base_url) for job in jobs],
            background="opaque" if request.background else None,
            output_format=request.output_format or "png",
            quality=request.quality,
            size=jobs[0].size,
        )

    def _image_item(
        self, job: JobRecord, owner: str, request: ImageGenerateRequest | ImageEditRequest, base_url: str
    ) -> ImageData:
        if request.response_format == "url":
            return ImageData(url=f"{base_url.rstrip('/')}/v1/openreel/stills/{job.id}/content")
        path, _ = self.still_path(job.id, owner)
        data = path.read_bytes()
        if request.output_compression is not None and (request.output_format or "png") != "png":
            data = recompress(data, request.output_compression)
        return ImageData(b64_json=base64.b64encode(data).decode("ascii"))


def recompress(data: bytes, quality: int) -> bytes:
    """A JPEG or WebP again at ``quality`` (output_compression); the metadata goes with it, so
    this is for the returned copy only (the signed still on the server is unchanged)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        buffer = io.BytesIO()
        image.save(buffer, format=image.format, quality=quality)
    return buffer.getvalue()


# --- HTTP ------------------------------------------------------------------------------------


def get_stills_serving(serving: OpenAIServingVideos = Depends(get_serving)) -> StillsServing:
    return StillsServing(serving)


router = APIRouter()


@router.post(
    "/v1/openreel/stills",
    openapi_extra=body_doc(StillRequest, json_only=True),
    response_model=Still,
    responses=ERRORS,
    summary="Make a still image (a job; GET /v1/openreel/stills/{id} follows it)",
    tags=["studio"],
)
async def create_still(
    request: Request,
    principal: Principal = Depends(authenticate),
    stills: StillsServing = Depends(get_stills_serving),
) -> Still:
    body = await read_body(request, stills.settings)
    parsed = parse_body(StillRequest, body.fields)
    return await run_in_threadpool(stills.create_still, parsed, principal.owner)


@router.get("/v1/openreel/stills/{still_id}", response_model=Still, responses=ERRORS, tags=["studio"])
def get_still(
    still_id: str,
    principal: Principal = Depends(authenticate),
    stills: StillsServing = Depends(get_stills_serving),
) -> Still:
    return stills.get_still(still_id, principal.owner)


@router.get(
    "/v1/openreel/stills/{still_id}/content",
    response_class=FileResponse,
    responses=ERRORS | {200: {"content": {m: {} for m in STILL_MEDIA.values()}}},
    summary="Download a finished still",
    tags=["studio"],
)
def still_content(
    still_id: str,
    principal: Principal = Depends(authenticate),
    stills: StillsServing = Depends(get_stills_serving),
) -> FileResponse:
    path, media_type = stills.still_path(still_id, principal.owner)
    return FileResponse(path, media_type=media_type, filename=f"{still_id}{path.suffix}")


@router.post(
    "/v1/images/generations",
    openapi_extra=body_doc(ImageGenerateRequest, json_only=True),
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    responses=ERRORS | {504: {"model": ErrorResponse}},
    summary="OpenAI's Images API: one still, returned when it is made",
    description="`response_format` b64_json (default) returns the image; `url` returns "
    "/v1/openreel/stills/{id}/content on this server (it needs the same API key).",
    tags=["images"],
)
async def generate_image(
    request: Request,
    principal: Principal = Depends(authenticate),
    stills: StillsServing = Depends(get_stills_serving),
) -> ImagesResponse:
    body = await read_body(request, stills.settings)
    parsed = parse_body(ImageGenerateRequest, body.fields)
    return await run_in_threadpool(stills.generate_image, parsed, principal.owner, str(request.base_url))


def _refuse_what_no_model_here_gives(request: ImageGenerateRequest | ImageEditRequest) -> None:
    if request.stream:
        raise ApiError(
            "streaming partial images is not supported here: send stream=false",
            param="stream",
            code="unsupported_parameter",
        )
    if request.background == "transparent":
        raise ApiError(
            "the video models here cannot make a transparent background: send opaque or auto",
            param="background",
            code="unsupported_parameter",
        )


def _edit_size(width: int, height: int, longest: int = 1024) -> str:
    """An edit's default size: the image's own shape, at most ``longest`` a side and at least the
    smallest frame a spec takes, in even pixels."""
    scale = min(1.0, longest / max(width, height))
    scale = max(scale, specs.MIN_SIDE / min(width, height))
    return f"{max(2, round(width * scale / 2) * 2)}x{max(2, round(height * scale / 2) * 2)}"


@router.post(
    "/v1/images/edits",
    openapi_extra=body_doc(ImageEditRequest, {"image": "The image to edit (PNG, JPEG or WebP)."}),
    response_model=ImagesResponse,
    response_model_exclude_none=True,
    responses=ERRORS | {504: {"model": ErrorResponse}},
    summary="OpenAI's Images API: an image remixed by a prompt, returned when it is made",
    description="Multipart, as the SDK sends it: the `image` file and the fields. `strength` "
    "(openreel) says how much changes; `mask` is not supported.",
    tags=["images"],
)
async def edit_image(
    request: Request,
    principal: Principal = Depends(authenticate),
    stills: StillsServing = Depends(get_stills_serving),
) -> ImagesResponse:
    accepted = ("image", "image[]", "mask")
    body = await read_body(request, stills.settings, file_fields=lambda name: name in accepted)
    if "mask" in body.files or "mask" in body.fields:
        raise ApiError(
            "masks (inpainting) are not supported here: the whole image is remixed, by strength",
            param="mask",
            code="unsupported_parameter",
        )
    parsed = parse_body(ImageEditRequest, body.fields)
    images = body.files.get("image", []) + body.files.get("image[]", [])
    return await run_in_threadpool(stills.edit_image, parsed, images, principal.owner, str(request.base_url))


def attach_images(app: FastAPI) -> None:
    app.include_router(router)
