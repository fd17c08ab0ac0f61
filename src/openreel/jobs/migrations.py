"""The database schema's history: named steps, each run once and recorded in
``_openreel_migrations`` (simonw/llm's shape), applied in order by ``JobStore.migrate``. Tables
only grow: a step adds a table or columns, never rewrites one. The current shape of every table,
which the queries use, is in ``openreel.jobs.store``.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# A job's attempts before m004 added the column (kept here: the step's default must not move).
DEFAULT_MAX_ATTEMPTS = 3

Migration = Callable[[Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


def _add_columns(conn: Connection, table: str, *columns: sa.Column) -> None:
    """ALTER TABLE ADD COLUMN, typed for this dialect (Core has no construct for it)."""
    preparer = conn.dialect.identifier_preparer
    for column in columns:
        ddl = f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column.name)} "
        ddl += column.type.compile(dialect=conn.dialect)
        if column.server_default is not None:
            ddl += f" DEFAULT {column.server_default.arg}"
        if not column.nullable:
            ddl += " NOT NULL"
        conn.exec_driver_sql(ddl)


@migration
def m001_jobs(conn: Connection) -> None:
    table = sa.Table(
        "jobs",
        sa.MetaData(),
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
    )
    table.create(conn)
    # Listing is always per owner in seq order; claiming scans queued jobs in seq order.
    sa.Index("ix_jobs_owner_seq", table.c.owner, table.c.seq).create(conn)
    sa.Index("ix_jobs_status_seq", table.c.status, table.c.seq).create(conn)


@migration
def m002_api_keys(conn: Connection) -> None:
    sa.Table(
        "api_keys",
        sa.MetaData(),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float),
        sa.Column("revoked_at", sa.Float),
    ).create(conn)


@migration
def m003_job_progress(conn: Connection) -> None:
    _add_columns(
        conn,
        "jobs",
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("stage", sa.String(64)),
        sa.Column("step", sa.Integer),
        sa.Column("total_steps", sa.Integer),
        sa.Column("eta_seconds", sa.Float),
        sa.Column("heartbeat_at", sa.Float),
    )


@migration
def m004_job_attempts(conn: Connection) -> None:
    _add_columns(
        conn,
        "jobs",
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default=str(DEFAULT_MAX_ATTEMPTS)),
        sa.Column("claimed_by", sa.String(200)),
    )


@migration
def m005_job_kind_parents(conn: Connection) -> None:
    _add_columns(
        conn,
        "jobs",
        sa.Column("kind", sa.String(16), nullable=False, server_default=sa.text("'video'")),
        sa.Column("parents", sa.Text),
    )


@migration
def m006_characters(conn: Connection) -> None:
    table = sa.Table(
        "characters",
        sa.MetaData(),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("images", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    table.create(conn)
    # A generate request names a character by id or by name, always within one owner.
    sa.Index("ix_characters_owner_name", table.c.owner, table.c.name).create(conn)


@migration
def m007_webhook_outbox(conn: Connection) -> None:
    table = sa.Table(
        "webhook_outbox",
        sa.MetaData(),
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
    )
    table.create(conn)
    # The dispatcher asks for undelivered events in due order.
    sa.Index("ix_webhook_outbox_due", table.c.delivered_at, table.c.next_attempt_at).create(conn)


@migration
def m008_files(conn: Connection) -> None:
    table = sa.Table(
        "files",
        sa.MetaData(),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float),
    )
    table.create(conn)
    sa.Index("ix_files_owner_created", table.c.owner, table.c.created_at).create(conn)


@migration
def m009_workers(conn: Connection) -> None:
    # The workers serving this queue (openreel.jobs.cluster): what each runs on, the model it has
    # loaded and the job it runs, so a worker can leave a job to a warm one and
    # `openreel cluster status` can show them.
    table = sa.Table(
        "workers",
        sa.MetaData(),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("device", sa.String(16), nullable=False),
        sa.Column("device_name", sa.String(200), nullable=False),
        sa.Column("memory_gib", sa.Float, nullable=False),
        sa.Column("loaded_model", sa.String(200)),
        sa.Column("job_id", sa.String(64)),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )
    table.create(conn)


@migration
def m010_key_webhooks(conn: Connection) -> None:
    # A key's own webhook (openreel keys webhook): its events go to its URL, signed with its
    # secret (kept as it is: signing needs it), and each outbox row names the key it signs for.
    _add_columns(conn, "api_keys", sa.Column("webhook_url", sa.Text), sa.Column("webhook_secret", sa.Text))
    _add_columns(conn, "webhook_outbox", sa.Column("key_id", sa.String(64)))


@migration
def m011_worker_devices(conn: Connection) -> None:
    # How many accelerators a worker holds (a Ray worker of N GPUs runs context-parallel jobs over
    # them): `openreel cluster status` shows it. Workers registered before count as one.
    _add_columns(conn, "workers", sa.Column("devices", sa.Integer, server_default="1"))
