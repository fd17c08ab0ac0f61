"""Request bodies as plain data, read under limits that hold while reading.

``read_body`` takes what the SDK sends (multipart with bracketed nested names and files, or JSON)
and refuses, as a 400 or 413 and never a 500: bodies over the size limit however they arrive
(Content-Length or chunked), nesting deeper than any request needs, text that is not valid
Unicode (a lone surrogate from a JSON escape) and NUL bytes (which PostgreSQL cannot store).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from openreel.server.protocol import ApiError, PayloadTooLarge, UnsupportedMediaType
from openreel.server.settings import Settings

RequestModel = TypeVar("RequestModel", bound=BaseModel)

# No request nests deeper than cards[0][image] inside a JSON object: far below what would make a
# recursive parser or validator run out of stack.
MAX_DEPTH = 8


@dataclass
class RequestBody:
    """A request body as plain data: ``fields`` nested by the brackets of multipart names
    (``video[id]`` -> ``{"video": {"id": ...}}``, ``cards[0][at]`` -> ``{"cards": [{"at": ...}]}``,
    ``loras[]`` repeated -> ``{"loras": [...]}``),
    ``files`` the uploaded parts' bytes by their full names."""

    fields: dict[str, Any]
    files: dict[str, list[bytes]]

    def file(self, name: str) -> bytes | None:
        parts = self.files.get(name)
        return parts[0] if parts else None


def check_text(text: str, param: str | None) -> str:
    """Refuse text no database or encoder can hold: lone surrogates and NUL bytes."""
    if "\x00" in text:
        raise ApiError("text may not contain NUL bytes", param=param, code="invalid_value")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            "text is not valid Unicode (a lone surrogate)", param=param, code="invalid_value"
        ) from None
    return text


def check_tree(value: Any) -> None:
    """Walk a parsed body without recursion: depth, keys and strings."""
    stack: list[tuple[Any, int, str | None]] = [(value, 0, None)]
    while stack:
        item, depth, param = stack.pop()
        if depth > MAX_DEPTH:
            raise ApiError(
                f"the body nests deeper than {MAX_DEPTH} levels", param=param, code="invalid_value"
            )
        if isinstance(item, str):
            check_text(item, param)
        elif isinstance(item, dict):
            for key, child in item.items():
                check_text(key, key)
                stack.append((child, depth + 1, param or key))
        elif isinstance(item, list):
            stack.extend((child, depth + 1, param) for child in item)


def _nest(fields: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition("[")
    path = [head] + ([part.rstrip("]") for part in ("[" + rest).split("[")[1:]] if rest else [])
    if len(path) > MAX_DEPTH:
        raise ApiError(f"'{key[:40]}' nests deeper than {MAX_DEPTH} levels", param=head, code="invalid_value")
    # ``loras[]`` (how the SDK sends a list in a form) appends to a list at ``loras``.
    appends = len(path) > 1 and path[-1] == ""
    parents = path[:-2] if appends else path[:-1]
    target = fields
    for part in parents:
        child = target.setdefault(part, {})
        if not isinstance(child, dict):
            raise ApiError(f"'{key}' conflicts with another field", param=head, code="invalid_value")
        target = child
    if appends:
        items = target.setdefault(path[-2], [])
        if not isinstance(items, list):
            raise ApiError(f"'{key}' conflicts with another field", param=head, code="invalid_value")
        items.append(value)
    else:
        target[path[-1]] = value


def _lists(value: Any) -> Any:
    """Bracketed indices (``cards[0]``, ``cards[1]``) become lists, in index order."""
    if isinstance(value, dict):
        value = {key: _lists(item) for key, item in value.items()}
        if value and all(key.isdigit() for key in value):
            return [value[key] for key in sorted(value, key=int)]
    return value


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, refused with a 413 as soon as it passes ``limit`` bytes, whatever
    Content-Length says (or when a chunked body gives none)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the request is {length} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request is over the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache: form() and body() parse these bytes, not the socket
    return body


async def read_body(
    request: Request, settings: Settings, *, file_fields: Callable[[str], bool] = lambda name: False
) -> RequestBody:
    """A body as the SDK sends it (multipart: fields, bracketed nested fields, files) or as JSON
    (remix, images, older SDKs, curl). A file under a name ``file_fields`` does not accept is a
    400; each file part is limited to the upload size (images) or the body size (videos)."""
    raw = await read_limited(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type", "")
    files: dict[str, list[bytes]] = {}
    if content_type.startswith("multipart/form-data") or content_type.startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await request.form(max_files=16, max_fields=256)
        try:
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                check_text(key, None)
                if isinstance(value, UploadFile):
                    if not file_fields(key):
                        raise ApiError(
                            f"Unknown file parameter: '{key}'.", param=key, code="unknown_parameter"
                        )
                    files.setdefault(key, []).append(await value.read())
                else:
                    _nest(fields, key, value)
        finally:
            await form.close()
        fields = _lists(fields)
    else:
        if content_type and not content_type.startswith("application/json"):
            # text/plain is what a page on another site may send without asking (a "simple"
            # request): JSON is only read when it says it is JSON.
            raise UnsupportedMediaType(
                f"send application/json or multipart/form-data (not {content_type.split(';')[0]})"
            )
        try:
            fields = json.loads(raw or b"{}")
        except (ValueError, RecursionError):
            raise ApiError("the body is neither JSON nor a multipart form", code="invalid_json") from None
        if not isinstance(fields, dict):
            raise ApiError("the JSON body must be an object", code="invalid_json")
    check_tree(fields)
    return RequestBody(fields, files)


def validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    if first["type"] == "extra_forbidden":
        return ApiError(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")
    if first["type"] == "missing":
        return ApiError(
            f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    return ApiError(f"Invalid value for '{param}': {first['msg']}", param=param, code="invalid_value")


def parse_body(model: type[RequestModel], fields: dict[str, Any]) -> RequestModel:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise validation_error(exc) from None
