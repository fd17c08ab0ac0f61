"""Context parallelism (issue 13): one generation spread over N ranks of one machine.

On this CPU the ranks are processes joined by gloo, running the real tiny Wan pipeline with
diffusers' Ulysses attention: the same code path as NCCL ranks on GPUs, minus the device.

- Two ranks give the frames of one process (to float rounding: each rank computes its share of
  the attention heads with other matrix shapes, so sums round differently; measured 2e-6, held to
  1e-4, far below one 8-bit level, 1/255), with progress from rank 0, a LoRA loaded on every
  rank for one call, and a cancel that stops every rank at one step and leaves the group usable.
- Through the engine: the video, its recipe saying "context parallel over 2 ... (Ulysses)", the
  same watermark id as the one-process video; a one-process run after it ends the ranks.
- A rank killed mid-run: one GenerationError, no rank left behind.
- The plan and --dry-run text; auto on a 4-GPU machine (no cache hook under it); bad input is one
  error on ``gpus``; a Ray worker of N GPUs gets them in one placement group, and a request for
  more than a worker has is refused at the door.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openreel.engine import Engine
from openreel.errors import Cancelled, GenerationError, SpecError
from openreel.hardware import Hardware
from openreel.models.weights import resolve_card, weights_folder
from openreel.render.encode import read_frames
from openreel.spec import VideoSpec
from test_lora import make_lora

CPU = Hardware("cpu", "float32", "CPU", 8.0, 2)
LARGE = VideoSpec(prompt="a harbour", model="wan2.1-t2v-14b", seconds=5, width=1280, height=720)
FOUR_GPUS = Hardware("cuda", "bfloat16", "NVIDIA H100 80GB HBM3", 78.0, 16, devices=4)
SPEC = VideoSpec(
    prompt="a paper boat on a rainy street", model="tiny-wan", seconds=1.0, fps=16, width=96, height=64,
    seed=11, steps=2, gpus=2,
)  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped by its parent is a zombie: gone for every purpose here.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def _made_and_encoded(engine: Engine, spec: VideoSpec, output: Path) -> tuple[Any, np.ndarray]:
    """The engine's result, and the frames its H.264 encoder was given (labelled, watermarked)."""
    from openreel.render.encode import VideoWriter

    given: list[np.ndarray] = []
    write = VideoWriter.write

    def recording(self: VideoWriter, frame: np.ndarray) -> None:
        given.append(frame.copy())
        write(self, frame)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(VideoWriter, "write", recording)
        result = engine.generate(spec, output)
    return result, np.stack(given).astype(np.int16)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> dict:
    """One engine through a whole context-parallel life: one process, two ranks, a cancel, the
    engine's videos at 2 ranks and at 1 (which ends the ranks)."""
    root = tmp_path_factory.mktemp("cp")
    seen: dict = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENREEL_HOME", str(session_home))  # module-scoped: set before the per-test home
        engine = Engine(CPU, label=False)
        runner = engine.runner
        card = resolve_card("tiny-wan")
        folder = weights_folder(card)
        one_plan, two_plan = engine.plan(replace(SPEC, gpus=1)), engine.plan(SPEC)
        seen["plans"] = (one_plan, two_plan)
        window = two_plan.windows[0]
        seen["one"] = runner.run_window(card, folder, one_plan, window, SPEC.seed).final
        lora = [{"source": str(make_lora("tiny-wan", root / "lora")), "scale": 1.0}]
        with runner.adapters(card, folder, one_plan, lora):
            seen["one_lora"] = runner.run_window(card, folder, one_plan, window, SPEC.seed).final
        steps: list[tuple] = []
        seen["two"] = runner.run_window(
            card, folder, two_plan, window, SPEC.seed, on_step=lambda *s: steps.append(s)
        ).final
        seen["steps"], seen["pids"] = steps, runner._group.pids
        # A LoRA: each rank loads it into its own pipeline for the call, and unloads it after.
        with runner.adapters(card, folder, two_plan, lora):
            seen["two_lora"] = runner.run_window(card, folder, two_plan, window, SPEC.seed).final
        # A cancel: every rank stops at the same step (rank 0's view, broadcast), none reports
        # progress after it, and the group carries on.
        after: list[tuple] = []
        try:
            runner.run_window(
                card, folder, two_plan, window, SPEC.seed, on_step=lambda *s: after.append(s),
                should_cancel=lambda: True,
            )  # fmt: skip
        except Cancelled as exc:
            seen["cancelled"], seen["steps_after_cancel"] = exc, after
        seen["after_cancel"] = runner.run_window(card, folder, two_plan, window, SPEC.seed).final
        seen["pids_after_cancel"] = runner._group.pids
        seen["video2"], seen["encoded2"] = _made_and_encoded(engine, SPEC, root / "two.mp4")
        seen["pids_after_video"] = runner._group.pids
        seen["video1"], seen["encoded1"] = _made_and_encoded(engine, replace(SPEC, gpus=1), root / "one.mp4")
        seen["group_after_one"] = runner._group
    return seen


@pytest.mark.slow  # rank processes start: each imports torch and loads the twin
def test_two_ranks_make_the_frames_of_one_process(made: dict) -> None:
    one, two = made["one"], made["two"]
    assert made["plans"][0].context_parallel == 1 and made["plans"][1].context_parallel == 2
    assert one.shape == two.shape == (17, 64, 96, 3) and one.std() > 0.05
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-4)
    # Progress comes from rank 0 only: each step once.
    assert made["steps"] == [(1, 2, "denoising"), (2, 2, "denoising")]
    assert len(made["pids"]) == 2 and os.getpid() not in made["pids"]


@pytest.mark.slow  # rank processes start: each imports torch and loads the twin
def test_a_lora_on_two_ranks_makes_the_frames_of_one_process(made: dict) -> None:
    assert np.abs(made["one_lora"] - made["one"]).max() > 1e-2  # the LoRA changes the frames
    np.testing.assert_allclose(made["two_lora"], made["one_lora"], rtol=0, atol=1e-4)


@pytest.mark.slow  # rank processes start: each imports torch and loads the twin
def test_a_cancel_stops_every_rank_and_the_group_goes_on(made: dict) -> None:
    assert isinstance(made["cancelled"], Cancelled) and made["steps_after_cancel"] == []
    # The same ranks (no restart) made the next call whole, the same frames as before (the LoRA
    # of the call before the cancel unloaded from every rank).
    assert made["pids_after_cancel"] == made["pids"]
    np.testing.assert_array_equal(made["after_cancel"], made["two"])


@pytest.mark.slow  # rank processes start: each imports torch and loads the twin
def test_the_engine_makes_the_video_on_two_ranks(made: dict) -> None:
    two, one = made["video2"].outputs[0], made["video1"].outputs[0]
    assert made["pids_after_video"] == made["pids"]  # the warm ranks made it
    recipe = json.loads(two.recipe.read_text())
    assert recipe["plan"]["context_parallel"] == 2
    assert recipe["plan"]["context_parallel_reason"].startswith(
        "context parallel over 2 CPU processes (Ulysses)"
    )
    # How many ranks made it is not what the video is: the same watermark id as one process's.
    one_recipe = json.loads(one.recipe.read_text())
    assert one_recipe["variations"][0]["watermark_id"] == recipe["variations"][0]["watermark_id"]
    # The frames handed to the encoder agree to float rounding, which flips a few 8-bit values
    # by one (the invisible mark, laid on those frames, may move one more).
    a, b = made["encoded2"], made["encoded1"]
    assert a.shape == b.shape == (16, 64, 96, 3)
    assert np.abs(a - b).max() <= 2 and (a != b).mean() < 0.01
    assert np.stack(list(read_frames(two.video))).shape == a.shape  # and the video holds them


@pytest.mark.slow  # rank processes start: each imports torch and loads the twin
def test_a_recipe_made_on_two_ranks_replays_on_any_count(made: dict) -> None:
    from openreel.recipe import read_recipe, spec_from_recipe

    recipe = made["video2"].outputs[0].recipe
    assert json.loads(recipe.read_text())["spec"]["gpus"] == 2  # what was asked is recorded
    replay = spec_from_recipe(read_recipe(recipe))
    assert replay.gpus is None and Engine(FOUR_GPUS).plan(replay).context_parallel == 1


@pytest.mark.slow  # rank processes start: each imports torch and loads the twin
def test_a_one_process_run_ends_the_ranks(made: dict) -> None:
    assert made["group_after_one"] is None
    assert not any(_alive(pid) for pid in made["pids"])


@pytest.mark.slow  # rank processes start: each imports torch and loads the twin
def test_a_rank_that_dies_is_one_error_and_no_rank_is_left(session_home: Path) -> None:
    engine = Engine(CPU, label=False)
    runner = engine.runner
    card = resolve_card("tiny-wan")
    plan = engine.plan(replace(SPEC, steps=4))
    pids: list[int] = []

    def kill_rank_1(done: int, total: int, phase: str) -> None:
        if not pids:
            pids.extend(runner._group.pids)
            os.kill(pids[1], signal.SIGKILL)

    with pytest.raises(GenerationError, match="context-parallel rank 1 of 2 was killed by signal 9"):
        runner.run_window(card, weights_folder(card), plan, plan.windows[0], 1, on_step=kill_rank_1)
    assert len(pids) == 2 and not any(_alive(pid) for pid in pids)
    assert runner._group is None or not runner._group.alive
    runner.unload()


def test_dry_run_says_context_parallel_and_why(session_home: Path) -> None:
    from typer.testing import CliRunner

    from openreel.cli import app

    result = CliRunner().invoke(
        app, ["generate", "a boat", "--model", "tiny-wan", "--seconds", "1", "--gpus", "2", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "parallel context parallel over 2 CPU processes (Ulysses), as asked" in text
    refused = CliRunner().invoke(
        app, ["generate", "a boat", "-m", "tiny-cogvideox", "--gpus", "2", "--dry-run"]
    )
    assert refused.exit_code != 0
    assert "tiny-cogvideox (cogvideox) cannot run context parallel" in " ".join(refused.output.split())


def test_auto_spreads_a_large_wan_clip_over_the_gpus() -> None:
    engine = Engine(FOUR_GPUS)
    large = engine.plan(LARGE)
    assert large.context_parallel == 4
    assert large.context_parallel_reason.startswith("context parallel over 4 GPUs (Ulysses), a large clip")
    short = engine.plan(
        VideoSpec(prompt="a harbour", model="wan2.1-t2v-1.3b", seconds=2, width=854, height=480)
    )
    assert short.context_parallel == 1 and "too few" in short.context_parallel_reason
    other = engine.plan(
        VideoSpec(prompt="a harbour", model="cogvideox-5b", seconds=5, width=1280, height=720)
    )
    assert other.context_parallel == 1 and "cannot run context parallel" in other.context_parallel_reason
    # A cache hook decides per rank from its own tokens (ranks could part ways): none under CP.
    draft = engine.plan(replace(LARGE, quality="draft", steps=40))
    assert draft.context_parallel == 4 and draft.cache is None
    assert "cache hook: each rank would decide from its own tokens" in draft.context_parallel_reason
    assert engine.plan(replace(LARGE, quality="draft", steps=40, gpus=1)).cache is not None
    # Off when asked, even where it would help.
    off = engine.plan(
        VideoSpec(prompt="a harbour", model="wan2.1-t2v-14b", seconds=5, width=1280, height=720, gpus=1)
    )
    assert off.context_parallel == 1
    # The time the plan promises counts the transformer's work over the four GPUs.
    assert large.estimated_seconds < off.estimated_seconds / 2


@pytest.mark.parametrize(
    ("model", "gpus", "says"),
    [
        ("cogvideox-5b", 2, r"cogvideox-5b \(cogvideox\) cannot run context parallel"),
        ("ltx-video-2b", 2, r"ltx-video-2b \(ltx\) cannot run context parallel"),
        ("wan2.1-vace-1.3b", 2, "VACE transformer cannot run context parallel"),
        ("wan2.1-t2v-14b", 8, "this machine has 4 visible GPUs; ask for at most 4"),
        ("wan2.1-t2v-1.3b", 3, "3 is not a power of two"),
        ("tiny-wan", 4, "2 attention heads do not split into 4 equal parts; --gpus 2 would"),
        ("wan2.1-t2v-14b", 0, "gpus must be between 1 and 64"),
    ],
)
def test_gpus_that_cannot_be_met_are_one_error(model: str, gpus: int, says: str) -> None:
    spec = VideoSpec(prompt="a harbour", model=model, seconds=2, width=854, height=480, gpus=gpus)
    with pytest.raises(SpecError, match=says) as raised:
        Engine(FOUR_GPUS).plan(spec)
    assert raised.value.param == "gpus"


def test_a_ray_cluster_refuses_more_gpus_than_a_worker_has(tmp_path: Path) -> None:
    from openreel.jobs.ray_executor import RayExecutor
    from openreel.jobs.store import JobStore

    executor = RayExecutor(
        JobStore(f"sqlite:///{tmp_path / 'queue.db'}"), gpus_per_worker=2, outputs_dir=tmp_path
    )
    spec = VideoSpec(prompt="a harbour", model="wan2.1-t2v-14b", seconds=2, width=1280, height=720, gpus=4)
    with pytest.raises(
        SpecError, match="each worker of this cluster has 2 GPUs; ask for at most 2"
    ) as raised:
        executor.check(spec)
    assert raised.value.param == "gpus"
    assert executor.check(replace(spec, gpus=2)).gpus == 2


@pytest.mark.ray
def test_a_wide_ray_worker_is_placed_with_all_its_gpus_on_one_node() -> None:
    """A head that says it has 2 GPUs (Ray sets CUDA_VISIBLE_DEVICES from its own count)."""
    import ray

    from openreel.jobs.cluster_local import LocalRayCluster
    from openreel.jobs.ray_executor import ClusterUnavailableError, RayExecutor

    class TwoGpuHead(LocalRayCluster):
        def command(self) -> list[str]:
            return [arg if arg != "--num-gpus=0" else "--num-gpus=2" for arg in super().command()]

    with TwoGpuHead(num_cpus=2) as head:
        ray.init(address=head.address, logging_level="WARNING")
        try:
            executor = RayExecutor.__new__(RayExecutor)  # only its placement, no queue
            executor.gpus_per_worker, executor.ready_timeout_s = 2, 5.0
            executor.placement_groups, executor.actor_options = [], None
            options = executor._options_for(0, 2)

            @ray.remote
            def visible() -> tuple[list, str | None]:
                return ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES")

            gpu_ids, cuda_visible = ray.get(visible.options(**options).remote())
            assert sorted(map(int, gpu_ids)) == [0, 1] and cuda_visible == "0,1"
            (table,) = ray.util.placement_group_table().values()
            assert table["strategy"] == "STRICT_PACK" and table["bundles"] == {0: {"GPU": 2.0, "CPU": 1.0}}
            # A second 2-GPU worker has no node to go to: one sentence, not a wait.
            with pytest.raises(ClusterUnavailableError, match="worker 1 needs 2 free GPUs on one node"):
                executor._options_for(1, 2)
        finally:
            ray.shutdown()


def test_the_api_takes_gpus_and_refuses_what_cannot_be_met_at_the_door(tmp_path: Path) -> None:
    """extra_body={"gpus": N}: checked when queued (no worker here: workers=0), echoed after."""
    from fastapi.testclient import TestClient

    from openreel.server.app import build_app
    from openreel.server.settings import Settings
    from test_api import LOOPBACK, assert_error

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'openreel.db'}", output_dir=tmp_path / "out",
        upload_dir=tmp_path / "up", workers=0, default_size="160x96", default_seconds="1",
    )  # fmt: skip
    with TestClient(build_app(settings), client=LOOPBACK) as client:
        queued = client.post("/v1/videos", json={"prompt": "a harbour", "model": "tiny-wan", "gpus": 2})
        assert queued.status_code == 200, queued.text
        assert queued.json()["openreel"]["gpus"] == 2
        refused = client.post(
            "/v1/videos", json={"prompt": "a harbour", "model": "tiny-cogvideox", "gpus": 2}
        )
        assert (
            "tiny-cogvideox (cogvideox) cannot run context parallel"
            in assert_error(refused, 400, param="gpus")["message"]
        )
        assert_error(
            client.post("/v1/videos", json={"prompt": "a", "model": "tiny-wan", "gpus": 4}), 400, param="gpus"
        )
        assert_error(
            client.post("/v1/videos", json={"prompt": "a", "model": "tiny-wan", "gpus": 0}), 400, param="gpus"
        )
