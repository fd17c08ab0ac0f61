"""Group offloading for a whole pipeline: every component, not only the diffusers models.

``ModelMixin.enable_group_offload`` exists only on diffusers models, so text and image encoders
(transformers models, often the larger half of a pipeline: HunyuanVideo's 8B LLaVA-Llama) would
stay on the CPU while the pipeline computes on the accelerator. diffusers'
``hooks.apply_group_offloading`` takes any ``torch.nn.Module``; this applies it to each one.

The onload device is a parameter, so the same code runs (and is tested) with onload = CPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# A module list holding at least this share of a model's parameters is a stack of blocks worth
# offloading one by one (an encoder's layers); smaller lists ride in their parent's group.
_BLOCK_SHARE = 0.1


def is_vae(name: str) -> bool:
    """VAEs ("vae", LTX-2's "audio_vae") move to the accelerator whole: tiled decoding calls them
    many times per clip, and group hooks would move their weights on every call."""
    return name == "vae" or name.endswith("_vae")


def apply_group_offload(
    pipe: Any,
    onload: torch.device,
    *,
    offload_type: str = "block_level",
    use_stream: bool | None = None,
    disk: str | None = None,
) -> list[str]:
    """Group offloading (block level: one block on ``onload`` at a time; leaf level: one layer)
    with the rest on the CPU, or in files under ``disk``, for every ``nn.Module`` component but
    the VAEs, which move to ``onload``. CUDA overlaps the next group's transfer with the current
    one's work (``use_stream``, by default on CUDA). Returns the offloaded names."""
    import torch
    from diffusers.hooks import apply_group_offloading

    from openreel.render.quantize import holds_torchao

    stream = onload.type == "cuda" if use_stream is None else use_stream

    offloaded = []
    for name, component in pipe.components.items():
        if not isinstance(component, torch.nn.Module):
            continue
        if is_vae(name):
            component.to(onload)
            continue
        to_disk = disk
        if disk and holds_torchao(component):
            # safetensors cannot write torchao's int8 tensors (diffusers refuses): they offload
            # in memory, and on a CPU, where that would only add copies, stay as they are.
            if onload.type == "cpu":
                continue
            to_disk = None
        block = offload_type == "block_level"
        apply_group_offloading(
            component,
            onload_device=onload,
            offload_device=torch.device("cpu"),
            offload_type=offload_type,
            num_blocks_per_group=1 if block else None,
            use_stream=stream,
            offload_to_disk_path=f"{to_disk}/{name}" if to_disk else None,
            block_modules=block_path(component) if block else None,
        )
        offloaded.append(name)
    return offloaded


def block_path(module: torch.nn.Module) -> list[str] | None:
    """The names leading to a model's block stacks when they are nested (a T5 encoder's
    ``encoder.block``, LLaVA's ``model.language_model.layers``): diffusers' block-level offloading
    groups only direct children that are module lists unless told which children to descend
    into. None for diffusers models (their stacks are direct children) and when there is none."""
    import torch
    from diffusers import ModelMixin

    if isinstance(module, ModelMixin):
        return None
    total = sum(p.numel() for p in module.parameters()) or 1
    stacks: list[str] = []
    for qualified, child in module.named_modules():
        if not isinstance(child, (torch.nn.ModuleList, torch.nn.Sequential)):
            continue
        # Lists inside a block (a feed-forward's layers) belong to that block's group.
        if any(qualified.startswith(f"{stack}.") for stack in stacks):
            continue
        if sum(p.numel() for p in child.parameters()) >= _BLOCK_SHARE * total:
            stacks.append(qualified)
    path = {name for stack in stacks for name in stack.split(".")[:-1]}
    return sorted(path) or None
