"""The newer cards (issue 16): Wan 2.2 A14B text- and image-to-video, and long clips by diffusion
forcing. Each twin runs through the CLI to a file on disk; the A14B twin's two experts are watched
at their forward calls during a real run; the planner's choices are read from what it tells the
user (memory plan, default model, --dry-run)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from openreel.cli import app
from openreel.hardware import Hardware
from openreel.models.catalog import get_card
from openreel.models.reference import load_reference
from openreel.render.encode import probe

runner = CliRunner()

H200 = Hardware("cuda", "bfloat16", "NVIDIA H200", 139.0, 16)
H100 = Hardware("cuda", "bfloat16", "NVIDIA H100 80GB HBM3", 79.6, 16)


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("new-cards") / "first.png"
    y, x = np.mgrid[0:64, 0:96]
    Image.fromarray(np.stack([x * 2 % 255, y * 4 % 255, (x + y) % 255], -1).astype("uint8")).save(path)
    return str(path)


@pytest.mark.parametrize(
    ("model", "needs_image"),
    # The text-to-video twins write theirs in the expert and guidance tests below.
    [("tiny-wan2.2-i2v-a14b", True), ("tiny-hunyuanvideo-1.5-i2v", True)],
)
def test_the_new_twins_write_the_asked_video(model, needs_image, image, tmp_path):
    out = tmp_path / "out.mp4"
    # Below the twins' native 96x64 (the smallest a spec takes) the planner generates at that size.
    size = (96, 64) if get_card(model).options.get("fixed_size") else (64, 64)
    args = ["generate", "a kite over the sea", "--model", model, "--seconds", "1"]
    args += ["--size", f"{size[0]}x{size[1]}"]
    if needs_image:
        args += ["--image", image]
    fps = get_card(model).fps
    run(*args, "--steps", "2", "--fps", str(fps), "--output", str(out), "-q")
    info = probe(out)
    assert (info.width, info.height, info.fps) == (*size, fps)
    assert info.frames == fps  # one second at the card's fps, after trimming the 4k+1 frames


def test_hunyuanvideo_15_guides_at_the_asked_scale(tmp_path, monkeypatch):
    """HunyuanVideo 1.5's pipeline takes its guidance from its guider component, not a call
    argument: the scale that combines the conditional and unconditional predictions during a real
    run is the one asked for, not the published 6."""
    from diffusers import ClassifierFreeGuidance

    scales: list[float] = []
    combine = ClassifierFreeGuidance.forward

    def recording(self, *args, **kwargs):
        scales.append(self.guidance_scale)
        return combine(self, *args, **kwargs)

    monkeypatch.setattr(ClassifierFreeGuidance, "forward", recording)
    run(
        "generate", "a kite", "--model", "tiny-hunyuan15", "--seconds", "1", "--size", "64x64",
        "--steps", "2", "--guidance", "3.5", "--fps", "24", "--output", str(tmp_path / "a.mp4"), "-q",
    )  # fmt: skip
    assert scales == [3.5, 3.5]  # one combination a step
    info = probe(tmp_path / "a.mp4")
    assert (info.width, info.height, info.frames) == (64, 64, 24)


def test_the_a14b_twin_hands_high_noise_steps_to_one_expert_and_the_rest_to_the_other(tmp_path, monkeypatch):
    """Every forward call of a Wan transformer during a real CLI run, with the timestep it got:
    the calls at or above the published boundary (0.875 x 1000) go to one expert, those below it
    to the other."""
    from diffusers import WanTransformer3DModel

    calls: dict[int, list[float]] = defaultdict(list)
    forward = WanTransformer3DModel.forward

    def recording(self, *args, **kwargs):
        timestep = kwargs["timestep"] if "timestep" in kwargs else args[1]
        calls[id(self)].append(float(timestep.flatten()[0]))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(WanTransformer3DModel, "forward", recording)
    # Four steps at shift 12: timesteps ~1000, 973, 923, 800 (the last below the boundary).
    run(
        "generate", "a kite", "--model", "tiny-wan2.2-t2v-a14b", "--seconds", "1", "--size", "64x64",
        "--steps", "4", "--fps", "16", "--output", str(tmp_path / "a.mp4"), "-q",
    )  # fmt: skip
    info = probe(tmp_path / "a.mp4")
    assert (info.width, info.height, info.frames) == (64, 64, 16)  # one second at 16 fps
    boundary = load_reference("wan2.2-t2v-a14b")["pipeline_config"]["boundary_ratio"] * 1000
    assert len(calls) == 2, "both experts run, and only they"
    high, low = sorted(calls.values(), key=lambda steps: -max(steps))
    assert high and min(high) >= boundary
    assert low and max(low) < boundary
    # Classifier-free guidance: two passes per step, each on the expert of that step.
    assert len(high) + len(low) == 2 * 4


def test_a14b_memory_counts_both_experts_and_its_time_one():
    """Both experts are resident unless offloaded: the weights hold two 14B transformers, so a
    48 GB card offloads them where the one-expert Wan 2.1 14B needs only VAE tiling; an H200 holds
    them whole."""
    from openreel.plan import plan_memory

    two, one = get_card("wan2.2-t2v-a14b"), get_card("wan2.1-t2v-14b")
    expert_gib = 2 * load_reference("wan2.2-t2v-a14b")["params"]["transformer_2"] / 2**30
    assert two.weights_gib == pytest.approx(one.weights_gib + expert_gib, abs=0.2)
    assert two.params_b == one.params_b  # one expert runs per step
    l40s = Hardware("cuda", "bfloat16", "NVIDIA L40S", 44.4, 16)
    assert plan_memory(two, l40s, 1280, 720, 81).group_offload
    assert not plan_memory(one, l40s, 1280, 720, 81).group_offload
    assert plan_memory(two, H200, 1280, 720, 81).reason.startswith("fits in memory")


def test_the_default_choice_weighs_a14b_by_quality():
    """With nothing downloaded, the model openreel names to pull: on an H200 the best that fits is
    at least as good as Wan 2.2 A14B; on an 80 GB card A14B does not fit and is not named."""
    from openreel.engine import default_choice

    a14b = get_card("wan2.2-t2v-a14b")
    assert default_choice(H200).best_fit.quality >= a14b.quality > get_card("wan2.1-t2v-14b").quality
    assert default_choice(H100).best_fit.id != a14b.id
    assert default_choice(replace(H200, memory_gib=100.0), "i2v").best_fit.quality >= a14b.quality


def dry_run(*args: str) -> str:
    return run("generate", "a kite over the sea", *args, "--dry-run")


def test_dry_run_names_diffusion_forcing_for_a_minute_and_windows_where_it_cannot():
    """--seconds 60 on the diffusion-forcing card: one call, and the plan says why; a card without
    such a pipeline, or a prompt that changes over time, gets windows, and the plan says why."""
    forcing = dry_run("--model", "skyreels-v2-df-1.3b-540p", "--seconds", "60")
    words = " ".join(forcing.split())
    assert "diffusion forcing" in words and "passes of 97 frames" in words, forcing
    assert "1441 frames at 24 fps" in words  # the whole minute in the one call
    windows = " ".join(dry_run("--model", "wan2.1-t2v-1.3b", "--seconds", "20").split())
    assert "windows of native frames" in windows and "no diffusion-forcing pipeline" in windows
    changing = " ".join(
        dry_run("--model", "skyreels-v2-df-1.3b-540p", "--seconds", "20", "--at", "10:a storm").split()
    )
    assert "windows of native frames" in changing and "the prompt changes over time" in changing


def test_a_long_clip_by_diffusion_forcing_has_every_frame(tmp_path, monkeypatch):
    """Past one pass (97 frames) the twin makes the clip in one diffusion-forcing call: the
    transformer never sees more than a pass of latent frames (25), it runs two passes, and the
    file holds the asked seconds at the card's fps, at the asked size."""
    from diffusers import SkyReelsV2Transformer3DModel

    seen: list[int] = []
    forward = SkyReelsV2Transformer3DModel.forward

    def recording(self, hidden_states, *args, **kwargs):
        seen.append(hidden_states.shape[2])
        return forward(self, hidden_states, *args, **kwargs)

    monkeypatch.setattr(SkyReelsV2Transformer3DModel, "forward", recording)
    out = tmp_path / "long.mp4"
    # 4.2 s at 24 fps: 101 frames (26 latent frames), one past a pass: the smallest two-pass clip.
    run(
        "generate", "a kite", "--model", "tiny-skyreels", "--seconds", "4.2",
        "--size", "64x64", "--steps", "2", "--output", str(out), "-q",
    )  # fmt: skip
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert recipe["plan"]["long_clip"] == "diffusion forcing"
    assert max(seen) == 25  # one pass of 97 frames at a time
    # Two passes, each two steps with classifier-free guidance (two calls a step).
    assert len(seen) == 2 * 2 * 2
    info = probe(out)
    assert (info.width, info.height, info.fps) == (64, 64, 24)
    assert info.frames == round(4.2 * 24)


@pytest.mark.parametrize("frames", [1, 13])
def test_the_diffusion_forcing_twin_holds_an_image_or_a_clip_tail(frames, monkeypatch):
    """Image-to-video and extension on the diffusion-forcing card, by latent anchoring on one pass:
    the latents its VAE decoder receives begin with the given frames' own latents."""
    import torch

    from openreel.engine import Engine
    from openreel.hardware import detect
    from openreel.models.weights import weights_folder
    from openreel.plan import make_plan
    from openreel.render.conditioning import encode_mode
    from openreel.spec import VideoSpec
    from test_anchoring import pattern, spy_decoder

    card = get_card("tiny-skyreels")
    spec = VideoSpec(
        prompt="the scene comes alive", model=card.id, seconds=1, width=64, height=64, fps=24, steps=3, seed=9
    ).validated()
    plan = make_plan(spec, card, detect())
    engine = Engine()
    folder = weights_folder(card)
    pipe = engine.runner.pipeline(card, folder, plan)
    decoded = spy_decoder(pipe, monkeypatch)
    given = pattern(frames, plan.height, plan.width)
    engine.runner.run_window(card, folder, plan, plan.windows[0], plan.seeds[0], tail=given)
    (z,) = decoded
    with torch.inference_mode():
        expected = encode_mode(pipe.vae, given)
    count = expected.shape[2]
    assert torch.allclose(z[:, :, :count].float(), expected.float(), atol=1e-4, rtol=1e-4)


def test_diffusion_forcing_progress_counts_on_through_its_passes(tmp_path):
    """What a person watching sees: the passes of one diffusion-forcing call are one denoising
    stage whose steps count on (2 passes x 2 steps), never going back nor called refinement."""
    from openreel.engine import Engine
    from openreel.spec import VideoSpec

    spec = VideoSpec(
        prompt="a kite", model="tiny-skyreels", seconds=4.2, width=64, height=64, fps=24, steps=2, seed=3
    ).validated()
    seen = []
    Engine().generate(spec, tmp_path / "long.mp4", on_progress=seen.append)
    denoising = [update for update in seen if update.stage not in ("loading", "finishing", "done")]
    assert {update.stage for update in denoising} == {"denoising"}
    assert [update.step for update in denoising] == [1, 2, 3, 4]
    fractions = [update.fraction for update in seen]
    assert fractions == sorted(fractions)


def test_a_hunyuanvideo_15_i2v_draft_runs_the_step_distilled_checkpoint(image, tmp_path, monkeypatch):
    """Draft of HunyuanVideo 1.5 I2V runs its step-distilled sibling (a twin's is the sibling's
    twin): the sibling's steps kept (it is already the fast path), no classifier-free guidance (one
    transformer pass a step) and MeanFlow's second timestep reaching the transformer each step."""
    from diffusers import HunyuanVideo15Transformer3DModel

    passes: list[bool] = []
    forward = HunyuanVideo15Transformer3DModel.forward

    def recording(self, *args, **kwargs):
        passes.append(kwargs.get("timestep_r") is not None)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(HunyuanVideo15Transformer3DModel, "forward", recording)
    out = tmp_path / "draft.mp4"
    run(
        "generate", "a kite over the sea", "--model", "tiny-hunyuanvideo-1.5-i2v", "--image", image,
        "--seconds", "1", "--size", "96x64", "--quality", "draft", "--output", str(out), "-q",
    )  # fmt: skip
    recipe = json.loads(out.with_suffix(".json").read_text())
    assert recipe["plan"]["model_id"] == "tiny-hunyuanvideo-1.5-i2v-8step"
    assert "the distilled checkpoint of tiny-hunyuanvideo-1.5-i2v" in recipe["plan"]["quality_note"]
    steps = get_card("tiny-hunyuanvideo-1.5-i2v-8step").default_steps
    assert recipe["plan"]["steps"] == steps and recipe["plan"]["guidance"] == 1.0
    assert passes == [True] * steps
    # The real card: without its weights here, the draft stays and says what to pull.
    dry = run(
        "generate",
        "a kite",
        "--model",
        "hunyuanvideo-1.5-i2v",
        "--image",
        image,
        "--quality",
        "draft",
        "--dry-run",
    )
    assert "openreel models pull hunyuanvideo-1.5-i2v-8step" in " ".join(dry.split())
    # Asked of the step-distilled card itself, a draft keeps its 8 steps (not 4).
    model = ("--model", "hunyuanvideo-1.5-i2v-8step")
    dry = run("generate", "a kite", *model, "--image", image, "--quality", "draft", "--dry-run")
    assert "steps / guidance 8 / 1" in " ".join(dry.split())
