"""Listing and deleting what a caller keeps besides videos: characters and stills (issue 14).

Attached before the Videos router, so ``GET /v1/videos/characters`` is this list and not a video
named "characters".
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, FastAPI, Query
from pydantic import BaseModel

from openreel.jobs.executor import remove_job_files, remove_upload_path
from openreel.server.auth import Principal, authenticate
from openreel.server.editing import OpenreelServingModes, get_modes
from openreel.server.images import StillsServing, get_stills_serving
from openreel.server.openai_videos import ERRORS
from openreel.server.protocol import Character, NotFound, Still


class CharacterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Character]


class CharacterDeleted(BaseModel):
    id: str
    object: Literal["video.character.deleted"] = "video.character.deleted"
    deleted: bool = True


class StillList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Still]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class StillDeleted(BaseModel):
    id: str
    object: Literal["openreel.still.deleted"] = "openreel.still.deleted"
    deleted: bool = True


def list_characters(modes: OpenreelServingModes, owner: str) -> CharacterList:
    return CharacterList(data=[modes._character(record) for record in modes.store.list_characters(owner)])


def delete_character(modes: OpenreelServingModes, character_id: str, owner: str) -> CharacterDeleted:
    record = modes.store.delete_character(character_id, owner)
    if record is None:
        raise NotFound(
            f"no character with id {character_id!r}", param="character_id", code="character_not_found"
        )
    # Its reference images live in their own folder; a queued job that named the character keeps
    # working only if it already ran (the files are the character's, not the job's).
    folders = {Path(image).parent for image in record.images}
    for folder in folders:
        if folder.name == record.id:
            shutil.rmtree(folder, ignore_errors=True)
    return CharacterDeleted(id=record.id)


def list_stills(
    stills: StillsServing, owner: str, *, after: str | None, limit: int, order: str
) -> StillList:
    try:
        jobs, has_more = stills.store.list(owner, after=after, limit=limit, order=order, kinds=("still",))
    except KeyError:
        raise NotFound(
            f"no still with id {after!r} to list after", param="after", code="still_not_found"
        ) from None
    data = [stills.to_still(job) for job in jobs]
    return StillList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=has_more,
    )


def delete_still(stills: StillsServing, still_id: str, owner: str) -> StillDeleted:
    job = stills.store.delete(still_id, owner, kinds=("still",))
    if job is None:
        raise NotFound(f"no still with id {still_id!r}", param="still_id", code="still_not_found")
    if not stills.executor.cancel(job.id) and job.status != "in_progress":
        remove_job_files(stills.executor.job_dir(job.id))
    remove_upload_path(job.input_reference)  # an image edit's source image belongs to its still
    return StillDeleted(id=job.id)


router = APIRouter()


@router.get("/v1/videos/characters", response_model=CharacterList, summary="List characters", tags=["videos"])
def get_characters(
    principal: Principal = Depends(authenticate), modes: OpenreelServingModes = Depends(get_modes)
) -> CharacterList:
    return list_characters(modes, principal.owner)


@router.delete(
    "/v1/videos/characters/{character_id}",
    response_model=CharacterDeleted,
    responses=ERRORS,
    summary="Delete a character and its reference images",
    tags=["videos"],
)
def remove_character(
    character_id: str,
    principal: Principal = Depends(authenticate),
    modes: OpenreelServingModes = Depends(get_modes),
) -> CharacterDeleted:
    return delete_character(modes, character_id, principal.owner)


@router.get(
    "/v1/openreel/stills", response_model=StillList, responses=ERRORS, summary="List stills", tags=["studio"]
)
def get_stills(
    after: str | None = Query(None, description="The last id of the previous page."),
    limit: int = Query(20, ge=0, le=100),
    order: Literal["asc", "desc"] = Query("desc"),
    principal: Principal = Depends(authenticate),
    stills: StillsServing = Depends(get_stills_serving),
) -> StillList:
    return list_stills(stills, principal.owner, after=after, limit=limit, order=order)


@router.delete(
    "/v1/openreel/stills/{still_id}",
    response_model=StillDeleted,
    responses=ERRORS,
    summary="Delete a still (cancels it if it is still being made)",
    tags=["studio"],
)
def remove_still(
    still_id: str,
    principal: Principal = Depends(authenticate),
    stills: StillsServing = Depends(get_stills_serving),
) -> StillDeleted:
    return delete_still(stills, still_id, principal.owner)


def attach_collections(app: FastAPI) -> None:
    app.include_router(router)
