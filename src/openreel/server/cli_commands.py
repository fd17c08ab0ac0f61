"""``openreel serve`` and ``openreel keys create|list|revoke``, mounted by ``openreel.cli``."""

from __future__ import annotations

import datetime as dt
import logging

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openreel.errors import OpenreelError

console = Console()
err_console = Console(stderr=True)


def _no_such_key(key: str) -> None:
    err_console.print(
        f"[red]error:[/red] no active key with id or name {escape(repr(key))} (`openreel keys list`)"
    )
    raise typer.Exit(1)


_DB_HELP = "Database URL (default: SQLite in the openreel folder); postgresql://user@host/db for a team."


def serve_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on; anything but loopback needs API keys."),
    port: int = typer.Option(8000, help="Port to listen on."),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="OPENREEL_DATABASE_URL", help=_DB_HELP
    ),
    workers: int | None = typer.Option(None, help="Local worker threads (default 1; 0: queue only)."),
    sora_2_model: str | None = typer.Option(None, "--sora-2-model", help="The model `sora-2` means here."),
    sora_2_pro_model: str | None = typer.Option(
        None, "--sora-2-pro-model", help="The model `sora-2-pro` means here."
    ),
    image_model: str | None = typer.Option(
        None, "--image-model", help="The model gpt-image-1, dall-e-3 and the other image names mean here."
    ),
    fetch_image_urls: bool = typer.Option(
        False, "--fetch-image-urls", help="Fetch input_reference https URLs (public addresses only)."
    ),
    insecure_no_auth: bool = typer.Option(
        False,
        "--insecure-no-auth",
        help="Serve a non-loopback address without API keys (trusted networks only).",
    ),
    allowed_host: list[str] | None = typer.Option(
        None,
        "--allowed-host",
        help="A name besides localhost this loopback server answers to (repeat for more); "
        "others are refused against DNS rebinding.",
    ),
    retention: str | None = typer.Option(
        None,
        "--retention",
        help="Keep finished videos and stills this long (7d, 12h, 3600), then remove their files "
        "and rows; default: keep everything.",
    ),
    webhook_url: str | None = typer.Option(
        None, "--webhook-url", help="POST video.completed and video.failed events here (signed)."
    ),
    webhook_secret: str | None = typer.Option(
        None,
        "--webhook-secret",
        envvar="OPENREEL_WEBHOOK_SECRET",
        help="The whsec_... secret events are signed with "
        "(the openai SDK's webhooks.verify_signature checks them).",
    ),
    lora_dir: str | None = typer.Option(
        None,
        "--lora-dir",
        help="The LoRAs requests may name: .safetensors files (or folders of one) in this folder "
        "(default: loras in the openreel folder).",
    ),
    label: bool | None = typer.Option(
        None,
        "--label/--no-label",
        help='Lay a visible "AI-generated" label on every output unless a request says otherwise '
        "(default: the owner's, OPENREEL_LABEL or label.toml in the openreel folder).",
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="Who runs jobs: local (worker threads here) or ray (actors on a Ray cluster; "
        "pip install 'openreel[ray]').",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        envvar="OPENREEL_RAY_ADDRESS",
        help="The Ray cluster for --executor ray: auto (started here with `ray start`), HOST:PORT of its "
        "head, or ray://HOST:PORT.",
    ),
    ray_workers: int | None = typer.Option(
        None, "--ray-workers", help="Ray workers to start (default: one per GPU, else one per node)."
    ),
    ray_gpus_per_worker: int = typer.Option(
        1,
        "--ray-gpus-per-worker",
        help="GPUs of one machine each Ray worker holds; a job spreads over them (Wan, context parallel).",
    ),
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Serve the OpenAI Videos API (point the openai SDK's base_url at http://HOST:PORT/v1)."""
    if executor not in ("local", "ray"):
        err_console.print(f"[red]error:[/red] --executor is local or ray (got {escape(repr(executor))})")
        raise typer.Exit(2)
    import uvicorn

    from openreel.jobs.store import JobStore
    from openreel.server.app import build_app
    from openreel.server.auth import UnsafeBindError, check_bind
    from openreel.server.settings import Settings

    settings = Settings.from_env(
        host=host,
        port=port,
        database_url=database_url,
        workers=workers,
        sora_2_model=sora_2_model,
        sora_2_pro_model=sora_2_pro_model,
        image_model=image_model,
        fetch_image_urls=fetch_image_urls or None,
        lora_dir=lora_dir,
        label=label,
        insecure_no_auth=insecure_no_auth or None,
        allowed_hosts=allowed_host or None,
        retention=retention,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        log_level=log_level,
        executor=executor,
        ray_address=ray_address,
        ray_workers=ray_workers,
        ray_gpus_per_worker=ray_gpus_per_worker,
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = JobStore(settings.database_url)
    try:
        check_bind(settings.host, store.active_key_count() > 0, settings.insecure_no_auth)
    except UnsafeBindError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        store.close()
        raise typer.Exit(2) from None
    if settings.executor == "ray" and not _join_ray(settings.ray_address):
        store.close()
        raise typer.Exit(2)
    mode = "API keys required" if store.active_key_count() else "single-user (no API keys)"
    workers = f"{settings.workers} worker(s)"
    if settings.executor == "ray":
        workers = f"workers on the Ray cluster at {settings.ray_address}"
    err_console.print(
        f"openreel {store.dialect} queue, {workers}, {mode}: "
        f"base_url=http://{settings.host}:{settings.port}/v1"
    )
    try:
        uvicorn.run(
            build_app(settings, store=store),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_graceful_shutdown=30,
        )
    finally:
        store.close()


def _join_ray(address: str) -> bool:
    """Join the cluster before binding, so a wrong address is one sentence, not a traceback."""
    try:
        from openreel.jobs.ray_executor import connect

        connect(address)
    except ImportError:
        err_console.print("[red]error:[/red] --executor ray needs Ray: pip install 'openreel[ray]'")
        return False
    except OpenreelError as exc:
        err_console.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
        return False
    return True


keys_app = typer.Typer(
    help="API keys: with any key in place, every request needs one.", no_args_is_help=False
)


def _store(database_url: str | None):
    from openreel.jobs.store import JobStore

    return JobStore(database_url)


def _when(timestamp: float | None) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="Who or what the key is for."),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="OPENREEL_DATABASE_URL", help=_DB_HELP
    ),
) -> None:
    """Make an API key and print it once (only its hash is stored)."""
    from openreel.server.auth import create_api_key

    store = _store(database_url)
    try:
        record, secret = create_api_key(store, name)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    finally:
        store.close()
    err_console.print(f"created {record.id} for {record.name!r}; this is the only time the key is shown:")
    print(secret)


@keys_app.command("list")
def keys_list(
    all_keys: bool = typer.Option(False, "--all", help="Include revoked keys."),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="OPENREEL_DATABASE_URL", help=_DB_HELP
    ),
) -> None:
    """List API keys (never the secrets)."""
    store = _store(database_url)
    try:
        keys = store.list_keys(include_revoked=all_keys)
    finally:
        store.close()
    if not keys:
        err_console.print(
            "no API keys: the server is single-user on 127.0.0.1 (`openreel keys create --name NAME`)"
        )
        return
    table = Table("id", "name", "starts with", "created", "last used", "revoked")
    table.columns[0].no_wrap = True  # an id is typed back: never cut
    table.add_column("webhook", overflow="fold")  # a URL folds onto more lines rather than being cut
    for key in keys:
        table.add_row(
            key.id,
            key.name,
            key.prefix + "…",
            _when(key.created_at),
            _when(key.last_used_at),
            _when(key.revoked_at),
            key.webhook_url or "-",
        )
    console.print(table)


@keys_app.command("webhook")
def keys_webhook(
    key: str = typer.Argument(..., help="A key id (key_...) or a name (every active key of that name)."),
    url: str | None = typer.Option(None, "--url", help="Where this key's video events go (http:// or https://)."),
    secret: str | None = typer.Option(
        None,
        "--secret",
        envvar="OPENREEL_KEY_WEBHOOK_SECRET",
        help="The whsec_... secret its events are signed with (webhooks.verify_signature checks them).",
    ),
    remove: bool = typer.Option(
        False, "--remove", help="Take the key's webhook away (the server's applies again)."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="OPENREEL_DATABASE_URL", help=_DB_HELP
    ),
) -> None:
    """Give a key its own webhook: video.completed and video.failed of its videos go there, signed
    with its own secret, instead of to the server's --webhook-url."""
    if remove == bool(url or secret):
        err_console.print("[red]error:[/red] give --url and --secret, or --remove")
        raise typer.Exit(2)
    if not remove and not (url and secret):
        err_console.print("[red]error:[/red] a webhook needs both --url and --secret (whsec_<base64>)")
        raise typer.Exit(2)
    if url and not url.startswith(("https://", "http://")):
        err_console.print(
            f"[red]error:[/red] the webhook URL must be http:// or https:// (got {escape(repr(url))})"
        )
        raise typer.Exit(2)
    store = _store(database_url)
    try:
        changed = store.set_key_webhook(key, url, secret)
    finally:
        store.close()
    if not changed:
        _no_such_key(key)
    for record in changed:
        where = f"now go to {url}" if url else "go to the server's webhook again"
        err_console.print(f"{record.id} ({record.name}): its video events {where}", highlight=False)


@keys_app.command("revoke")
def keys_revoke(
    key: str = typer.Argument(..., help="A key id (key_...) or a name (revokes every key of that name)."),
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="OPENREEL_DATABASE_URL", help=_DB_HELP
    ),
) -> None:
    """Revoke a key: requests with it get 401 at once."""
    store = _store(database_url)
    try:
        revoked = store.revoke_key(key)
        left = store.active_key_count()
    finally:
        store.close()
    if not revoked:
        _no_such_key(key)
    for record in revoked:
        err_console.print(f"revoked {record.id} ({record.name})")
    if left == 0:
        err_console.print("no active keys remain: the server is single-user on loopback again")


cluster_app = typer.Typer(help="The workers serving a shared queue (openreel serve --executor ray).")


def _ago(timestamp: float) -> str:
    import time

    seconds = max(0.0, time.time() - timestamp)
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


@cluster_app.command("status")
def cluster_status(
    database_url: str | None = typer.Option(
        None, "--database-url", envvar="OPENREEL_DATABASE_URL", help=_DB_HELP
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    stale_after: float = typer.Option(
        120.0, "--stale-after", help="Seconds without a heartbeat after which a worker counts as gone."
    ),
) -> None:
    """Workers, their devices, loaded models and running jobs, as the queue's database has them."""
    import json
    import time

    store = _store(database_url)
    try:
        workers = store.list_workers()
        jobs = {worker.job_id: store.get(worker.job_id) for worker in workers if worker.job_id}
        queued = store.counts().get("queued", 0)
    finally:
        store.close()
    now = time.time()
    rows = []
    for worker in workers:
        job = jobs.get(worker.job_id) if worker.job_id else None
        rows.append(
            {
                "name": worker.name,
                "host": worker.host,
                "device": worker.device,
                "device_name": worker.device_name,
                "devices": worker.devices,
                "memory_gib": round(worker.memory_gib, 1),
                "loaded_model": worker.loaded_model,
                "alive": now - worker.heartbeat_at <= stale_after,
                "last_seen": worker.heartbeat_at,
                "job": None
                if job is None
                else {
                    "id": job.id,
                    "model": job.resolved_model or job.model,
                    "progress": job.progress,
                    "stage": job.stage,
                },
            }
        )
    if as_json:
        print(json.dumps({"workers": rows, "queued": queued}, indent=2))
        return
    if not rows:
        err_console.print(
            "no workers have registered with this queue (start one: openreel serve --executor ray)"
        )
        return
    table = Table("worker", "device", "memory", "loaded model", "running", "last seen")
    for row in rows:
        job = row["job"]
        running = (
            "-"
            if job is None
            else f"{job['id']} ({job['model']}, {job['progress']:.0%} {job['stage'] or ''})"
        )
        seen = _ago(row["last_seen"]) + ("" if row["alive"] else " [red](gone)[/red]")
        device = row["device"] + (f" x{row['devices']}" if row["devices"] > 1 else "")
        table.add_row(
            row["name"],
            device if row["device_name"] == row["device"] else f"{device}: {row['device_name']}",
            f"{row['memory_gib']:.1f} GiB",
            row["loaded_model"] or "-",
            running,
            seen,
        )
    console.print(table)
    alive = sum(1 for row in rows if row["alive"])
    err_console.print(f"{alive} of {len(rows)} worker(s) alive, {queued} job(s) queued")
