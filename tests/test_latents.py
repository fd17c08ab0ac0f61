"""A finished run is never lost: the denoised latents are saved before the VAE decode, a decode
that runs out of memory is retried with tiling, then slicing, then on the CPU, and
`openreel generate --resume` decodes saved latents without denoising again. Out-of-memory is
injected at the decoder boundary of the Wan twin's VAE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import WanTransformer3DModel
from diffusers.models.autoencoders.autoencoder_kl_wan import WanDecoder3d
from typer.testing import CliRunner

from openreel.cli import app
from openreel.render.encode import read_frames
from openreel.render.latents import FALLBACKS

runner = CliRunner()
ARGS = ["--model", "tiny-wan", "--seconds", "1", "--size", "96x64", "--steps", "2", "--seed", "5", "-q"]


def generate(output: Path, *extra: str) -> str:
    result = runner.invoke(app, ["generate", "a lighthouse at dusk", *ARGS, "--output", str(output), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def frames_of(path: Path) -> np.ndarray:
    return np.stack(list(read_frames(path)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, session_home: Path) -> np.ndarray:
    """The frames of an uninterrupted run (in the session's openreel folder, like the tests)."""
    output = tmp_path_factory.mktemp("reference") / "clip.mp4"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENREEL_HOME", str(session_home))
        generate(output)
    return frames_of(output)


def inject_oom(monkeypatch: pytest.MonkeyPatch, failures: float) -> dict[str, int]:
    """The VAE's decoder runs out of memory on its first ``failures`` calls (each failed attempt
    stops at its first call)."""
    calls = {"n": 0}
    forward = WanDecoder3d.forward

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] <= failures:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 40.00 GiB (injected)")
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(WanDecoder3d, "forward", failing)
    return calls


def count_transformer_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"n": 0}
    forward = WanTransformer3DModel.forward

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(WanTransformer3DModel, "forward", counted)
    return calls


@pytest.mark.parametrize("failures", [1, 2, 3])
def test_a_decode_that_runs_out_of_memory_falls_back_and_makes_the_same_video(
    failures: int, reference: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inject_oom(monkeypatch, failures)
    output = tmp_path / "clip.mp4"
    generate(output)
    np.testing.assert_array_equal(frames_of(output), reference)
    recipe = json.loads(output.with_suffix(".json").read_text())
    # The recipe says which fallbacks the decode needed: tiling, then slicing, then the CPU.
    assert recipe["variations"][0]["decode_fallbacks"] == list(FALLBACKS[:failures])
    assert not (tmp_path / "clip.latents.pt").exists()  # the video is whole: latents removed


def test_out_of_memory_everywhere_keeps_the_latents_and_resume_decodes_them(
    reference: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "clip.mp4"
    with monkeypatch.context() as patch:
        inject_oom(patch, float("inf"))
        result = runner.invoke(app, ["generate", "a lighthouse at dusk", *ARGS, "--output", str(output)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    latents = tmp_path / "clip.latents.pt"
    message = " ".join(result.output.split())
    assert "out of memory" in message and f"--resume {latents}" in message.replace("\n", "")
    assert latents.is_file() and not output.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.latents.pt"]  # no partial file

    transformer = count_transformer_calls(monkeypatch)
    resumed = runner.invoke(app, ["generate", "--resume", str(latents), "-q"])
    assert resumed.exit_code == 0, resumed.output
    assert transformer["n"] == 0  # decoded, not denoised again
    np.testing.assert_array_equal(frames_of(output), reference)
    assert not latents.exists()
    recipe = json.loads(output.with_suffix(".json").read_text())
    assert recipe["variations"][0]["seed"] == 5


def saved_latents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    with monkeypatch.context() as patch:
        inject_oom(patch, float("inf"))
        output = str(tmp_path / "clip.mp4")
        runner.invoke(app, ["generate", "a lighthouse at dusk", *ARGS, "--output", output])
    return tmp_path / "clip.latents.pt"


def fail_resume(latents: Path, *extra: str) -> str:
    result = runner.invoke(app, ["generate", "--resume", str(latents), *extra])
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    return " ".join(result.output.split())


def test_a_corrupt_latents_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latents = saved_latents(tmp_path, monkeypatch)
    whole = latents.read_bytes()
    latents.write_bytes(whole[: len(whole) // 2])
    assert "corrupt or not an openreel latents file" in fail_resume(latents)
    latents.write_bytes(b"not latents at all")
    assert "corrupt or not an openreel latents file" in fail_resume(latents)
    assert "does not exist" in fail_resume(tmp_path / "missing.latents.pt")
    assert not (tmp_path / "clip.mp4").exists()


def test_latents_of_another_plan_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latents = saved_latents(tmp_path, monkeypatch)
    data = torch.load(latents, weights_only=True)
    data["spec"]["steps"] = 3  # the same file claims another run
    torch.save(data, latents)
    assert "another plan" in fail_resume(latents)
    assert not (tmp_path / "clip.mp4").exists()
