"""The OpenAI Videos API as pydantic models, in OpenAI's field order, plus openreel's extras.

Requests are strict: an unknown field is a 400 naming it (as OpenAI does), never silently
dropped. openreel's own settings arrive the way the SDK sends ``extra_body`` (extra form fields or
JSON keys) and come back in the ``openreel`` field of the Video object.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from openreel import spec as specs
from openreel.errors import OpenreelError, SpecError
from openreel.spec import VideoSpec

# --- errors the API raises (the app's exception handlers turn them into the envelope) ---------


class ApiError(OpenreelError):
    code = "invalid_request"
    status = 400

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param)
        if code:
            self.code = code


class AuthenticationFailed(ApiError):
    code = "invalid_api_key"
    status = 401


class NotFound(ApiError):
    code = "not_found"
    status = 404


class Conflict(ApiError):
    code = "conflict"
    status = 409


class NotReady(ApiError):
    """Asked for what a job has not made yet. A 400, not a 409: the SDK retries 409 (twice, at
    once), which only repeats a question whose answer is "poll until completed"."""

    code = "not_ready"
    status = 400


class PayloadTooLarge(ApiError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"
    status = 415


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorInfo


def error_type(status: int) -> str:
    """OpenAI's ``type`` for a status: client mistakes are invalid_request_error, ours server_error."""
    return "server_error" if status >= 500 else "invalid_request_error"


def public_message(message: str, roots: tuple[str, ...]) -> str:
    """``message`` without the server's own paths: a file under one of ``roots`` (outputs,
    uploads, the openreel folder) is named by what it is to the caller, not where it lies."""
    for root in sorted(roots, key=len, reverse=True):
        if root and root in message:
            message = re.sub(re.escape(root) + r"[^\s'\"),;]*", "<server file>", message)
    return message


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
    return ErrorResponse(
        error=ErrorInfo(message=message, type=error_type(status), param=param, code=code)
    ).model_dump()


# --- requests --------------------------------------------------------------------------------

# Requests refuse NaN and infinities wherever a number is taken: they would pass a range check
# ("nan > 0" is False, but so is "nan <= 0") and fail deep inside a worker.
REQUEST_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
# The longest clip any request may name, in seconds: a bound before any arithmetic on it.
MAX_REQUEST_SECONDS = 3600.0


def _not_bool(value: Any) -> Any:
    # JSON true is not a number: lax mode would read it as 1 (``fps: true``) and fail later.
    if isinstance(value, bool):
        raise ValueError("a number is needed, not a boolean")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]


def _lora_list(value: Any) -> Any:
    """``loras`` as a list of {source, scale}: JSON gives a list (of "NAME[:SCALE]" strings or
    objects), a form ``loras[0]``, ``loras[1]`` or one comma-separated "a:0.8, b"."""
    from openreel.models.lora import check_entries

    if value is None:
        return None
    if isinstance(value, str):
        value = [part for part in (piece.strip() for piece in value.split(",")) if part]
    try:
        return [dict(entry) for entry in check_entries(value)]
    except SpecError as exc:
        raise ValueError(str(exc)) from None


Quality = Annotated[
    Literal["draft", "standard", "final"] | None,
    Field(description="draft (turbo: fewer steps, cached transformer blocks), standard or final."),
]
# GPUs one job spreads over (context parallelism on the worker's machine); 1 = off.
Gpus = Annotated[
    Int | None, Field(ge=1, le=64, description="GPUs the run spreads over (Wan models); 1: off.")
]
Memory = Annotated[
    Literal["auto", "fast", "low"] | None,
    Field(description="How the model fits the GPU: auto (the planner decides), fast or low (offloading)."),
]
Sound = Annotated[
    bool | None,
    Field(
        description="A sound track: on by default where the model makes sound (LTX-2) or the source "
        "clip has it, as with Sora 2; false: silent; true with a silent model: refused."
    ),
]
Loras = Annotated[
    list[dict[str, Any]] | None,
    BeforeValidator(_lora_list),
    Field(description='LoRAs the server offers (GET /v1/studio/loras): "NAME[:SCALE]" or {source, scale}.'),
]


def _label_choice(value: Any) -> Any:
    """``label``: true, false, or some of {text, corner, size} (the rest: the owner's style),
    checked here so a bad corner is a 400 on the request, not a failed job."""
    from openreel.provenance.label import Label, LabelError

    if isinstance(value, str):  # a multipart form's "true" / "false"
        words = {"true": True, "1": True, "on": True, "false": False, "0": False, "off": False}
        if value.strip().lower() not in words:
            raise ValueError(f"label {value!r}: give true, false or {{text, corner, size}}")
        return words[value.strip().lower()]
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"text", "corner", "size"})
        if unknown:
            raise ValueError(f"unknown label field(s) {', '.join(unknown)}: give text, corner and size")
        value = dict(value)
        if "size" in value:  # a multipart form (the SDK's extra_body with a file) sends text
            try:
                value["size"] = float(_not_bool(value["size"]))
            except (TypeError, ValueError):
                raise ValueError(f"label size {value['size']!r} is not a number") from None
        try:
            Label(**{**Label().to_dict(), **value})
        except LabelError as exc:
            raise ValueError(exc.message) from None
    return value


Labelled = Annotated[
    bool | dict[str, Any] | None,
    BeforeValidator(_label_choice),
    Field(
        description='A visible "AI-generated" label in a corner: true, false, or {text, corner, size} '
        "(default: the server's, openreel serve --label)."
    ),
]


def seconds_text(value: Any) -> Any:
    """``seconds`` as OpenAI's string, refusing what no clip can be: booleans, NaN, infinities and
    lengths beyond ``MAX_REQUEST_SECONDS`` (text that is not a number is left to the planner's
    message)."""
    _not_bool(value)
    if isinstance(value, (int, float)):
        value = f"{value:g}"
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number) or abs(number) > MAX_REQUEST_SECONDS:
            raise ValueError(f"seconds must be a finite number up to {MAX_REQUEST_SECONDS:g}")
    return value


# openreel's settings beyond OpenAI's four fields, in the order they are echoed.
OPENREEL_FIELDS = (
    "negative_prompt",
    "seed",
    "style",
    "fps",
    "resolution",
    "aspect",
    "steps",
    "guidance",
    "variations",
    "quality",
    "memory",
    "loras",
    "label",
    "audio",
    "gpus",
)


class VideoCreateRequest(BaseModel):
    """POST /v1/videos. Multipart forms arrive as strings; pydantic's lax mode reads numbers."""

    model_config = REQUEST_CONFIG

    prompt: str = Field(description="What the video shows.")
    model: str | None = Field(
        None, description="A catalog id, or sora-2 / sora-2-pro (mapped by the server)."
    )
    seconds: str | None = Field(
        None, description='Clip length in seconds, as a string: "4", "8", "12", "2.5".'
    )
    size: str | None = Field(None, description='Output WIDTHxHEIGHT, e.g. "1280x720".')
    # JSON bodies only; a multipart upload comes as a file part instead.
    input_reference: dict[str, str] | None = Field(
        None, description='{"image_url": "data:image/png;base64,..."}; or upload a file as multipart.'
    )
    # --- openreel extras (the SDK's extra_body) ---
    negative_prompt: str | None = None
    seed: Int | None = None
    style: str | None = None
    fps: Int | None = None
    resolution: Literal["480p", "720p", "1080p"] | None = None
    aspect: Literal["16:9", "9:16", "1:1"] | None = None
    steps: Int | None = None
    guidance: Float | None = None
    variations: Int | None = None
    quality: Quality = None
    memory: Memory = None
    loras: Loras = None
    label: Labelled = None
    audio: Sound = None
    gpus: Gpus = None
    character: str | None = Field(
        None,
        description="openreel: a character's id or name (POST /v1/videos/characters). Models that "
        "take reference images (Wan 2.1 VACE) are conditioned on its reference images; on others the "
        "video starts from its first reference image (image-to-video).",
    )

    @field_validator("seconds", mode="before")
    @classmethod
    def _seconds_as_text(cls, value: Any) -> Any:
        # Old SDKs and hand-written JSON send a number; the API's own type is a string.
        return seconds_text(value)

    def extras(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in OPENREEL_FIELDS if getattr(self, name) is not None}

    def output_size(self, default_size: str) -> tuple[int, int]:
        if self.resolution or self.aspect:
            if self.size:
                raise SpecError("give either size or resolution/aspect, not both", param="size")
            return specs.size_for(
                self.resolution or specs.DEFAULT_RESOLUTION, self.aspect or specs.DEFAULT_ASPECT
            )
        return specs.parse_size(self.size or default_size)

    def to_spec(self, *, model: str, default_size: str, default_seconds: str, mode: str = "t2v") -> VideoSpec:
        """The VideoSpec this request asks for (not yet validated: the engine does that)."""
        width, height = self.output_size(default_size)
        seconds_text = self.seconds if self.seconds not in (None, "") else default_seconds
        try:
            seconds = float(seconds_text)
        except ValueError:
            raise SpecError(
                f'seconds must be a number such as "4" (got {seconds_text!r})', param="seconds"
            ) from None
        values: dict[str, Any] = dict(
            prompt=self.prompt,
            model=model,
            seconds=seconds,
            width=width,
            height=height,
            mode=mode,
            negative_prompt=self.negative_prompt,
            style=self.style,
            seed=self.seed,
            steps=self.steps,
            guidance=self.guidance,
        )
        if self.fps is not None:
            values["fps"] = self.fps
        if self.variations is not None:
            values["variations"] = self.variations
        values.update(rendering_values(self))
        return VideoSpec(**values)


def rendering_values(request: VideoCreateRequest | GenerationOptions) -> dict[str, Any]:
    """The spec fields for how a video is rendered (quality, memory, LoRAs, sound), where given. LoRAs
    are still names here: the server resolves them in its LoRA folder (server/loras.py)."""
    values: dict[str, Any] = {}
    if request.quality is not None:
        values["quality"] = request.quality
    if request.memory is not None:
        values["memory"] = request.memory
    if request.loras:
        values["loras"] = tuple(request.loras)
    if request.audio is not None:
        values["audio"] = request.audio
    if request.gpus is not None:
        values["gpus"] = request.gpus
    return values


# --- responses -------------------------------------------------------------------------------


class VideoError(BaseModel):
    code: str
    message: str


class OpenreelOutput(BaseModel):
    variation: int
    seed: int


class OpenreelInfo(BaseModel):
    """openreel's view of a job: the extras that were asked for, the model that runs, live progress."""

    model: str | None = Field(None, description="The catalog model that makes (or made) this video.")
    negative_prompt: str | None = None
    seed: int | None = None
    style: str | None = None
    fps: int | None = None
    resolution: str | None = None
    aspect: str | None = None
    steps: int | None = None
    guidance: float | None = None
    variations: int | None = None
    quality: str | None = None
    memory: str | None = None
    loras: list[dict[str, Any]] | None = None
    audio: bool | None = Field(None, description="Sound asked on (true) or off (false); null: the default.")
    label: dict[str, Any] | None = Field(
        None, description="The visible label laid on it ({text, corner, size}); null: none."
    )
    gpus: int | None = Field(None, description="GPUs asked to spread the run over; null: the plan's choice.")
    stage: str | None = None
    step: int | None = None
    total_steps: int | None = None
    eta_seconds: float | None = None
    queue_position: int | None = None
    attempts: int = 0
    worker: str | None = Field(
        None, description="The worker that runs (or ran) it, as host:process:slot (a Ray worker: rayN)."
    )
    has_input_reference: bool = False
    outputs: list[OpenreelOutput] = Field(default_factory=list)
    credits: dict[str, Any] | None = Field(
        None,
        description="Who made what it is made of: model authors, revision and licence, style and its "
        "author, openreel's version (the same record as the C2PA manifest and the recipe).",
    )
    operation: str = Field(
        "t2v",
        description="What made it: t2v, i2v, remix, extend, loop, blend, storyboard (the engine's "
        "modes) or recut.",
    )
    parents: list[str] = Field(
        default_factory=list, description="The videos it was made from (blends, storyboards, recuts, ...)."
    )
    strength: float | None = None
    backward: bool | None = None
    character: str | None = None


class Video(BaseModel):
    id: str
    object: Literal["video"] = "video"
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    prompt: str | None = None
    size: str
    seconds: str
    remixed_from_video_id: str | None = None
    error: VideoError | None = None
    openreel: OpenreelInfo | None = None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class VideoDeleted(BaseModel):
    id: str
    deleted: bool = True
    object: Literal["video.deleted"] = "video.deleted"


class ModelObject(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        "ok", description="degraded (with status 503) when fewer workers are alive than configured."
    )
    version: str
    database: str
    workers: int = Field(description="Worker threads alive now.")
    workers_configured: int = Field(0, description="Worker threads this server was started with.")
    jobs: dict[str, int] | None = Field(
        None, description="The caller's jobs by status; only for an authenticated caller."
    )


# --- editing modes (issue 4) -------------------------------------------------------------------


class VideoReference(BaseModel):
    """``{"id": "video_..."}``: a finished video of the caller's (the SDK's video[id])."""

    model_config = REQUEST_CONFIG

    id: str


class GenerationOptions(BaseModel):
    """openreel's settings every making request takes (the SDK's ``extra_body``); ``None`` means
    the server's default, or the source video's value where there is a source."""

    model_config = REQUEST_CONFIG

    model: str | None = Field(None, description="A catalog id, or sora-2 / sora-2-pro.")
    size: str | None = Field(None, description="Output WIDTHxHEIGHT; default: the source's size.")
    negative_prompt: str | None = None
    seed: Int | None = None
    style: str | None = None
    fps: Int | None = None
    resolution: Literal["480p", "720p", "1080p"] | None = None
    aspect: Literal["16:9", "9:16", "1:1"] | None = None
    steps: Int | None = None
    guidance: Float | None = None
    variations: Int | None = None
    quality: Quality = None
    memory: Memory = None
    loras: Loras = None
    label: Labelled = None
    audio: Sound = None
    gpus: Gpus = None

    def extras(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in OPENREEL_FIELDS if getattr(self, name) is not None}

    def output_size(self, default: tuple[int, int]) -> tuple[int, int]:
        if self.resolution or self.aspect:
            if self.size:
                raise SpecError("give either size or resolution/aspect, not both", param="size")
            return specs.size_for(
                self.resolution or specs.DEFAULT_RESOLUTION, self.aspect or specs.DEFAULT_ASPECT
            )
        return specs.parse_size(self.size) if self.size else default


def _number_text(value: Any) -> Any:
    return seconds_text(value)


class RemixRequest(GenerationOptions):
    """POST /v1/videos/{id}/remix: the video re-rendered with a new prompt."""

    prompt: str = Field(description="What the remix should show.")
    strength: str | Float | None = Field(
        None, description="subtle, mild (default), strong, or a number in (0, 1]: how much changes."
    )
    variation: Int = Field(1, ge=1, description="Which variation of the source, when it has several.")


class EditRequest(GenerationOptions):
    """POST /v1/videos/edits: a remix of a finished video (``video[id]``) or an uploaded clip."""

    prompt: str
    video: VideoReference | None = Field(None, description="{id}; or upload a video file as `video`.")
    strength: str | Float | None = Field(None, description="As for remix; default mild.")
    variation: Int = Field(1, ge=1)


class ExtendRequest(GenerationOptions):
    """POST /v1/videos/extensions: ``seconds`` more of the video, forwards or (``backward``) before it."""

    prompt: str
    seconds: str = Field(description="Seconds ADDED; the new video is the source plus these.")
    video: VideoReference | None = None
    backward: bool = Field(False, description="openreel: make the new seconds before the clip.")
    variation: Int = Field(1, ge=1)

    _seconds_text = field_validator("seconds", mode="before")(lambda cls, value: _number_text(value))


class RecutRequest(BaseModel):
    """POST /v1/openreel/recut: frames [start, end) of a finished video, no model, no re-encoding
    artefacts."""

    model_config = REQUEST_CONFIG

    video_id: str
    start: Float = Field(0.0, ge=0, description="Seconds from the start of the source.")
    end: Float | None = Field(None, description="Seconds; default the end of the source.")
    variation: Int = Field(1, ge=1)


class LoopRequest(GenerationOptions):
    """POST /v1/openreel/loop: the video made to loop seamlessly (its end leads into its start)."""

    video_id: str
    prompt: str | None = Field(None, description="Default: the source's prompt.")
    seconds: str | None = Field(None, description="Default: the source's length.")
    variation: Int = Field(1, ge=1)

    _seconds_text = field_validator("seconds", mode="before")(lambda cls, value: _number_text(value))


class BlendRequest(GenerationOptions):
    """POST /v1/openreel/blend: ``video_id`` into ``video_id_b`` along an influence curve."""

    video_id: str
    video_id_b: str
    prompt: str | None = Field(None, description="Default: both sources' prompts.")
    seconds: str | None = Field(None, description="Default: the first source's length.")
    curve: Literal["linear", "ease", "ease-in", "ease-out"] | None = None
    strength: str | Float | None = Field(None, description="How much is re-rendered; default mild.")

    _seconds_text = field_validator("seconds", mode="before")(lambda cls, value: _number_text(value))


class StoryboardCard(BaseModel):
    """One card: at ``at`` seconds, exactly one of text, an image (data URL or upload) or a video id."""

    model_config = REQUEST_CONFIG

    at: Float = Field(ge=0)
    text: str | None = None
    image_url: str | None = Field(None, description="data:image/...;base64,... (or upload cards[N][image]).")
    video_id: str | None = None


class StoryboardRequest(GenerationOptions):
    """POST /v1/openreel/storyboard: cards at times become one clip of ``seconds``."""

    cards: list[StoryboardCard] = Field(min_length=1)
    seconds: str | None = None

    _seconds_text = field_validator("seconds", mode="before")(lambda cls, value: _number_text(value))


class StillRequest(BaseModel):
    """POST /v1/openreel/stills: one image from a prompt."""

    model_config = REQUEST_CONFIG

    prompt: str
    model: str | None = None
    size: str | None = Field(None, description="WIDTHxHEIGHT; default 1024x1024.")
    format: Literal["png", "jpeg", "webp"] = "png"
    negative_prompt: str | None = None
    seed: Int | None = None
    style: str | None = None
    steps: Int | None = None
    guidance: Float | None = None


# OpenAI's image model names; each means the server's configured still model (Settings.image_model).
OPENAI_IMAGE_MODELS = (
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-1.5",
    "chatgpt-image-latest",
    "dall-e-2",
    "dall-e-3",
)
# OpenAI's own style values (dall-e-3); any other style names an openreel preset.
OPENAI_IMAGE_STYLES = ("vivid", "natural")
MAX_IMAGES = 10  # the Images API's largest n


class ImageGenerateRequest(BaseModel):
    """POST /v1/images/generations as the SDK sends it (JSON); openreel's settings via extra_body.

    Every field of OpenAI's CreateImageRequest is accepted. ``n`` images are made as variations
    (seeds seed, seed+1, ...); ``quality`` and ``moderation`` are accepted without effect (the
    model's own step count decides); ``background: transparent`` and ``stream: true`` are refused
    with a 400 naming them, as this server cannot give either."""

    model_config = REQUEST_CONFIG

    prompt: str
    model: str | None = None
    n: Int | None = Field(None, ge=1, le=MAX_IMAGES, description="How many images (variations), 1 to 10.")
    size: str | None = Field(None, description='"auto" or WIDTHxHEIGHT; default 1024x1024.')
    quality: Literal["auto", "low", "medium", "high", "standard", "hd"] | None = None
    background: Literal["auto", "opaque", "transparent"] | None = None
    moderation: Literal["auto", "low"] | None = None
    response_format: Literal["b64_json", "url"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: Int | None = Field(None, ge=0, le=100, description="JPEG and WebP quality, 0-100.")
    stream: bool | None = None
    partial_images: Int | None = Field(None, ge=0, le=3)
    # Accepted and without effect here: they only tag the request at OpenAI.
    user: str | None = None
    safety_identifier: str | None = None
    # --- openreel extras ---
    negative_prompt: str | None = None
    seed: Int | None = None
    style: str | None = Field(
        None, description="OpenAI's vivid or natural (no effect here), or an openreel style preset."
    )
    steps: Int | None = None
    guidance: Float | None = None

    def openreel_style(self) -> str | None:
        return None if self.style in OPENAI_IMAGE_STYLES else self.style


class ImageEditRequest(BaseModel):
    """POST /v1/images/edits as the SDK sends it (multipart: the ``image`` file and these fields).

    The image is remixed into a new one: ``strength`` of the model's schedule is re-run from it
    (openreel's extra; default mild), by a model that can remix. ``mask`` (inpainting), a
    transparent background and streaming are refused with a 400 naming them; ``input_fidelity``
    and ``quality`` are accepted without effect (strength decides how much of the image stays)."""

    model_config = REQUEST_CONFIG

    prompt: str
    model: str | None = None
    n: Int | None = Field(None, ge=1, le=MAX_IMAGES, description="How many images (variations), 1 to 10.")
    size: str | None = Field(None, description='"auto" (the image\'s own shape, at most 1024 a side) or WxH.')
    quality: Literal["auto", "low", "medium", "high", "standard"] | None = None
    background: Literal["auto", "opaque", "transparent"] | None = None
    input_fidelity: Literal["high", "low"] | None = None
    response_format: Literal["b64_json", "url"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: Int | None = Field(None, ge=0, le=100, description="JPEG and WebP quality, 0-100.")
    stream: bool | None = None
    partial_images: Int | None = Field(None, ge=0, le=3)
    user: str | None = None
    safety_identifier: str | None = None
    # --- openreel extras ---
    strength: str | Float | None = Field(
        None, description="subtle, mild (default), strong, or a number in (0, 1]: how much changes."
    )
    negative_prompt: str | None = None
    seed: Int | None = None
    style: str | None = None
    steps: Int | None = None
    guidance: Float | None = None


class Character(BaseModel):
    """The SDK's VideoCreateCharacterResponse / VideoGetCharacterResponse, plus openreel's counts."""

    id: str
    object: Literal["video.character"] = "video.character"
    created_at: int
    name: str
    reference_images: int = Field(
        description="openreel: reference images kept (a video gives its first frame)."
    )
    source: Literal["images", "video"]


class Still(BaseModel):
    """An openreel still job (the Images API waits for one)."""

    id: str
    object: Literal["openreel.still"] = "openreel.still"
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    created_at: int
    completed_at: int | None = None
    prompt: str
    size: str
    format: str
    error: VideoError | None = None
    openreel: OpenreelInfo | None = None


class ImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    """Sent without the keys that are None (the spec types them non-nullable)."""

    created: int
    data: list[ImageData]
    background: Literal["opaque"] | None = None
    output_format: Literal["png", "jpeg", "webp"]
    quality: str | None = None
    size: str
