"""The diffusion transformer of pyramid-flow-sd3: an SD3-style MMDiT (24 joint blocks, 24 heads of
64, 2x2 convolutional patches) that reads a whole causal video sequence.

Space is encoded SD3's way, by a fixed 2D sin-cos table (192 x 192 patches, stored in the
checkpoint) cropped around the centre; history clips at lower resolution get the crop of the
current clip's size resized to theirs. Time is encoded by a rotary embedding over each head's
channels (the published inference builds it with ``temp_pos_embed_type='rope'``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormContinuous
from torch import nn

from openreel.models.pyramid_flow.layers import (
    PyramidJointTransformerBlock,
    TimestepTextEmbedding,
    causal_joint_mask,
    rope_frequencies,
)


def sincos_table(dim: int, grid_size: int, base_size: int) -> torch.Tensor:
    """SD3's 2D sin-cos table, (1, grid_size**2, dim), row-major over (row, column).

    The first half of the channels encodes the column and the second half the row (the MAE
    convention SD3 inherited); a cell's coordinate is its index / (grid_size / base_size), so the
    table keeps the scale of the ``base_size`` grid the model was first trained on.
    """
    coords = torch.arange(grid_size, dtype=torch.float64) / (grid_size / base_size)
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)

    def encode(pos: torch.Tensor) -> torch.Tensor:
        angle = pos.reshape(-1)[:, None] * omega
        return torch.cat([angle.sin(), angle.cos()], dim=1)

    rows, cols = torch.meshgrid(coords, coords, indexing="ij")
    return torch.cat([encode(cols), encode(rows)], dim=1).float()[None]


class PatchEmbed3D(nn.Module):
    """2x2 convolutional patches of every frame plus the cropped sin-cos table."""

    def __init__(
        self, in_channels: int, dim: int, patch_size: int, pos_embed_max_size: int, base_size: int
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.pos_embed_max_size = pos_embed_max_size
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.register_buffer("pos_embed", sincos_table(dim, pos_embed_max_size, base_size), persistent=True)

    def cropped(
        self, height: int, width: int, full_height: int, full_width: int, interpolate: bool
    ) -> torch.Tensor:
        size = self.pos_embed_max_size
        if full_height > size or full_width > size:
            raise ValueError(f"{full_height}x{full_width} patches exceed the {size}x{size} position table")
        table = self.pos_embed.reshape(1, size, size, -1)
        if not interpolate:
            full_height, full_width = height, width
        top, left = (size - full_height) // 2, (size - full_width) // 2
        crop = table[:, top : top + full_height, left : left + full_width]
        if (height, width) != (full_height, full_width):
            crop = F.interpolate(crop.permute(0, 3, 1, 2), size=(height, width), mode="bilinear").permute(
                0, 2, 3, 1
            )
        return crop.reshape(1, height * width, -1)

    def forward(
        self, clip: torch.Tensor, full_height: int, full_width: int, interpolate: bool
    ) -> torch.Tensor:
        b, c, t, h, w = clip.shape
        frames = clip.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w).to(self.proj.weight.dtype)
        tokens = self.proj(frames).flatten(2).transpose(1, 2)
        p = self.patch_size
        pos = self.cropped(h // p, w // p, full_height // p, full_width // p, interpolate)
        tokens = (tokens + pos.to(tokens.device)).to(tokens.dtype)
        return tokens.reshape(b, t * tokens.shape[1], -1)


class PyramidSD3Transformer3DModel(ModelMixin, ConfigMixin):
    """Predicts the flow velocity of the last clip of ``hidden_states`` given the earlier clips."""

    _supports_gradient_checkpointing = False
    _no_split_modules = ["PyramidJointTransformerBlock"]

    @register_to_config
    def __init__(
        self,
        sample_size: int = 128,
        patch_size: int = 2,
        in_channels: int = 16,
        num_layers: int = 24,
        attention_head_dim: int = 64,
        num_attention_heads: int = 24,
        caption_projection_dim: int = 1536,
        pooled_projection_dim: int = 2048,
        joint_attention_dim: int = 4096,
        pos_embed_max_size: int = 192,
        use_temporal_causal: bool = True,
        interp_condition_pos: bool = True,
    ) -> None:
        super().__init__()
        dim = num_attention_heads * attention_head_dim
        if caption_projection_dim != dim:
            raise ValueError(
                f"caption_projection_dim {caption_projection_dim} must equal heads x head dim {dim}"
            )
        self.out_channels = in_channels
        self.pos_embed = PatchEmbed3D(
            in_channels, dim, patch_size, pos_embed_max_size, sample_size // patch_size
        )
        self.time_text_embed = TimestepTextEmbedding(dim, pooled_projection_dim)
        self.context_embedder = nn.Linear(joint_attention_dim, caption_projection_dim)
        self.transformer_blocks = nn.ModuleList(
            [
                PyramidJointTransformerBlock(
                    dim,
                    num_attention_heads,
                    attention_head_dim,
                    # The SD3 code builds its q/k RMS norms with the attention's default eps.
                    eps=1e-5,
                    context_pre_only=index == num_layers - 1,
                    context_norm_name="norm_add",
                )
                for index in range(num_layers)
            ]
        )
        self.norm_out = AdaLayerNormContinuous(dim, dim, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(dim, patch_size * patch_size * in_channels)

    def forward(
        self,
        hidden_states: list[torch.Tensor],
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        pooled_projections: torch.Tensor,
        timestep: torch.Tensor,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """Same contract as ``PyramidFluxTransformer3DModel.forward``."""
        if not isinstance(hidden_states, (list, tuple)):
            hidden_states = [hidden_states]
        p = self.config.patch_size
        last = hidden_states[-1]
        batch, device = last.shape[0], last.device
        full_h, full_w = last.shape[-2:]
        temb = self.time_text_embed(timestep, pooled_projections)
        context = self.context_embedder(encoder_hidden_states)
        text_length = context.shape[1]

        tokens, frame_ids, start = [], [], 0
        for clip in hidden_states:
            t, h, w = clip.shape[2:]
            tokens.append(self.pos_embed(clip, full_h, full_w, self.config.interp_condition_pos))
            frame_ids.append(
                torch.arange(start, start + t, device=device).repeat_interleave((h // p) * (w // p))
            )
            start += t
        hidden = torch.cat(tokens, dim=1)
        frames = torch.cat(frame_ids).float()

        positions = torch.cat([torch.zeros(text_length, device=device), frames])[None, :, None]
        rope = rope_frequencies(positions.expand(batch, -1, -1), (self.config.attention_head_dim,))
        causal_ids = frames[None].expand(batch, -1)
        if not self.config.use_temporal_causal:
            causal_ids = torch.zeros_like(causal_ids)
        mask = causal_joint_mask(encoder_attention_mask, causal_ids)

        for block in self.transformer_blocks:
            context, hidden = block(hidden, context, temb, rope, mask)

        t, h, w = last.shape[2:]
        hidden = hidden[:, -t * (h // p) * (w // p) :]
        out = self.proj_out(self.norm_out(hidden, temb))
        out = out.reshape(batch, t, h // p, w // p, p, p, self.out_channels)
        out = out.permute(0, 6, 1, 2, 4, 3, 5).reshape(batch, self.out_channels, t, h, w)
        if not return_dict:
            return (out,)
        return Transformer2DModelOutput(sample=out)
