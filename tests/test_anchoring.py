"""Latent anchoring, judged where the user sees it: the latents handed to the VAE decoder and the
frames it decodes. Run on the twins, whose schedulers and temporal patching are the real cards'
(Mochi 1's inverted sigmas, CogVideoX 1.5's padded latent frame)."""

from __future__ import annotations

import numpy as np
import pytest

from openreel.engine import Engine
from openreel.hardware import detect
from openreel.models.catalog import TINY_CARDS, get_card
from openreel.models.weights import weights_folder
from openreel.plan import make_plan
from openreel.render.conditioning import encode_mode
from openreel.spec import VideoSpec

# Every twin whose conditioning is latent anchoring: the text-to-video cards of every family but
# LTX-Video and Pyramid Flow (which condition through their own pipelines).
ANCHORED = [
    card.id
    for card in TINY_CARDS
    if card.family in ("cogvideox", "mochi", "wan", "hunyuan") and "conditioning" not in card.options
]


def test_the_anchored_twins_include_the_tricky_schedulers():
    assert {"tiny-mochi", "tiny-cogvideox1.5-5b", "tiny-wan2.2-ti2v-5b"} <= set(ANCHORED)


def pattern(frames: int, height: int, width: int) -> np.ndarray:
    """Smooth moving colour bands in [0, 1], (F, H, W, 3): content a VAE round trip keeps."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    clip = [
        np.stack(
            [
                0.5 + 0.4 * np.sin((x + 3 * t) / 9),
                0.5 + 0.4 * np.cos((y - 2 * t) / 7),
                0.5 + 0.3 * np.sin((x + y + t) / 13),
            ],
            axis=-1,
        )
        for t in range(frames)
    ]
    return np.stack(clip).astype(np.float32)


def spy_decoder(pipe, monkeypatch) -> list:
    """Record every latent tensor handed to the pipeline's VAE decoder."""
    seen: list = []
    real = pipe.vae.decode

    def decode(z, *args, **kwargs):
        seen.append(z.detach().clone())
        return real(z, *args, **kwargs)

    monkeypatch.setattr(pipe.vae, "decode", decode)
    return seen


def second_window_with_tail(model: str):
    """A plan of two windows, and the second window's tail: the frames it must begin with."""
    card = get_card(model)
    spec = VideoSpec(
        prompt="a kite over the sea",
        model=model,
        seconds=card.max_frames / card.fps + 1,
        width=card.native_width,
        height=card.native_height,
        fps=card.fps,
        steps=3,
        seed=5,
    ).validated()
    plan = make_plan(spec, card, detect())
    window = plan.windows[1]
    tail = pattern(window.overlap, plan.height, plan.width)
    return card, plan, window, tail


@pytest.mark.parametrize("model", ANCHORED)
def test_the_decoder_receives_the_anchored_latents_and_decodes_the_tail(model, monkeypatch):
    card, plan, window, tail = second_window_with_tail(model)
    engine = Engine()
    folder = weights_folder(card)
    pipe = engine.runner.pipeline(card, folder, plan)
    decoded = spy_decoder(pipe, monkeypatch)

    made = engine.runner.run_window(card, folder, plan, window, plan.seeds[0], tail=tail)
    (z,) = decoded

    import torch

    # What the VAE itself makes of the tail: its latents, and their decode.
    with torch.inference_mode():
        expected = encode_mode(pipe.vae, tail)
        round_trip = pipe.vae.decode(expected).sample
    count = expected.shape[2]
    temporal = getattr(pipe, "vae_scale_factor_temporal", card.frame_step)  # Mochi's is its frame step
    latent_frames = (window.num_frames - 1) // temporal + 1
    assert z.shape[2] == latent_frames  # no padding reaches the decoder
    held = z[:, :, :count].float()
    assert torch.allclose(held, expected.float(), atol=1e-4, rtol=1e-4), (held - expected).abs().max()
    # The leading frames of the video are the tail as the VAE reproduces it, closer to it than the
    # same window made without the tail. (Not exact: VAEs that group-normalise over time, like
    # HunyuanVideo's, let the later latents shade the earlier frames.)
    reproduced = ((round_trip[0].permute(1, 2, 3, 0).float() + 1) / 2).clamp(0, 1).numpy()
    assert made.native.shape[0] == window.num_frames
    free = engine.runner.run_window(card, folder, plan, window, plan.seeds[0])
    anchored_error = np.abs(made.native[: len(tail)] - reproduced[: len(tail)]).mean()
    free_error = np.abs(free.native[: len(tail)] - reproduced[: len(tail)]).mean()
    assert anchored_error < 0.1 and anchored_error < free_error, (anchored_error, free_error)


@pytest.mark.parametrize("model", ["tiny-mochi", "tiny-wan", "tiny-cogvideox1.5-5b"])
def test_an_image_holds_the_first_frame(model, monkeypatch):
    """Image-to-video by anchoring: the decoder's first latent frame is the image's own."""
    card = get_card(model)
    spec = VideoSpec(
        prompt="the scene comes alive",
        model=model,
        seconds=1,
        width=card.native_width,
        height=card.native_height,
        fps=card.fps,
        steps=3,
        seed=9,
    ).validated()
    plan = make_plan(spec, card, detect())
    engine = Engine()
    folder = weights_folder(card)
    pipe = engine.runner.pipeline(card, folder, plan)
    decoded = spy_decoder(pipe, monkeypatch)
    image = pattern(1, plan.height, plan.width)

    engine.runner.run_window(card, folder, plan, plan.windows[0], plan.seeds[0], tail=image)
    (z,) = decoded

    import torch

    with torch.inference_mode():
        expected = encode_mode(pipe.vae, image)
    assert torch.allclose(z[:, :, :1].float(), expected.float(), atol=1e-4, rtol=1e-4)
