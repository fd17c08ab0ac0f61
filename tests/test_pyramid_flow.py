"""Pyramid Flow, ported natively: the scheduler against its formulas written out here, the full-size
architecture against the published parameter names and shapes, and the tiny build end to end
(text and image to video over several units, with the history each unit must see)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from openreel.models.catalog import get_card
from openreel.models.families import pyramid_flow as family
from openreel.models.pyramid_flow import convert
from openreel.models.pyramid_flow.cards import CARDS
from openreel.models.pyramid_flow.layers import causal_joint_mask
from openreel.models.pyramid_flow.pipeline import PyramidFlowPipeline
from openreel.models.pyramid_flow.scheduler import PyramidFlowMatchScheduler
from openreel.models.pyramid_flow.tiny import build_tiny_pipeline, build_tiny_pyramid_flow
from openreel.plan import Plan

# The miniFLUX 384p twin (tiny-pyramid-flow).
TINY_CARD = get_card("tiny-pyramid-flow")

DATA = Path(__file__).parent / "data"
N = 1000
GAMMA = 1 / 3


# --- scheduler ---------------------------------------------------------------------------------


def expected_stages(shift: float = 1.0) -> tuple[list[float], list[float], list[float]]:
    """Stage boundaries written out from the method: thirds of a 1000-step grid sigma_i = (N - i)/N
    (SD3-shifted), later starts corrected by s -> s / (sqrt(1 + 1/gamma) (1 - s) + s)."""

    def sigma(i: int) -> float:
        raw = (N - i) / N
        return shift * raw / (1 + (shift - 1) * raw)

    cuts = [0, 333, 666, 1000]
    ori = [sigma(cuts[k]) for k in range(3)]
    ends = [sigma(cuts[k + 1]) if cuts[k + 1] < N else 0.0 for k in range(3)]
    starts = [ori[0]]
    for k in (1, 2):
        signal = 1 - ori[k]
        starts.append(1 - signal / (math.sqrt(1 + 1 / GAMMA) * (1 - signal) + signal))
    return ori, starts, ends


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_stage_boundaries_and_corrected_starts(shift: float) -> None:
    scheduler = PyramidFlowMatchScheduler(shift=shift)
    ori, starts, ends = expected_stages(shift)
    assert scheduler.ori_start_sigmas == pytest.approx(ori, abs=1e-9)
    assert scheduler.start_sigmas == pytest.approx(starts, abs=1e-9)
    assert scheduler.end_sigmas == pytest.approx(ends, abs=1e-9)
    if shift == 1.0:
        assert ends == pytest.approx([0.667, 0.334, 0.0])
        # Each later stage starts noisier than the previous one ended: the correction adds noise.
        assert starts[1] > ends[0] and starts[2] > ends[1]


def test_timesteps_split_the_range_by_stage_length() -> None:
    scheduler = PyramidFlowMatchScheduler()
    _, starts, ends = expected_stages()
    lengths = [s - e for s, e in zip(starts, ends, strict=True)]
    bounds = [sum(lengths[:k]) / sum(lengths) for k in range(4)]
    grid = [1000.0 - i for i in range(N)]  # timesteps of the unshifted training grid
    for stage, steps in [(0, 5), (1, 3), (2, 7)]:
        t_max = grid[int(bounds[stage] * N)]
        t_min = grid[min(int(bounds[stage + 1] * N), N - 1)]
        last = t_max + (t_min - t_max) * (N - 1) / N
        scheduler.set_timesteps(steps, stage)
        assert scheduler.timesteps.tolist() == pytest.approx(
            np.linspace(t_max, last, steps).tolist(), abs=1e-3
        )
        ratios = [*np.linspace(1.0, 1.0 / N, steps).tolist(), 0.0]
        assert scheduler.sigmas.tolist() == pytest.approx(ratios, abs=1e-6)
    # Consecutive stages hand over without a gap in the timestep range.
    scheduler.set_timesteps(2, 0)
    first_end = scheduler.timesteps[-1].item()
    scheduler.set_timesteps(2, 1)
    assert scheduler.timesteps[0].item() == pytest.approx(first_end, abs=1.5)


def test_renoise_correction_restores_a_straight_path_with_white_noise() -> None:
    scheduler = PyramidFlowMatchScheduler()
    for stage in (1, 2):
        signal = 1 - scheduler.ori_start_sigmas[stage]
        alpha, beta = scheduler.renoise_coefficients(stage)
        assert alpha == pytest.approx(1 / (math.sqrt(1 + 1 / GAMMA) * (1 - signal) + signal))
        assert beta == pytest.approx(alpha * (1 - signal) / math.sqrt(GAMMA))
        # Upsampled noise of std (1 - s) is constant on 2x2 blocks; with the block noise the sum is
        # white again, of std 1 - alpha s: signal and noise coefficients add up to 1 as on any
        # point of a rectified-flow path, and that noise level is the stage's corrected start.
        generator = torch.Generator().manual_seed(stage)
        coarse = torch.randn(4000, 1, 1, generator=generator) * (1 - signal)
        upsampled = coarse.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
        blocks = scheduler.block_noise((4000, 2, 2), generator, torch.device("cpu"), torch.float32)
        total = (alpha * upsampled + beta * blocks).reshape(4000, 4)
        covariance = torch.cov(total.T)
        expected_std = 1 - alpha * signal
        assert expected_std == pytest.approx(scheduler.start_sigmas[stage])
        assert torch.allclose(covariance, torch.eye(4) * expected_std**2, atol=0.05)


def test_block_noise_covariance() -> None:
    scheduler = PyramidFlowMatchScheduler()
    noise = scheduler.block_noise(
        (20000, 2, 2), torch.Generator().manual_seed(0), torch.device("cpu"), torch.float32
    )
    covariance = torch.cov(noise.reshape(-1, 4).T)
    expected = torch.eye(4) * (1 + GAMMA) - GAMMA
    assert torch.allclose(covariance, expected, atol=0.04)


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_toy_flow_is_transported_to_its_end_point(steps: int) -> None:
    """The straight-path field v(x, r) = (x - e) / r carries any start to e at ratio 0; Euler with
    the stage's ratios follows it exactly, so every stage lands on its end point."""
    scheduler = PyramidFlowMatchScheduler()
    generator = torch.Generator().manual_seed(steps)
    for stage in range(3):
        end = torch.randn(2, 3, 4, generator=generator)
        x = torch.randn(2, 3, 4, generator=generator)
        scheduler.set_timesteps(steps, stage)
        for index, t in enumerate(scheduler.timesteps):
            ratio = scheduler.sigmas[index]
            x = scheduler.step((x - end) / ratio, t, x).prev_sample
        assert torch.allclose(x, end, atol=1e-5)


# --- transformer pieces ------------------------------------------------------------------------


def test_causal_joint_mask() -> None:
    text_mask = torch.tensor([[1, 1, 0]])
    frames = torch.tensor([[0, 0, 1, 2]])
    mask = causal_joint_mask(text_mask, frames)[0, 0]
    # Video tokens see real text and their own or earlier frames, never later ones.
    assert mask[5].tolist() == [True, True, False, True, True, True, False]
    assert mask[3].tolist() == [True, True, False, True, True, False, False]
    # Real text sees text and frame 0 only; padded text sees only padding.
    assert mask[0].tolist() == [True, True, False, True, True, False, False]
    assert mask[2].tolist() == [False, False, True, False, False, False, False]


# --- the full-size architecture against the published names and shapes ------------------------


@pytest.mark.parametrize("variant", ["miniflux", "sd3"])
def test_full_size_architecture_matches_the_published_checkpoint(variant: str) -> None:
    from openreel.models.pyramid_flow.transformer_flux import PyramidFluxTransformer3DModel
    from openreel.models.pyramid_flow.transformer_sd3 import PyramidSD3Transformer3DModel
    from openreel.models.pyramid_flow.vae import PyramidFlowCausalVAE

    official = json.loads((DATA / f"pyramid_flow_{variant}.json").read_text())
    cls = PyramidFluxTransformer3DModel if variant == "miniflux" else PyramidSD3Transformer3DModel
    with torch.device("meta"):
        transformer = cls(**convert.transformer_config(official["transformer_config"], variant))
        vae = PyramidFlowCausalVAE(**convert.vae_config(official["vae_config"]))
    for ours, theirs in [(transformer, official["transformer"]), (vae, official["vae"])]:
        shapes = {name: list(tensor.shape) for name, tensor in ours.state_dict().items()}
        assert sorted(shapes) == sorted(theirs)
        assert shapes == theirs
    billions = sum(math.prod(shape) for shape in official["transformer"].values()) / 1e9
    assert 1.9 < billions < 2.2  # both published transformers are ~2B parameters


# --- tiny end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-pyramid-flow")
    build_tiny_pyramid_flow(folder, "miniflux")
    return folder


@pytest.fixture(scope="module")
def tiny_pipe(tiny_folder: Path) -> PyramidFlowPipeline:
    pipe = family.load_pipeline(tiny_folder, TINY_CARD, "t2v", torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def plan(mode: str = "t2v", num_frames: int = 17, **options) -> Plan:
    return Plan(
        model_id=TINY_CARD.id, family=TINY_CARD.family, mode=mode, prompt="a red car on a road",
        negative_prompt=None, width=128, height=64, num_frames=num_frames, native_fps=24, steps=2,
        guidance=7.0, seeds=(0,), out_width=128, out_height=64, out_fps=24, out_frames=num_frames,
        device="cpu", dtype="float32", options={**TINY_CARD.options, **options},
    )  # fmt: skip


def record_transformer_inputs(pipe: PyramidFlowPipeline) -> tuple[list[list[torch.Tensor]], object]:
    calls: list[list[torch.Tensor]] = []

    def hook(_module, _args, kwargs):
        calls.append([clip.clone() for clip in kwargs["hidden_states"]])

    return calls, pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)


def test_tiny_text_to_video_sends_the_prescribed_history(tiny_pipe: PyramidFlowPipeline) -> None:
    arguments = family.call_arguments(plan(), torch.Generator().manual_seed(0))
    assert arguments["num_inference_steps"] == 2 and arguments["video_num_inference_steps"] == 1
    steps_seen: list[int] = []

    def on_step(pipe, index, _t, tensors):
        steps_seen.append(index)
        assert set(tensors) == {"latents"}
        return {}

    calls, handle = record_transformer_inputs(tiny_pipe)
    try:
        output = tiny_pipe(
            **arguments,
            output_type="np",
            callback_on_step_end=on_step,
            callback_on_step_end_tensor_inputs=["latents"],
        )
    finally:
        handle.remove()
    frames = output.frames[0]
    assert frames.shape == (17, 64, 128, 3) and frames.dtype == np.float32
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    # Unit 0: 2 steps in each of 3 stages; units 1 and 2: 1 step per stage.
    assert steps_seen == list(range(3 * 2 + 2 * 3)) and tiny_pipe.num_timesteps == 12
    assert len(calls) == 12

    latents = tiny_pipe(
        **{**arguments, "generator": torch.Generator().manual_seed(0)}, output_type="latent"
    ).frames
    assert latents.shape == (1, 16, 3, 8, 16)

    def down(x: torch.Tensor, times: int) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames_ = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        for _ in range(times):
            frames_ = F.interpolate(
                frames_, size=(frames_.shape[-2] // 2, frames_.shape[-1] // 2), mode="bilinear"
            )
        return frames_.reshape(b, t, c, *frames_.shape[-2:]).permute(0, 2, 1, 3, 4)

    def cond_half(clip: torch.Tensor) -> torch.Tensor:
        return clip[clip.shape[0] // 2 :]  # classifier-free guidance batches [negative, positive]

    sizes = {0: (2, 4), 1: (4, 8), 2: (8, 16)}  # latent size of each stage at 64x128
    # Unit 0: no history at any stage; the current clip is one frame at the stage's size.
    for call, stage in zip(calls[0:6], [0, 0, 1, 1, 2, 2], strict=True):
        assert len(call) == 1 and call[0].shape == (2, 16, 1, *sizes[stage])
    # Unit 1: the previous frame at the current stage's resolution.
    for call, stage in zip(calls[6:9], [0, 1, 2], strict=True):
        assert [clip.shape[2:] for clip in call] == [(1, *sizes[stage]), (1, *sizes[stage])]
        assert torch.allclose(cond_half(call[0]), down(latents[:, :, :1], 2 - stage), atol=1e-5)
    # Unit 2 (temporal pyramid): stage 0 sees both frames at 1/4; stage 1 the older at 1/4 and the
    # newer at 1/2; stage 2 the older at 1/2 and the newer at full size.
    expected = {0: [(0, 0), (1, 0)], 1: [(0, 0), (1, 1)], 2: [(0, 1), (1, 2)]}
    for call, stage in zip(calls[9:12], [0, 1, 2], strict=True):
        history = call[:-1]
        assert len(history) == 2
        for clip, (frame, level) in zip(history, expected[stage], strict=True):
            assert clip.shape[2:] == (1, *sizes[level])
            assert torch.allclose(
                cond_half(clip), down(latents[:, :, frame : frame + 1], 2 - level), atol=1e-5
            )
        assert call[-1].shape[2:] == (1, *sizes[stage])

    # The same seed gives the same video.
    again = tiny_pipe(
        **{**arguments, "generator": torch.Generator().manual_seed(0)}, output_type="np"
    ).frames[0]
    assert np.array_equal(frames, again)


def test_tiny_image_to_video(tiny_pipe: PyramidFlowPipeline) -> None:
    image = (np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8)
    from PIL import Image

    arguments = family.call_arguments(plan("i2v"), torch.Generator().manual_seed(0))
    # The Runner adds the image the way it conditions every family: condition_arguments.
    arguments.update(family.condition_arguments([(image[None].astype(np.float32) / 255, 0)]))
    assert isinstance(arguments["image"], Image.Image) and arguments["image"].size == (80, 48)
    assert arguments["video_guidance_scale"] == 4.0
    calls, handle = record_transformer_inputs(tiny_pipe)
    try:
        frames = tiny_pipe(**arguments, output_type="np").frames[0]
    finally:
        handle.remove()
    assert frames.shape == (17, 64, 128, 3)
    # The image is unit 0: two units are generated, each with 1 step per stage, and the very first
    # denoising call already has the image latent as history.
    assert len(calls) == 6 and len(calls[0]) == 2 and calls[0][0].shape[2:] == (1, 2, 4)
    # Only a single first frame conditions Pyramid Flow: a clip or a later frame is refused.
    with pytest.raises(Exception, match="single first frame"):
        family.condition_arguments([(np.zeros((9, 48, 80, 3), np.float32), 0)])


def test_tiny_round_trip_and_sd3_variant(
    tiny_folder: Path, tiny_pipe: PyramidFlowPipeline, tmp_path: Path
) -> None:
    built = build_tiny_pipeline("miniflux")
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        ours, loaded = getattr(built, name).state_dict(), getattr(tiny_pipe, name).state_dict()
        assert all(torch.equal(ours[key], loaded[key]) for key in ours)

    build_tiny_pyramid_flow(tmp_path / "sd3", "sd3")
    sd3 = PyramidFlowPipeline.from_pretrained(tmp_path / "sd3")
    sd3.set_progress_bar_config(disable=True)
    assert sd3.text_encoder_3 is not None and sd3.config.image_latent_shift == pytest.approx(0.1490)
    frames = sd3(**family.call_arguments(plan(num_frames=9), torch.Generator().manual_seed(0))).frames[0]
    assert frames.shape == (9, 64, 128, 3)


def test_pipeline_refuses_sizes_it_would_have_to_change(tiny_pipe: PyramidFlowPipeline) -> None:
    with pytest.raises(ValueError, match="multiples of 64"):
        tiny_pipe("a cat", height=96, width=128, num_frames=9)
    with pytest.raises(ValueError, match="8k\\+1"):
        tiny_pipe("a cat", height=64, width=128, num_frames=12)


def test_published_layout_loads_through_the_converter(tiny_folder: Path, tmp_path: Path) -> None:
    """A folder in the published layout (official config keys, ``dit.``-prefixed weights) loads
    into the same pipeline as the tiny diffusers folder."""
    from safetensors.torch import save_file

    reference = PyramidFlowPipeline.from_pretrained(tiny_folder)
    reference.set_progress_bar_config(disable=True)
    official = tmp_path / "pyramid-flow-miniflux"
    transformer_dir = official / "diffusion_transformer_384p"
    transformer_dir.mkdir(parents=True)
    config = {k: v for k, v in reference.transformer.config.items() if not k.startswith("_")}
    config.update(_class_name="PyramidFluxTransformer", patch_size=1, use_flash_attn=False,
                  use_gradient_checkpointing=False)  # fmt: skip
    (transformer_dir / "config.json").write_text(json.dumps(config))
    state = {f"dit.{k}": v.contiguous() for k, v in reference.transformer.state_dict().items()}
    save_file(state, transformer_dir / "diffusion_pytorch_model.safetensors")
    vae_dir = official / "causal_video_vae"
    vae_dir.mkdir()
    vae_config = {k: v for k, v in reference.vae.config.items() if not k.startswith("_")}
    vae_config.update(
        _class_name="CausalVideoVAE", encoder_type="causal_vae_conv", decoder_type="causal_vae_conv",
        encoder_double_z=True, interpolate=False, add_post_quant_conv=True,
        encoder_down_block_types=["DownEncoderBlockCausal3D"] * 4,
    )  # fmt: skip
    (vae_dir / "config.json").write_text(json.dumps(vae_config))
    save_file(
        {k: v.contiguous() for k, v in reference.vae.state_dict().items()},
        vae_dir / "diffusion_pytorch_model.safetensors",
    )
    for name in ("tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2"):
        getattr(reference, name).save_pretrained(official / name)

    assert convert.is_official_layout(official)
    loaded = family.load_pipeline(official, TINY_CARD, "t2v", torch.float32)
    loaded.set_progress_bar_config(disable=True)
    arguments = family.call_arguments(plan(num_frames=9), torch.Generator().manual_seed(0))
    ours = reference(**arguments, output_type="latent").frames
    theirs = loaded(
        **{**arguments, "generator": torch.Generator().manual_seed(0)}, output_type="latent"
    ).frames
    assert torch.allclose(ours, theirs, atol=1e-5)


# --- cards and the family interface --------------------------------------------------------------


def test_cards_follow_the_published_lengths_and_sizes() -> None:
    by_id = {card.id: card for card in CARDS}
    assert set(by_id) == {f"pyramid-flow-{v}-{r}" for v in ("miniflux", "sd3") for r in ("384p", "768p")}
    for card in (*CARDS, TINY_CARD):
        assert card.family == "pyramid-flow" and card.fps == 24 and card.modes == {"t2v", "i2v", "still"}
        assert card.native_width % card.size_multiple == 0 and card.native_height % card.size_multiple == 0
    assert by_id["pyramid-flow-miniflux-384p"].frames_for(5) == 121  # 16 latent units
    assert by_id["pyramid-flow-miniflux-768p"].frames_for(10) == 241  # 31 latent units
    assert by_id["pyramid-flow-sd3-768p"].valid_frames(241) and not by_id[
        "pyramid-flow-sd3-384p"
    ].valid_frames(241)
    assert family.PIPELINES == {"t2v": "PyramidFlowPipeline", "i2v": "PyramidFlowPipeline"}
