"""LocalExecutor: worker threads inside the server process that claim jobs and run the engine.

Each worker owns one ``Engine`` for its whole life, so the pipeline it loaded last stays warm and
the next job for the same model starts denoising at once. The engine (and with it torch and
diffusers) is imported by the first worker that gets a job, never at server start.

Cancelling is cooperative: the engine asks ``should_cancel()`` between steps; it answers yes when
the job was deleted (here, or by another server sharing the database), when recovery gave the
claim away, or when the server is shutting down (then the job goes back to the queue unharmed).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from openreel.errors import Cancelled, OpenreelError
from openreel.jobs.files import delete_file, expired_files
from openreel.jobs.outbox import EVENT_TYPES, new_event
from openreel.jobs.resume import keep_for_rerun
from openreel.jobs.store import LOCAL_OWNER, JobRecord, JobStore, this_host, worker_name
from openreel.spec import VideoSpec

log = logging.getLogger("openreel.jobs")

VIDEO_NAME = "video.mp4"
# What a job makes: "video" runs the engine on a VideoSpec (every mode), "still" one image,
# "recut" trims a finished video without any model.
KINDS = ("video", "still", "recut")


@dataclass(frozen=True)
class MadeFiles:
    """The files of an operation the engine does not make (a recut), in the engine's shape."""

    video: Path
    thumbnail: Path
    spritesheet: Path
    recipe: Path
    seed: int = 0
    variation: int = 1


class EngineLike(Protocol):
    """What the executor needs from ``openreel.engine.Engine`` (tests pass a fake)."""

    def resolve(self, spec: VideoSpec) -> VideoSpec: ...

    def plan(self, spec: VideoSpec) -> Any: ...

    def generate(
        self,
        spec: VideoSpec,
        *,
        output: Path,
        on_progress: Callable[[Any], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
        resume: bool = False,
    ) -> Any: ...

    def still(
        self,
        spec: VideoSpec,
        output: Path,
        *,
        on_progress: Callable[[Any], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> Any: ...


def default_engine_factory() -> EngineLike:
    from openreel.engine import Engine  # its runner imports torch, when the first job runs

    return Engine()


def default_check_engine_factory() -> EngineLike:
    """An engine for checking requests only. Whether a model can make a request (length, mode,
    size) does not depend on the machine, and detecting the real hardware imports torch, which
    the server's request path must never do: so it plans for a notional unlimited CPU."""
    from openreel.engine import Engine
    from openreel.hardware import Hardware

    # As many devices as a request may ask (gpus): the worker that runs it checks its own count.
    return Engine(hardware=Hardware("cpu", "float32", "request check", float("inf"), 1, devices=64))


def job_seed(job_id: str) -> int:
    """A job's own seed: random-looking, the same on every run of the job."""
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big") >> 1


def remove_job_files(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def remove_upload_path(path: str | None) -> None:
    """A job's uploads: one file (an input_reference) or its folder (a storyboard's cards)."""
    if not path:
        return
    if Path(path).is_dir():
        remove_job_files(Path(path))
    else:
        Path(path).unlink(missing_ok=True)


class LocalExecutor:
    def __init__(
        self,
        store: JobStore,
        *,
        outputs_dir: Path,
        workers: int = 1,
        engine_factory: Callable[[], EngineLike] = default_engine_factory,
        check_engine_factory: Callable[[], EngineLike] | None = None,
        idle_poll_s: float = 0.5,
        heartbeat_s: float = 10.0,
        stale_after_s: float = 120.0,
        progress_every_s: float = 0.5,
        cancel_check_every_s: float = 1.0,
        retention_s: float | None = None,
        sweep_every_s: float = 60.0,
        deleted_grace_s: float = 3600.0,
        webhook_url: str | None = None,
    ):
        self.store = store
        self.outputs_dir = Path(outputs_dir)
        self.workers = workers
        self.engine_factory = engine_factory
        if check_engine_factory is None:
            # A fake engine (tests) checks with itself; the real one with its torch-free twin.
            is_default = engine_factory is default_engine_factory
            check_engine_factory = default_check_engine_factory if is_default else engine_factory
        self.check_engine_factory = check_engine_factory
        self.idle_poll_s = idle_poll_s
        self.heartbeat_s = heartbeat_s
        self.stale_after_s = stale_after_s
        self.progress_every_s = progress_every_s
        self.cancel_check_every_s = cancel_check_every_s
        # None keeps every finished job; otherwise it expires this long after it finished.
        self.retention_s = retention_s
        self.sweep_every_s = sweep_every_s
        self.deleted_grace_s = deleted_grace_s
        self.webhook_url = webhook_url
        self._stopping = threading.Event()
        # One permit per job submitted here: an idle worker wakes at once instead of at its next poll.
        self._wake = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}  # job id -> worker name
        self._cancelled: set[str] = set()
        self._check_engine: EngineLike | None = None
        self._check_lock = threading.Lock()
        self.engines_created = 0

    # --- lifecycle ---

    def start(self) -> None:
        report = self.store.recover(stale_after=self.stale_after_s, on_requeue=self._clean_before_rerun)
        if report.requeued or report.failed:
            log.warning(
                "recovered jobs of a stopped server: requeued %s, failed %s", report.requeued, report.failed
            )
        self._stopping.clear()
        for index in range(self.workers):
            thread = threading.Thread(
                target=self._work, args=(index,), name=f"openreel-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        thread = threading.Thread(target=self._keep_alive, name="openreel-heartbeat", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming, hand running jobs back to the queue, and wait for the workers."""
        self._stopping.set()
        for _ in range(self.workers):
            self._wake.release()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def notify(self) -> None:
        self._wake.release()

    def cancel(self, job_id: str) -> bool:
        """Ask a job running here to stop; True if it was running here."""
        with self._lock:
            if job_id in self._running:
                self._cancelled.add(job_id)
                return True
        return False

    def is_running_here(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._running

    def running(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def job_dir(self, job_id: str) -> Path:
        return self.outputs_dir / job_id

    # --- validation at the edge ---

    def check(self, spec: VideoSpec) -> VideoSpec:
        """Resolve and plan ``spec`` as a worker would, so a request the model cannot make is a
        400 now rather than a failed job later. Uses its own engine: it never loads pipelines."""
        with self._check_lock:
            if self._check_engine is None:
                self._check_engine = self.check_engine_factory()
            resolved = self._check_engine.resolve(spec)
            self._check_engine.plan(resolved)
        return resolved

    # --- workers ---

    def _keep_alive(self) -> None:
        prefix = f"{this_host()}:"
        last_recover = last_sweep = time.monotonic()
        self._sweep_safely()
        while not self._stopping.wait(min(self.heartbeat_s, self.sweep_every_s)):
            try:
                self.store.heartbeat(self.running(), prefix)
                if time.monotonic() - last_recover > self.stale_after_s / 2:
                    last_recover = time.monotonic()
                    self.store.recover(stale_after=self.stale_after_s, on_requeue=self._clean_before_rerun)
            except Exception:  # the database may be restarting; the next beat tries again
                log.exception("heartbeat failed")
            if time.monotonic() - last_sweep >= self.sweep_every_s:
                last_sweep = time.monotonic()
                self._sweep_safely()

    def _sweep_safely(self) -> None:
        try:
            self.sweep()
        except Exception:  # a sweep that fails now runs again at the next interval
            log.exception("expiry sweep failed")

    def sweep(self, now: float | None = None) -> list[str]:
        """Remove expired jobs and long-deleted ones: files first (outputs, uploads), then rows, so
        a crash in between leaves a row whose files are gone (swept again), never orphan files."""
        records = self.store.sweepable(
            time.time() if now is None else now, deleted_grace_s=self.deleted_grace_s
        )
        for record in records:
            remove_job_files(self.job_dir(record.id))
            remove_upload_path(record.input_reference)
        self.store.purge([record.id for record in records])
        for file in expired_files(self.store, time.time() if now is None else now):
            Path(file.path).unlink(missing_ok=True)
            delete_file(self.store, file.id)
        if records:
            log.info("expiry sweep removed %s jobs", len(records))
        return [record.id for record in records]

    def _worker_name(self, index: int) -> str:
        return worker_name(f"w{index}")

    def _claim(self, name: str) -> JobRecord | None:
        """The next job for worker ``name``: the oldest queued (a cluster worker chooses)."""
        return self.store.claim(name)

    def _work(self, index: int) -> None:
        name = self._worker_name(index)
        engine: EngineLike | None = None
        while not self._stopping.is_set():
            try:
                job = self._claim(name)
            except Exception:
                log.exception("could not claim a job; trying again")
                self._stopping.wait(self.idle_poll_s * 4)
                continue
            if job is None:
                self._wake.acquire(timeout=self.idle_poll_s)
                continue
            if engine is None:
                try:
                    engine = self.engine_factory()
                    self.engines_created += 1
                except Exception as exc:  # an engine that cannot even start fails the job, not the worker
                    log.exception("could not start the engine")
                    self._record_failure(
                        job, name, "engine_unavailable", f"the engine could not start ({type(exc).__name__})"
                    )
                    continue
            try:
                self._run(job, engine, name)
            except Exception:
                # Whatever a job does (a full disk, a database that refuses writes), the worker lives on:
                # one broken job must not stop every later one.
                log.exception("worker %s: job %s broke the worker's bookkeeping", name, job.id)
                self._record_failure(job, name, "internal_error", "the server could not record this job")

    def alive_workers(self) -> int:
        """Worker threads really running now (what /healthz reports)."""
        return sum(1 for t in self._threads if t.name.startswith("openreel-worker-") and t.is_alive())

    def _event(self, job: JobRecord, outcome: str) -> dict[str, Any] | None:
        """The webhook outbox row for a video that ends (stills have no OpenAI event): to the
        job's key's own webhook where it has one, else the server's."""
        if job.kind == "still":
            return None
        if job.owner != LOCAL_OWNER:
            key = self.store.get_key(job.owner)
            if key is not None and key.webhook_url and key.webhook_secret:
                return new_event(key.webhook_url, EVENT_TYPES[outcome], job.id, key_id=key.id)
        if self.webhook_url is None:
            return None
        return new_event(self.webhook_url, EVENT_TYPES[outcome], job.id)

    def _record_failure(self, job: JobRecord, name: str, code: str, message: str) -> None:
        """Fail a job, trying a few times: the store may be briefly unwritable. If it stays so, the job
        keeps its claim without heartbeats, and recovery requeues or fails it once the claim is stale."""
        for attempt in range(3):
            try:
                event = self._event(job, "failed")
                self.store.fail(job.id, name, code, message, retention_s=self.retention_s, event=event)
                return
            except Exception:
                log.exception("could not record the failure of job %s (attempt %s)", job.id, attempt + 1)
                if self._stopping.wait(self.idle_poll_s * (attempt + 1)):
                    return

    def _clean_before_rerun(self, job: JobRecord) -> bool:
        """Whatever a dead worker left half-written goes, so it can never be served; its saved
        latents and finished variations stay for the rerun to resume from (True when any did)."""
        if job.kind != "video":
            remove_job_files(self.job_dir(job.id))
            return False
        return keep_for_rerun(self.job_dir(job.id))

    def _run(self, job: JobRecord, engine: EngineLike, name: str) -> None:
        directory = self.job_dir(job.id)
        try:
            resumable = self._clean_before_rerun(job)
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # A read-only or full output folder: this job fails with a code that says so.
            log.error("job %s: cannot write its output folder: %s", job.id, exc)
            reason = exc.strerror or type(exc).__name__
            message = f"the server cannot store outputs ({reason})"
            self._record_failure(job, name, "storage_unavailable", message)
            return
        with self._lock:
            self._running[job.id] = name
        state = {"lost": False, "last_check": time.monotonic(), "last_write": 0.0, "stage": None}

        def should_cancel() -> bool:
            if self._stopping.is_set() or state["lost"]:
                return True
            with self._lock:
                if job.id in self._cancelled:
                    return True
            now = time.monotonic()
            if now - state["last_check"] >= self.cancel_check_every_s:
                # Deleted through another server, or taken back by recovery: stop wasting the GPU.
                state["last_check"] = now
                current = self.store.get(job.id, include_deleted=True)
                if current is None or current.deleted_at is not None or current.claimed_by != name:
                    state["lost"] = True
            return state["lost"]

        def on_progress(progress: Any) -> None:
            now = time.monotonic()
            stage = getattr(progress, "stage", None)
            if stage == state["stage"] and now - state["last_write"] < self.progress_every_s:
                return
            state["stage"], state["last_write"] = stage, now
            still_ours = self.store.update_progress(
                job.id,
                name,
                fraction=getattr(progress, "fraction", 0.0),
                stage=stage,
                step=getattr(progress, "step", None),
                total_steps=getattr(progress, "total_steps", None),
                eta_seconds=getattr(progress, "eta_seconds", None),
            )
            if not still_ours:
                state["lost"] = True

        try:
            result = self._make(job, engine, name, directory, on_progress, should_cancel, resumable)
        except Cancelled:
            self._after_cancel(job, name, directory)
        except OpenreelError as exc:
            log.info("job %s failed: %s (%s)", job.id, exc.message, exc.code)
            self._finish_failed(job, name, directory, exc.code, exc.message)
        except Exception as exc:
            log.exception("job %s failed unexpectedly", job.id)
            message = (
                f"generation failed unexpectedly ({type(exc).__name__}: {exc}); the server log has details"
            )
            self._finish_failed(job, name, directory, "generation_failed", message)
        else:
            credits = getattr(result, "credits", None) or {}
            outputs = [self._describe(output, directory) | {"credits": credits} for output in result.outputs]
            event = self._event(job, "completed")
            if not self.store.complete(job.id, name, outputs, retention_s=self.retention_s, event=event):
                # Deleted (or given away) while the last frames were encoded.
                self._after_cancel(job, name, directory)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
                self._cancelled.discard(job.id)

    def _make(
        self,
        job: JobRecord,
        engine: EngineLike,
        name: str,
        directory: Path,
        on_progress: Callable[[Any], None],
        should_cancel: Callable[[], bool],
        resumable: bool = False,
    ) -> Any:
        if job.kind == "recut":
            self.store.update_progress(job.id, name, fraction=0.0, stage="cutting")
            return SimpleResult([recut_job(job.spec, directory)])
        spec = engine.resolve(VideoSpec.from_dict(job.spec))
        if spec.seed is None:
            # A seed drawn from the job's id, not at random: a rerun after a dead worker makes the
            # very same video, and so can finish from the latents the first run saved.
            spec = replace(spec, seed=job_seed(job.id))
        self.store.update_progress(
            job.id, name, fraction=0.0, stage="loading model", resolved_model=spec.model
        )
        if job.kind == "still":
            suffix = "." + str(spec.extra.get("format", "png"))
            return engine.still(
                spec,
                output=directory / f"image{suffix}",
                on_progress=on_progress,
                should_cancel=should_cancel,
            )
        # The job id goes into the invisible watermark: a found mark names this very video. A rerun
        # after a dead worker decodes its saved latents and keeps its finished variations.
        resume = {"resume": True} if resumable else {}
        return engine.generate(
            spec,
            output=directory / VIDEO_NAME,
            on_progress=on_progress,
            should_cancel=should_cancel,
            video_id=job.id,
            **resume,
        )

    def _finish_failed(self, job: JobRecord, name: str, directory: Path, code: str, message: str) -> None:
        try:
            event = self._event(job, "failed")
            recorded = self.store.fail(job.id, name, code, message, retention_s=self.retention_s, event=event)
        except Exception:
            log.exception("could not record the failure of job %s", job.id)
            remove_job_files(directory)
            return  # _work's guard is not needed: recovery fails or requeues the stale claim
        if not recorded:
            self._after_cancel(job, name, directory)
            return
        remove_job_files(directory)  # a failed job serves nothing; keep no partial files

    def _after_cancel(self, job: JobRecord, name: str, directory: Path) -> None:
        current = self.store.get(job.id, include_deleted=True)
        if current is not None and current.deleted_at is None and current.claimed_by == name:
            # Not deleted: the server is stopping. Back to the queue, and this attempt does not count.
            self.store.release(job.id, name)
            remove_job_files(directory)
            return
        if current is not None and current.deleted_at is not None:
            self.store.finish_cancelled(job.id)
            remove_job_files(directory)
        # Otherwise recovery gave the job to another worker, which owns the folder now.

    @staticmethod
    def _describe(output: Any, directory: Path) -> dict[str, Any]:
        def relative(path: Any) -> str | None:
            if path is None:
                return None
            path = Path(path)
            try:
                return str(path.resolve().relative_to(directory.resolve()))
            except ValueError:
                return str(path)

        return {
            "variation": int(getattr(output, "variation", 1)),
            "seed": int(getattr(output, "seed", 0)),
            "video": relative(getattr(output, "video", None)),
            "thumbnail": relative(getattr(output, "thumbnail", None)),
            "spritesheet": relative(getattr(output, "spritesheet", None)),
            "recipe": relative(getattr(output, "recipe", None)),
        }


@dataclass
class SimpleResult:
    outputs: list[MadeFiles]


def recut_job(spec: dict[str, Any], directory: Path) -> MadeFiles:
    """A recut job: the source's frames [start, end) losslessly (openreel.render.edit), then a
    thumbnail and spritesheet like every video, so it downloads the same way."""
    from openreel.render.edit import recut
    from openreel.render.encode import read_frames, write_spritesheet, write_thumbnail

    video = recut(spec["source"], directory / VIDEO_NAME, start=spec["start"], end=spec["end"])
    frames = list(read_frames(video))
    thumbnail, sprites = directory / "video.jpg", directory / "video.sprites.jpg"
    write_thumbnail(frames[len(frames) // 2], thumbnail)
    write_spritesheet(frames, sprites, columns=5, rows=5)
    return MadeFiles(video, thumbnail, sprites, video.with_suffix(".json"))
