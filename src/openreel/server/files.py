"""OpenAI's Files API, as much of it as a video server needs: upload a file with a purpose, list,
retrieve, download and delete it, per key; a create request names an image as
``input_reference: {"file_id": "file-..."}``. Files expire after ``expires_after`` seconds when
asked, else after the server's ``--retention``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from openreel.jobs.files import FileRecord, add_file, delete_file, get_file, list_files, new_file_id
from openreel.server.auth import Principal, authenticate
from openreel.server.bodies import check_text, read_body
from openreel.server.openai_videos import ERRORS, OpenAIServingVideos, get_serving, write_atomically
from openreel.server.protocol import ApiError, NotFound

PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_EXPIRY_S = 30 * 86400  # OpenAI's expires_after allows one hour to thirty days


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


def to_file(record: FileRecord) -> FileObject:
    return FileObject(
        id=record.id,
        bytes=record.bytes,
        created_at=int(record.created_at),
        expires_at=int(record.expires_at) if record.expires_at else None,
        filename=record.filename,
        purpose=record.purpose,
    )


def file_bytes(serving: OpenAIServingVideos, file_id: str, owner: str) -> bytes:
    """The caller's file ``file_id`` (for input_reference), or a 404 naming it."""
    record = get_file(serving.store, file_id, owner)
    if record is None or not Path(record.path).is_file():
        raise NotFound(f"no file with id {file_id!r}", param="input_reference", code="file_not_found")
    return Path(record.path).read_bytes()


def _expiry(fields: dict, retention: float | None, now: float) -> float | None:
    after = fields.get("expires_after")
    if after is None:
        return now + retention if retention else None
    if not isinstance(after, dict) or after.get("anchor") != "created_at":
        raise ApiError("expires_after needs anchor=created_at and seconds", param="expires_after")
    try:
        seconds = int(after.get("seconds", ""))
    except ValueError:
        raise ApiError(
            "expires_after[seconds] must be a whole number", param="expires_after.seconds"
        ) from None
    if not 3600 <= seconds <= MAX_EXPIRY_S:
        raise ApiError("expires_after[seconds] must be 3600 to 2592000", param="expires_after.seconds")
    return now + seconds


router = APIRouter()


@router.post(
    "/v1/files", response_model=FileObject, responses=ERRORS, summary="Upload a file", tags=["files"]
)
async def upload_file(
    request: Request,
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> FileObject:
    body = await read_body(request, serving.settings, file_fields=lambda name: name == "file")
    data = body.file("file")
    if data is None:
        raise ApiError(
            "upload the file as the multipart field 'file'", param="file", code="missing_required_parameter"
        )
    purpose = body.fields.get("purpose")
    if purpose not in PURPOSES:
        raise ApiError(f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
    unknown = sorted(set(body.fields) - {"purpose", "expires_after"})
    if unknown:
        raise ApiError(f"Unknown parameter: '{unknown[0]}'.", param=unknown[0], code="unknown_parameter")
    form = await request.form()  # the cached body: only for the part's file name
    upload = form.get("file")
    filename = check_text(str(getattr(upload, "filename", None) or "file")[:255], "file")
    now = time.time()
    file_id = new_file_id()
    path = serving.settings.uploads_path / "files" / file_id
    record = FileRecord(
        id=file_id,
        owner=principal.owner,
        filename=filename,
        purpose=purpose,
        bytes=len(data),
        path=str(path),
        created_at=now,
        expires_at=_expiry(body.fields, serving.settings.retention, now),
    )
    await run_in_threadpool(write_atomically, path, data)
    return to_file(await run_in_threadpool(add_file, serving.store, record))


@router.get("/v1/files", response_model=FileList, summary="List files", tags=["files"])
def get_files(
    purpose: str | None = Query(None),
    limit: int = Query(100, ge=0, le=10000),
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> FileList:
    data = [
        to_file(record) for record in list_files(serving.store, principal.owner, purpose=purpose, limit=limit)
    ]
    return FileList(data=data, first_id=data[0].id if data else None, last_id=data[-1].id if data else None)


def _own(serving: OpenAIServingVideos, file_id: str, owner: str) -> FileRecord:
    record = get_file(serving.store, file_id, owner)
    if record is None:
        raise NotFound(f"no file with id {file_id!r}", param="file_id", code="file_not_found")
    return record


@router.get("/v1/files/{file_id}", response_model=FileObject, responses=ERRORS, tags=["files"])
def retrieve_file(
    file_id: str,
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> FileObject:
    return to_file(_own(serving, file_id, principal.owner))


@router.get("/v1/files/{file_id}/content", response_class=FileResponse, responses=ERRORS, tags=["files"])
def file_content(
    file_id: str,
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> FileResponse:
    record = _own(serving, file_id, principal.owner)
    if not Path(record.path).is_file():
        raise NotFound(f"the bytes of file {file_id} are missing on the server", param="file_id")
    return FileResponse(record.path, media_type="application/octet-stream", filename=record.filename)


@router.delete("/v1/files/{file_id}", response_model=FileDeleted, responses=ERRORS, tags=["files"])
def remove_file(
    file_id: str,
    principal: Principal = Depends(authenticate),
    serving: OpenAIServingVideos = Depends(get_serving),
) -> FileDeleted:
    record = delete_file(serving.store, file_id, principal.owner)
    if record is None:
        raise NotFound(f"no file with id {file_id!r}", param="file_id", code="file_not_found")
    Path(record.path).unlink(missing_ok=True)
    return FileDeleted(id=record.id)


def attach_files(app: FastAPI) -> None:
    app.include_router(router)
