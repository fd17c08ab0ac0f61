"""What the studio page needs beyond the OpenAI routes, and the page itself.

``GET /v1/openreel/styles`` and ``/models`` fill the composer's pickers; ``/videos/{id}/recipe``
and ``/provenance`` fill a finished video's details. They sit behind the same ``authenticate``
dependency as the OpenAI routes and answer only for the caller's own videos, with the same
envelope errors (reusing ``OpenAIServingVideos.content_path`` for the 404 and 400 checks).
``attach_studio`` mounts them and serves ``web/`` (static files, no build step) at ``/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from openreel.errors import OpenreelError
from openreel.models.catalog import ModelCard, all_cards, get_card
from openreel.server import loras as server_loras
from openreel.server.auth import Principal, authenticate
from openreel.server.openai_videos import ERRORS, OpenAIServingVideos, get_serving
from openreel.server.protocol import ApiError, ErrorResponse, NotFound
from openreel.styles import all_styles

WEB_DIR = Path(__file__).parent / "web"


# --- responses -------------------------------------------------------------------------------


class StyleInfo(BaseModel):
    id: str
    name: str
    description: str
    prompt_template: str = Field(description="The prompt the model sees; {prompt} is what was typed.")
    negative_prompt: str
    author: str
    licence: str
    steps: int | None = Field(None, description="Suggested denoising steps, if the preset has a view.")
    guidance: float | None = None
    builtin: bool


class StyleList(BaseModel):
    object: Literal["list"] = "list"
    data: list[StyleInfo]


class DownloadInfo(BaseModel):
    model: str
    status: Literal["downloading", "completed", "failed", "cancelled"]
    bytes_done: int = Field(description="Bytes of the model's files on disk so far.")
    total_bytes: int | None = Field(description="The repository's size; null when the hub did not say.")
    started_at: int
    finished_at: int | None
    error: str | None = Field(description="Why it failed or stopped, in a sentence or two.")
    error_code: str | None


class ModelRemoved(BaseModel):
    id: str
    deleted: bool = True
    freed_bytes: int


class ModelInfo(BaseModel):
    id: str
    family: str
    title: str
    description: str
    modes: list[str] = Field(description='What it can start from: "t2v" (text), "i2v" (an image).')
    native_width: int
    native_height: int
    fps: int
    max_frames: int
    max_seconds: float = Field(description="Longest clip in one pass at the native fps.")
    max_total_seconds: float = Field(description="Longest clip made in windows.")
    default_steps: int
    min_steps: int
    default_guidance: float
    licence: str
    licence_url: str
    authors: list[str]
    memory_gib: float
    downloaded: bool = Field(description="Weights are on this machine (a tiny model: already built).")
    random_weights: bool = Field(description="A tiny test model: it runs, but its output is noise.")
    fits: bool = Field(True, description="Its memory need fits this machine (with a tenth to spare).")
    audio: bool = Field(False, description="It makes a sound track with the picture (LTX-2).")
    size_on_disk_bytes: int = Field(0, description="What its weights take on this machine now.")
    download: DownloadInfo | None = Field(None, description="The last download the studio started.")


class StudioDefaults(BaseModel):
    model: str = "sora-2"
    size: str
    seconds: str


class ModelCatalog(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelInfo]
    aliases: dict[str, str] = Field(description="Names that map to a catalog model here (sora-2, ...).")
    defaults: StudioDefaults = Field(description="What the server uses when a request leaves a field out.")


# --- serving ---------------------------------------------------------------------------------


def download_info(card: ModelCard) -> DownloadInfo | None:
    from openreel.server.downloads import bytes_on_disk, read

    record = read(card.id)
    if record is None:
        return None
    return DownloadInfo(
        model=card.id,
        status=record.status,
        bytes_done=bytes_on_disk(card),
        total_bytes=record.total_bytes,
        started_at=record.started_at,
        finished_at=record.finished_at,
        error=record.error,
        error_code=record.error_code,
    )


def model_info(card: ModelCard) -> ModelInfo:
    from openreel.engine import fits
    from openreel.hardware import detect
    from openreel.models.weights import disk_bytes, is_downloaded

    return ModelInfo(
        id=card.id,
        family=card.family,
        title=card.title,
        description=card.description,
        modes=sorted(card.modes),
        native_width=card.native_width,
        native_height=card.native_height,
        fps=card.fps,
        max_frames=card.max_frames,
        max_seconds=round(card.max_seconds, 3),
        max_total_seconds=round(max(card.max_total_seconds, card.max_seconds), 3),
        default_steps=card.default_steps,
        min_steps=card.min_steps,
        default_guidance=card.default_guidance,
        licence=card.licence,
        licence_url=card.licence_url,
        authors=list(card.authors),
        memory_gib=card.memory_gib,
        downloaded=is_downloaded(card),
        random_weights=card.is_tiny,
        audio=card.makes_audio,
        fits=fits(card, detect()),
        size_on_disk_bytes=disk_bytes(card),
        download=download_info(card),
    )


class LoraInfo(BaseModel):
    id: str = Field(description='The name a request gives in "loras".')
    family: str | None = Field(description="The family it is for; null when its file does not say.")
    family_title: str | None
    author: str | None
    licence: str | None
    error: str | None = Field(None, description="Why it cannot be used (not a LoRA file), if it cannot.")


class LoraList(BaseModel):
    object: Literal["list"] = "list"
    data: list[LoraInfo]


class StudioServing:
    """The studio's reads, on plain data; errors are openreel errors the app's handlers render."""

    def __init__(self, videos: OpenAIServingVideos):
        self.videos = videos

    def styles(self) -> StyleList:
        return StyleList(data=[StyleInfo(**style.to_dict()) for style in all_styles().values()])

    def models(self) -> ModelCatalog:
        settings = self.videos.settings
        # Only the published names; the dated snapshots would crowd the picker for no choice.
        aliases = {
            name: target
            for name, target in settings.model_aliases().items()
            if name in ("sora-2", "sora-2-pro")
        }
        return ModelCatalog(
            data=[model_info(card) for card in all_cards()],
            aliases=aliases,
            defaults=StudioDefaults(size=settings.default_size, seconds=settings.default_seconds),
        )

    def loras(self) -> LoraList:
        folder = self.videos.settings.loras_path
        offered = server_loras.offered(folder)
        return LoraList(data=[LoraInfo(**server_loras.describe(path)) for path in offered])

    # The models view (issue 15): download in a child process that outlives a restart, cancel, delete.
    def start_download(self, model_id: str) -> DownloadInfo:
        from openreel.server.downloads import get_downloads

        card = get_card(model_id)
        if card.source.startswith("local:"):
            raise ApiError(f"{model_id} is a folder on this machine; there is nothing to download")
        get_downloads().start(card)
        return download_info(card)

    def cancel_download(self, model_id: str) -> DownloadInfo:
        from openreel.server.downloads import get_downloads

        card = get_card(model_id)
        if get_downloads().cancel(card.id) is None:
            raise NotFound(f"no download of {model_id} was started", param="model_id")
        return download_info(card)

    def remove_model(self, model_id: str) -> ModelRemoved:
        from openreel.models.weights import remove
        from openreel.server.downloads import get_downloads

        card = get_card(model_id)
        get_downloads().cancel(card.id)  # a half-finished download would refill what is deleted
        return ModelRemoved(id=card.id, freed_bytes=remove(card))

    def _output_file(self, video_id: str, owner: str, key: str, variation: int) -> Path:
        """A finished output's file; content_path does the owner, status and variation checks."""
        video_path, _ = self.videos.content_path(video_id, owner, "video", variation)
        job = self.videos.store.get(video_id, owner)
        if job is None:  # deleted between the two reads
            raise NotFound(f"no video with id {video_id!r}", param="video_id", code="video_not_found")
        output = next(o for o in job.outputs if o["variation"] == variation)
        relative = output.get(key)
        path = video_path.parent / relative if relative else None
        if path is None or not path.is_file():
            raise NotFound(f"the {key} of video {video_id} is missing on the server", param="video_id")
        return path

    def recipe(self, video_id: str, owner: str, variation: int) -> dict[str, Any]:
        path = self._output_file(video_id, owner, "recipe", variation)
        try:
            recipe = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OpenreelError(f"the recipe of video {video_id} cannot be read: {exc}") from None
        # A LoRA is named as the request named it, not by where it lies on the server.
        for lora in recipe.get("spec", {}).get("loras") or ():
            if isinstance(lora, dict) and Path(str(lora.get("source", ""))).is_absolute():
                lora["source"] = server_loras.offered_name(Path(lora["source"]))
        return recipe

    def provenance(self, video_id: str, owner: str, variation: int) -> dict[str, Any]:
        from openreel.provenance import verify

        path = self._output_file(video_id, owner, "video", variation)
        report = verify(path).to_dict()
        # The file's place on the server's disk is none of the client's business.
        report["path"] = path.name
        return report


def get_studio(serving: OpenAIServingVideos = Depends(get_serving)) -> StudioServing:
    return StudioServing(serving)


# --- HTTP ------------------------------------------------------------------------------------

router = APIRouter(prefix="/v1/openreel", tags=["studio"])
_VARIATION = Query(1, ge=1, description="Which variation, when more than one was made.")


@router.get("/styles", response_model=StyleList, responses=ERRORS, summary="Style presets")
def list_styles(
    principal: Principal = Depends(authenticate), studio: StudioServing = Depends(get_studio)
) -> StyleList:
    return studio.styles()


@router.get("/models", response_model=ModelCatalog, responses=ERRORS, summary="Model cards")
def list_model_cards(
    principal: Principal = Depends(authenticate), studio: StudioServing = Depends(get_studio)
) -> ModelCatalog:
    return studio.models()


@router.get("/loras", response_model=LoraList, responses=ERRORS, summary="LoRAs this server offers")
async def list_loras(
    principal: Principal = Depends(authenticate), studio: StudioServing = Depends(get_studio)
) -> LoraList:
    return await run_in_threadpool(studio.loras)


@router.post(
    "/models/{model_id}/download",
    response_model=DownloadInfo,
    responses=ERRORS,
    summary="Download a model's weights on the server (a job that survives a restart)",
)
async def start_model_download(
    model_id: str, principal: Principal = Depends(authenticate), studio: StudioServing = Depends(get_studio)
) -> DownloadInfo:
    return await run_in_threadpool(studio.start_download, model_id)


@router.delete(
    "/models/{model_id}/download", response_model=DownloadInfo, responses=ERRORS, summary="Cancel a download"
)
async def cancel_model_download(
    model_id: str, principal: Principal = Depends(authenticate), studio: StudioServing = Depends(get_studio)
) -> DownloadInfo:
    return await run_in_threadpool(studio.cancel_download, model_id)


@router.delete(
    "/models/{model_id}",
    response_model=ModelRemoved,
    responses=ERRORS,
    summary="Delete a model's weights from the server's disk",
)
async def remove_model(
    model_id: str, principal: Principal = Depends(authenticate), studio: StudioServing = Depends(get_studio)
) -> ModelRemoved:
    return await run_in_threadpool(studio.remove_model, model_id)


@router.get(
    "/videos/{video_id}/recipe",
    responses=ERRORS,
    summary="How a finished video was made: spec, plan, seeds and credits",
)
async def video_recipe(
    video_id: str,
    variation: int = _VARIATION,
    principal: Principal = Depends(authenticate),
    studio: StudioServing = Depends(get_studio),
) -> dict[str, Any]:
    return await run_in_threadpool(studio.recipe, video_id, principal.owner, variation)


@router.get(
    "/videos/{video_id}/provenance",
    responses=ERRORS,
    summary="The video's C2PA manifest and invisible watermark, checked",
)
async def video_provenance(
    video_id: str,
    variation: int = _VARIATION,
    principal: Principal = Depends(authenticate),
    studio: StudioServing = Depends(get_studio),
) -> dict[str, Any]:
    # Decoding frames for the watermark takes a while: keep it off the event loop.
    return await run_in_threadpool(studio.provenance, video_id, principal.owner, variation)


@router.post(
    "/verify",
    responses=ERRORS | {413: {"model": ErrorResponse, "description": "Larger than the body limit"}},
    summary="Check any file's C2PA manifest and invisible watermark (openreel verify, over HTTP)",
    description="Upload a video (MP4, MOV, WebM, MKV) or an image (PNG, JPEG, WebP) as the multipart "
    "field `file`. The report says whether a manifest is present, valid, trusted or tampered, with its "
    "claims, and whether the watermark is found, with its payload and confidence. Nothing is kept.",
)
async def verify_upload(
    request: Request,
    principal: Principal = Depends(authenticate),
    studio: StudioServing = Depends(get_studio),
) -> dict[str, Any]:
    from openreel.server.media import check_image_budget
    from openreel.server.openai_videos import read_body

    body = await read_body(request, studio.videos.settings, file_fields=lambda name: name == "file")
    data = body.file("file")
    if data is None:
        raise ApiError("upload the file to check as the multipart field 'file'", param="file")
    settings = studio.videos.settings
    budget = settings.max_decoded_bytes  # an image bomb is refused before anything decodes it
    check_image_budget(data, max_pixels=settings.max_upload_pixels, max_decoded_bytes=budget)
    return await run_in_threadpool(_verify_bytes, data)


def _verify_bytes(data: bytes) -> dict[str, Any]:
    """Verify uploaded bytes from a private temporary file (kept only while it is read)."""
    import tempfile

    from openreel.provenance import verify

    suffix = _sniff_suffix(data)
    if suffix is None:
        raise ApiError("the file is neither an MP4/WebM video nor a PNG, JPEG or WebP image", param="file")
    with tempfile.TemporaryDirectory(prefix="openreel-verify-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        report = verify(path).to_dict()
    report["path"] = path.name
    return report


def _sniff_suffix(data: bytes) -> str | None:
    """The file's kind by its first bytes, so a misnamed upload is still read as what it is."""
    if data[4:8] == b"ftyp":
        return ".mp4"
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    if data.startswith(b"\x1aE\xdf\xa3"):
        return ".webm"
    return None


class StudioMount(Mount):
    """The page's files at ``/``, stepping aside for API paths.

    A mount at ``/`` fully matches every path, and Starlette prefers a full match to a route that
    matched only the path (which would have answered 405): without this, ``PUT /v1/videos`` would
    reach the file server. API paths therefore never match here and keep their JSON 404 / 405."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if path.startswith(_API_PREFIXES) or path in ("/v1", "/docs", "/redoc"):
            return Match.NONE, {}
        return super().matches(scope)


_API_PREFIXES = ("/v1/", "/healthz", "/openapi.json", "/docs/")


def attach_studio(app: FastAPI) -> None:
    """Mount the studio routes, then the page at ``/``; call after every other router, since a
    mount at ``/`` answers whatever no route before it took."""
    app.include_router(router)
    _resume_downloads_on_start(app)
    app.router.routes.append(StudioMount("/", app=StaticFiles(directory=WEB_DIR, html=True), name="studio"))


def _resume_downloads_on_start(app: FastAPI) -> None:
    """Wrap the app's lifespan so downloads a stopped server left under way start again, and probe
    the hardware first: the models list says what fits, and the probe imports torch (seconds).
    The probe runs before the workers start, so it never competes with a first job for the CPU."""
    from contextlib import asynccontextmanager

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any):  # noqa: ANN202 - Starlette's lifespan protocol
        # No hardware probe here: it imports torch, and the server starts without it.
        async with inner(app_) as state:
            from openreel.server.downloads import get_downloads

            await run_in_threadpool(get_downloads().resume)
            yield state

    app.router.lifespan_context = lifespan
