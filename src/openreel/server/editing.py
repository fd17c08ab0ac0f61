"""The editing modes over HTTP (issue 4): OpenAI's remix, edits, extensions and characters, and
openreel's own recut, loop, blend and storyboard (stills and the Images API: server/images.py).

Every one of them becomes a job in the same queue as ``POST /v1/videos``, so it lists, polls,
downloads and deletes the same way. ``OpenreelServingModes`` turns a request into a checked
``VideoSpec`` (or a recut job) on plain data and raises openreel errors; the routers
below only move HTTP in and out.

A source video named by id must be the caller's own (404 otherwise) and finished (400 video_not_ready); its
output MP4 on this server is the engine's input. Uploaded images are checked by content like
``input_reference``; uploaded videos by the engine's own probe (a clear 400 when unreadable).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from openreel import spec as specs
from openreel.errors import SpecError
from openreel.jobs.store import COMPLETED, FAILED, JobRecord, new_job_id
from openreel.models.catalog import get_card
from openreel.provenance import label as labels
from openreel.server import loras as server_loras
from openreel.server.auth import Principal, authenticate
from openreel.server.media import check_clip
from openreel.server.openai_videos import (
    ERRORS,
    OpenAIServingVideos,
    check_image,
    decode_image_url,
    get_serving,
    parse_body,
    read_body,
    remove_upload,
    write_atomically,
)
from openreel.server.protocol import (
    ApiError,
    BlendRequest,
    Character,
    EditRequest,
    ErrorResponse,
    ExtendRequest,
    GenerationOptions,
    LoopRequest,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RecutRequest,
    RemixRequest,
    StoryboardRequest,
    Video,
    rendering_values,
)
from openreel.spec import VideoSpec

MIN_STRENGTH = 0.01


@dataclass(frozen=True)
class Source:
    """A finished video used as an input: the caller's job (None for an upload) and its file."""

    path: Path
    width: int
    height: int
    fps: int
    seconds: float
    job: JobRecord | None = None

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)


class OpenreelServingModes:
    def __init__(self, videos: OpenAIServingVideos):
        self.videos = videos
        self.store = videos.store
        self.executor = videos.executor
        self.settings = videos.settings

    # --- inputs ---

    def source(self, video_id: str, owner: str, *, variation: int = 1, param: str = "video") -> Source:
        """The caller's finished video ``video_id`` (variation ``variation``) as an input."""
        job = self.store.get(video_id, owner)
        if job is None or job.kind == "still":
            raise NotFound(f"no video with id {video_id!r}", param=param, code="video_not_found")
        if job.status != COMPLETED:
            detail = f"it failed: {job.error_message}" if job.status == FAILED else f"it is {job.status}"
            raise NotReady(
                f"video {video_id} is not finished, so it cannot be used yet: {detail}",
                param=param,
                code="video_not_ready",
            )
        output = next((o for o in job.outputs if o["variation"] == variation), None)
        if output is None:
            raise ApiError(
                f"video {video_id} has variations 1..{len(job.outputs)}; {variation} was asked",
                param="variation",
            )
        path = self.executor.job_dir(job.id) / output["video"]
        if not path.is_file():
            raise NotFound(f"the file of video {video_id} is missing on the server", param=param)
        width, height = specs.parse_size(job.size)
        fps = int(job.spec.get("fps") or specs.DEFAULT_FPS)
        return Source(path, width, height, fps, float(job.seconds), job)

    def upload_video(self, data: bytes, *, param: str = "video") -> Source:
        """An uploaded clip, stored and probed by content (a 400 naming ``param`` when unreadable)."""
        from openreel.render.inputs import probe_clip  # PyAV: only when a clip is uploaded

        if not data:
            raise ApiError("the uploaded video is empty", param=param, code="invalid_video")
        path = self.settings.uploads_path / f"upload_{uuid.uuid4().hex}.mp4"
        write_atomically(path, data)
        try:
            check_clip(path, max_pixels=self.settings.max_upload_pixels, param=param)
            info = probe_clip(path)
        except ApiError:
            path.unlink(missing_ok=True)
            raise
        except SpecError as exc:
            path.unlink(missing_ok=True)
            raise ApiError(
                exc.message.replace(path.name, "the uploaded video"), param=param, code="invalid_video"
            ) from None
        # The output keeps the clip's size where it can be encoded, else the server's default.
        try:
            specs.check_size(info.width, info.height)
            width, height = info.width, info.height
        except SpecError:
            width, height = specs.parse_size(self.settings.default_size)
        fps = min(max(round(info.fps), specs.MIN_FPS), specs.MAX_FPS)
        return Source(path, width, height, fps, info.frames / info.fps)

    def model_for(self, options: GenerationOptions, source: Source | None) -> tuple[str, str]:
        """(the name shown as ``model``, the catalog id that runs): the one asked for, else the
        source video's own model, else sora-2."""
        if options.model:
            asked = options.model
        elif source is not None and source.job is not None:
            asked = source.job.model
            if source.job.resolved_model and source.job.kind == "video":
                return asked, source.job.resolved_model
        else:
            asked = "sora-2"
        model = self.settings.resolve_model(asked)
        get_card(model)  # catalog ids only: never a folder on the server
        return asked, model

    def spec_for(
        self,
        options: GenerationOptions,
        *,
        prompt: str,
        mode: str,
        model: str,
        seconds: float,
        size: tuple[int, int],
        fps: int | None,
        **inputs: Any,
    ) -> VideoSpec:
        width, height = options.output_size(size)
        values: dict[str, Any] = dict(
            prompt=prompt,
            model=model,
            mode=mode,
            seconds=seconds,
            width=width,
            height=height,
            negative_prompt=options.negative_prompt,
            style=options.style,
            seed=options.seed,
            steps=options.steps,
            guidance=options.guidance,
            **inputs,
        )
        if options.fps is not None or fps is not None:
            values["fps"] = options.fps if options.fps is not None else fps
        if options.variations is not None:
            values["variations"] = options.variations
        values.update(rendering_values(options))
        # The label is decided now, from the request or the server's --label (echoed by enqueue).
        values["extra"] = labels.to_extra(labels.for_request(options.label, self.settings.label))
        spec = VideoSpec(**values)
        return replace(spec, loras=server_loras.resolve(spec.loras, self.settings.loras_path))

    def enqueue(
        self,
        spec: VideoSpec,
        owner: str,
        *,
        asked_model: str,
        extras: dict[str, Any],
        seconds: str | None = None,
        parents: list[str] | None = None,
        remixed_from: str | None = None,
        upload: str | None = None,
        job_id: str | None = None,
    ) -> Video:
        """Check ``spec`` as a worker would (a 400 now, not a failed job later), then queue it.
        ``upload`` is a file or folder the job owns: removed if the request fails, or on delete."""
        try:
            resolved = self.executor.check(spec)
        except BaseException:
            remove_upload(upload)
            raise
        if "label" in spec.extra:  # echoed as laid: {text, corner, size}, or null for none
            extras = extras | {"label": spec.extra["label"] or None}
        job = self.store.create_job(
            job_id=job_id,
            owner=owner,
            model=asked_model,
            resolved_model=resolved.model,
            prompt=resolved.prompt,
            size=resolved.size,
            seconds=seconds or f"{resolved.seconds:g}",
            spec=resolved.to_dict(),
            extras=extras,
            input_reference=upload,
            remixed_from_video_id=remixed_from,
            parents=parents,
            max_attempts=self.settings.max_attempts,
        )
        self.executor.notify()
        return self.videos.to_video(job, queue_position=self.store.queue_position(job))

    def _video_input(
        self, reference: Any, upload: bytes | None, owner: str, variation: int
    ) -> tuple[Source, str | None]:
        """``video[id]`` or an uploaded ``video`` file: (the source, the upload path to own)."""
        if (reference is None) == (upload is None):
            raise ApiError(
                "give the video once: video[id] of a finished video, or a video file", param="video"
            )
        if reference is not None:
            return self.source(reference.id, owner, variation=variation), None
        assert upload is not None
        source = self.upload_video(upload)
        return source, str(source.path)

    @staticmethod
    def _strength(value: str | float | None) -> float | None:
        if value is None:
            return None
        strength = specs.parse_strength(value)
        if strength < MIN_STRENGTH:
            # Below this not one denoising step re-runs at any step count: the job could only fail.
            raise ApiError(f"strength must be at least {MIN_STRENGTH:g} (got {strength:g})", param="strength")
        return strength

    # --- OpenAI's editing routes ---

    def remix(self, video_id: str, request: RemixRequest, owner: str) -> Video:
        source = self.source(video_id, owner, variation=request.variation, param="video_id")
        return self._remix(source, request, owner, request.strength, None)

    def edit(self, request: EditRequest, upload: bytes | None, owner: str) -> Video:
        source, owned = self._video_input(request.video, upload, owner, request.variation)
        try:
            return self._remix(source, request, owner, request.strength, owned)
        except BaseException:
            remove_upload(owned)
            raise

    def _remix(
        self,
        source: Source,
        options: RemixRequest | EditRequest,
        owner: str,
        strength: str | float | None,
        owned: str | None,
    ) -> Video:
        asked, model = self.model_for(options, source)
        spec = self.spec_for(
            options,
            prompt=options.prompt,
            mode="remix",
            model=model,
            seconds=source.seconds,
            size=(source.width, source.height),
            fps=source.fps,
            video=str(source.path),
            strength=self._strength(strength),
        )
        parent = source.job.id if source.job else None
        return self.enqueue(
            spec, owner, asked_model=asked, extras=options.extras(), remixed_from=parent, upload=owned
        )

    def extend(self, request: ExtendRequest, upload: bytes | None, owner: str) -> Video:
        source, owned = self._video_input(request.video, upload, owner, request.variation)
        try:
            return self._extend(source, request, owner, owned)
        except BaseException:
            remove_upload(owned)
            raise

    def _extend(self, source: Source, request: ExtendRequest, owner: str, owned: str | None) -> Video:
        added = self._seconds(request.seconds, 0.0)
        asked, model = self.model_for(request, source)
        spec = self.spec_for(
            request,
            prompt=request.prompt,
            mode="extend",
            model=model,
            seconds=added,
            size=(source.width, source.height),
            fps=source.fps,
            video=str(source.path),
            backward=request.backward,
        )
        # The SDK's seconds of an extension is the stitched total: the clip plus the new part,
        # on the output's frame grid (the engine conforms the clip to the output's fps).
        fps = spec.fps
        total = (round(source.seconds * fps) + round(added * fps)) / fps
        return self.enqueue(
            spec,
            owner,
            asked_model=asked,
            extras=request.extras(),
            seconds=f"{total:g}",
            remixed_from=source.job.id if source.job else None,
            upload=owned,
        )

    # --- characters ---

    def create_character(self, name: str, images: list[bytes], video: bytes | None, owner: str) -> Character:
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise ApiError("a character needs a name of 1 to 200 characters", param="name")
        if not images and video is None:
            raise ApiError(
                "a character needs a video (its first frame is used) or reference images (image)",
                param="video",
                code="missing_required_parameter",
            )
        settings = self.settings
        character_id = f"char_{uuid.uuid4().hex}"
        folder = settings.uploads_path / "characters" / character_id
        paths: list[str] = []
        try:
            if video is not None:
                frame = self._first_frame(video, folder)
                paths.append(str(frame))
            for index, data in enumerate(images, start=len(paths)):
                image = check_image(
                    data,
                    max_bytes=settings.max_upload_bytes,
                    max_pixels=settings.max_upload_pixels,
                    max_decoded_bytes=settings.max_decoded_bytes,
                    param="image",
                )
                path = folder / f"ref-{index}{image.suffix}"
                write_atomically(path, image.data)
                paths.append(str(path))
            record = self.store.add_character(
                character_id=character_id,
                owner=owner,
                name=name,
                images=paths,
                source="video" if video is not None else "images",
            )
        except BaseException:
            remove_upload(str(folder))
            raise
        return self._character(record)

    def _first_frame(self, data: bytes, folder: Path) -> Path:
        """The video's first frame as a PNG beside the character's other references."""
        import av  # only here: a character made from a video

        source = self.upload_video(data)
        try:
            with av.open(str(source.path)) as container:
                frame = next(container.decode(video=0))
                image = frame.to_image()
            target = folder / "ref-0.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, format="PNG")
            return target
        finally:
            source.path.unlink(missing_ok=True)

    @staticmethod
    def _character(record: Any) -> Character:
        return Character(
            id=record.id,
            created_at=int(record.created_at),
            name=record.name,
            reference_images=len(record.images),
            source=record.source,
        )

    def get_character(self, character_id: str, owner: str) -> Character:
        record = self.store.get_character(character_id, owner)
        if record is None or record.id != character_id:
            raise NotFound(
                f"no character with id {character_id!r}", param="character_id", code="character_not_found"
            )
        return self._character(record)

    # --- openreel's routes ---

    def recut(self, request: RecutRequest, owner: str) -> Video:
        source = self.source(request.video_id, owner, variation=request.variation, param="video_id")
        end = source.seconds if request.end is None else request.end
        if request.start >= end:
            raise ApiError(f"start {request.start:g} s must be before end {end:g} s", param="start")
        if end > source.seconds + 1e-6:
            raise ApiError(
                f"video {request.video_id} is {source.seconds:g} s; end {end:g} s is past it", param="end"
            )
        import math

        # The frames recut() keeps: [floor(start*fps), ceil(end*fps)).
        frames = math.ceil(end * source.fps - 1e-6) - math.floor(request.start * source.fps + 1e-6)
        assert source.job is not None
        job = self.store.create_job(
            owner=owner,
            model=source.job.model,
            resolved_model=source.job.resolved_model,
            prompt=source.job.prompt,
            size=source.job.size,
            seconds=f"{frames / source.fps:g}",
            spec={
                "source": str(source.path),
                "start": request.start,
                "end": end,
                "fps": source.fps,
                "mode": "recut",
            },
            extras={},
            kind="recut",
            parents=[source.job.id],
            max_attempts=self.settings.max_attempts,
        )
        self.executor.notify()
        return self.videos.to_video(job, queue_position=self.store.queue_position(job))

    def loop(self, request: LoopRequest, owner: str) -> Video:
        source = self.source(request.video_id, owner, variation=request.variation, param="video_id")
        asked, model = self.model_for(request, source)
        assert source.job is not None
        spec = self.spec_for(
            request,
            prompt=request.prompt or source.job.prompt,
            mode="loop",
            model=model,
            seconds=self._seconds(request.seconds, source.seconds),
            size=(source.width, source.height),
            fps=source.fps,
            video=str(source.path),
        )
        return self.enqueue(spec, owner, asked_model=asked, extras=request.extras(), parents=[source.job.id])

    def blend(self, request: BlendRequest, owner: str) -> Video:
        first = self.source(request.video_id, owner, param="video_id")
        second = self.source(request.video_id_b, owner, param="video_id_b")
        assert first.job is not None and second.job is not None
        asked, model = self.model_for(request, first)
        prompt = request.prompt or f"{first.job.prompt}, then {second.job.prompt}"
        spec = self.spec_for(
            request,
            prompt=prompt,
            mode="blend",
            model=model,
            seconds=self._seconds(request.seconds, first.seconds),
            size=(first.width, first.height),
            fps=first.fps,
            video=str(first.path),
            video_b=str(second.path),
            curve=request.curve,
            strength=self._strength(request.strength),
        )
        return self.enqueue(
            spec, owner, asked_model=asked, extras=request.extras(), parents=[first.job.id, second.job.id]
        )

    def storyboard(self, request: StoryboardRequest, files: dict[str, list[bytes]], owner: str) -> Video:
        settings = self.settings
        texts = [card.text for card in request.cards if card.text]
        if not texts:
            raise ApiError("a storyboard needs at least one text card to say what happens", param="cards")
        asked, model = self.model_for(request, None)
        job_id = new_job_id()
        folder = settings.uploads_path / job_id
        cards: list[dict[str, Any]] = []
        parents: list[str] = []
        try:
            for number, card in enumerate(request.cards):
                upload = (files.get(f"cards[{number}][image]") or [None])[0]
                given = [v for v in (card.text, card.image_url, card.video_id, upload) if v]
                if len(given) != 1:
                    raise ApiError(
                        f"card {number} needs exactly one of text, image_url (or an image upload) "
                        "or video_id",
                        param=f"cards.{number}",
                    )
                if card.text:
                    cards.append({"at": card.at, "text": card.text})
                elif card.video_id:
                    source = self.source(card.video_id, owner, param=f"cards.{number}.video_id")
                    cards.append({"at": card.at, "video": str(source.path)})
                    parents.append(card.video_id)
                else:
                    data = upload if upload is not None else decode_image_url(card.image_url or "")
                    image = check_image(
                        data,
                        max_bytes=settings.max_upload_bytes,
                        max_pixels=settings.max_upload_pixels,
                        max_decoded_bytes=settings.max_decoded_bytes,
                        param=f"cards.{number}.image",
                    )
                    path = folder / f"card-{number}{image.suffix}"
                    write_atomically(path, image.data)
                    cards.append({"at": card.at, "image": str(path)})
            seconds = self._seconds(request.seconds, float(settings.default_seconds))
            spec = self.spec_for(
                request,
                prompt=texts[0],
                mode="storyboard",
                model=model,
                seconds=seconds,
                size=specs.parse_size(settings.default_size),
                fps=None,
                cards=tuple(cards),
            )
        except BaseException:
            remove_upload(str(folder))
            raise
        return self.enqueue(
            spec,
            owner,
            asked_model=asked,
            extras=request.extras(),
            parents=parents,
            upload=str(folder) if folder.exists() else None,
            job_id=job_id,
        )

    @staticmethod
    def _seconds(text: str | None, default: float) -> float:
        if text in (None, ""):
            return default
        try:
            return float(text)
        except ValueError:
            raise ApiError(f'seconds must be a number such as "4" (got {text!r})', param="seconds") from None

# --- HTTP ------------------------------------------------------------------------------------


def get_modes(serving: OpenAIServingVideos = Depends(get_serving)) -> OpenreelServingModes:
    return OpenreelServingModes(serving)


def body_doc(model: type, files: dict[str, str] | None = None, *, json_only: bool = False) -> dict[str, Any]:
    """The request body in the OpenAPI document: JSON, and (what the SDK sends) multipart with
    the file parts described as binary."""
    schema = model.model_json_schema()
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if not json_only:
        properties = dict(schema.get("properties", {}))
        for name, description in (files or {}).items():
            properties[name] = {"type": "string", "format": "binary", "description": description}
        content["multipart/form-data"] = {"schema": {**schema, "properties": properties}}
    return {"requestBody": {"required": True, "content": content}}


NOT_READY = {400: {"model": ErrorResponse, "description": "Invalid, or a source video is not finished"}}
_VIDEO_FILE = "A video file (MP4, WebM, MOV...) instead of video[id]."

router = APIRouter()


@router.post(
    "/v1/videos/{video_id}/remix",
    response_model=Video,
    responses=ERRORS | NOT_READY,
    openapi_extra=body_doc(RemixRequest, json_only=True),
    summary="Remix a finished video with a new prompt",
    description="The video re-rendered from a partly noised copy of itself: `strength` (extra_body: "
    "subtle, mild, strong or a number in (0, 1]) says how much changes. Needs a model with "
    "video-to-video (a 400 names them). Sets `remixed_from_video_id`.",
    tags=["videos"],
)
async def remix_video(
    video_id: str,
    request: Request,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Video:
    body = await read_body(request, modes.settings)
    return await run_in_threadpool(
        modes.remix, video_id, parse_body(RemixRequest, body.fields), principal.owner
    )


@router.post(
    "/v1/videos/edits",
    response_model=Video,
    responses=ERRORS | NOT_READY | {413: {"model": ErrorResponse}},
    openapi_extra=body_doc(EditRequest, {"video": _VIDEO_FILE}),
    summary="Edit a video with a prompt (a remix at the default strength)",
    tags=["videos"],
)
async def edit_video(
    request: Request,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Video:
    body = await read_body(request, modes.settings, file_fields=lambda name: name == "video")
    parsed = parse_body(EditRequest, body.fields)
    return await run_in_threadpool(modes.edit, parsed, body.file("video"), principal.owner)


@router.post(
    "/v1/videos/extensions",
    response_model=Video,
    responses=ERRORS | NOT_READY | {413: {"model": ErrorResponse}},
    openapi_extra=body_doc(ExtendRequest, {"video": _VIDEO_FILE}),
    summary="Extend a video by `seconds` (forwards, or backwards with extra_body backward)",
    description="The new video is the source plus `seconds` new ones; its `seconds` is the total.",
    tags=["videos"],
)
async def extend_video(
    request: Request,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Video:
    body = await read_body(request, modes.settings, file_fields=lambda name: name == "video")
    parsed = parse_body(ExtendRequest, body.fields)
    return await run_in_threadpool(modes.extend, parsed, body.file("video"), principal.owner)


@router.post(
    "/v1/videos/characters",
    response_model=Character,
    responses=ERRORS | {413: {"model": ErrorResponse}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "video": {
                                "type": "string",
                                "format": "binary",
                                "description": "Its first frame is kept.",
                            },
                            "image": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "openreel: reference images (PNG, JPEG, WebP).",
                            },
                        },
                    }
                }
            },
        }
    },
    summary="Keep a named character",
    description="Stores reference images (uploaded as `image`, or the first frame of an uploaded "
    "`video`) under a name, for the caller only. A create request that names the character "
    "(extra_body `character`: its id or name) on a model that takes reference images (Wan 2.1 "
    "VACE: `references` in its modes) is conditioned on the character's reference images (the "
    "first four) throughout; on other models it becomes image-to-video from the character's first "
    "reference image, and nothing more keeps the character consistent.",
    tags=["videos"],
)
async def create_character(
    request: Request,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Character:
    body = await read_body(request, modes.settings, file_fields=lambda name: name in ("video", "image"))
    unknown = sorted(set(body.fields) - {"name"})
    if unknown:
        raise ApiError(f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
    images = body.files.get("image", [])
    for data in images + body.files.get("video", []):
        if len(data) > modes.settings.max_body_bytes:
            raise PayloadTooLarge("an upload is larger than the body limit", code="file_too_large")
    return await run_in_threadpool(
        modes.create_character,
        str(body.fields.get("name") or ""),
        images,
        body.file("video"),
        principal.owner,
    )


@router.get(
    "/v1/videos/characters/{character_id}",
    response_model=Character,
    responses=ERRORS,
    summary="Retrieve a character",
    tags=["videos"],
)
def get_character(
    character_id: str,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Character:
    return modes.get_character(character_id, principal.owner)


@router.post(
    "/v1/openreel/recut",
    openapi_extra=body_doc(RecutRequest, json_only=True),
    response_model=Video,
    responses=ERRORS | NOT_READY,
    summary="Re-cut (trim) a finished video: no model, the source's own pixels",
    tags=["studio"],
)
async def recut_video(
    request: Request,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Video:
    body = await read_body(request, modes.settings)
    return await run_in_threadpool(modes.recut, parse_body(RecutRequest, body.fields), principal.owner)


@router.post(
    "/v1/openreel/loop",
    openapi_extra=body_doc(LoopRequest, json_only=True),
    response_model=Video,
    responses=ERRORS | NOT_READY,
    summary="Make a finished video loop seamlessly",
    tags=["studio"],
)
async def loop_video(
    request: Request,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Video:
    body = await read_body(request, modes.settings)
    return await run_in_threadpool(modes.loop, parse_body(LoopRequest, body.fields), principal.owner)


@router.post(
    "/v1/openreel/blend",
    openapi_extra=body_doc(BlendRequest, json_only=True),
    response_model=Video,
    responses=ERRORS | NOT_READY,
    summary="Blend two finished videos along an influence curve",
    tags=["studio"],
)
async def blend_videos(
    request: Request,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Video:
    body = await read_body(request, modes.settings)
    return await run_in_threadpool(modes.blend, parse_body(BlendRequest, body.fields), principal.owner)


@router.post(
    "/v1/openreel/storyboard",
    response_model=Video,
    responses=ERRORS | NOT_READY | {413: {"model": ErrorResponse}},
    openapi_extra=body_doc(
        StoryboardRequest, {"cards[N][image]": "An image for card N (instead of image_url)."}
    ),
    summary="A storyboard: text, image and video cards at times become one clip",
    tags=["studio"],
)
async def storyboard_video(
    request: Request,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Video:
    body = await read_body(
        request,
        modes.settings,
        file_fields=lambda name: name.startswith("cards[") and name.endswith("][image]"),
    )
    parsed = parse_body(StoryboardRequest, body.fields)
    return await run_in_threadpool(modes.storyboard, parsed, body.files, principal.owner)


def attach_editing(app: FastAPI) -> None:
    app.include_router(router)
