from dataclasses import replace

import pytest

from openreel.errors import SpecError
from openreel.hardware import Hardware
from openreel.models.catalog import all_cards, get_card
from openreel.plan import generation_size, make_plan
from openreel.spec import VideoSpec
from openreel.styles import get_style

CPU = Hardware("cpu", "float32", "CPU", 16.0, 2)


def plan_for(model: str, **spec):
    return make_plan(VideoSpec(prompt="a boat", model=model, **spec).validated(), get_card(model), CPU)


# Cards that start a video from text, or from an image (the dedicated image-to-video checkpoints).
STARTING = [card for card in all_cards() if {"t2v", "i2v"} & card.modes]


def start(card) -> dict:
    """The mode fields of a spec that starts a video on ``card``: text when it can, else an image."""
    return {} if "t2v" in card.modes else {"mode": "i2v", "image": "ref.png"}


@pytest.mark.parametrize("card", STARTING, ids=lambda card: card.id)
def test_every_card_plans_valid_frames_and_sizes(card):
    seconds = min(4, int(card.max_seconds))
    spec = VideoSpec(prompt="x", model=card.id, seconds=seconds, width=1280, height=720, **start(card))
    plan = make_plan(spec.validated(), card, CPU)
    assert card.valid_frames(plan.num_frames)
    assert plan.num_frames >= spec.seconds * card.fps
    assert plan.width % card.size_multiple == 0 and plan.height % card.size_multiple == 0
    assert plan.width * plan.height <= card.native_area * 1.1
    assert (plan.out_width, plan.out_height, plan.out_fps, plan.out_frames) == (
        1280,
        720,
        24,
        spec.seconds * 24,
    )


def test_frame_rules():
    assert plan_for("wan2.1-t2v-1.3b", seconds=5).num_frames == 81  # 4k+1 at 16 fps
    assert plan_for("ltx-video-2b", seconds=4).num_frames == 97  # 8k+1 at 24 fps
    assert plan_for("mochi-1", seconds=5).num_frames == 151  # 6k+1 at 30 fps
    assert plan_for("cogvideox-5b", seconds=6).num_frames == 49  # 4k+1 at 8 fps


def test_generation_keeps_aspect_and_native_area():
    card = get_card("wan2.1-t2v-1.3b")
    assert generation_size(card, 854, 480) == (848, 480)
    width, height = generation_size(card, 1080, 1920)
    assert width < height and width * height <= card.native_area * 1.05
    # Smaller than native: generate at the asked size (snapped), never upscale needlessly.
    assert generation_size(card, 320, 320) == (320, 320)


def test_too_long_is_a_clear_error():
    with pytest.raises(
        SpecError, match=r"wan2.1-t2v-1.3b makes at most 20 s \(in windows of 5.06 s\)"
    ) as info:
        plan_for("wan2.1-t2v-1.3b", seconds=21)
    assert info.value.param == "seconds"
    assert plan_for("ltx-video-2b", seconds=60).windows  # LTX-Video goes to a minute


@pytest.mark.parametrize("card", STARTING, ids=lambda card: card.id)
def test_long_clips_are_covered_by_overlapping_windows(card):
    seconds = min(10, card.max_total_seconds)
    plan = plan_for(card.id, seconds=seconds, width=1920, height=1080, **start(card))
    windows = plan.windows
    assert sum(w.new_frames for w in windows) == plan.num_frames >= seconds * card.fps
    if plan.long_clip == "diffusion forcing":
        # One pipeline call makes the whole clip, pass after pass (plan_long_clip).
        assert len(windows) == 1 and card.frames_for(seconds) == windows[0].num_frames > card.max_frames
        return
    for before, after in zip(windows, windows[1:], strict=False):
        assert card.valid_frames(after.num_frames) and after.overlap > 0
        # Each window starts `overlap` frames before the previous one ends.
        assert after.start == before.start + before.num_frames - after.overlap
        assert (after.overlap - 1) % card.frame_step == 0
    assert card.valid_frames(windows[0].num_frames)


def test_prompt_schedule_steers_windows():
    spec = VideoSpec(
        prompt="a kite on the beach",
        model="tiny-wan",
        seconds=12,
        style="anime",
        prompt_schedule=[[5, "the kite flies higher"], [9.5, "night falls"]],
    ).validated()
    plan = make_plan(spec, get_card("tiny-wan"), CPU, get_style("anime"))
    prompts = [w.prompt for w in plan.windows]
    assert (
        prompts[0] == "anime style, a kite on the beach, clean line art, cel shading, vibrant painted "
        "backgrounds, expressive characters"
    )
    assert "the kite flies higher" in prompts[1] and prompts[1].startswith("anime style")
    assert "night falls" in prompts[-1]


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ([[0, "x"]], "outside the clip"),
        ([[3, "a"], [2, "b"]], "time order"),
        ([[2, " "]], "empty"),
        ([["soon", "x"]], "must be a number"),
    ],
)
def test_bad_prompt_schedule(schedule, fragment):
    with pytest.raises(SpecError, match=fragment):
        VideoSpec(prompt="x", seconds=4, prompt_schedule=schedule).validated()


def test_upscale_paths_follow_family_and_budget():
    ltx = plan_for("tiny-ltx", seconds=2, width=1920, height=1080)
    assert ltx.upscale.method == "latent" and (ltx.upscale.width, ltx.upscale.height) == (256, 128)
    small_wan = plan_for("tiny-wan", seconds=2, width=384, height=216)
    assert small_wan.upscale.method == "v2v" and small_wan.upscale.strength == 0.3
    assert small_wan.upscale.width % 16 == 0 and small_wan.upscale.width >= 384
    big_wan = plan_for("tiny-wan", seconds=2, width=1920, height=1080)
    assert big_wan.upscale.method == "lanczos" and "over this machine's" in big_wan.upscale.reason
    mochi = plan_for("tiny-mochi", seconds=2, width=1920, height=1080)
    assert mochi.upscale.method == "lanczos" and "no video-to-video" in mochi.upscale.reason
    assert plan_for("tiny-ltx", seconds=2, width=128, height=64).upscale.method == "none"
    gpu = replace(CPU, device="cuda", name="NVIDIA H100 80GB HBM3", memory_gib=79)
    real = make_plan(
        VideoSpec(prompt="x", model="wan2.1-t2v-1.3b", width=1920, height=1080).validated(),
        get_card("wan2.1-t2v-1.3b"),
        gpu,
    )
    assert real.upscale.method == "v2v"


def test_retime_and_estimate():
    plan = plan_for("tiny-wan", seconds=2, fps=24)
    assert plan.retime.method == "minterpolate"
    assert plan_for("tiny-mochi", seconds=2, fps=24).retime.method == "fps"
    assert plan_for("tiny-wan", seconds=2, fps=16).retime.method == "none"
    gpu = replace(CPU, device="cuda", name="NVIDIA H100 80GB HBM3", memory_gib=79)
    card = get_card("hunyuanvideo")
    five = make_plan(
        VideoSpec(prompt="x", model=card.id, seconds=5, width=1280, height=720).validated(), card, gpu
    )
    ten = make_plan(
        VideoSpec(prompt="x", model=card.id, seconds=10, width=1280, height=720).validated(), card, gpu
    )
    # Minutes, not seconds or hours, for a 5 s 720p HunyuanVideo clip on an H100; longer takes longer.
    assert 60 < five.estimated_seconds < 3600
    assert ten.estimated_seconds > 1.8 * five.estimated_seconds


def test_mochi_needs_two_steps():
    with pytest.raises(SpecError, match="at least 2 steps"):
        plan_for("tiny-mochi", steps=1)


def test_variations_get_consecutive_seeds():
    plan = plan_for("tiny-wan", seed=41, variations=3)
    assert plan.seeds == (41, 42, 43)
    assert len(plan_for("tiny-wan").seeds) == 1


def test_explicit_settings_win_over_card_defaults():
    plan = plan_for("wan2.1-t2v-1.3b", steps=12, guidance=2.5)
    assert (plan.steps, plan.guidance) == (12, 2.5)
    plan = plan_for("wan2.1-t2v-1.3b")
    assert (plan.steps, plan.guidance) == (50, 5.0)


def test_style_rewrites_prompt_and_suggests_guidance():
    card = get_card("wan2.1-t2v-1.3b")
    spec = VideoSpec(prompt="a boat", model=card.id, negative_prompt="blur").validated()
    plan = make_plan(spec, card, CPU, get_style("film-noir"))
    assert plan.prompt.startswith("film noir, a boat")
    assert plan.negative_prompt == "blur, colour, bright, flat lighting, cartoon"
    assert plan.guidance == 6.0
    assert plan.style == "film-noir"


def test_memory_plan_follows_free_memory():
    card = get_card("hunyuanvideo")
    spec = VideoSpec(prompt="x", model=card.id, seconds=5, width=1280, height=720).validated()
    roomy = make_plan(spec, card, replace(CPU, device="cuda", memory_gib=80))
    tight = make_plan(spec, card, replace(CPU, device="cuda", memory_gib=24))
    assert not roomy.memory.vae_tiling and not roomy.memory.group_offload
    assert tight.memory.vae_tiling and tight.memory.group_offload
