"""--quality draft (turbo): what it changes is in the plan and the recipe, and it does less work
where the family allows: half the steps, and above 8 steps the family's transformer cache
(render.caching), counted in transformer block evaluations on the twins; never at 8 steps or
fewer. FirstBlockCache until a standard run has measured the model's MagCache curve, then MagCache
(Wan, LTX-Video, CogVideoX, Mochi, HunyuanVideo); TaylorSeer for the families diffusers' block
registry does not know (LTX-2, HunyuanVideo 1.5)."""

# ruff: noqa: F811  (pytest fixtures are imported by name and then taken as arguments)
from __future__ import annotations

import functools
import json
from pathlib import Path

import av
import pytest
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import WanDecoder3d
from diffusers.models.transformers.transformer_ltx2 import LTX2VideoTransformerBlock
from diffusers.models.transformers.transformer_wan import WanTransformerBlock
from tests.test_first_hour import fake_download, hf_cache  # noqa: F401 - a fixture
from tests.test_lora import make_lora
from typer.testing import CliRunner

from openreel.cli import app

runner = CliRunner()
ARGS = ["--model", "tiny-wan", "--seconds", "1", "--size", "96x64", "--seed", "2", "-q"]


@pytest.fixture(autouse=True)
def own_home(tmp_path: Path, session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An openreel folder of this test's own, with the session's tiny builds: a curve measured by
    one test's standard run must not change another's draft."""
    home = tmp_path / "home"
    home.mkdir()
    (session_home / "models").mkdir(exist_ok=True)
    (home / "models").symlink_to(session_home / "models")
    monkeypatch.setenv("OPENREEL_HOME", str(home))
    return home


def make(
    tmp_path: Path,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    *extra: str,
    block: type = WanTransformerBlock,
    args: list[str] = ARGS,
    decoded: list | None = None,
) -> tuple[dict, int]:
    """The recipe of a run and how many transformer blocks (of class ``block``) it evaluated;
    ``decoded`` collects the latents Wan's VAE decoder received."""
    calls = {"n": 0}
    forward, decode = block.forward, WanDecoder3d.forward

    @functools.wraps(forward)  # the cache hook reads the block's signature
    def counted(self, *args, **kwargs):
        calls["n"] += 1
        return forward(self, *args, **kwargs)

    def recording(self, x, *args, **kwargs):
        if decoded is not None:
            decoded.append(x.detach().clone())
        return decode(self, x, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(block, "forward", counted)
        patch.setattr(WanDecoder3d, "forward", recording)
        output = tmp_path / f"{name}.mp4"
        result = runner.invoke(app, ["generate", "a harbour", *args, "--output", str(output), *extra])
    assert result.exit_code == 0, result.output
    return json.loads(output.with_suffix(".json").read_text()), calls["n"]


def test_a_standard_run_measures_the_magcache_curve_without_changing_its_latents(
    tmp_path: Path, monkeypatch, own_home: Path
) -> None:
    measuring: list[torch.Tensor] = []
    first, full = make(tmp_path, "first", monkeypatch, "--steps", "12", decoded=measuring)
    assert first["plan"]["cache"] == "MagCache:calibrate" and "measures" in first["plan"]["quality_note"]
    curve = json.loads((own_home / "calibration" / "magcache" / "tiny-wan.json").read_text())
    assert curve["steps"] == 12 and len(curve["ratios"]) == 12

    # Measured once: the next standard run runs bare, and its latents are the measuring run's.
    plain: list[torch.Tensor] = []
    second, again = make(tmp_path, "second", monkeypatch, "--steps", "12", decoded=plain)
    assert second["plan"]["cache"] is None and again == full
    assert torch.equal(torch.cat(measuring), torch.cat(plain))

    # A draft runs MagCache on that curve (carried in the recipe, so a replay needs no file).
    draft, cached = make(tmp_path, "draft", monkeypatch, "--steps", "12", "--quality", "draft")
    assert draft["plan"]["cache"] == "MagCache:0.06" and draft["plan"]["cache_ratios"] == curve["ratios"]
    assert "MagCache" in draft["plan"]["quality_note"] and cached < full


def test_without_a_curve_draft_runs_firstblockcache_and_the_next_standard_run_measures_one(
    tmp_path: Path, monkeypatch, own_home: Path
) -> None:
    path = own_home / "calibration" / "magcache" / "tiny-wan.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")  # unreadable: as if never measured
    draft, cached = make(tmp_path, "draft", monkeypatch, "--steps", "12", "--quality", "draft")
    assert draft["plan"]["steps"] == 12 and draft["plan"]["cache"] == "FirstBlockCache:0.2"
    assert "a standard run of this model measures the curve" in draft["plan"]["quality_note"]
    standard, full = make(tmp_path, "standard", monkeypatch, "--steps", "12")
    assert standard["plan"]["cache"] == "MagCache:calibrate" and cached < full
    assert len(json.loads(path.read_text())["ratios"]) == 12


def test_draft_runs_taylorseer_where_diffusers_does_not_know_the_blocks(tmp_path: Path, monkeypatch) -> None:
    # LTX-2 (video and sound in one transformer): the blocks are skipped on predicted steps and
    # both output projections extrapolated; the clip keeps its sound.
    args = ["--model", "tiny-ltx-2", "--seconds", "1", "--size", "96x64", "--seed", "2", "-q"]
    standard, full = make(
        tmp_path, "standard", monkeypatch, "--steps", "12", block=LTX2VideoTransformerBlock, args=args
    )
    draft, cached = make(
        tmp_path,
        "draft",
        monkeypatch,
        "--steps",
        "12",
        "--quality",
        "draft",
        block=LTX2VideoTransformerBlock,
        args=args,
    )
    assert standard["plan"]["cache"] is None and draft["plan"]["cache"] == "TaylorSeer:3"
    assert "TaylorSeer" in draft["plan"]["quality_note"] and cached < full
    with av.open(str(tmp_path / "draft.mp4")) as container:
        assert container.streams.audio and container.streams.audio[0].frames > 0


def test_draft_says_why_a_run_goes_uncached(tmp_path: Path) -> None:
    def dry(*args: str) -> str:
        result = runner.invoke(app, ["generate", "a harbour", "--quality", "draft", "--dry-run", *args])
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    assert "diffusion forcing denoises frames at different noise levels" in dry(
        "--model", "tiny-skyreels", "--seconds", "12", "--steps", "12"
    )
    assert "no block cache (its pyramid stages" in dry("--model", "tiny-pyramid-flow", "--steps", "12")


def test_draft_halves_the_default_steps_and_never_caches_few_steps(tmp_path: Path, monkeypatch) -> None:
    standard, full = make(tmp_path, "standard", monkeypatch)
    draft, fewer = make(tmp_path, "draft", monkeypatch, "--quality", "draft")
    assert draft["plan"]["steps"] == standard["plan"]["steps"] // 2
    assert draft["plan"]["cache"] is None and "no block cache" in draft["plan"]["quality_note"]
    assert fewer == full // 2  # every block, every (remaining) step


def test_an_unknown_quality_is_one_clear_error() -> None:
    result = runner.invoke(app, ["generate", "a harbour", *ARGS, "--quality", "turbo", "--dry-run"])
    assert result.exit_code != 0 and "unknown quality 'turbo'" in " ".join(result.output.split())


def test_draft_with_a_refinement_pass_runs_the_refiner_uncached(tmp_path: Path, monkeypatch) -> None:
    # A square frame from a 16:9 model: Lanczos, then Wan's video-to-video refinement, whose
    # pipeline sets no cache context (a cache hook left on its transformer fails the run).
    draft, _ = make(tmp_path, "square", monkeypatch, "--steps", "12", "--quality", "draft", "--size", "96x96")
    assert draft["plan"]["upscale"]["method"] == "v2v" and draft["plan"]["cache"] == "FirstBlockCache:0.2"


def test_draft_runs_a_models_distilled_checkpoint_where_it_is_on_this_machine() -> None:
    # LTX-Video 13B dev's draft is its distilled sibling (8 steps, no CFG); a twin's is the
    # sibling's twin, always built. The dry run shows the model that will run and why.
    twin = runner.invoke(
        app, ["generate", "a harbour", "--model", "tiny-ltx-video-13b", "--quality", "draft", "--dry-run"]
    )
    shown = " ".join(twin.output.split())
    assert twin.exit_code == 0, twin.output
    assert "model tiny-ltx-video-13b-distilled" in shown and "steps / guidance 8 / 1" in shown
    assert "the distilled checkpoint of tiny-ltx-video-13b" in shown
    # Without the distilled weights here, the draft stays on the model asked and says what to pull.
    real = runner.invoke(
        app, ["generate", "a harbour", "--model", "ltx-video-13b", "--quality", "draft", "--dry-run"]
    )
    shown = " ".join(real.output.split())
    assert real.exit_code == 0, real.output
    assert "model ltx-video-13b " in shown and "openreel models pull ltx-video-13b-distilled" in shown


def test_draft_adds_a_models_step_distilled_lora_from_the_hub_cache(tmp_path: Path, hf_cache: Path) -> None:
    from openreel.models.catalog import get_card

    source = get_card("wan2.1-t2v-14b").options["draft_lora"]["source"]
    repo, filename = "/".join(source.split("/")[:2]), "/".join(source.split("/")[2:])
    args = ["generate", "a harbour", "--model", "tiny-wan2.1-t2v-14b", "--quality", "draft"]
    # Not in the cache: the draft is the cached one, and says what to fetch for a faster one.
    missing = " ".join(runner.invoke(app, [*args, "--dry-run"]).output.split())
    assert f"hf download {repo}" in missing and "4-step draft" in missing

    # In the cache (a LoRA made on the twin, where the real one would lie): it runs with it, at
    # the steps and guidance it was distilled for, and credits it.
    fake_download(
        hf_cache, repo, {filename: make_lora("tiny-wan2.1-t2v-14b", tmp_path / "made").read_bytes()}
    )
    output = tmp_path / "draft.mp4"
    result = runner.invoke(app, [*args, "--seconds", "1", "--size", "96x64", "-q", "--output", str(output)])
    assert result.exit_code == 0, result.output
    recipe = json.loads(output.with_suffix(".json").read_text())
    assert (recipe["plan"]["steps"], recipe["plan"]["guidance"]) == (4, 1.0)
    assert recipe["spec"]["extra"]["draft_lora"] == source
    assert "step-distilled LoRA lightx2v_T2V_14B" in recipe["plan"]["quality_note"]
    assert [lora["id"] for lora in recipe["credits"]["loras"]] == [Path(filename).name]
