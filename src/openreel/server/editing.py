"""The editing modes over HTTP (issue 4): OpenAI's remix, edits, extensions and characters, the
Images API, and openreel's own recut, loop, blend, storyboard and stills.

Every one of them becomes a job in the same queue as ``POST /v1/videos``, so it lists, polls,
downloads and deletes the same way. ``OpenreelServingModes`` turns a request into a checked
``VideoSpec`` (or a recut / still job) on plain data and raises openreel errors; the routers
below only move HTTP in and out.

A source video named by id must be the caller's own (404 otherwise) and finished (400 video_not_ready); its
output MP4 on this server is the engine's input. Uploaded images are checked by content like
``input_reference``; uploaded videos by the engine's own probe (a clear 400 when unreadable).
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from openreel import spec as specs
from openreel.errors import SpecError
from openreel.jobs.store import COMPLETED, FAILED, IN_PROGRESS, QUEUED, JobRecord, new_job_id
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
    OPENAI_IMAGE_MODELS,
    ApiError,
    BlendRequest,
    Character,
    EditRequest,
    ErrorResponse,
    ExtendRequest,
    GenerationOptions,
    ImageData,
    ImageEditRequest,
    ImageGenerateRequest,
    ImagesResponse,
    LoopRequest,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RecutRequest,
    RemixRequest,
    Still,
    StillRequest,
    StoryboardRequest,
    Video,
    rendering_values,
)
from openreel.spec import VideoSpec

STILL_MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
DEFAULT_STILL_SIZE = "1024x1024"  # the Images API's default
MIN_STRENGTH = 0.01


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

    # --- stills and the Images API ---

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
        from openreel.plan import check_mode

        asked = request.model or "sora-2"
        model = self.settings.resolve_model(asked)
        card = get_card(model)
        check_mode(card, "still")
        if image is not None:
            check_mode(card, "remix")
        width, height = specs.parse_size(request.size or DEFAULT_STILL_SIZE)
        source = {"mode": "remix", "video": image, "strength": strength} if image is not None else {}
        spec = VideoSpec(
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
        try:
            resolved = self.executor.check(spec)
        except BaseException:
            remove_upload(image)
            raise
        extras = request.model_dump(
            include={"negative_prompt", "seed", "style", "steps", "guidance"}, exclude_none=True
        )
        job = self.store.create_job(
            job_id=f"still_{uuid.uuid4().hex}",
            owner=owner,
            model=asked,
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
        strength = self._strength(request.strength)  # None: the remix default (mild)
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
    modes: OpenreelServingModes = Depends(get_modes),
) -> Still:
    body = await read_body(request, modes.settings)
    return await run_in_threadpool(modes.create_still, parse_body(StillRequest, body.fields), principal.owner)


@router.get("/v1/openreel/stills/{still_id}", response_model=Still, responses=ERRORS, tags=["studio"])
def get_still(
    still_id: str,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> Still:
    return modes.get_still(still_id, principal.owner)


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
    modes: OpenreelServingModes = Depends(get_modes),
) -> FileResponse:
    path, media_type = modes.still_path(still_id, principal.owner)
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
    modes: OpenreelServingModes = Depends(get_modes),
) -> ImagesResponse:
    body = await read_body(request, modes.settings)
    parsed = parse_body(ImageGenerateRequest, body.fields)
    return await run_in_threadpool(modes.generate_image, parsed, principal.owner, str(request.base_url))


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
    modes: OpenreelServingModes = Depends(get_modes),
) -> ImagesResponse:
    accepted = ("image", "image[]", "mask")
    body = await read_body(request, modes.settings, file_fields=lambda name: name in accepted)
    if "mask" in body.files or "mask" in body.fields:
        raise ApiError(
            "masks (inpainting) are not supported here: the whole image is remixed, by strength",
            param="mask",
            code="unsupported_parameter",
        )
    parsed = parse_body(ImageEditRequest, body.fields)
    images = body.files.get("image", []) + body.files.get("image[]", [])
    return await run_in_threadpool(modes.edit_image, parsed, images, principal.owner, str(request.base_url))


def attach_editing(app: FastAPI) -> None:
    app.include_router(router)
