"""Context parallelism: one generation spread over N ranks (processes) of one machine.

For the families whose diffusers transformers run with a context-parallel plan (``_cp_plan``: Wan;
CP_TRANSFORMERS says why not LTX-Video yet), every rank holds the whole model and the transformer
splits each call's sequence of video tokens over the ranks; Ulysses attention swaps heads for
sequence with one all-to-all per attention, so N GPUs make one long or large clip up to N times
faster (the VAE and the text encoder are not split: each rank runs them whole).

    planning (torch-free, for plan.py and --dry-run):  plan_parallel, supports
    running (runner.py hands a call here):               ParallelGroup

A ``ParallelGroup`` spawns N processes (torch.multiprocessing, "spawn"), joined in one process
group on 127.0.0.1 (NCCL on CUDA, gloo on a CPU). Each rank loads the pipeline through the
project's own ``Runner`` (so memory plans, LoRAs, latents files and decode guards apply as on one
process), enables context parallelism on its transformer(s), and runs the same call with the same
seed. Rank 0's result is the engine's; rank 0 also reports progress. The ranks stay up between
calls, the model warm in each, until the runner needs another kind of run or is unloaded.

Cancel is collective: at every step each rank takes rank 0's view of the shared cancel flag
(one broadcast), so all ranks stop at the same step and the group stays usable. Any other error
in any rank ends the whole group (the other ranks may be blocked in a collective) and surfaces
as one error; nothing outlives the runner.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import queue
import socket
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel import errors
from openreel.errors import Cancelled, GenerationError, SpecError
from openreel.render.latents import LatentsFile  # torch-free until it saves

if TYPE_CHECKING:
    from openreel.hardware import Hardware
    from openreel.models.catalog import ModelCard
    from openreel.plan import Plan

log = logging.getLogger(__name__)

# Families whose transformers run context parallel in diffusers 0.42.1, by class. LTX-Video's and
# LTX-2's transformers have a _cp_plan too, but their text attention mask keeps every head while
# Ulysses leaves each rank heads / N: scaled_dot_product_attention fails ("size of tensor a (2)
# must match the size of tensor b (4) at non-singleton dimension 1", measured with 2 gloo ranks).
CP_TRANSFORMERS = {"wan": "WanTransformer3DModel"}
# Below this many transformer tokens per call, splitting the sequence costs more in all-to-alls
# than it saves (a 480p 5 s Wan clip is ~32k tokens; 720p 5 s ~76k): auto leaves it off.
AUTO_MIN_TOKENS = 30_000
# Seconds the ranks get to leave after being asked before they are killed.
_CLOSE_GRACE_S = 10.0
# Seconds a cancel waits for the ranks' next step before it kills them (a step of a large model on
# a slow GPU takes tens of seconds; a rank stuck in a collective never comes back).
_CANCEL_GRACE_S = 300.0


# -- planning (no torch) ----------------------------------------------------------------------


def supports(card: ModelCard) -> str | None:
    """None when ``card`` can run context parallel, else why not (a sentence)."""
    if card.family not in CP_TRANSFORMERS:
        families = ", ".join(sorted(CP_TRANSFORMERS))
        return f"{card.id} ({card.family}) cannot run context parallel in diffusers (only {families} can)"
    if card.options.get("conditioning") == "video":
        # Wan VACE's transformer (WanVACETransformer3DModel) has no _cp_plan in diffusers 0.42.1.
        return f"{card.id}'s VACE transformer cannot run context parallel in diffusers (it has no plan)"
    return None


def attention_heads(card: ModelCard) -> int | None:
    """The transformer's attention heads (Ulysses gives each rank heads / N of them), read without
    torch: a twin's from its reference shrunk as its build shrinks it; a real card's from the
    downloaded weights' config, else its reference configuration; None if none says."""
    import json

    from openreel.errors import OpenreelError
    from openreel.models.reference import has_reference, load_reference
    from openreel.models.weights import weights_folder

    reference = card.twin_of if card.is_tiny else card.id
    if reference is None or not has_reference(reference):
        return None
    component = load_reference(reference)["components"].get("transformer", {})
    config = component.get("config", {})
    if card.is_tiny and component:
        from openreel.models.twins import component_config

        config = component_config(card, "transformer", component, {})
    elif not card.is_tiny:
        # Never a download for this: a local folder or the Hugging Face cache only.
        with contextlib.suppress(OpenreelError, OSError, ValueError):
            folder = weights_folder(card, download=False)
            config = json.loads((folder / "transformer" / "config.json").read_text(encoding="utf-8"))
    heads = config.get("num_attention_heads") if isinstance(config, dict) else None
    return heads if isinstance(heads, int) and heads > 0 else None


def _limit(hardware: Hardware) -> tuple[int, str]:
    """How many ranks this machine can host, and what they run on (for the messages)."""
    if hardware.device == "cuda":
        return hardware.devices, f"{hardware.devices} visible GPU{'s' if hardware.devices != 1 else ''}"
    if hardware.device == "cpu":
        # CPU ranks (gloo) share the cores: the same frames, no speed-up; useful to check a setup.
        # (The server's request check plans on a notional CPU with as many devices as asked.)
        most = max(2, hardware.cpu_threads, hardware.devices)
        return most, f"{most} CPU threads"
    return 1, f"one {hardware.device} device"


def _blocker(degree: int, heads: int | None, tokens: int) -> str | None:
    """Why ``degree`` ranks cannot split this transformer's calls evenly, or None."""
    if degree & (degree - 1):
        # Even splits of heads and tokens at every usual size (and LTX's 128 text tokens, should it
        # join CP_TRANSFORMERS).
        return f"{degree} is not a power of two (2, 4, 8)"
    if heads is not None and heads % degree:
        return f"the transformer's {heads} attention heads do not split into {degree} equal parts"
    if tokens % degree:
        return f"the {tokens} video tokens per call do not split into {degree} equal parts"
    return None


def plan_parallel(card: ModelCard, hardware: Hardware, requested: int | None, tokens: int) -> tuple[int, str]:
    """(ranks, why) for one run. ``requested``: the person's ``--gpus`` (None: decide here);
    ``tokens``: transformer tokens of one call at the largest size the model runs at.

    A request that cannot be met is one SpecError on ``gpus``; auto uses every GPU that helps on
    a machine with several, for the supporting families, when the clip is large."""
    if requested is not None:
        if requested < 1:
            raise SpecError(f"gpus must be 1 or more (got {requested})", param="gpus")
        if requested == 1:
            return 1, "one process (asked for one GPU)"
        why_not = supports(card)
        if why_not:
            raise SpecError(f"--gpus {requested}: {why_not}; leave out --gpus", param="gpus")
        most, what = _limit(hardware)
        heads = attention_heads(card)
        if requested > most:
            raise SpecError(
                f"--gpus {requested}: this machine has {what}; ask for at most {most}", param="gpus"
            )
        blocked = _blocker(requested, heads, tokens)
        if blocked:
            fits = [n for n in range(2, most + 1) if _blocker(n, heads, tokens) is None]
            hint = f"; --gpus {' or '.join(map(str, fits))} would" if fits else ""
            raise SpecError(f"--gpus {requested}: {blocked}{hint}", param="gpus")
        return requested, _over(requested, hardware, tokens, "as asked")
    if hardware.device != "cuda" or hardware.devices < 2:
        return 1, ""  # one device: nothing to decide or say
    if supports(card):
        return 1, f"one GPU: {supports(card)}"
    if tokens < AUTO_MIN_TOKENS:
        return 1, f"one GPU: {tokens} tokens per call is too few to gain from splitting (< {AUTO_MIN_TOKENS})"
    heads = attention_heads(card)
    degree = max(n for n in range(1, hardware.devices + 1) if n == 1 or _blocker(n, heads, tokens) is None)
    if degree == 1:
        return 1, f"one GPU: {_blocker(2, heads, tokens)}"
    return degree, _over(degree, hardware, tokens, f"a large clip on {hardware.devices} GPUs")


def _over(degree: int, hardware: Hardware, tokens: int, why: str) -> str:
    if hardware.device == "cuda":
        share = f"{tokens // degree} of {tokens} tokens each"
        return f"context parallel over {degree} GPUs (Ulysses), {why}: {share}"
    return (
        f"context parallel over {degree} CPU processes (Ulysses), {why}: gloo on a CPU gives the same "
        "frames with no speed-up"
    )


def without_cache_when_parallel(plan: Plan) -> Plan:
    """A context-parallel plan runs without a cache hook. FirstBlockCache decides from each rank's
    own share of the tokens whether to skip the remaining blocks: ranks that decide differently
    part ways, one skipping while another waits in the next all-to-all for good."""
    if plan.context_parallel < 2 or plan.cache is None:
        return plan
    why = f"no {plan.cache.partition(':')[0]} cache hook: each rank would decide from its own tokens"
    note = f"{plan.quality_note}; {why}" if plan.quality_note else why
    return dataclasses.replace(
        plan, cache=None, quality_note=note, context_parallel_reason=f"{plan.context_parallel_reason}; {why}"
    )


# -- running ----------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for the process group's rendezvous (never Redis' 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port != 6379:
            return port


@dataclasses.dataclass
class _Task:
    method: str  # a Runner method: "run_window" or "run_remix"
    card: Any
    folder: Path
    plan: Any
    loras: list[dict[str, Any]]
    args: tuple
    kwargs: dict[str, Any]
    latents: Any  # the variation's LatentsFile, or None
    progress: bool  # rank 0 reports steps


class ParallelGroup:
    """``degree`` rank processes on this machine, running Runner calls together."""

    def __init__(self, degree: int, device: str):
        import torch.multiprocessing as mp

        self.degree, self.device = degree, device
        self.fallbacks: list[str] = []  # rank 0's decode fallbacks (Runner.decode_fallbacks)
        context = mp.get_context("spawn")
        port = free_port()
        self._results = context.Queue()
        self._tasks = [context.Queue() for _ in range(degree)]
        self._cancel = context.Event()
        self._procs = [
            context.Process(
                target=_rank_main,
                args=(rank, degree, port, device, self._tasks[rank], self._results, self._cancel),
                name=f"openreel-cp-rank{rank}",
                daemon=True,
            )
            for rank in range(degree)
        ]
        for process in self._procs:
            process.start()
        atexit.register(self.close)  # a CLI run ends without unloading: the ranks go with it
        log.info("context-parallel group of %d ranks on %s (port %d)", degree, device, port)

    def serves(self, plan: Plan) -> bool:
        return self.alive and self.degree == plan.context_parallel and self.device == plan.device

    @property
    def alive(self) -> bool:
        return bool(self._procs) and all(process.is_alive() for process in self._procs)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._procs if process.pid is not None]

    def run(
        self,
        method: str,
        card: ModelCard,
        folder: Path,
        plan: Plan,
        args: tuple,
        kwargs: dict[str, Any],
        *,
        loras: list[dict[str, Any]],
        latents: Any,
        on_step: Callable[[int, int, str], None] | None,
        should_cancel: Callable[[], bool] | None,
    ) -> Any:
        """``Runner.<method>(card, folder, plan, *args, **kwargs)`` on every rank; rank 0's result."""
        if not self.alive:
            gone = GenerationError("the context-parallel ranks are gone")
            error = self._reported() or self._death() or gone
            self.close(kill=True)
            raise error
        self._cancel.clear()
        if should_cancel is not None and should_cancel():
            self._cancel.set()  # asked before it began: the ranks stop at the first step
        for rank, tasks in enumerate(self._tasks):
            tasks.put(_Task(method, card, folder, plan, loras, args, kwargs, latents, progress=rank == 0))
        return self._collect(latents, on_step, should_cancel)

    def _collect(
        self,
        latents: Any,
        on_step: Callable[[int, int, str], None] | None,
        should_cancel: Callable[[], bool] | None,
    ) -> Any:
        pending, result, cancelled = set(range(self.degree)), None, False
        checked, asked_at = 0.0, None
        while pending:
            if should_cancel is not None and time.monotonic() - checked > 0.2:
                checked = time.monotonic()
                if asked_at is None and should_cancel():
                    self._cancel.set()
                    asked_at = time.monotonic()
            if asked_at is not None and time.monotonic() - asked_at > _CANCEL_GRACE_S:
                # The ranks look at the cancel once a step; none came: they are stuck (a collective
                # that never completes). A cancel still stops the run: every rank goes.
                self.close(kill=True)
                raise Cancelled("cancelled")
            try:
                message = self._results.get(timeout=0.2)
            except queue.Empty:
                death = self._death()
                if death is not None:
                    self.close(kill=True)
                    raise death from None
                continue
            kind, rank = message[0], message[1]
            if kind == "step":
                if on_step is not None:
                    on_step(*message[2])
                checked = 0.0  # a step went by: look for a cancel at once
            elif kind == "done":
                pending.discard(rank)
                if rank == 0:
                    result, self.fallbacks = _unshared(message[2]), message[3]
                    if latents is not None:
                        latents.windows, latents.sounds = message[4]
            elif message[2] == "Cancelled":
                pending.discard(rank)
                cancelled = True
            else:
                # Another rank that died makes this one fail in its next collective: name the cause.
                time.sleep(0.5)
                error = self._death(besides=rank) or _error(rank, self.degree, *message[2:])
                # Other ranks may now wait forever in a collective: the group cannot go on.
                self.close(kill=True)
                raise error
        if cancelled:
            raise Cancelled("cancelled")
        return result

    def _reported(self) -> Exception | None:
        """An error a rank reported before any run asked (one that could not start)."""
        with contextlib.suppress(queue.Empty, OSError, ValueError):
            while True:
                message = self._results.get(timeout=0.5)
                if message[0] == "error":
                    return _error(message[1], self.degree, *message[2:])
        return None

    def _death(self, besides: int | None = None) -> GenerationError | None:
        """The error for a rank process (other than ``besides``) that is gone, if one is."""
        for rank, process in enumerate(self._procs):
            if rank != besides and not process.is_alive():
                code = process.exitcode or 0
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                # The kernel's out-of-memory killer sends SIGKILL.
                hint = " (out of memory? the system log says)" if code == -9 else ""
                where = f"context-parallel rank {rank} of {self.degree}"
                return GenerationError(f"{where} {how}{hint}; the run stopped on every rank")
        return None

    def close(self, *, kill: bool = False) -> None:
        """Stop every rank: asked to leave (their process group torn down), killed after a grace
        period or at once with ``kill``. Never leaves a rank behind."""
        if not self._procs:
            return
        if not kill:
            for tasks in self._tasks:
                with contextlib.suppress(Exception):
                    tasks.put(None)
            deadline = time.monotonic() + _CLOSE_GRACE_S
            for process in self._procs:
                process.join(max(0.0, deadline - time.monotonic()))
        for process in self._procs:
            if process.is_alive():
                process.kill()
            process.join(5.0)
        self._procs = []
        for channel in (*self._tasks, self._results):
            channel.close()
            channel.cancel_join_thread()
        atexit.unregister(self.close)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close(kill=True)


def _error(rank: int, degree: int, name: str, message: str, param: str | None, trace: str) -> Exception:
    """A rank's error as the engine raises it: openreel's own errors keep their kind."""
    kind = getattr(errors, name, None)
    if isinstance(kind, type) and issubclass(kind, errors.OpenreelError):
        return kind(message, param=param)
    log.error("context-parallel rank %d failed:\n%s", rank, trace)
    return GenerationError(f"context-parallel rank {rank} of {degree} failed: {name}: {message}")


def _shared(value: Any) -> Any:
    """Frames as torch tensors, which torch.multiprocessing's queue hands over in shared memory
    instead of pickling hundreds of MiB."""
    import numpy as np
    import torch

    if isinstance(value, np.ndarray):
        return ("tensor", torch.from_numpy(np.ascontiguousarray(value)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        same = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return ("dataclass", type(value), {key: _shared(item) for key, item in same.items()})
    return ("value", value)


def _unshared(value: tuple) -> Any:
    kind = value[0]
    if kind == "tensor":
        return value[1].numpy()
    if kind == "dataclass":
        return value[1](**{key: _unshared(item) for key, item in value[2].items()})
    return value[1]


# -- inside a rank ----------------------------------------------------------------------------


@contextlib.contextmanager
def _one_device_on_cpu(device: str) -> Iterator[None]:
    """diffusers 0.42.1 ``ModelMixin._resolve_parallel_config`` places rank r on
    ``torch.device(accelerator, r % torch.accelerator.device_count())``: on a machine without an
    accelerator that count is 0 (ZeroDivisionError). CPU ranks have one device each, so for the
    length of the call the count says 1. Never on CUDA, where the real count is right."""
    if device != "cpu":
        yield
        return
    import torch

    real = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = real


def enable_context_parallel(pipe: Any, degree: int, device: str) -> int:
    """Ulysses over ``degree`` ranks on every transformer of ``pipe`` (Wan 2.2 has two); how many."""
    from diffusers import ContextParallelConfig

    models = [getattr(pipe, name, None) for name in ("transformer", "transformer_2")]
    models = [model for model in models if model is not None]
    for model in models:
        if getattr(model, "_cp_plan", None) is None:
            raise errors.UnsupportedModeError(
                f"{type(model).__name__} has no context-parallel plan in diffusers", param="gpus"
            )
        with _one_device_on_cpu(device):
            model.enable_parallelism(config=ContextParallelConfig(ulysses_degree=degree))
    return len(models)


class _RankState:
    def __init__(self, rank: int, degree: int, device: str, results: Any, cancel: Any):
        import torch

        from openreel.render.runner import Runner

        self.rank, self.degree, self.device = rank, degree, device
        self.results, self.cancel = results, cancel
        self.runner = Runner()
        self.enabled_for = 0  # the runner's load count the current pipeline was enabled at
        self.flag_device = torch.device("cuda", torch.cuda.current_device()) if device == "cuda" else None

    def cancelled(self) -> bool:
        """Rank 0's view of the cancel flag, the same on every rank (one broadcast per step)."""
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if self.cancel.is_set() else 0], dtype=torch.int32, device=self.flag_device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def step(self, done: int, total: int, phase: str) -> None:
        self.results.put(("step", self.rank, (done, total, phase)))

    def run(self, task: _Task) -> tuple:
        # The rank runs the call itself: its plan must not hand it to a group again.
        plan = dataclasses.replace(task.plan, context_parallel=1)
        runner = self.runner
        pipe = runner.pipeline(task.card, task.folder, plan)
        if runner.loads != self.enabled_for:
            enable_context_parallel(pipe, self.degree, self.device)
            self.enabled_for = runner.loads
        latents = task.latents
        if latents is not None and self.rank != 0:
            # Every rank reads the saved decodes (all skip denoising, or none does); rank 0 writes.
            latents = _Unsaved(latents.path, latents.header, latents.windows, latents.resumed, latents.sounds)
        kwargs = dict(task.kwargs, should_cancel=self.cancelled, on_step=self.step if task.progress else None)
        with runner.adapters(task.card, task.folder, plan, task.loras):
            call = getattr(runner, task.method)
            result = call(task.card, task.folder, plan, *task.args, latents=latents, **kwargs)
        saved = (latents.windows, latents.sounds) if isinstance(latents, LatentsFile) else None
        return _shared(result), runner.decode_fallbacks, saved


class _Unsaved(LatentsFile):
    """A latents file only read: rank 0 alone writes the variation's file."""

    def save(self) -> None:
        pass


def _quiet(rank: int) -> None:
    """What diffusers says on every call under context parallelism, said once by the parent's plan
    instead: the experimental-feature notice, a split it skips for Wan 2.1's 1-D timestep, and a
    deprecation inside diffusers' own all-gather. Ranks after 0 only repeat rank 0's warnings."""
    import logging as std_logging
    import warnings

    warnings.filterwarnings("ignore", message=r".*all_gather_tensor.* is deprecated", category=FutureWarning)
    std_logging.getLogger("diffusers.hooks.context_parallel").setLevel(std_logging.ERROR)
    std_logging.getLogger("diffusers.models.modeling_utils").addFilter(
        lambda record: "enable_parallelism" not in record.getMessage()
    )
    if rank > 0:
        std_logging.getLogger("diffusers").setLevel(std_logging.ERROR)
        std_logging.getLogger("transformers").setLevel(std_logging.ERROR)


def _rank_main(rank: int, degree: int, port: int, device: str, tasks: Any, results: Any, cancel: Any) -> None:
    """One rank: join the process group, then run tasks until told to stop (None) or the parent
    is gone."""
    import multiprocessing

    import torch
    import torch.distributed as dist

    try:
        if device == "cuda":
            torch.cuda.set_device(rank)
        else:
            # The ranks share the cores: without this each would start a thread per core.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // degree))
        dist.init_process_group(
            "nccl" if device == "cuda" else "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=degree,
        )
        _quiet(rank)
        state = _RankState(rank, degree, device, results, cancel)
    except BaseException as exc:  # the first run reports it: a rank that could not start
        results.put(("error", rank, type(exc).__name__, f"starting: {exc}", None, traceback.format_exc()))
        return
    parent = multiprocessing.parent_process()
    try:
        while True:
            try:
                task = tasks.get(timeout=1.0)
            except queue.Empty:
                if parent is not None and not parent.is_alive():
                    return
                continue
            if task is None:
                return
            try:
                results.put(("done", rank, *state.run(task)))
            except BaseException as exc:  # reported to the parent, which decides for the group
                param = getattr(exc, "param", None)
                results.put(("error", rank, type(exc).__name__, str(exc), param, traceback.format_exc()))
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()
