"""JobStore: the queue and the API keys, as rows in a SQL database.

SQLite (``$OPENREEL_HOME/openreel.db``) is the default; a PostgreSQL URL serves a team whose
workers run on several machines. The schema is created and grown by named migration steps that
run once each and are recorded in ``_openreel_migrations`` (the shape of simonw/llm's
migrations): ``JobStore()`` migrates whenever it opens a database, so an old database simply
gains the new columns.

Two workers never run one job: a claim is a conditional ``UPDATE ... WHERE status='queued'``
whose row count says who won; on PostgreSQL the candidate row is first picked with
``FOR UPDATE SKIP LOCKED`` so concurrent workers do not even queue up behind each other.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from openreel import paths
from openreel.jobs.migrations import DEFAULT_MAX_ATTEMPTS, MIGRATIONS

# Statuses as the OpenAI API names them, plus "cancelled" for deleted jobs (never shown: a deleted
# job is gone from the API the moment DELETE returns).
QUEUED, IN_PROGRESS, COMPLETED, FAILED, CANCELLED = (
    "queued",
    "in_progress",
    "completed",
    "failed",
    "cancelled",
)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})
LOCAL_OWNER = "local"  # the owner of every job in single-user mode (no API keys exist)

metadata = sa.MetaData()

# The tables in their current, fully migrated shape. Queries use these; migrations below build
# them step by step with their own DDL, so an old database reaches exactly this shape.
jobs = sa.Table(
    "jobs",
    metadata,
    # seq orders jobs (queue order, list order, cursors); id is what the API shows.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("resolved_model", sa.String(200)),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("size", sa.String(32), nullable=False),
    sa.Column("seconds", sa.String(32), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("extras", sa.Text, nullable=False),
    sa.Column("input_reference", sa.Text),
    sa.Column("remixed_from_video_id", sa.String(64)),
    sa.Column("outputs", sa.Text),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("completed_at", sa.Float),
    sa.Column("expires_at", sa.Float),
    sa.Column("deleted_at", sa.Float),
    # m003_job_progress
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("stage", sa.String(64)),
    sa.Column("step", sa.Integer),
    sa.Column("total_steps", sa.Integer),
    sa.Column("eta_seconds", sa.Float),
    sa.Column("heartbeat_at", sa.Float),
    # m004_job_attempts
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default=str(DEFAULT_MAX_ATTEMPTS)),
    sa.Column("claimed_by", sa.String(200)),
    # m005_job_kind_parents: what the job makes ("video" through the engine, "still", "recut")
    # and the jobs it was made from (blends, storyboards, recuts; JSON list of ids).
    sa.Column("kind", sa.String(16), nullable=False, server_default=sa.text("'video'")),
    sa.Column("parents", sa.Text),
)

# m006_characters: a named person or creature kept per owner; ``images`` is a JSON list of
# reference image paths on this server (the first one is what a generate request starts from).
characters = sa.Table(
    "characters",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("images", sa.Text, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# m007_webhook_outbox: events waiting to be delivered (openreel.jobs.outbox). A row is written in
# the same transaction that finishes its job, so no event is lost to a crash, and it stays until
# delivered or given up, so deliveries survive restarts.
webhook_outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("delivered_at", sa.Float),
    sa.Column("gave_up_at", sa.Float),
    sa.Column("last_error", sa.Text),
    # m010_key_webhooks: the key whose webhook secret signs it (None: the server's).
    sa.Column("key_id", sa.String(64)),
)

# m008_files: the Files API (openreel.jobs.files): uploads kept per owner, named by input_reference.
files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float),
)

# m009_workers: the workers serving the queue (openreel.jobs.cluster), refreshed as they beat.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("device", sa.String(16), nullable=False),
    sa.Column("device_name", sa.String(200), nullable=False),
    sa.Column("memory_gib", sa.Float, nullable=False),
    sa.Column("loaded_model", sa.String(200)),
    sa.Column("job_id", sa.String(64)),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("devices", sa.Integer, server_default="1"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    # The first characters of the secret, so a person can tell keys apart in `keys list`.
    sa.Column("prefix", sa.String(32), nullable=False),
    sa.Column("hash", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
    # m010_key_webhooks: where this key's video events go, and the secret they are signed with.
    sa.Column("webhook_url", sa.Text),
    sa.Column("webhook_secret", sa.Text),
)

migrations_table = sa.Table(
    "_openreel_migrations",
    sa.MetaData(),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)


# --- records --------------------------------------------------------------------------------


@dataclass
class JobRecord:
    seq: int
    id: str
    owner: str
    status: str
    model: str
    resolved_model: str | None
    prompt: str
    size: str
    seconds: str
    spec: dict[str, Any]
    extras: dict[str, Any]
    input_reference: str | None
    remixed_from_video_id: str | None
    outputs: list[dict[str, Any]]
    error_code: str | None
    error_message: str | None
    created_at: float
    started_at: float | None
    completed_at: float | None
    expires_at: float | None
    deleted_at: float | None
    progress: float
    stage: str | None
    step: int | None
    total_steps: int | None
    eta_seconds: float | None
    heartbeat_at: float | None
    attempts: int
    max_attempts: int
    claimed_by: str | None
    kind: str = "video"
    parents: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        data = dict(row._mapping)
        data["spec"] = json.loads(data["spec"])
        data["extras"] = json.loads(data["extras"])
        data["outputs"] = json.loads(data["outputs"]) if data["outputs"] else []
        data["parents"] = json.loads(data["parents"]) if data.get("parents") else []
        return cls(**data)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass
class CharacterRecord:
    id: str
    owner: str
    name: str
    images: list[str]
    source: str  # "images" or "video" (its first frame was taken)
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> CharacterRecord:
        data = dict(row._mapping)
        data["images"] = json.loads(data["images"])
        return cls(**data)


@dataclass
class WorkerRecord:
    """A worker serving the queue, as it last reported itself."""

    name: str
    host: str
    device: str
    device_name: str
    memory_gib: float
    loaded_model: str | None
    job_id: str | None
    started_at: float
    heartbeat_at: float
    # Accelerators it holds (GPUs of one machine; 1 on a CPU).
    devices: int = 1

    @classmethod
    def from_row(cls, row: Any) -> WorkerRecord:
        values = dict(row._mapping)
        return cls(**{**values, "devices": values.get("devices") or 1})


@dataclass(frozen=True)
class Candidate:
    """A queued job as a claim policy sees it (``claim(choose=...)``)."""

    id: str
    model: str | None  # the catalog id (or folder) it runs: resolved_model, else what was asked
    kind: str
    created_at: float


# Picks the job to claim from the oldest queued ones; None claims nothing.
ChooseJob = Callable[[list[Candidate]], "str | None"]


@dataclass
class ApiKeyRecord:
    id: str
    name: str
    prefix: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    webhook_url: str | None = None
    # Never shown: `keys list` says only whether a key has one.
    webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> ApiKeyRecord:
        data = dict(row._mapping)
        data.pop("hash", None)
        return cls(**data)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass
class Recovery:
    """What ``recover()`` did, for the log."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)


# --- the store ------------------------------------------------------------------------------


def default_url() -> str:
    return f"sqlite:///{paths.home() / 'openreel.db'}"


def normalize_url(url: str | None) -> str:
    """SQLAlchemy URL for what a person typed: plain ``postgresql://`` means psycopg 3 (the
    driver we depend on), not SQLAlchemy's default psycopg2."""
    if not url:
        return default_url()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def this_host() -> str:
    return socket.gethostname()


def worker_name(thread: str) -> str:
    """``host:pid:thread``: lets a restarted server see which claims belonged to a dead process."""
    return f"{this_host()}:{os.getpid()}:{thread}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_is_dead(claimed_by: str | None, heartbeat_at: float | None, now: float, stale_after: float) -> bool:
    """A claim is dead when its process is gone from this host, or (any host) it has not beaten
    its heart for ``stale_after`` seconds."""
    if not claimed_by:
        return True
    host, _, rest = claimed_by.partition(":")
    pid_text = rest.partition(":")[0]
    if host == this_host() and pid_text.isdigit():
        pid = int(pid_text)
        if pid != os.getpid() and not pid_alive(pid):
            return True
    return heartbeat_at is None or now - heartbeat_at > stale_after


def new_job_id() -> str:
    return f"video_{uuid.uuid4().hex}"


class JobStore:
    def __init__(self, url: str | None = None, *, echo: bool = False):
        self.url = normalize_url(url)
        self.engine: Engine = self._make_engine(self.url, echo)
        self.dialect = self.engine.dialect.name
        self.migrate()

    # --- connection handling ---

    @staticmethod
    def _make_engine(url: str, echo: bool) -> Engine:
        if url.startswith("sqlite"):
            database = sa.engine.make_url(url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                url, echo=echo, connect_args={"timeout": 30, "check_same_thread": False}
            )

            @sa.event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                # Take transaction control from the sqlite3 module (it would skip BEGIN before DDL
                # and SELECT) and use WAL, so readers never wait on the worker's progress writes.
                dbapi_conn.isolation_level = None
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA busy_timeout=30000")
                cursor.close()

            @sa.event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                # A write transaction takes the write lock up front: a deferred one that reads
                # first can hit SQLITE_BUSY when it upgrades, which busy_timeout cannot wait out.
                write = conn.get_execution_options().get("openreel_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        return sa.create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(openreel_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    # --- migrations ---

    def migrate(self) -> list[str]:
        """Apply every migration step not yet recorded; returns the names applied now. Safe when
        several processes open the same database at once: they take turns under a lock."""
        applied_now: list[str] = []
        with self._write() as conn:
            if self.dialect == "postgresql":
                # Serialise concurrent openers; released at commit.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7391020411)"))
            migrations_table.create(conn, checkfirst=True)
            done = set(conn.execute(sa.select(migrations_table.c.name)).scalars())
            for step in MIGRATIONS:
                if step.__name__ in done:
                    continue
                step(conn)
                conn.execute(migrations_table.insert().values(name=step.__name__, applied_at=time.time()))
                applied_now.append(step.__name__)
        return applied_now

    def applied_migrations(self) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(sa.select(migrations_table.c.name).order_by(migrations_table.c.applied_at))
            return list(rows.scalars())

    # --- jobs: the API side ---

    def create_job(
        self,
        *,
        owner: str,
        model: str,
        resolved_model: str | None,
        prompt: str,
        size: str,
        seconds: str,
        spec: dict[str, Any],
        extras: dict[str, Any] | None = None,
        input_reference: str | None = None,
        remixed_from_video_id: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        job_id: str | None = None,
        kind: str = "video",
        parents: list[str] | None = None,
    ) -> JobRecord:
        job_id = job_id or new_job_id()
        with self._write() as conn:
            conn.execute(
                jobs.insert().values(
                    id=job_id,
                    owner=owner,
                    status=QUEUED,
                    model=model,
                    resolved_model=resolved_model,
                    prompt=prompt,
                    size=size,
                    seconds=seconds,
                    spec=json.dumps(spec),
                    extras=json.dumps(extras or {}),
                    input_reference=input_reference,
                    remixed_from_video_id=remixed_from_video_id,
                    kind=kind,
                    parents=json.dumps(parents) if parents else None,
                    created_at=time.time(),
                    progress=0.0,
                    attempts=0,
                    max_attempts=max_attempts,
                )
            )
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
        return JobRecord.from_row(row)

    def get(
        self, job_id: str, owner: str | None = None, *, include_deleted: bool = False
    ) -> JobRecord | None:
        """One job; ``owner`` limits it to that owner's jobs (None: any owner, for workers)."""
        query = sa.select(jobs).where(jobs.c.id == job_id)
        if owner is not None:
            query = query.where(jobs.c.owner == owner)
        if not include_deleted:
            query = query.where(jobs.c.deleted_at.is_(None))
        with self._read() as conn:
            row = conn.execute(query).first()
        return JobRecord.from_row(row) if row else None

    def list(
        self,
        owner: str,
        *,
        after: str | None = None,
        limit: int = 20,
        order: str = "desc",
        exclude_kinds: tuple[str, ...] = (),
        kinds: tuple[str, ...] | None = None,
    ) -> tuple[list[JobRecord], bool]:
        """A page of the owner's jobs in creation order and whether more follow.

        ``after`` is a job id (the previous page's last_id); the cursor is its position, so jobs
        created or deleted meanwhile neither repeat nor skip items. Raises KeyError when ``after``
        names no job of this owner."""
        descending = order == "desc"
        query = sa.select(jobs).where(jobs.c.owner == owner, jobs.c.deleted_at.is_(None))
        if exclude_kinds:
            query = query.where(jobs.c.kind.not_in(exclude_kinds))
        if kinds is not None:
            query = query.where(jobs.c.kind.in_(kinds))
        with self._read() as conn:
            if after is not None:
                # Deleted jobs still work as cursors: a client paging while deleting is not broken.
                cursor = conn.execute(
                    sa.select(jobs.c.seq).where(jobs.c.id == after, jobs.c.owner == owner)
                ).scalar()
                if cursor is None:
                    raise KeyError(after)
                query = query.where(jobs.c.seq < cursor if descending else jobs.c.seq > cursor)
            query = query.order_by(jobs.c.seq.desc() if descending else jobs.c.seq.asc()).limit(limit + 1)
            rows = conn.execute(query).all()
        records = [JobRecord.from_row(row) for row in rows[:limit]]
        return records, len(rows) > limit

    def delete(
        self, job_id: str, owner: str | None = None, *, kinds: tuple[str, ...] | None = None
    ) -> JobRecord | None:
        """Hide the job from the API at once (a queued job will never be claimed); the caller
        cancels a running job and removes files. Returns the job as it was, or None (also when
        its kind is not one of ``kinds``: a video route never deletes a still)."""
        now = time.time()
        with self._write() as conn:
            query = sa.select(jobs).where(jobs.c.id == job_id, jobs.c.deleted_at.is_(None))
            if owner is not None:
                query = query.where(jobs.c.owner == owner)
            if kinds is not None:
                query = query.where(jobs.c.kind.in_(kinds))
            row = conn.execute(query).first()
            if row is None:
                return None
            before = JobRecord.from_row(row)
            values: dict[str, Any] = {"deleted_at": now}
            # A running job stays in_progress, still claimed, until its worker has stopped and
            # cleaned up (finish_cancelled); if that worker died, recovery sees it and cleans up.
            if before.status == QUEUED:
                values.update(status=CANCELLED, error_code="cancelled", error_message="deleted by its owner")
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))
        return before

    def queue_position(self, job: JobRecord) -> int:
        """How many queued jobs (any owner) run before this one."""
        with self._read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(jobs)
                    .where(jobs.c.status == QUEUED, jobs.c.deleted_at.is_(None), jobs.c.seq < job.seq)
                ).scalar_one()
            )

    def running_etas(self) -> list[float | None]:
        with self._read() as conn:
            return list(
                conn.execute(
                    sa.select(jobs.c.eta_seconds).where(
                        jobs.c.status == IN_PROGRESS, jobs.c.deleted_at.is_(None)
                    )
                ).scalars()
            )

    def counts(self, owner: str | None = None) -> dict[str, int]:
        """Jobs by status: everyone's, or one owner's."""
        query = sa.select(jobs.c.status, sa.func.count()).where(jobs.c.deleted_at.is_(None))
        if owner is not None:
            query = query.where(jobs.c.owner == owner)
        with self._read() as conn:
            rows = conn.execute(query.group_by(jobs.c.status)).all()
        return {status: int(count) for status, count in rows}

    # --- jobs: the worker side ---

    def claim(self, worker: str, *, choose: ChooseJob | None = None, window: int = 50) -> JobRecord | None:
        """Atomically take a queued job for ``worker``; None when there is none to take.

        Without ``choose`` it is the oldest. With it, ``choose`` sees the ``window`` oldest queued
        jobs and names the one to take (or None): a cluster worker prefers its loaded model's jobs
        and leaves others to a warm worker (openreel.jobs.cluster)."""
        for _ in range(20):
            with self._write() as conn:
                if choose is None:
                    candidate = sa.select(jobs.c.id).where(
                        jobs.c.status == QUEUED, jobs.c.deleted_at.is_(None)
                    )
                    candidate = candidate.order_by(jobs.c.seq).limit(1)
                    if self.dialect == "postgresql":
                        candidate = candidate.with_for_update(skip_locked=True)
                    job_id = conn.execute(candidate).scalar()
                else:
                    # No row locks here: the conditional update below still lets only one claimer win,
                    # and locking the whole window would hide it from every other worker meanwhile.
                    columns = (jobs.c.id, jobs.c.resolved_model, jobs.c.model, jobs.c.kind, jobs.c.created_at)
                    rows = conn.execute(
                        sa.select(*columns)
                        .where(jobs.c.status == QUEUED, jobs.c.deleted_at.is_(None))
                        .order_by(jobs.c.seq)
                        .limit(window)
                    ).all()
                    if not rows:
                        return None
                    job_id = choose(
                        [
                            Candidate(row.id, row.resolved_model or row.model, row.kind, row.created_at)
                            for row in rows
                        ]
                    )
                if job_id is None:
                    return None
                now = time.time()
                # The status condition is the real guarantee: of two claimers that picked the same
                # row, only one sees rowcount 1.
                result = conn.execute(
                    jobs.update()
                    .where(jobs.c.id == job_id, jobs.c.status == QUEUED, jobs.c.deleted_at.is_(None))
                    .values(
                        status=IN_PROGRESS,
                        claimed_by=worker,
                        attempts=jobs.c.attempts + 1,
                        started_at=now,
                        heartbeat_at=now,
                        progress=0.0,
                        stage="queued for the model",
                        step=None,
                        total_steps=None,
                        eta_seconds=None,
                    )
                )
                if result.rowcount == 1:
                    row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
                    return JobRecord.from_row(row)
        return None

    def _update_claimed(
        self, job_id: str, worker: str, *, event: dict[str, Any] | None = None, **values: Any
    ) -> bool:
        """Update a job only while ``worker`` still holds it and it is not deleted; False tells
        the worker its claim is gone (deleted, or taken back by recovery). ``event``, a
        webhook_outbox row, is written in the same transaction, only when the update is."""
        with self._write() as conn:
            result = conn.execute(
                jobs.update()
                .where(
                    jobs.c.id == job_id,
                    jobs.c.claimed_by == worker,
                    jobs.c.status == IN_PROGRESS,
                    jobs.c.deleted_at.is_(None),
                )
                .values(**values)
            )
            if result.rowcount == 1 and event is not None:
                conn.execute(webhook_outbox.insert().values(**event))
            return result.rowcount == 1

    def update_progress(
        self,
        job_id: str,
        worker: str,
        *,
        fraction: float,
        stage: str | None = None,
        step: int | None = None,
        total_steps: int | None = None,
        eta_seconds: float | None = None,
        resolved_model: str | None = None,
    ) -> bool:
        values: dict[str, Any] = dict(
            progress=min(max(float(fraction), 0.0), 1.0),
            stage=stage,
            step=step,
            total_steps=total_steps,
            eta_seconds=eta_seconds,
            heartbeat_at=time.time(),
        )
        if resolved_model:
            values["resolved_model"] = resolved_model
        return self._update_claimed(job_id, worker, **values)

    def heartbeat(self, job_ids: list[str], worker_prefix: str) -> None:
        if not job_ids:
            return
        with self._write() as conn:
            conn.execute(
                jobs.update()
                .where(
                    jobs.c.id.in_(job_ids),
                    jobs.c.status == IN_PROGRESS,
                    jobs.c.claimed_by.startswith(worker_prefix, autoescape=True),
                )
                .values(heartbeat_at=time.time())
            )

    def complete(
        self,
        job_id: str,
        worker: str,
        outputs: list[dict[str, Any]],
        *,
        retention_s: float | None = None,
        event: dict[str, Any] | None = None,
    ) -> bool:
        """Finish a job; with ``retention_s`` it expires that long after (the sweep removes it)."""
        now = time.time()
        return self._update_claimed(
            job_id,
            worker,
            event=event,
            status=COMPLETED,
            progress=1.0,
            stage="done",
            eta_seconds=0.0,
            outputs=json.dumps(outputs),
            completed_at=now,
            expires_at=now + retention_s if retention_s else None,
            error_code=None,
            error_message=None,
        )

    def fail(
        self,
        job_id: str,
        worker: str,
        code: str,
        message: str,
        *,
        retention_s: float | None = None,
        event: dict[str, Any] | None = None,
    ) -> bool:
        now = time.time()
        return self._update_claimed(
            job_id,
            worker,
            event=event,
            status=FAILED,
            error_code=code,
            error_message=message,
            completed_at=now,
            expires_at=now + retention_s if retention_s else None,
            eta_seconds=None,
        )

    # --- retention ---

    def sweepable(self, now: float, *, deleted_grace_s: float, limit: int = 200) -> list[JobRecord]:
        """Jobs whose files and rows may go: expired ones, and finished ones deleted longer ago than
        ``deleted_grace_s`` (kept that long so a client paging with a deleted id as its cursor
        is not broken). A running job is never among them."""
        finished = jobs.c.status.in_(tuple(TERMINAL))
        expired = sa.and_(jobs.c.expires_at.is_not(None), jobs.c.expires_at <= now)
        deleted = sa.and_(jobs.c.deleted_at.is_not(None), jobs.c.deleted_at <= now - deleted_grace_s)
        query = sa.select(jobs).where(finished, sa.or_(expired, deleted)).order_by(jobs.c.seq).limit(limit)
        with self._read() as conn:
            return [JobRecord.from_row(row) for row in conn.execute(query).all()]

    def purge(self, job_ids: list[str]) -> int:
        """Remove rows for good (their files are removed first, by the caller)."""
        if not job_ids:
            return 0
        with self._write() as conn:
            result = conn.execute(
                jobs.delete().where(jobs.c.id.in_(job_ids), jobs.c.status.in_(tuple(TERMINAL)))
            )
        return int(result.rowcount or 0)

    def release(self, job_id: str, worker: str) -> bool:
        """Give a claimed job back to the queue without counting the attempt (clean shutdown)."""
        return self._update_claimed(
            job_id,
            worker,
            status=QUEUED,
            claimed_by=None,
            attempts=jobs.c.attempts - 1,
            progress=0.0,
            stage=None,
            step=None,
            total_steps=None,
            eta_seconds=None,
        )

    def finish_cancelled(self, job_id: str) -> None:
        """A worker has stopped a deleted job; forget its claim."""
        with self._write() as conn:
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.deleted_at.is_not(None))
                .values(status=CANCELLED, claimed_by=None, completed_at=time.time())
            )

    def recover(
        self, *, stale_after: float = 120.0, on_requeue: Callable[[JobRecord], None] | None = None
    ) -> Recovery:
        """Take back jobs whose worker died: run them again, up to their ``max_attempts``, then fail
        them with an error that says so. ``on_requeue`` cleans the job's partial files first."""
        report = Recovery()
        now = time.time()
        with self._read() as conn:
            rows = conn.execute(sa.select(jobs).where(jobs.c.status == IN_PROGRESS)).all()
        for record in (JobRecord.from_row(row) for row in rows):
            if not claim_is_dead(record.claimed_by, record.heartbeat_at, now, stale_after):
                continue
            if on_requeue is not None:
                on_requeue(record)
            where = sa.and_(
                jobs.c.id == record.id, jobs.c.status == IN_PROGRESS, jobs.c.claimed_by == record.claimed_by
            )
            if record.deleted_at is not None:
                values: dict[str, Any] = dict(status=CANCELLED, claimed_by=None)
                target = report.cleaned
            elif record.attempts >= record.max_attempts:
                values = dict(
                    status=FAILED,
                    claimed_by=None,
                    completed_at=now,
                    error_code="worker_lost",
                    error_message=(
                        f"the server stopped while making this video {record.attempts} times; "
                        "it was not tried again. Try a shorter or smaller video, or check the server log"
                    ),
                )
                target = report.failed
            else:
                values = dict(
                    status=QUEUED,
                    claimed_by=None,
                    progress=0.0,
                    stage=None,
                    step=None,
                    total_steps=None,
                    eta_seconds=None,
                )
                target = report.requeued
            with self._write() as conn:
                if conn.execute(jobs.update().where(where).values(**values)).rowcount == 1:
                    target.append(record.id)
        return report

    # --- workers (the cluster's registry) ---

    def register_worker(self, record: WorkerRecord) -> None:
        """Add a worker, or replace the row of one that restarted under the same name."""
        with self._write() as conn:
            conn.execute(workers.delete().where(workers.c.name == record.name))
            conn.execute(workers.insert().values(**record.__dict__))

    def update_worker(self, name: str, **values: Any) -> None:
        """Record what a worker does now (its job, its loaded model); counts as a heartbeat."""
        values.setdefault("heartbeat_at", time.time())
        with self._write() as conn:
            conn.execute(workers.update().where(workers.c.name == name).values(**values))

    def remove_worker(self, name: str) -> None:
        with self._write() as conn:
            conn.execute(workers.delete().where(workers.c.name == name))

    def list_workers(self, *, stale_after: float | None = None) -> list[WorkerRecord]:
        """Every registered worker, or only those that beat within ``stale_after`` seconds."""
        query = sa.select(workers).order_by(workers.c.started_at, workers.c.name)
        if stale_after is not None:
            query = query.where(workers.c.heartbeat_at >= time.time() - stale_after)
        with self._read() as conn:
            return [WorkerRecord.from_row(row) for row in conn.execute(query).all()]

    def forget_stale_workers(self, stale_after: float) -> int:
        """Remove the rows of workers silent for ``stale_after`` (dead: they no longer count)."""
        with self._write() as conn:
            result = conn.execute(workers.delete().where(workers.c.heartbeat_at < time.time() - stale_after))
        return int(result.rowcount or 0)

    # --- characters ---

    def add_character(
        self, *, character_id: str, owner: str, name: str, images: list[str], source: str
    ) -> CharacterRecord:
        with self._write() as conn:
            conn.execute(
                characters.insert().values(
                    id=character_id,
                    owner=owner,
                    name=name,
                    images=json.dumps(images),
                    source=source,
                    created_at=time.time(),
                )
            )
            row = conn.execute(sa.select(characters).where(characters.c.id == character_id)).one()
        return CharacterRecord.from_row(row)

    def list_characters(self, owner: str) -> list[CharacterRecord]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(characters)
                .where(characters.c.owner == owner)
                .order_by(characters.c.created_at.desc())
            ).all()
        return [CharacterRecord.from_row(row) for row in rows]

    def delete_character(self, character_id: str, owner: str) -> CharacterRecord | None:
        """Remove the owner's character row; returns it (its files are the caller's to remove)."""
        with self._write() as conn:
            where = sa.and_(characters.c.id == character_id, characters.c.owner == owner)
            row = conn.execute(sa.select(characters).where(where)).first()
            if row is not None:
                conn.execute(characters.delete().where(where))
        return CharacterRecord.from_row(row) if row else None

    def get_character(self, id_or_name: str, owner: str) -> CharacterRecord | None:
        """The owner's character with this id, else the newest one with this name."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(characters).where(characters.c.id == id_or_name, characters.c.owner == owner)
            ).first()
            if row is None:
                row = conn.execute(
                    sa.select(characters)
                    .where(characters.c.name == id_or_name, characters.c.owner == owner)
                    .order_by(characters.c.created_at.desc())
                    .limit(1)
                ).first()
        return CharacterRecord.from_row(row) if row else None

    # --- API keys ---

    def add_key(self, *, key_id: str, name: str, prefix: str, key_hash: str) -> ApiKeyRecord:
        with self._write() as conn:
            conn.execute(
                api_keys.insert().values(
                    id=key_id, name=name, prefix=prefix, hash=key_hash, created_at=time.time()
                )
            )
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one()
        return ApiKeyRecord.from_row(row)

    def key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.hash == key_hash)).first()
        return ApiKeyRecord.from_row(row) if row else None

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()
        return ApiKeyRecord.from_row(row) if row else None

    def set_key_webhook(self, id_or_name: str, url: str | None, secret: str | None) -> list[ApiKeyRecord]:
        """Point the active key with this id (or every active key with this name) at ``url``,
        signed with ``secret``; None for both takes the key's webhook away. Returns those changed."""
        with self._write() as conn:
            where = sa.and_(
                sa.or_(api_keys.c.id == id_or_name, api_keys.c.name == id_or_name),
                api_keys.c.revoked_at.is_(None),
            )
            conn.execute(api_keys.update().where(where).values(webhook_url=url, webhook_secret=secret))
            rows = conn.execute(sa.select(api_keys).where(where)).all()
        return [ApiKeyRecord.from_row(row) for row in rows]

    def touch_key(self, key_id: str) -> None:
        with self._write() as conn:
            conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=time.time()))

    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self._read() as conn:
            return [ApiKeyRecord.from_row(row) for row in conn.execute(query).all()]

    def active_key_count(self) -> int:
        with self._read() as conn:
            query = sa.select(sa.func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
            return int(conn.execute(query).scalar_one())

    def revoke_key(self, id_or_name: str) -> list[ApiKeyRecord]:
        """Revoke the key with this id, or every active key with this name; returns those revoked."""
        with self._write() as conn:
            rows = conn.execute(
                sa.select(api_keys).where(
                    sa.or_(api_keys.c.id == id_or_name, api_keys.c.name == id_or_name),
                    api_keys.c.revoked_at.is_(None),
                )
            ).all()
            ids = [row.id for row in rows]
            if ids:
                conn.execute(api_keys.update().where(api_keys.c.id.in_(ids)).values(revoked_at=time.time()))
        return [ApiKeyRecord.from_row(row) for row in rows]
