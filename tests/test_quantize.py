"""int8 weight-only quantization (torchao) in the memory planner: what --dry-run says, what a
quantized twin makes, what its weights are, and what happens without torchao.

The frames checked are those the model stage hands to post-processing (``WindowFrames.final``,
floats in [0, 1]): the MP4 is a lossy H.264 of noise-like random-weight pictures, where two
encodes of frames 0.007 apart already differ by ~30 dB, which would hide what quantization did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tests.test_lora import make_lora
from typer.testing import CliRunner

from openreel.cli import app
from openreel.engine import Engine
from openreel.errors import SpecError
from openreel.hardware import Hardware
from openreel.models.catalog import get_card
from openreel.plan import plan_memory
from openreel.spec import VideoSpec

runner = CliRunner()
# Native size and fps: no retiming or scaling between the model's frames and the file.
SPEC = VideoSpec(
    "a lighthouse at dusk", model="tiny-wan", seconds=0.5, width=96, height=64, fps=16, steps=2, seed=5
)
RTX_4090 = Hardware("cuda", "bfloat16", "NVIDIA GeForce RTX 4090", 23.0, 16)
CPU_32 = Hardware("cpu", "float32", "CPU", 32.0, 2)
# int8 weight-only keeps each weight within half a step of its row's 255 levels (about 0.4% of
# the row's largest weight); through the twin's 2 steps of a few layers the frames stay well
# inside a 1% RMS error of their range, i.e. above 40 dB (measured here: ~62 dB). A broken
# quantization (a wrong scale, a transposed or unscaled weight) falls below 20 dB.
MIN_PSNR_DB = 40.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def stored_bytes(module: torch.nn.Module, *, linear_weights: bool = False) -> int:
    """Bytes a module's weights (or only its Linear layers' weights) occupy: a torchao tensor
    counts its int8 data and its scales."""
    from torchao.utils import TorchAOBaseTensor

    if linear_weights:
        parameters = [m.weight for m in module.modules() if isinstance(m, torch.nn.Linear)]
    else:
        parameters = list(module.parameters())
    total = 0
    for parameter in parameters:
        if isinstance(parameter, TorchAOBaseTensor):
            names, _ = parameter.__tensor_flatten__()
            total += sum(getattr(parameter, name).nbytes for name in names)
        else:
            total += parameter.nbytes
    return total


def made(engine: Engine, spec: VideoSpec, output: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Generate ``spec`` at ``output``: the model stage's frames and the recipe."""
    frames: list[np.ndarray] = []
    run_window = engine.runner.run_window

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = run_window(*args, **kwargs)
        frames.append(result.final)
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.runner, "run_window", recording)
        result = engine.generate(spec, output)
    assert output.is_file()
    return np.concatenate(frames), json.loads(result.outputs[0].recipe.read_text())


@dataclass
class Run:
    frames: np.ndarray
    memory: dict[str, Any]  # the recipe's memory plan
    loads: int  # pipelines the runner had loaded after it
    transformer: Any
    text_encoder: Any


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """One warm runner (a server worker's) through: plain, int8 (--memory low), int8 with a LoRA,
    plain with the LoRA. The pipelines' models are kept for the checks, not reused by the runner."""
    folder = tmp_path_factory.mktemp("quantize")
    lora = ({"source": str(make_lora("tiny-wan", folder / "lora")), "scale": 1.0},)
    engine = Engine()
    made_runs = {}
    for name, spec in (
        ("plain", replace(SPEC, memory="auto")),
        ("int8", replace(SPEC, memory="low")),
        ("int8+lora", replace(SPEC, memory="low", loras=lora)),
        ("plain+lora", replace(SPEC, memory="auto", loras=lora)),
    ):
        frames, recipe = made(engine, spec, folder / f"{name}.mp4")
        pipe = engine.runner._pipe
        made_runs[name] = Run(
            frames, recipe["plan"]["memory"], engine.runner.loads, pipe.transformer, pipe.text_encoder
        )
    return made_runs


def test_low_runs_the_twin_int8_close_to_the_plain_run(runs: dict[str, Run]) -> None:
    plain, int8 = runs["plain"], runs["int8"]
    assert plain.memory["quantize"] == []
    assert int8.memory["quantize"] == ["transformer", "text_encoder"]  # UMT5 is Wan 1.3B's large half
    assert "int8 weight-only quantization of transformer and text_encoder" in int8.memory["reason"]
    assert not int8.memory["layerwise_fp8"]
    assert int8.frames.shape == plain.frames.shape
    assert np.abs(int8.frames - plain.frames).max() > 0 and psnr(int8.frames, plain.frames) > MIN_PSNR_DB


def test_the_int8_models_hold_int8_weights_and_take_less_memory(runs: dict[str, Run]) -> None:
    plain, int8 = runs["plain"], runs["int8"]
    # Every Linear of the blocks and of the text encoder (Wan keeps its time embedder in float32).
    for model in (int8.transformer.blocks, int8.text_encoder):
        linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        assert linears and all(linear.weight.qdata.dtype == torch.int8 for linear in linears)
    # A float32 Linear weight becomes a byte a weight plus a float32 scale a row (the twin's rows
    # are 24-32 wide: about 0.25 + 1 / 24 of the size); the whole transformer, with its float32
    # time embedder, norms and biases, shrinks less.
    linear_bytes = stored_bytes(int8.transformer.blocks, linear_weights=True)
    assert linear_bytes < stored_bytes(plain.transformer.blocks, linear_weights=True) / 3
    assert stored_bytes(int8.transformer) < 0.6 * stored_bytes(plain.transformer)


def test_a_warm_int8_pipeline_serves_only_runs_planned_with_int8(runs: dict[str, Run]) -> None:
    # Each run's memory plan differs (low with a LoRA offloads in memory, not to disk), so each
    # loads its own pipeline; the last, planned without int8, got float weights.
    assert [runs[name].loads for name in ("plain", "int8", "int8+lora", "plain+lora")] == [1, 2, 3, 4]
    to_q = runs["plain+lora"].transformer.blocks[0].attn1.to_q
    assert type(to_q) is torch.nn.Linear and not hasattr(to_q.weight, "qdata")


def test_a_lora_acts_on_the_int8_transformer_as_on_the_plain_one_and_unloads(runs: dict[str, Run]) -> None:
    change = runs["int8+lora"].frames - runs["int8"].frames
    error = runs["int8+lora"].frames - runs["plain+lora"].frames
    # The LoRA's change is there, and int8 moves the LoRA's frames by a tenth of it at most.
    assert np.sqrt(np.mean(change**2)) > 0.005
    assert np.sqrt(np.mean(error**2)) < 0.1 * np.sqrt(np.mean(change**2))
    to_q = runs["int8+lora"].transformer.blocks[0].attn1.to_q
    assert type(to_q) is torch.nn.Linear and to_q.weight.qdata.dtype == torch.int8  # unloaded, still int8


def test_dry_run_says_what_int8_saves_and_where_it_replaces_float8() -> None:
    result = runner.invoke(app, ["generate", "a boat", "--model", "tiny-wan", "--memory", "low", "--dry-run"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "int8 weight-only quantization of transformer and text_encoder (torchao" in said
    assert "offloading to disk (all but the int8 transformer and text_encoder)" in said

    card = get_card("wan2.1-t2v-14b")
    # A CPU whose memory holds the int8 weights: no offloading to disk at all.
    cpu = plan_memory(card, CPU_32, 1280, 720, 81)
    assert cpu.quantize == ("transformer",) and not cpu.group_offload and not cpu.offload_to_disk
    assert "fits without offloading to disk" in cpu.reason
    # A GPU offloading to 40 GiB of RAM: int8 (not float8) makes the 38 GiB of weights fit there.
    gpu = plan_memory(card, RTX_4090, 1280, 720, 81, ram_gib=40)
    assert gpu.group_offload and gpu.quantize == ("transformer",) and not gpu.layerwise_fp8
    assert not gpu.offload_to_disk
    # Enough RAM for the weights as they are: offloading alone, lossless.
    assert plan_memory(card, RTX_4090, 1280, 720, 81, ram_gib=256).quantize == ()
    # fast never quantizes: refused where the model does not fit whole.
    with pytest.raises(SpecError) as refused:
        plan_memory(card, RTX_4090, 1280, 720, 81, "fast")
    assert refused.value.param == "memory" and "--memory auto" in refused.value.message


def test_int8_lets_loras_run_where_only_disk_would_hold_the_weights() -> None:
    card = get_card("wan2.1-t2v-14b")
    # 32 GiB of RAM: the 38 GiB of bf16 weights need disk (no LoRAs there); int8 fits in memory.
    low = plan_memory(card, RTX_4090, 1280, 720, 81, "low", ram_gib=32, loras=True)
    assert low.quantize == ("transformer",) and not low.offload_to_disk and not low.layerwise_fp8
    with pytest.raises(SpecError) as refused:  # 16 GiB: not even int8 fits
        plan_memory(card, RTX_4090, 1280, 720, 81, "low", ram_gib=16, loras=True)
    assert refused.value.param == "loras" and "offloaded to disk" in refused.value.message


def test_without_torchao_the_plan_says_what_installing_it_would_save(tmp_path: Path) -> None:
    """torchao made unimportable in a fresh process: the plans fall back to float8 and disk,
    and say what `openreel[quant]` would add; a LoRA that int8 would have let run is refused
    with the same advice."""
    script = """
import sys
sys.modules["torchao"] = None  # import torchao fails, as where it is not installed
from openreel.hardware import Hardware
from openreel.models.catalog import get_card
from openreel.plan import plan_memory
from openreel.errors import SpecError
gpu = Hardware("cuda", "bfloat16", "NVIDIA GeForce RTX 4090", 23.0, 16)
card = get_card("wan2.1-t2v-14b")
low = plan_memory(card, gpu, 1280, 720, 81, "low", ram_gib=40)
print(low.quantize, low.layerwise_fp8, low.reason)
try:
    plan_memory(card, gpu, 1280, 720, 81, "low", ram_gib=32, loras=True)
except SpecError as error:
    print(error.param, error.message)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    plan_line, refusal = done.stdout.strip().splitlines()
    assert plan_line.startswith("() True low:")
    assert (
        "`pip install 'openreel[quant]'` would add int8 weight-only quantization of transformer" in plan_line
    )
    assert refusal.startswith("loras ") and "openreel[quant]" in refusal


def test_torchaos_import_warnings_stay_out_of_openreels_output() -> None:
    """diffusers imports torchao whenever it is installed; torchao then warns about CUDA kernels a
    CPU torch cannot load, torch about its Enum registrations, diffusers about older torchao
    classes. An openreel process prints none of it."""
    script = """
import openreel
import diffusers.quantizers.torchao.torchao_quantizer  # imports torchao, as a quantized load does
print("loaded")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "loaded" and done.stderr.strip() == ""
