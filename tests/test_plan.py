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


@pytest.mark.parametrize("card", all_cards(), ids=lambda card: card.id)
def test_every_card_plans_valid_frames_and_sizes(card):
    spec = VideoSpec(prompt="x", model=card.id, seconds=min(4, int(card.max_seconds)), width=1280, height=720)
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
    assert plan_for("ltx-video-2b-distilled", seconds=4).num_frames == 97  # 8k+1 at 24 fps
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
    with pytest.raises(SpecError, match=r"at most 5\.06 s .*81 frames at 16 fps.*Ask for 5 s") as info:
        plan_for("wan2.1-t2v-1.3b", seconds=6)
    assert info.value.param == "seconds"


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
