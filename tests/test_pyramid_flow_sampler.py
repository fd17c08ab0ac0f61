"""Pyramid Flow's sampler and decode, checked at the model boundaries: the latents the transformer
receives at a stage jump (the re-noising correction), the latents the VAE decoder receives under two
guidance scales (first frame versus the rest), and tiled decoding against whole-frame decoding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from torch import nn

from openreel.models.pyramid_flow.pipeline import PyramidFlowPipeline
from openreel.models.pyramid_flow.tiny import build_tiny_pipeline

GAMMA = 1 / 3
# Where stages 1 and 2 start on the published schedule, before the correction: sigma = 667/1000
# and 334/1000 (thirds of a 1000-step grid).
ORI_START = {1: 0.667, 2: 0.334}


def correction(stage: int) -> tuple[float, float]:
    """(alpha, beta) of the paper's re-noising, written out: s is the signal at the jump."""
    s = 1 - ORI_START[stage]
    alpha = 1 / (math.sqrt(1 + 1 / GAMMA) * (1 - s) + s)
    return alpha, alpha * (1 - s) / math.sqrt(GAMMA)


class VelocityStub(nn.Module):
    """A transformer that predicts ``value`` for the prompt half of a guided batch and 0 for the
    negative half (the pipeline batches [negative, prompt]); it records the clips it receives."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the pipeline a device and dtype
        self.calls: list[list[torch.Tensor]] = []

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def forward(self, hidden_states, encoder_hidden_states, **_) -> Transformer2DModelOutput:
        self.calls.append([clip.clone() for clip in hidden_states])
        current = hidden_states[-1]
        velocity = torch.zeros_like(current)
        velocity[current.shape[0] // 2 :] = self.value
        return Transformer2DModelOutput(sample=velocity)


@pytest.fixture(scope="module")
def tiny() -> PyramidFlowPipeline:
    return build_tiny_pipeline("miniflux")


def with_transformer(pipe: PyramidFlowPipeline, transformer: nn.Module) -> PyramidFlowPipeline:
    parts = {**pipe.components, "transformer": transformer}
    statistics = {k: v for k, v in pipe.config.items() if k.endswith(("shift", "scale"))}
    stub = PyramidFlowPipeline(**parts, **statistics)
    stub.set_progress_bar_config(disable=True)
    return stub


# --- the re-noising correction at stage jumps ------------------------------------------------------


def test_stage_jump_hands_the_transformer_the_renoised_latent(tiny: PyramidFlowPipeline) -> None:
    """With zero velocity each stage ends where it starts, so the first latent of stage k+1 must be
    alpha * upsample(stage k's latent) + beta * block noise whose 2x2 blocks sum to zero (gamma 1/3):
    its 2x2 means are alpha times the previous stage, the rest is noise of std beta."""
    stub = VelocityStub(0.0)
    pipe = with_transformer(tiny, stub)
    pipe(
        "a red car", height=256, width=512, num_frames=1, num_inference_steps=2,
        generator=torch.Generator().manual_seed(0), output_type="latent",
    )  # fmt: skip
    # One unit, 2 steps in each of 3 stages; the clip being denoised is the last one.
    current = [call[-1][1:] for call in stub.calls]  # the prompt half
    assert len(current) == 6
    for stage in (1, 2):
        before, after = current[2 * stage - 1], current[2 * stage]
        assert after.shape[-2:] == (before.shape[-2] * 2, before.shape[-1] * 2)
        alpha, beta = correction(stage)
        means = F.avg_pool2d(after[:, :, 0], 2)
        assert torch.allclose(means, alpha * before[:, :, 0], atol=1e-5)
        residual = after[:, :, 0] - F.interpolate(means, scale_factor=2, mode="nearest")
        assert residual.std().item() == pytest.approx(beta, rel=0.05)


# --- first-frame guidance versus video guidance ----------------------------------------------------


def decoder_inputs(pipe: PyramidFlowPipeline, **arguments) -> torch.Tensor:
    """What the VAE decoder receives for one call."""
    seen: list[torch.Tensor] = []
    decode = pipe.vae.decode

    def recording(z, *args, **kwargs):
        seen.append(z.clone())
        return decode(z, *args, **kwargs)

    pipe.vae.decode = recording
    try:
        pipe(
            "a red car", height=64, width=128, num_frames=25, num_inference_steps=2,
            video_num_inference_steps=1, generator=torch.Generator().manual_seed(0), **arguments,
        )  # fmt: skip
    finally:
        del pipe.vae.decode
    (latents,) = seen
    return latents


def test_first_frame_and_later_units_follow_their_own_guidance_scale(tiny: PyramidFlowPipeline) -> None:
    """The stub's guided velocity is the scale itself; each stage moves its latent by minus that, and
    stage jumps scale the way so far by alpha. The first latent frame must move with
    ``guidance_scale`` only and the later ones with ``video_guidance_scale`` only."""
    pipe = with_transformer(tiny, VelocityStub(1.0))
    base = decoder_inputs(pipe, guidance_scale=7.0, video_guidance_scale=5.0)
    first = decoder_inputs(pipe, guidance_scale=3.0, video_guidance_scale=5.0)
    video = decoder_inputs(pipe, guidance_scale=7.0, video_guidance_scale=2.0)
    assert base.shape == (1, 16, 4, 8, 16)

    alpha1, _ = correction(1)
    alpha2, _ = correction(2)
    path = 1 + alpha2 + alpha1 * alpha2  # how far a unit moves per unit of guided velocity
    # The decoder sees the first frame de-normalised with the image scale and the rest with the
    # video scale (the published 1.8726 and 3.0986).
    image_scale, video_scale = 1.8726, 3.0986

    moved = base - first
    assert torch.allclose(moved[:, :, 0], torch.full_like(moved[:, :, 0], -4 * path * image_scale), atol=1e-3)
    assert torch.equal(moved[:, :, 1:], torch.zeros_like(moved[:, :, 1:]))

    moved = base - video
    assert torch.equal(moved[:, :, 0], torch.zeros_like(moved[:, :, 0]))
    expected = torch.full_like(moved[:, :, 1:], -3 * path * video_scale)
    assert torch.allclose(moved[:, :, 1:], expected, atol=1e-3)


# --- tiled decoding ----------------------------------------------------------------------------


class PointwiseDecoder(nn.Module):
    """A stand-in decoder where every output pixel depends on its own latent pixel only: tiled and
    whole decoding then agree exactly, so any misplaced, missing or badly cropped tile shows. With
    ``seam`` it also adds that much to the pixels of its input's outermost latents, like the edge
    artefacts of a real decoder: tiling must fade those out where tiles overlap."""

    def __init__(self, seam: float = 0.0) -> None:
        super().__init__()
        self.seam = seam

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        frames = z[:, :3] * torch.linspace(0.5, 1.5, 3).reshape(1, 3, 1, 1, 1) + z[:, 3:6]
        edge = torch.zeros_like(frames[:, :1])
        edge[..., [0, -1], :] = self.seam
        edge[..., :, [0, -1]] = self.seam
        frames = (frames + edge).repeat_interleave(8, dim=3).repeat_interleave(8, dim=4)
        return torch.cat([frames[:, :, :1], frames[:, :, 1:].repeat_interleave(8, dim=2)], dim=2)


def record_decoder_inputs(vae) -> tuple[list[tuple[int, ...]], object]:
    shapes: list[tuple[int, ...]] = []
    handle = vae.decoder.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape)))
    return shapes, handle


def test_tiling_uses_the_published_tiles_and_matches_whole_decoding(tiny: PyramidFlowPipeline) -> None:
    vae = build_tiny_pipeline("miniflux").vae
    vae.decoder = PointwiseDecoder()
    vae.enable_tiling()
    # The published decode: 256-pixel tiles (32 latents) overlapping by a quarter.
    assert (vae.tile_sample_min_size, vae.tile_latent_min_size, vae.tile_overlap_factor) == (256, 32, 0.25)
    generator = torch.Generator().manual_seed(0)
    shapes, handle = record_decoder_inputs(vae)
    try:
        for height, width in [(32, 32), (32, 33), (40, 56), (8, 80)]:
            z = torch.randn(1, 16, 2, height, width, generator=generator)
            shapes.clear()
            with torch.no_grad():
                tiled = vae.decode(z).sample
                tiles = list(shapes)
                vae.disable_tiling()
                whole = vae.decode(z).sample
                vae.enable_tiling()
            assert tiled.shape == whole.shape == (1, 3, 9, 8 * height, 8 * width)
            assert torch.allclose(tiled, whole, atol=1e-5), (height, width)
            # Tiles start every 24 latents; a frame of one tile or less is decoded whole.
            if max(height, width) <= 32:
                assert tiles == [(1, 16, 2, height, width)]
            else:
                assert len(tiles) == len(range(0, height, 24)) * len(range(0, width, 24))
                assert all(shape[-2] <= 32 and shape[-1] <= 32 for shape in tiles)
    finally:
        handle.remove()


def test_tile_seams_are_cross_faded() -> None:
    """Edge artefacts of a tile lie inside the 64-pixel overlap, where the published blend weighs
    each by at most 8/64 (a few meet where four tiles do: 0.32 here); without the blend, or blending
    from neighbours not yet blended themselves, one shows at full strength (1.0)."""
    vae = build_tiny_pipeline("miniflux").vae
    vae.decoder = PointwiseDecoder(seam=1.0)
    z = torch.randn(1, 16, 2, 40, 56, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = vae.decode(z).sample
        vae.enable_tiling()
        tiled = vae.decode(z).sample
    error = (tiled - whole).abs()
    assert error.max().item() < 0.5
    # The seams are there (tiles start at latents 24 and 48, pixels 192 and 384), only faded.
    assert error[..., 192:256].max().item() > 0.05 and error[..., 192:256, :].max().item() > 0.05


def test_pipeline_decodes_large_frames_in_tiles_close_to_whole(tiny: PyramidFlowPipeline) -> None:
    """The real (tiny) decoder: the tile path is taken past 256 pixels and stays close to whole
    decoding (random weights see the whole frame through attention and group norm, so not equal)."""
    pipe = build_tiny_pipeline("miniflux")
    pipe.set_progress_bar_config(disable=True)
    arguments = dict(
        prompt="a red car", height=64, width=320, num_frames=17, num_inference_steps=1,
        video_num_inference_steps=1, output_type="np",
    )  # fmt: skip
    whole = pipe(**arguments, generator=torch.Generator().manual_seed(0)).frames
    pipe.vae.enable_tiling()
    shapes, handle = record_decoder_inputs(pipe.vae)
    try:
        tiled = pipe(**arguments, generator=torch.Generator().manual_seed(0)).frames
        # 40 latents wide: tiles at 0 (32 wide) and 24 (16 wide), each decoded as the published
        # decode does, the first two latent frames and then one at a time.
        assert shapes == [(1, 16, t, 8, w) for w in (32, 16) for t in (2, 1)]
        shapes.clear()
        # At the tile size exactly (256 pixels) the frame is decoded whole.
        pipe(**{**arguments, "width": 256}, generator=torch.Generator().manual_seed(0))
        assert shapes == [(1, 16, 2, 8, 32), (1, 16, 1, 8, 32)]
    finally:
        handle.remove()
    assert tiled.shape == whole.shape == (1, 17, 64, 320, 3)
    assert abs(tiled - whole).mean() < 0.03
