"""The Files API's rows (``files`` table): uploads kept per owner, so a create request can name
one as ``input_reference: {"file_id": ...}``. The bytes live at ``path``; the sweep removes
expired files, file first, then row."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from openreel.jobs.store import JobStore, files


@dataclass(frozen=True)
class FileRecord:
    id: str
    owner: str
    filename: str
    purpose: str
    bytes: int
    path: str
    created_at: float
    expires_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> FileRecord:
        return cls(**dict(row._mapping))


def new_file_id() -> str:
    return f"file-{uuid.uuid4().hex}"


def add_file(store: JobStore, record: FileRecord) -> FileRecord:
    with store._write() as conn:
        conn.execute(files.insert().values(**record.__dict__))
    return record


def get_file(store: JobStore, file_id: str, owner: str) -> FileRecord | None:
    with store._read() as conn:
        row = conn.execute(sa.select(files).where(files.c.id == file_id, files.c.owner == owner)).first()
    return FileRecord.from_row(row) if row else None


def list_files(
    store: JobStore, owner: str, *, purpose: str | None = None, limit: int = 100
) -> list[FileRecord]:
    query = sa.select(files).where(files.c.owner == owner)
    if purpose:
        query = query.where(files.c.purpose == purpose)
    with store._read() as conn:
        rows = conn.execute(query.order_by(files.c.created_at.desc()).limit(limit)).all()
    return [FileRecord.from_row(row) for row in rows]


def delete_file(store: JobStore, file_id: str, owner: str | None = None) -> FileRecord | None:
    where = files.c.id == file_id if owner is None else sa.and_(files.c.id == file_id, files.c.owner == owner)
    with store._write() as conn:
        row = conn.execute(sa.select(files).where(where)).first()
        if row is not None:
            conn.execute(files.delete().where(where))
    return FileRecord.from_row(row) if row else None


def expired_files(store: JobStore, now: float | None = None, limit: int = 200) -> list[FileRecord]:
    now = time.time() if now is None else now
    with store._read() as conn:
        rows = conn.execute(
            sa.select(files).where(files.c.expires_at.is_not(None), files.c.expires_at <= now).limit(limit)
        ).all()
    return [FileRecord.from_row(row) for row in rows]
