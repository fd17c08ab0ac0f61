"""--memory auto|fast|low: what the planner chooses from the device's free memory and the card's
full-size parameter counts (as --dry-run shows it), and what the runner does with it on a twin
(offloading to disk and float8 storage both run on a CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from openreel.cli import app
from openreel.engine import Engine
from openreel.errors import SpecError
from openreel.hardware import Hardware
from openreel.render.encode import read_frames
from openreel.spec import VideoSpec

runner = CliRunner()
H200 = Hardware("cuda", "bfloat16", "NVIDIA H200", 139.0, 16)
RTX_4090 = Hardware("cuda", "bfloat16", "NVIDIA GeForce RTX 4090", 23.0, 16)
LAPTOP = Hardware("cuda", "bfloat16", "NVIDIA laptop GPU", 6.0, 8)


@pytest.fixture
def no_torchao(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans as where torchao is not installed: offloading and float8 alone (int8 weight-only
    quantization, which low takes where torchao is, is tests/test_quantize.py's)."""
    monkeypatch.setattr("openreel.render.quantize.available", lambda: False)


def memory_of(hardware: Hardware, model: str, mode: str = "auto"):
    spec = VideoSpec("a boat on a lake", model=model, memory=mode, seconds=5, width=1280, height=720)
    return Engine(hardware).plan(spec).memory


def test_auto_keeps_a_model_that_fits_whole_and_offloads_one_that_does_not() -> None:
    fits = memory_of(H200, "wan2.1-t2v-14b")
    assert not (fits.group_offload or fits.vae_tiling or fits.layerwise_fp8)
    assert "fits" in fits.reason
    big = memory_of(RTX_4090, "wan2.1-t2v-14b")
    assert big.group_offload and big.offload_streams and big.vae_tiling
    assert "GiB needed" in big.reason and "group offloading" in big.reason
    # Less free memory than a block's share of activations: leaf level, one layer at a time.
    assert memory_of(LAPTOP, "wan2.1-t2v-14b").offload_type == "leaf_level"


def test_fast_is_refused_where_the_model_does_not_fit_and_low_uses_every_saving(no_torchao: None) -> None:
    with pytest.raises(SpecError) as refused:
        memory_of(RTX_4090, "wan2.1-t2v-14b", "fast")
    assert "--memory fast" in refused.value.message and "--memory auto" in refused.value.message
    assert not memory_of(H200, "wan2.1-t2v-14b", "fast").group_offload
    low = memory_of(RTX_4090, "ltx-video-2b", "low")
    assert low.group_offload and low.offload_type == "leaf_level" and low.layerwise_fp8
    assert low.vae_tiling and low.vae_slicing


def test_dry_run_says_what_memory_mode_chose_and_an_unknown_mode_is_one_error() -> None:
    result = runner.invoke(app, ["generate", "a boat", "--model", "tiny-wan", "--memory", "low", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "offloading to disk" in " ".join(result.output.split())
    bad = runner.invoke(app, ["generate", "a boat", "--model", "tiny-wan", "--memory", "tiny", "--dry-run"])
    assert bad.exit_code != 0 and "unknown memory mode 'tiny'" in " ".join(bad.output.split())


def test_low_memory_on_a_cpu_offloads_the_weights_to_disk_and_makes_the_same_video(
    tmp_path: Path, openreel_home: Path, no_torchao: None
) -> None:
    args = ["--model", "tiny-wan", "--seconds", "1", "--size", "96x64", "--steps", "2", "--seed", "4", "-q"]
    made = {}
    for mode in ("auto", "low"):
        output = tmp_path / f"{mode}.mp4"
        result = runner.invoke(app, ["generate", "a boat", *args, "--memory", mode, "--output", str(output)])
        assert result.exit_code == 0, result.output
        made[mode] = np.stack(list(read_frames(output)))
    np.testing.assert_array_equal(made["low"], made["auto"])
    # The text encoder's and transformer's weights went to files, group by group.
    offloaded = {path.parent.name for path in (openreel_home / "offload").rglob("*.safetensors")}
    assert {"transformer", "text_encoder"} <= offloaded


def test_float8_storage_keeps_the_denoiser_weights_in_float8(openreel_home: Path) -> None:
    from dataclasses import replace

    from openreel.models.catalog import get_card
    from openreel.models.weights import ensure_tiny
    from openreel.plan import MemoryPlan
    from openreel.render.runner import Runner

    card = get_card("tiny-wan")
    spec = VideoSpec("a boat", model=card.id, seconds=1, width=96, height=64, steps=2, seed=1)
    plan = Engine().plan(spec)
    runner_ = Runner()
    plain = runner_.run_window(card, ensure_tiny(card), plan, plan.windows[0], 1).final
    fp8 = replace(plan, memory=MemoryPlan(layerwise_fp8=True))
    made = runner_.run_window(card, ensure_tiny(card), fp8, fp8.windows[0], 1).final
    linear = runner_._pipe.transformer.blocks[0].ffn.net[2]
    assert linear.weight.dtype == torch.float8_e4m3fn
    assert made.shape == plain.shape and 0 < np.abs(made - plain).mean() < 0.1


def test_loras_keep_offloaded_weights_out_of_files_or_are_refused_where_they_must_go_there() -> None:
    from openreel.models.catalog import get_card
    from openreel.plan import plan_memory

    # diffusers re-applies offloading after loading a LoRA but never rewrites weights already in
    # files: a LoRA run offloads to system memory, or is refused when only disk would hold them.
    card = get_card("wan2.1-t2v-14b")
    on_disk = plan_memory(card, RTX_4090, 1280, 720, 81, "auto", ram_gib=16)
    assert on_disk.offload_to_disk
    with pytest.raises(SpecError) as refused:
        plan_memory(card, RTX_4090, 1280, 720, 81, "auto", ram_gib=16, loras=True)
    assert refused.value.param == "loras" and "offloaded to disk" in refused.value.message
    in_memory = plan_memory(card, RTX_4090, 1280, 720, 81, "auto", ram_gib=256, loras=True)
    assert in_memory.group_offload and not in_memory.offload_to_disk
    cpu = Hardware("cpu", "float32", "CPU", 24.0, 2)
    low = plan_memory(get_card("tiny-wan"), cpu, 96, 64, 9, "low", loras=True)
    assert low.group_offload and not low.offload_to_disk and "LoRAs cannot load" in low.reason
