"""Model downloads the studio starts: one child process per model, and a small JSON record per
model in the openreel folder (``downloads/ID.json``), so a restarted server finds what was under way
and starts it again (huggingface_hub resumes the files it had begun).

The child runs ``weights.pull`` and writes the outcome into the record itself; cancelling kills the
child. Progress is read from disk, never reported by the child: the bytes already in the model's
Hugging Face cache folder (``.incomplete`` files included) against the repository's file sizes,
asked of the hub once when the download starts (unknown offline, or for a tiny model's build).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from openreel import paths
from openreel.models.catalog import ModelCard, get_card

ACTIVE = "downloading"


@dataclass
class DownloadRecord:
    model: str
    status: str  # downloading | completed | failed | cancelled
    started_at: int
    finished_at: int | None = None
    total_bytes: int | None = None
    error: str | None = None
    error_code: str | None = None
    pid: int | None = None


def _folder() -> Path:
    folder = paths.home() / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _record_path(model_id: str) -> Path:
    return _folder() / f"{model_id}.json"


def read(model_id: str) -> DownloadRecord | None:
    try:
        return DownloadRecord(**json.loads(_record_path(model_id).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write(record: DownloadRecord) -> None:
    # Written aside and renamed, so the server never reads half a record the child is writing.
    path = _record_path(record.model)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps(asdict(record)))
    os.replace(staging, path)


def bytes_on_disk(card: ModelCard) -> int:
    """What has arrived so far: every blob in the repository's cache folder, finished or not."""
    from openreel.models.weights import _hub_repo_folder, disk_bytes

    if not card.hub_repo:
        return disk_bytes(card)
    blobs = _hub_repo_folder(card) / "blobs"
    if not blobs.is_dir():
        return 0
    return sum(path.stat().st_size for path in blobs.iterdir() if path.is_file())


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class Downloads:
    """Starts, cancels and resumes the children; one per model at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen] = {}

    def start(self, card: ModelCard) -> DownloadRecord:
        with self._lock:
            record = read(card.id)
            if record and record.status == ACTIVE and _alive(record.pid):
                return record  # already under way: a second click changes nothing
            record = DownloadRecord(model=card.id, status=ACTIVE, started_at=int(time.time()))
            write(record)
            self._spawn(record)
            return record

    def _spawn(self, record: DownloadRecord) -> None:
        log = (_folder() / f"{record.model}.log").open("ab")
        child = subprocess.Popen(
            _child_command(record.model),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self._children[record.model] = child
        record.pid = child.pid
        write(record)
        # Reap the child when it ends, so no zombie is left behind.
        threading.Thread(target=child.wait, daemon=True, name=f"download-{record.model}").start()

    def cancel(self, model_id: str) -> DownloadRecord | None:
        with self._lock:
            record = read(model_id)
            if record is None or record.status != ACTIVE:
                return record
            child = self._children.pop(model_id, None)
            if child is not None:
                child.kill()
            elif _alive(record.pid):  # a child an earlier server started
                os.kill(record.pid, signal.SIGKILL)
            record.status, record.finished_at, record.pid = "cancelled", int(time.time()), None
            record.error = "Cancelled. Start it again to carry on from what has arrived."
            write(record)
            return record

    def resume(self) -> list[str]:
        """Start again every download that was under way when the last server stopped."""
        resumed = []
        with self._lock:
            for path in sorted(_folder().glob("*.json")):
                record = read(path.stem)
                if record is None or record.status != ACTIVE or _alive(record.pid):
                    continue
                self._spawn(record)
                resumed.append(record.model)
        return resumed


def _child_command(model_id: str) -> list[str]:
    return [sys.executable, "-m", "openreel.server.downloads", model_id]


_downloads: Downloads | None = None


def get_downloads() -> Downloads:
    global _downloads
    if _downloads is None:
        _downloads = Downloads()
    return _downloads


# --- the child ---------------------------------------------------------------------------------


def _total_bytes(card: ModelCard) -> int | None:
    """The repository's size for this card (its allow_patterns), from the hub; None offline."""
    from fnmatch import fnmatch

    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(card.hub_repo, revision=card.revision, files_metadata=True)
    except Exception:  # noqa: BLE001 - offline or gated: the download itself says why
        return None
    patterns = card.options.get("allow_patterns")
    return sum(
        sibling.size or 0
        for sibling in info.siblings or []
        if patterns is None or any(fnmatch(sibling.rfilename, pattern) for pattern in patterns)
    )


def run_child(model_id: str) -> int:
    from openreel.errors import OpenreelError
    from openreel.models.weights import pull

    card = get_card(model_id)
    record = read(model_id) or DownloadRecord(model=model_id, status=ACTIVE, started_at=int(time.time()))
    if card.hub_repo:
        record.total_bytes = _total_bytes(card)
        write(record)
    try:
        pull(card)
    except OpenreelError as exc:
        record.status, record.error, record.error_code = "failed", exc.message, exc.code
    except Exception as exc:  # noqa: BLE001 - the page shows it; the log keeps the traceback
        record.status, record.error, record.error_code = "failed", f"{type(exc).__name__}: {exc}", None
    else:
        record.status, record.error, record.error_code = "completed", None, None
    record.finished_at, record.pid = int(time.time()), None
    current = read(model_id)
    if current is not None and current.status == "cancelled":
        return 1  # cancelled while finishing: the person's word stands
    write(record)
    return 0 if record.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(run_child(sys.argv[1]))
