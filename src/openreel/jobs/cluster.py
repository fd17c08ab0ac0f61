"""ClusterWorker: one worker of a cluster, pulling jobs from the shared queue with warm-model care.

The database stays the single source of truth: a cluster worker is the ``LocalExecutor`` worker
loop with one slot (the same claim, heartbeat, cancel and clean-before-rerun code), plus a row in
the ``workers`` table saying what it runs on, the model it has loaded and the job it runs. Its claim
reads that table to place jobs:

- an idle worker takes queued jobs for the model it has loaded first (no reload);
- a cold worker leaves a job to a free worker that has its model loaded, when there is one;
- a job goes only to a worker whose device fits the model's catalog memory figure, and a job that
  fits no live worker fails at once with the figures, instead of waiting forever.

Nothing here imports Ray: ``openreel.jobs.ray_executor`` hosts these workers in Ray actors, and
any process that can reach the database could host one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from openreel.jobs.executor import EngineLike, LocalExecutor
from openreel.jobs.store import COMPLETED, Candidate, JobRecord, JobStore, WorkerRecord, this_host

log = logging.getLogger("openreel.cluster")

NO_WORKER_FITS = "no_worker_fits"
# Leave a tenth of a device to everything else, as ``openreel.engine.fits`` does on one machine.
_USABLE = 0.9


@lru_cache(maxsize=256)
def memory_needed_gib(model: str | None) -> float | None:
    """The catalog's memory figure for ``model`` (a catalog id, ``ID@REVISION`` or a folder);
    None when unknown: the engine then says what is wrong with the name when the job runs."""
    if not model:
        return None
    from openreel.errors import OpenreelError
    from openreel.models.weights import resolve_card

    try:
        return float(resolve_card(model).memory_gib)
    except (OpenreelError, OSError, ValueError):
        return None


def fits(need_gib: float | None, memory_gib: float) -> bool:
    return need_gib is None or need_gib <= memory_gib * _USABLE


@dataclass(frozen=True)
class Choice:
    """What a worker decided about the queue: the job to claim, and whether it is to fail it."""

    job_id: str | None
    unfit: bool = False


def choose(
    candidates: list[Candidate], me: WorkerRecord, live: list[WorkerRecord], *, fresh_after: float = 0.0
) -> Choice:
    """The placement rule (the module docstring), for worker ``me`` among ``live`` workers.

    ``candidates`` come oldest first; ``live`` are the workers not yet stale (``me`` too). A job is
    left to a warm worker only if that one beat after ``fresh_after``: a worker that died idle
    must not hold its model's jobs until its row goes stale."""
    others = [worker for worker in live if worker.name != me.name]
    largest = max([me.memory_gib] + [worker.memory_gib for worker in others])
    warm_and_free = {
        worker.loaded_model
        for worker in others
        if worker.job_id is None and worker.loaded_model and worker.heartbeat_at >= fresh_after
    }
    fallback: str | None = None
    for candidate in candidates:
        need = None if candidate.kind == "recut" else memory_needed_gib(candidate.model)
        if not fits(need, largest):
            # Nobody can run it: take it only to fail it with the figures, never leave it queued.
            return Choice(candidate.id, unfit=True)
        if not fits(need, me.memory_gib):
            continue  # a larger worker takes it
        if candidate.kind != "recut" and me.loaded_model and candidate.model == me.loaded_model:
            return Choice(candidate.id)  # warm: starts denoising at once
        if fallback is None and (candidate.kind == "recut" or candidate.model not in warm_and_free):
            fallback = candidate.id
    return Choice(fallback)


class ClusterWorker(LocalExecutor):
    """A one-slot ``LocalExecutor`` that registers itself and places jobs with ``choose``.

    ``memory_gib`` and ``device`` default to what this process's device has (openreel.hardware);
    a deployment may state less (to keep room for something else on the card)."""

    def __init__(
        self,
        store: JobStore,
        *,
        label: str,
        memory_gib: float | None = None,
        device: str | None = None,
        device_name: str | None = None,
        **options: Any,
    ):
        options.setdefault("workers", 1)
        super().__init__(store, **options)
        self.label = label
        self._memory_gib = memory_gib
        self._device = device
        self._device_name = device_name
        self.name = ""  # host:pid:label, set at start (recovery reads the pid from it)
        self.loaded_model: str | None = None
        self._job_id: str | None = None
        self._record: WorkerRecord | None = None

    # --- lifecycle ---

    def start(self) -> None:
        device, device_name, memory = self._device, self._device_name, self._memory_gib
        devices = 1
        if device is None or memory is None:
            from openreel.hardware import detect

            hardware = detect()
            device = device or hardware.device
            device_name = device_name or hardware.name
            memory = hardware.memory_gib if memory is None else memory
            devices = hardware.devices
        self.name = self._worker_name(0)
        now = time.time()
        self._record = WorkerRecord(
            name=self.name,
            host=this_host(),
            device=device,
            device_name=device_name or device,
            memory_gib=float(memory),
            loaded_model=None,
            job_id=None,
            started_at=now,
            heartbeat_at=now,
            devices=devices,
        )
        self.store.register_worker(self._record)
        super().start()
        beat = threading.Thread(target=self._beat, name="openreel-registry", daemon=True)
        beat.start()
        self._threads.append(beat)

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        try:
            self.store.remove_worker(self.name)
        except Exception:  # the row goes stale and stops counting anyway
            log.exception("could not unregister worker %s", self.name)

    def _beat(self) -> None:
        while not self._stopping.wait(self.heartbeat_s):
            try:
                self.store.update_worker(self.name, job_id=self._job_id, loaded_model=self.loaded_model)
                self.store.forget_stale_workers(self.stale_after_s * 4)
            except Exception:  # the database may be restarting; the next beat tries again
                log.exception("registry heartbeat failed")

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "loaded_model": self.loaded_model, "job_id": self._job_id}

    # --- the LocalExecutor hooks ---

    def _worker_name(self, index: int) -> str:
        # host:pid first, as every worker name: recovery tells a dead process by it.
        return self.name or f"{this_host()}:{os.getpid()}:{self.label}"

    def _claim(self, name: str) -> JobRecord | None:
        live = self.store.list_workers(stale_after=self.stale_after_s)
        me = next((worker for worker in live if worker.name == name), None)
        if me is None:
            # Our row went stale or was forgotten (a long database outage): register again first.
            now = time.time()
            self._record = replace(
                self._record, loaded_model=self.loaded_model, job_id=None, heartbeat_at=now
            )
            self.store.register_worker(self._record)
            return None
        decided: dict[str, Choice] = {}

        def pick(candidates: list[Candidate]) -> str | None:
            # Three missed beats: that worker is gone, or too stuck to be counted on.
            fresh_after = time.time() - 3 * self.heartbeat_s
            decided["choice"] = choose(candidates, me, live, fresh_after=fresh_after)
            return decided["choice"].job_id

        job = self.store.claim(name, choose=pick)
        if job is None:
            return None
        if decided["choice"].unfit:
            self._fail_unfit(job, name, live)
            return None
        self._job_id = job.id
        self.store.update_worker(name, job_id=job.id, loaded_model=self.loaded_model)
        return job

    def _run(self, job: JobRecord, engine: EngineLike, name: str) -> None:
        try:
            super()._run(job, engine, name)
        finally:
            done = self.store.get(job.id, include_deleted=True)
            if done is not None and done.status == COMPLETED and job.kind != "recut":
                # The engine keeps the pipeline it ran last: this worker is warm for that model.
                self.loaded_model = done.resolved_model or done.model
            self._job_id = None
            try:
                self.store.update_worker(name, job_id=None, loaded_model=self.loaded_model)
            except Exception:  # the next beat writes it
                log.exception("could not update worker %s", name)

    def _fail_unfit(self, job: JobRecord, name: str, live: list[WorkerRecord]) -> None:
        model = job.resolved_model or job.model
        need = memory_needed_gib(model) or 0.0
        largest = max(live, key=lambda worker: worker.memory_gib)
        message = (
            f"{model} needs about {need:.1f} GiB of device memory, and the largest worker in the cluster "
            f"({largest.name}, {largest.device_name}) has {largest.memory_gib:.1f} GiB "
            f"({largest.memory_gib * _USABLE:.1f} usable): add a larger worker or choose a smaller model"
        )
        log.warning("job %s: %s", job.id, message)
        self._record_failure(job, name, NO_WORKER_FITS, message)
