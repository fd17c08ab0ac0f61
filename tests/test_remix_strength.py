"""Remix, judged by what comes out: a lower strength keeps the result closer to the source clip than
a higher one, on every family that remixes (video-to-video pipelines for Wan and CogVideoX, the
condition pipeline's latents + denoise_strength for LTX-Video).

Random weights need two allowances. A random transformer's predictions swamp any schedule, so the
twin's is all but silenced (its output projection scaled to a thousandth; zero would divide by
zero in LTX's guidance rescale). For a flow-matching model that predicts almost no velocity the
loop changes almost nothing: what comes out is what it started from, the source's latents noised
to the strength, decoded. And a random VAE cannot reproduce a picture, so "close to the source"
means close to the source as this VAE reproduces it. CogVideoX predicts v (DDIM), for which no
prediction is neutral, and its random VAE's posterior noise swamps the source's latents: there the
boundary is the transformer's first timestep, the noise level the loop starts from.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from openreel.engine import Engine
from openreel.hardware import detect
from openreel.models.anchoring import is_flow_matching
from openreel.models.catalog import TINY_CARDS, get_card
from openreel.models.weights import weights_folder
from openreel.plan import make_plan
from openreel.render.conditioning import encode_mode
from openreel.spec import VideoSpec

REMIXING = sorted({card.id for card in TINY_CARDS if "remix" in card.modes})


def test_every_remixing_family_is_covered():
    assert {get_card(model).family for model in REMIXING} >= {"wan", "cogvideox", "ltx"}


def source_clip(frames: int, height: int, width: int) -> np.ndarray:
    """Smooth moving bands: content the VAEs keep, so the distance to it means something."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    clip = [
        np.stack(
            [
                0.5 + 0.4 * np.sin((x + 2 * t) / 8),
                0.5 + 0.4 * np.cos(y / 6 - t / 5),
                0.5 + 0.2 * np.sin(x / 11),
            ],
            axis=-1,
        )
        for t in range(frames)
    ]
    return np.stack(clip).astype(np.float32)


def reproduced(pipe, plan, source: np.ndarray) -> np.ndarray:
    """The source as the twin's VAE gives it back (LTX's decoder is told the plan's decode time)."""
    vae = pipe.vae
    extra = {}
    if getattr(vae.config, "timestep_conditioning", False):
        extra["temb"] = torch.tensor([plan.options.get("decode_timestep", 0.0)])
    with torch.inference_mode():
        decoded = vae.decode(encode_mode(vae, source), **extra).sample
    return ((decoded[0].permute(1, 2, 3, 0).float() + 1) / 2).clamp(0, 1).numpy()


@pytest.mark.parametrize("model", REMIXING)
def test_lower_strength_stays_closer_to_the_source(model):
    card = get_card(model)
    spec = VideoSpec(
        prompt="make it snow",
        model=model,
        seconds=1,
        width=card.native_width,
        height=card.native_height,
        fps=card.fps,
        seed=4,
    ).validated()
    plan = make_plan(spec, card, detect())
    engine = Engine()
    folder = weights_folder(card)
    pipe = engine.runner.pipeline(card, folder, plan)
    with torch.no_grad():
        pipe.transformer.proj_out.weight.mul_(1e-3)
        pipe.transformer.proj_out.bias.mul_(1e-3)
    # The timestep of each run's first transformer call.
    first_timesteps: dict[float, float] = {}
    running: list[float] = []

    def record(_module, _args, kwargs):
        if running and running[-1] not in first_timesteps:
            first_timesteps[running[-1]] = float(kwargs["timestep"].flatten()[0])

    hook = pipe.transformer.register_forward_pre_hook(record, with_kwargs=True)
    source = source_clip(plan.num_frames, plan.height, plan.width)
    results = {}
    try:
        for strength in (0.3, 0.9):
            running.append(strength)
            remix_plan = replace(plan, mode="remix", inputs={"strength": strength})
            results[strength] = engine.runner.run_remix(card, folder, remix_plan, source, plan.seeds[0])
            assert results[strength].shape == source.shape
    finally:
        hook.remove()
    if is_flow_matching(pipe.scheduler):
        target = reproduced(pipe, plan, source)
        distance = {s: float(np.abs(made - target).mean()) for s, made in results.items()}
        assert distance[0.3] < distance[0.9], distance
    # Either way the lower strength starts lower in the schedule.
    assert first_timesteps[0.3] < first_timesteps[0.9], first_timesteps
