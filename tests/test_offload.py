"""Group offloading reaches every component (the transformers text encoder too), and the pipeline
still makes the same frames. No accelerator here: the onload device is the CPU, which runs the
same hooks (diffusers' group offloading works on CPU)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from openreel.hardware import detect
from openreel.models.catalog import get_card
from openreel.models.families import family_module
from openreel.models.weights import ensure_tiny
from openreel.plan import MemoryPlan, make_plan
from openreel.render import offload
from openreel.render.runner import Runner
from openreel.spec import VideoSpec

CARD = get_card("tiny-wan")


def load() -> Any:
    return family_module(CARD.family).load_pipeline(ensure_tiny(CARD), CARD, "t2v", torch.float32)


def frames(pipe: Any) -> np.ndarray:
    generator = torch.Generator().manual_seed(3)
    return pipe(
        prompt="a red car on a wet street",
        height=64,
        width=96,
        num_frames=9,
        num_inference_steps=2,
        generator=generator,
        output_type="np",
    ).frames[0]


def offloaded(module: torch.nn.Module) -> list[str]:
    """The submodules that carry diffusers' group offloading hook."""
    return [
        name
        for name, sub in module.named_modules()
        if getattr(sub, "_diffusers_hook", None) is not None
        and sub._diffusers_hook.get_hook("group_offloading") is not None
    ]


@pytest.fixture
def plain_frames(openreel_home: Any) -> np.ndarray:
    return frames(load())


def test_every_component_but_the_vae_is_group_offloaded(plain_frames: np.ndarray) -> None:
    pipe = load()
    offload.apply_group_offload(pipe, torch.device("cpu"))
    modules = {n: c for n, c in pipe.components.items() if isinstance(c, torch.nn.Module)}
    assert set(modules) == {"vae", "text_encoder", "transformer"}
    assert offloaded(modules["vae"]) == []
    # Block by block: the transformer's blocks and the UMT5 encoder's (nested in encoder.block).
    assert {"blocks.0", "blocks.1"} <= set(offloaded(modules["transformer"]))
    assert {"encoder.block.0", "encoder.block.1"} <= set(offloaded(modules["text_encoder"]))
    np.testing.assert_array_equal(frames(pipe), plain_frames)


def test_the_runner_offloads_every_component_on_an_accelerator(
    monkeypatch: pytest.MonkeyPatch, plain_frames: np.ndarray
) -> None:
    onloads: list[torch.device] = []
    apply = offload.apply_group_offload

    def on_cpu(pipe: Any, onload: torch.device, **options: Any) -> list[str]:
        onloads.append(onload)
        # The CPU is the accelerator's stand-in (no CUDA streams there).
        return apply(pipe, torch.device("cpu"), **{**options, "use_stream": False})

    monkeypatch.setattr(offload, "apply_group_offload", on_cpu)
    spec = VideoSpec(prompt="a car", model=CARD.id, seconds=1.0, width=96, height=64, seed=1).validated()
    plan = replace(
        make_plan(spec, CARD, detect()), device="cuda", memory=MemoryPlan(group_offload=True)
    )
    pipe = load()
    Runner._place(pipe, plan)
    assert onloads == [torch.device("cuda")]
    assert offloaded(pipe.text_encoder) and offloaded(pipe.transformer)
    np.testing.assert_array_equal(frames(pipe), plain_frames)
