"""RayExecutor: the queue's workers as Ray actors spread over a cluster.

The server keeps what it does on one machine: it takes requests, writes jobs to the database,
recovers dead claims and sweeps expired jobs. The work goes to Ray actors, each hosting one
``ClusterWorker`` (openreel.jobs.cluster) that pulls jobs from the same database; the database
stays the single source of truth, so progress, cancel, delete and recovery work exactly as
on one machine. Ray gives placement (one actor per GPU), process supervision (a killed actor is
started again) and the cluster's view for ``openreel cluster status``.

Every worker writes to ``outputs_dir`` and reads the same weights folders: on several machines
that folder is shared storage (NFS and the like), and the database is PostgreSQL.

A worker may hold several GPUs of one machine (``gpus_per_worker``): its actor is placed in a
placement group of its own, one bundle of N GPUs (STRICT_PACK: one node), so the actor and the
context-parallel ranks it starts for one job (render.parallel) see all N. One bundle rather than N
single-GPU bundles because an actor lives in one bundle and sees only that bundle's GPUs. A job
asking more GPUs than a worker has is refused when it is queued, never left waiting.

Ray is imported when the executor starts, never at ``import openreel`` or server start-up.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

from openreel.errors import OpenreelError, SpecError
from openreel.jobs.executor import LocalExecutor
from openreel.jobs.store import IN_PROGRESS, JobStore
from openreel.spec import VideoSpec

log = logging.getLogger("openreel.ray")

NAMESPACE = "openreel"
# What a worker process needs from the server's environment to find the same folders and keep
# the same offline rules (Ray starts actors with the raylet's environment, not the driver's).
FORWARDED_ENV = (
    "OPENREEL_HOME",
    "OPENREEL_DEVICE",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "TOKENIZERS_PARALLELISM",
)


class ClusterUnavailableError(OpenreelError):
    """The Ray cluster cannot be reached or cannot host the workers."""

    code = "cluster_unavailable"
    status = 503


def _host_port(address: str) -> tuple[str, int] | None:
    """The GCS (or Ray client) endpoint of ``address``; None for ``auto``."""
    if address == "auto":
        return None
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnavailableError(
            f"a Ray address is auto, host:port or ray://host:port (got {address!r})", param="ray_address"
        )
    return host, int(port)


def connect(address: str, *, timeout_s: float = 5.0) -> bool:
    """Join the Ray cluster at ``address`` as a driver; True if this call connected (False: this
    process was connected already). A cluster that does not answer raises one clear sentence."""
    import ray

    if ray.is_initialized():
        return False
    endpoint = _host_port(address)
    if endpoint is not None:
        # ray.init retries an unreachable GCS for a minute or more; a plain connect says it at once.
        try:
            socket.create_connection(endpoint, timeout=timeout_s).close()
        except OSError as exc:
            raise ClusterUnavailableError(
                f"no Ray cluster answers at {address} ({exc.strerror or type(exc).__name__}); start one "
                "with `ray start --head --port=6380 --disable-usage-stats` or give its address",
                param="ray_address",
            ) from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, namespace=NAMESPACE, logging_level=logging.WARNING)
    except Exception as exc:  # ConnectionError for auto without a cluster, RuntimeError for versions
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterUnavailableError(
            f"could not join the Ray cluster at {address}: {first}", param="ray_address"
        ) from None
    return True


class WorkerActor:
    """The body of one Ray actor: a ``ClusterWorker`` on its own database connection."""

    def __init__(self, config: dict[str, Any]):
        # Before anything reads them (huggingface_hub reads its offline flag at import).
        os.environ.update(config["env"])
        from openreel.jobs.cluster import ClusterWorker

        self.worker = ClusterWorker(
            JobStore(config["database_url"]),
            label=config["label"],
            outputs_dir=Path(config["outputs_dir"]),
            memory_gib=config.get("memory_gib"),
            device=config.get("device"),
            **config["timings"],
        )
        self.worker.start()

    def describe(self) -> dict[str, Any]:
        return self.worker.describe() | {"pid": os.getpid(), "node_id": _node_id()}

    def cancel(self, job_id: str) -> bool:
        return self.worker.cancel(job_id)

    def stop(self) -> None:
        self.worker.stop()


def _node_id() -> str | None:
    import ray

    return ray.get_runtime_context().get_node_id()


class RayExecutor(LocalExecutor):
    """The server's executor for ``--executor ray``: no local worker threads (``workers=0``: the
    server only recovers and sweeps), ``workers`` Ray actors instead.

    ``workers`` None means one per GPU of the cluster, or one per node when it has no GPU.
    ``actor_options`` go to each actor (num_gpus, num_cpus, resources: custom resources can pin
    a worker to a node); ``memory_gib`` and ``device`` state each worker's device instead of
    probing it (probing imports torch in every actor at start)."""

    def __init__(
        self,
        store: JobStore,
        *,
        address: str = "auto",
        workers: int | None = None,
        actor_options: dict[str, Any] | list[dict[str, Any]] | None = None,
        memory_gib: float | None = None,
        device: str | None = None,
        gpus_per_worker: int = 1,
        ready_timeout_s: float = 300.0,
        **options: Any,
    ):
        options["workers"] = 0
        super().__init__(store, **options)
        if gpus_per_worker < 1:
            raise ClusterUnavailableError(
                f"gpus_per_worker must be 1 or more (got {gpus_per_worker})", param="ray_gpus_per_worker"
            )
        self.gpus_per_worker = gpus_per_worker
        self.placement_groups: list[Any] = []
        self.address = address
        self.ray_workers = workers
        self.actor_options = actor_options
        self.memory_gib = memory_gib
        self.device = device
        self.ready_timeout_s = ready_timeout_s
        self.actors: list[Any] = []
        self._connected_here = False

    def start(self) -> None:
        self._connected_here = connect(self.address)
        import ray

        nodes = [node for node in ray.nodes() if node.get("Alive")]
        if self.store.dialect == "sqlite" and len({node["NodeManagerAddress"] for node in nodes}) > 1:
            raise ClusterUnavailableError(
                "the cluster has several machines but the queue is SQLite, which only one machine can "
                "share: give --database-url postgresql://...",
                param="database_url",
            )
        super().start()  # recovery and the sweep, here
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if self.gpus_per_worker > max(gpus, 1):
            raise ClusterUnavailableError(
                f"each worker is to hold {self.gpus_per_worker} GPUs, and the cluster has {gpus}",
                param="ray_gpus_per_worker",
            )
        wide = gpus // self.gpus_per_worker
        count = self.ray_workers if self.ray_workers is not None else (wide or len(nodes) or 1)
        remote = ray.remote(WorkerActor)
        for index in range(count):
            try:
                options = self._options_for(index, gpus)
            except ClusterUnavailableError:
                self.stop()  # the workers placed so far go too: none is left half-started
                raise
            config = {
                "database_url": self.store.url,
                "outputs_dir": str(self.outputs_dir),
                "label": f"ray{index}",
                "memory_gib": self.memory_gib,
                "device": self.device,
                "env": {key: os.environ[key] for key in FORWARDED_ENV if key in os.environ},
                "timings": {
                    "idle_poll_s": self.idle_poll_s,
                    "heartbeat_s": self.heartbeat_s,
                    "stale_after_s": self.stale_after_s,
                    "progress_every_s": self.progress_every_s,
                    "cancel_check_every_s": self.cancel_check_every_s,
                    "retention_s": self.retention_s,
                    "webhook_url": self.webhook_url,
                    # The server sweeps; a worker that also swept would only race it.
                    "sweep_every_s": 10**9,
                },
            }
            # A killed actor comes back (a fresh process) and goes on taking jobs; its job is
            # recovered through the database, never retried by Ray, so it runs exactly once more.
            actor = remote.options(
                name=f"openreel-worker-{index}",
                namespace=NAMESPACE,
                max_restarts=-1,
                max_task_retries=0,
                **options,
            ).remote(config)
            self.actors.append(actor)
        try:
            pending = [actor.describe.remote() for actor in self.actors]
            described = ray.get(pending, timeout=self.ready_timeout_s)
        except Exception as exc:
            self.stop()
            raise ClusterUnavailableError(
                f"the Ray workers did not start ({type(exc).__name__}): the cluster may lack the "
                "resources asked (see `ray status`)"
            ) from None
        for item in described:
            log.info("ray worker %s ready on node %s", item["name"], item["node_id"])

    def _options_for(self, index: int, gpus: int) -> dict[str, Any]:
        if isinstance(self.actor_options, list):
            return dict(self.actor_options[index % len(self.actor_options)])
        if self.actor_options is not None:
            return dict(self.actor_options)
        if self.gpus_per_worker > 1:
            return self._wide_options(index)
        return {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": 1}

    def _wide_options(self, index: int) -> dict[str, Any]:
        """A placement group of one bundle of ``gpus_per_worker`` GPUs on one node, the actor in it."""
        import ray
        from ray.util.placement_group import placement_group, remove_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        n = self.gpus_per_worker
        group = placement_group(
            [{"GPU": n, "CPU": 1}], strategy="STRICT_PACK", name=f"openreel-worker-{index}"
        )
        try:
            ray.get(group.ready(), timeout=self.ready_timeout_s)
        except Exception:
            remove_placement_group(group)
            raise ClusterUnavailableError(
                f"worker {index} needs {n} free GPUs on one node and the cluster has no such node now "
                "(see `ray status`); ask for fewer workers or fewer GPUs per worker",
                param="ray_gpus_per_worker",
            ) from None
        self.placement_groups.append(group)
        strategy = PlacementGroupSchedulingStrategy(placement_group=group, placement_group_bundle_index=0)
        return {"num_gpus": n, "num_cpus": 1, "scheduling_strategy": strategy}

    def check(self, spec: VideoSpec) -> VideoSpec:
        """As on one machine, and the GPUs a request asks fit a worker of this cluster."""
        resolved = super().check(spec)
        if resolved.gpus is not None and resolved.gpus > self.gpus_per_worker:
            raise SpecError(
                f"gpus {resolved.gpus}: each worker of this cluster has {self.gpus_per_worker} GPU"
                f"{'s' if self.gpus_per_worker > 1 else ''}; ask for at most {self.gpus_per_worker}, or "
                f"start the server with --ray-gpus-per-worker {resolved.gpus}",
                param="gpus",
            )
        return resolved

    def stop(self, timeout: float = 30.0) -> None:
        import ray

        if self.actors:
            try:
                # Each worker hands its running job back to the queue, then leaves.
                ray.get([actor.stop.remote() for actor in self.actors], timeout=timeout)
            except Exception:
                log.exception("ray workers did not stop cleanly; their jobs are recovered")
            for actor in self.actors:
                ray.kill(actor, no_restart=True)
            self.actors.clear()
        if self.placement_groups:
            from ray.util.placement_group import remove_placement_group

            for group in self.placement_groups:
                remove_placement_group(group)
            self.placement_groups.clear()
        super().stop(timeout)
        if self._connected_here and ray.is_initialized():
            ray.shutdown()

    def cancel(self, job_id: str) -> bool:
        """Tell every worker at once (the one running it stops at its next step); the store's
        deleted flag, which each worker polls, is what makes the cancel certain."""
        job = self.store.get(job_id, include_deleted=True)
        if job is None or job.status != IN_PROGRESS:
            return False
        for actor in self.actors:
            actor.cancel.remote(job_id)
        return True

    def is_running_here(self, job_id: str) -> bool:
        job = self.store.get(job_id, include_deleted=True)
        return job is not None and job.status == IN_PROGRESS

    def alive_workers(self) -> int:
        return len(self.store.list_workers(stale_after=self.stale_after_s))
