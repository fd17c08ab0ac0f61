"""LTX-Video 13B distilled keeps its published schedules: the first pass, the latent upsampler's
AdaIN, the refinement pass over the upsampled latents, and remix. Checked where the model sees
them: the timesteps handed to the scheduler and the latents handed to the transformer."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from openreel.errors import SpecError
from openreel.hardware import detect
from openreel.models.catalog import get_card, twin_for
from openreel.models.weights import weights_folder
from openreel.plan import make_plan
from openreel.render.runner import Runner
from openreel.spec import VideoSpec

# diffusers' LTX-Video docs (docs/source/en/api/pipelines/ltx_video.md), 0.9.7 / 0.9.8 distilled:
# the first pass, the upsampler's AdaIN, the refinement schedule and its denoise_strength
# ("effectively 4 inference steps out of 5"), and the conditioning noise they pass.
PUBLISHED = {
    "timesteps": [1000, 993, 987, 981, 975, 909, 725, 0.03],
    "adain_factor": 1.0,
    "refine_timesteps": [1000, 909, 725, 421, 0],
    "refine_strength": 0.999,
    "image_cond_noise_scale": 0.0,
}
REFINED = [909, 725, 421, 0]  # the four of five that denoise_strength 0.999 keeps
REAL = get_card("ltx-video-13b-distilled")


def distilled_card():
    """The distilled card's twin: the real card's options, steps and guidance on tiny weights."""
    return twin_for("ltx-video-13b-distilled")


class Boundary:
    """Records, per pipeline call (pass), the timesteps the scheduler steps through, and the
    hidden states the transformer is first handed; plus the upsampler's input and output."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pipe) -> None:
        from diffusers import LTXConditionPipeline, LTXLatentUpsamplePipeline

        self.passes: list[dict] = []
        self.upsampled: list[tuple[torch.Tensor, torch.Tensor, dict]] = []
        real_call = LTXConditionPipeline.__call__
        real_upsample = LTXLatentUpsamplePipeline.__call__
        real_step = pipe.scheduler.step

        def call(pipeline, *args, **kwargs):
            # The generator's state as the pass begins: the noise it will draw can be replayed.
            self.passes.append(
                {
                    "timesteps": [],
                    "sigmas": [],
                    "hidden": None,
                    "kwargs": kwargs,
                    "state": kwargs["generator"].get_state(),
                }
            )
            return real_call(pipeline, *args, **kwargs)

        def upsample(pipeline, *args, **kwargs):
            output = real_upsample(pipeline, *args, **kwargs)
            self.upsampled.append((kwargs["latents"].clone(), output.frames.clone(), kwargs))
            return output

        def step(model_output, timestep, sample, *args, **kwargs):
            result = real_step(model_output, timestep, sample, *args, **kwargs)
            scheduler = pipe.scheduler
            self.passes[-1]["timesteps"].append(float(timestep))
            self.passes[-1]["sigmas"].append(float(scheduler.sigmas[scheduler.step_index - 1]))
            return result

        def first_input(_module, _args, kwargs):
            if self.passes[-1]["hidden"] is None:
                self.passes[-1]["hidden"] = kwargs["hidden_states"].clone()

        monkeypatch.setattr(LTXConditionPipeline, "__call__", call)
        monkeypatch.setattr(LTXLatentUpsamplePipeline, "__call__", upsample)
        monkeypatch.setattr(pipe.scheduler, "step", step)
        self.handle = pipe.transformer.register_forward_pre_hook(first_input, with_kwargs=True)


@pytest.fixture
def boundary(monkeypatch):
    spies: list[Boundary] = []

    def install(pipe) -> Boundary:
        spies.append(Boundary(monkeypatch, pipe))
        return spies[-1]

    yield install
    for spy in spies:
        spy.handle.remove()


def latent_plan(card, **spec):
    plan = make_plan(
        VideoSpec(
            prompt="a kite over dunes", model=card.id, seconds=1, width=1280, height=720, seed=3, **spec
        ),
        card,
        detect(),
    )
    assert plan.upscale.method == "latent", plan.upscale
    return plan


def packed(pipe, latents: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) latents as the transformer takes them: tokens of patch x patch x channels."""
    return pipe._pack_latents(
        latents, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size
    )


def test_distilled_1080p_path_runs_the_published_schedules_over_the_upsampled_latents(boundary):
    card = distilled_card()
    plan = latent_plan(card)
    folder = weights_folder(card)
    runner = Runner()
    pipe = runner.pipeline(card, folder, plan)
    spy = boundary(pipe)

    runner.run_window(card, folder, plan, plan.windows[0], plan.seeds[0])

    first, second = spy.passes
    assert first["timesteps"] == pytest.approx(PUBLISHED["timesteps"])
    assert second["timesteps"] == pytest.approx(REFINED)
    assert first["kwargs"]["image_cond_noise_scale"] == second["kwargs"]["image_cond_noise_scale"] == 0.0

    ((before, upsampled, _),) = spy.upsampled
    # AdaIN at factor 1: the upsampled latents keep the first pass's per-channel statistics.
    std_before, mean_before = torch.std_mean(before.flatten(2), dim=-1)
    std_after, mean_after = torch.std_mean(upsampled.flatten(2), dim=-1)
    assert torch.allclose(mean_after, mean_before, atol=1e-4)
    assert torch.allclose(std_after, std_before, rtol=1e-3)

    # The refinement starts from the upsampler's output, noised to the first kept step's sigma
    # with the noise the pass's generator draws first.
    sigma = second["sigmas"][0]
    # The real scheduler (shift 1, no terminal stretch) takes sigma = timestep / 1000 as given.
    assert sigma == pytest.approx(REFINED[0] / 1000)
    generator = torch.Generator().set_state(second["state"])
    noise = torch.randn(upsampled.shape, generator=generator, dtype=torch.float32)
    expected = packed(pipe, sigma * noise + (1 - sigma) * upsampled.float())
    assert second["hidden"].shape == expected.shape
    assert torch.allclose(second["hidden"].float(), expected, atol=1e-5)


def test_distilled_card_refuses_another_step_count():
    """Refused when the plan is made, before a 13B model loads; and by the family itself, for a
    plan that reaches it with another count."""
    card = distilled_card()
    with pytest.raises(SpecError, match="8 steps") as caught:
        latent_plan(card, steps=4)
    assert caught.value.param == "steps"
    plan = replace(latent_plan(card), steps=4)
    with pytest.raises(SpecError, match="8 steps"):
        Runner().run_window(card, weights_folder(card), plan, plan.windows[0], plan.seeds[0])


def test_distilled_remix_reruns_the_tail_of_the_distilled_schedule(boundary):
    card = distilled_card()
    plan = make_plan(VideoSpec(prompt="at night", model=card.id, seconds=1, seed=5), card, detect())
    plan = replace(plan, mode="remix", inputs={"strength": 0.5})
    folder = weights_folder(card)
    runner = Runner()
    spy = boundary(runner.pipeline(card, folder, plan))
    source = np.random.default_rng(0).random((plan.num_frames, plan.height, plan.width, 3), dtype=np.float32)

    result = runner.run_remix(card, folder, plan, source, plan.seeds[0])

    (remix,) = spy.passes
    # denoise_strength 0.5 keeps the last int(8 * 0.5) = 4 of the 8 distilled timesteps.
    assert remix["timesteps"] == pytest.approx(PUBLISHED["timesteps"][4:])
    assert remix["kwargs"]["denoise_strength"] == 0.5
    assert result.shape == (plan.num_frames, plan.height, plan.width, 3)


def test_plain_card_refines_with_plain_steps_and_no_adain(boundary):
    """Cards without a distilled schedule keep the planned strength over ordinary steps."""
    card = get_card("tiny-ltx")
    plan = latent_plan(card, steps=4)
    folder = weights_folder(card)
    runner = Runner()
    spy = boundary(runner.pipeline(card, folder, plan))

    runner.run_window(card, folder, plan, plan.windows[0], plan.seeds[0])

    first, second = spy.passes
    assert len(first["timesteps"]) == 4
    # strength 0.4 of max(4, ceil(2 / 0.4)) = 5 steps: the last two.
    assert len(second["timesteps"]) == 2 and second["kwargs"]["denoise_strength"] == plan.upscale.strength
    assert "adain_factor" not in spy.upsampled[0][2]


def test_real_card_options_agree_with_the_published_recipe():
    """Whatever schedule options the catalog's distilled card carries are the published values."""
    assert PUBLISHED.keys() <= REAL.options.keys()
    for key in PUBLISHED:
        assert REAL.options[key] == PUBLISHED[key], key
    assert "timesteps" in REAL.options and REAL.default_steps == len(REAL.options["timesteps"])
