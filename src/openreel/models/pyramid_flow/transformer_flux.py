"""The diffusion transformer of pyramid-flow-miniflux: a Flux-style MMDiT (8 joint blocks, 16 single
blocks, 30 heads of 64) that reads a whole causal video sequence.

Latents are patchified 2x2 into 64 channels before ``x_embedder`` (so ``in_channels`` is 64 for a
16-channel VAE). Positions are 3-axis RoPE (frame, row, column) with 16/24/24 channels of each head;
history clips kept at a lower resolution get row and column positions interpolated onto the grid of
the clip being denoised, so a low-resolution frame covers the same picture area.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormContinuous, AdaLayerNormZeroSingle, RMSNorm
from torch import nn

from openreel.models.pyramid_flow.layers import (
    PyramidJointTransformerBlock,
    TimestepTextEmbedding,
    causal_joint_mask,
    interpolated_positions,
    masked_attention,
    rope_frequencies,
)

PATCH = 2  # the published code hard-codes a 2x2 patch; ``patch_size`` in its config is 1


class FluxSingleBlock(nn.Module):
    """A parallel attention + MLP block over the joint text-and-video sequence."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = num_heads
        hidden = int(dim * mlp_ratio)
        self.norm = AdaLayerNormZeroSingle(dim)
        self.proj_mlp = nn.Linear(dim, hidden)
        self.act_mlp = nn.GELU(approximate="tanh")
        self.proj_out = nn.Linear(dim + hidden, dim)
        self.attn = FluxSingleAttention(dim, num_heads, head_dim)

    def forward(
        self, hidden_states: torch.Tensor, temb: torch.Tensor, rope: torch.Tensor, mask: torch.Tensor
    ):
        norm_hidden, gate = self.norm(hidden_states, emb=temb)
        mlp = self.act_mlp(self.proj_mlp(norm_hidden))
        attn = self.attn(norm_hidden, rope, mask).to(mlp.dtype)
        out = hidden_states + gate[:, None] * self.proj_out(torch.cat([attn, mlp], dim=2))
        if out.dtype == torch.float16:
            out = out.clip(-65504, 65504)
        return out


class FluxSingleAttention(nn.Module):
    """Self-attention without an output projection (the single block's ``proj_out`` follows)."""

    def __init__(self, dim: int, num_heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = num_heads
        self.norm_q = RMSNorm(head_dim, eps=1e-6)
        self.norm_k = RMSNorm(head_dim, eps=1e-6)
        self.to_q = nn.Linear(dim, num_heads * head_dim)
        self.to_k = nn.Linear(dim, num_heads * head_dim)
        self.to_v = nn.Linear(dim, num_heads * head_dim)

    def forward(self, hidden_states: torch.Tensor, rope: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shape = (hidden_states.shape[0], hidden_states.shape[1], self.heads, -1)
        query = self.norm_q(self.to_q(hidden_states).view(shape))
        key = self.norm_k(self.to_k(hidden_states).view(shape))
        value = self.to_v(hidden_states).view(shape)
        return masked_attention(query, key.to(query.dtype), value.to(query.dtype), rope, mask)


class PyramidFluxTransformer3DModel(ModelMixin, ConfigMixin):
    """Predicts the flow velocity of the last clip of ``hidden_states`` given the earlier clips.

    Args mirror the published ``config.json`` (unused training switches such as flash attention and
    gradient checkpointing are left out; ``convert.py`` drops them).
    """

    _supports_gradient_checkpointing = False
    _no_split_modules = ["PyramidJointTransformerBlock", "FluxSingleBlock"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 64,
        num_layers: int = 8,
        num_single_layers: int = 16,
        attention_head_dim: int = 64,
        num_attention_heads: int = 30,
        joint_attention_dim: int = 4096,
        pooled_projection_dim: int = 768,
        axes_dims_rope: tuple[int, int, int] = (16, 24, 24),
        use_temporal_causal: bool = True,
        interp_condition_pos: bool = True,
    ) -> None:
        super().__init__()
        if sum(axes_dims_rope) != attention_head_dim:
            raise ValueError(
                f"axes_dims_rope {axes_dims_rope} must add up to attention_head_dim {attention_head_dim}"
            )
        dim = num_attention_heads * attention_head_dim
        self.out_channels = in_channels
        self.time_text_embed = TimestepTextEmbedding(dim, pooled_projection_dim)
        self.context_embedder = nn.Linear(joint_attention_dim, dim)
        self.x_embedder = nn.Linear(in_channels, dim)
        self.transformer_blocks = nn.ModuleList(
            [
                PyramidJointTransformerBlock(dim, num_attention_heads, attention_head_dim)
                for _ in range(num_layers)
            ]
        )
        self.single_transformer_blocks = nn.ModuleList(
            [FluxSingleBlock(dim, num_attention_heads, attention_head_dim) for _ in range(num_single_layers)]
        )
        self.norm_out = AdaLayerNormContinuous(dim, dim, elementwise_affine=False, eps=1e-6)
        self.proj_out = nn.Linear(dim, in_channels)

    def _positions(self, clips: list[torch.Tensor]) -> torch.Tensor:
        """(frame, row, column) of every video token, clips in order, (tokens, 3)."""
        full_h, full_w = clips[-1].shape[-2] // PATCH, clips[-1].shape[-1] // PATCH
        positions, start = [], 0
        for clip in clips:
            frames, h, w = clip.shape[2], clip.shape[-2] // PATCH, clip.shape[-1] // PATCH
            if self.config.interp_condition_pos:
                rows, cols = interpolated_positions(h, full_h), interpolated_positions(w, full_w)
            else:
                rows, cols = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
            t = torch.arange(start, start + frames, dtype=torch.float32)
            grid = torch.stack(torch.meshgrid(t, rows, cols, indexing="ij"), dim=-1)
            positions.append(grid.reshape(-1, 3))
            start += frames
        return torch.cat(positions)

    def forward(
        self,
        hidden_states: list[torch.Tensor],
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        pooled_projections: torch.Tensor,
        timestep: torch.Tensor,
        return_dict: bool = True,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """``hidden_states``: latent clips (batch, 16, frames, h, w), oldest first; the last is the
        one being denoised and sets the position grid. Returns the velocity of the last clip."""
        if not isinstance(hidden_states, (list, tuple)):
            hidden_states = [hidden_states]
        batch = hidden_states[-1].shape[0]
        device = hidden_states[-1].device
        temb = self.time_text_embed(timestep, pooled_projections)
        context = self.context_embedder(encoder_hidden_states)
        text_length = context.shape[1]

        tokens = []
        for clip in hidden_states:
            b, c, t, h, w = clip.shape
            patches = clip.reshape(b, c, t, h // PATCH, PATCH, w // PATCH, PATCH)
            tokens.append(patches.permute(0, 2, 3, 5, 4, 6, 1).reshape(b, -1, PATCH * PATCH * c))
        # The compute dtype is the text embedding's: under layerwise casting (fp8 storage) the
        # weights' own dtype is not what the layers compute in.
        hidden = self.x_embedder(torch.cat(tokens, dim=1).to(context.dtype))

        positions = self._positions(list(hidden_states)).to(device)
        all_positions = torch.cat([torch.zeros(text_length, 3, device=device), positions])
        rope = rope_frequencies(all_positions[None].expand(batch, -1, -1), tuple(self.config.axes_dims_rope))
        frame_ids = positions[:, 0][None].expand(batch, -1)
        if not self.config.use_temporal_causal:
            frame_ids = torch.zeros_like(frame_ids)
        mask = causal_joint_mask(encoder_attention_mask, frame_ids)

        for block in self.transformer_blocks:
            context, hidden = block(hidden, context, temb, rope, mask)
        hidden = torch.cat([context, hidden], dim=1)
        for block in self.single_transformer_blocks:
            hidden = block(hidden, temb, rope, mask)
        hidden = hidden[:, text_length:]

        # Only the clip being denoised is read out.
        last = hidden_states[-1]
        b, _, t, h, w = last.shape
        hidden = hidden[:, -t * (h // PATCH) * (w // PATCH) :]
        out = self.proj_out(self.norm_out(hidden, temb))
        channels = self.out_channels // (PATCH * PATCH)
        out = out.reshape(b, t, h // PATCH, w // PATCH, PATCH, PATCH, channels)
        out = out.permute(0, 6, 1, 2, 4, 3, 5).reshape(b, channels, t, h, w)
        if not return_dict:
            return (out,)
        return Transformer2DModelOutput(sample=out)
