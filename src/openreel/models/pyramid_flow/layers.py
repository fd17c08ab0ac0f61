"""Parts shared by both Pyramid Flow transformers: rotary positions, the temporally causal joint
attention mask, and the MMDiT joint block.

Both published transformers read one sequence per call: the text tokens, then the history clips
(oldest first, some at lower resolution), then the clip being denoised. Every token knows its
frame index; a token may attend to any token of the same or an earlier frame (text counts as frame
0), which makes the model causal in time. Padded text tokens are shut out of everything else.

Parameter names follow the published checkpoints, so their state dicts load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.embeddings import PixArtAlphaTextProjection, TimestepEmbedding, Timesteps
from diffusers.models.normalization import AdaLayerNormContinuous, AdaLayerNormZero, RMSNorm
from torch import nn


def rope_frequencies(
    positions: torch.Tensor, axes_dims: tuple[int, ...], theta: float = 10000.0
) -> torch.Tensor:
    """cos and sin of every rotary pair: (batch, tokens, sum(axes_dims) // 2, 2).

    ``positions`` is (batch, tokens, len(axes_dims)); axis i rotates axes_dims[i] channels of each
    head. Computed in float64 as the published code does, since positions reach the hundreds.
    """
    angles = []
    for axis, dim in enumerate(axes_dims):
        omega = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim)
        angles.append(positions[..., axis].to(torch.float64)[..., None] * omega)
    angle = torch.cat(angles, dim=-1)
    return torch.stack([angle.cos(), angle.sin()], dim=-1).float()


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of ``x`` (batch, tokens, heads, head_dim) by ``freqs``."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = freqs[:, :, None, :, 0], freqs[:, :, None, :, 1]
    first = cos * pairs[..., 0] - sin * pairs[..., 1]
    second = sin * pairs[..., 0] + cos * pairs[..., 1]
    return torch.stack([first, second], dim=-1).reshape(x.shape).type_as(x)


def causal_joint_mask(text_mask: torch.Tensor, frame_ids: torch.Tensor) -> torch.Tensor:
    """Boolean attention mask (batch, 1, L+N, L+N) for [text (L), video (N)] tokens.

    ``text_mask`` (batch, L) marks real text tokens; ``frame_ids`` (batch, N) is each video
    token's frame index. Real text and video tokens form one group and padded text another, and
    a query sees only keys of its own group whose frame index is not later than its own.
    """
    batch, length = text_mask.shape
    group = torch.cat([text_mask.bool(), torch.ones_like(frame_ids, dtype=torch.bool)], dim=1)
    frames = torch.cat(
        [torch.zeros(batch, length, device=frame_ids.device, dtype=frame_ids.dtype), frame_ids], 1
    )
    same_group = group[:, :, None] == group[:, None, :]
    not_later = frames[:, :, None] >= frames[:, None, :]
    return (same_group & not_later)[:, None]


def masked_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, rope: torch.Tensor | None, mask: torch.Tensor
) -> torch.Tensor:
    """Scaled dot-product attention over (batch, tokens, heads, head_dim); returns (batch, tokens, dim)."""
    if rope is not None:
        query, key = apply_rope(query, rope), apply_rope(key, rope)
    out = F.scaled_dot_product_attention(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attn_mask=mask
    )
    return out.transpose(1, 2).flatten(2, 3)


class TimestepTextEmbedding(nn.Module):
    """temb = MLP(sinusoid(timestep)) + MLP(pooled text embedding): the pooled CLIP embedding for
    miniflux, CLIP-L and CLIP-G concatenated for the SD3 variant."""

    def __init__(self, dim: int, pooled_projection_dim: int) -> None:
        super().__init__()
        self.time_proj = Timesteps(num_channels=256, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.timestep_embedder = TimestepEmbedding(in_channels=256, time_embed_dim=dim)
        self.text_embedder = PixArtAlphaTextProjection(pooled_projection_dim, dim, act_fn="silu")

    def forward(self, timestep: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        time = self.timestep_embedder(self.time_proj(timestep).to(pooled.dtype))
        return time + self.text_embedder(pooled)


class PyramidJointAttention(nn.Module):
    """Joint (MMDiT) attention: video and text each have their own projections, one softmax.

    The q/k RMS norms of the text stream are called ``norm_added_q/k`` in the miniflux checkpoint
    and ``norm_add_q/k`` in the SD3 one; ``context_norm_name`` picks the spelling.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        eps: float,
        context_pre_only: bool = False,
        context_norm_name: str = "norm_added",
    ) -> None:
        super().__init__()
        inner = num_heads * head_dim
        self.heads = num_heads
        self.context_pre_only = context_pre_only
        self.context_norm_name = context_norm_name
        self.norm_q = RMSNorm(head_dim, eps=eps)
        self.norm_k = RMSNorm(head_dim, eps=eps)
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.add_q_proj = nn.Linear(dim, inner)
        self.add_k_proj = nn.Linear(dim, inner)
        self.add_v_proj = nn.Linear(dim, inner)
        setattr(self, f"{context_norm_name}_q", RMSNorm(head_dim, eps=eps))
        setattr(self, f"{context_norm_name}_k", RMSNorm(head_dim, eps=eps))
        # A list with a dropout, as in the checkpoints: the weight is ``to_out.0``.
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])
        if not context_pre_only:
            self.to_add_out = nn.Linear(inner, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, -1)

    def forward(
        self,
        hidden_states: torch.Tensor,
        context: torch.Tensor,
        rope: torch.Tensor | None,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        norm_add_q = getattr(self, f"{self.context_norm_name}_q")
        norm_add_k = getattr(self, f"{self.context_norm_name}_k")
        query = torch.cat(
            [
                norm_add_q(self._heads(self.add_q_proj(context))),
                self.norm_q(self._heads(self.to_q(hidden_states))),
            ],
            dim=1,
        )
        key = torch.cat(
            [
                norm_add_k(self._heads(self.add_k_proj(context))),
                self.norm_k(self._heads(self.to_k(hidden_states))),
            ],
            dim=1,
        )
        value = torch.cat(
            [self._heads(self.add_v_proj(context)), self._heads(self.to_v(hidden_states))], dim=1
        )
        out = masked_attention(query, key.to(query.dtype), value.to(query.dtype), rope, mask)
        length = context.shape[1]
        video = self.to_out[0](out[:, length:].to(hidden_states.dtype))
        text = None if self.context_pre_only else self.to_add_out(out[:, :length].to(context.dtype))
        return video, text


class PyramidJointTransformerBlock(nn.Module):
    """An MMDiT block with adaLN-zero modulation of both streams; the last block of the SD3 variant
    only reads the text stream (``context_pre_only``), so it has no text output path."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        head_dim: int,
        eps: float = 1e-6,
        context_pre_only: bool = False,
        context_norm_name: str = "norm_added",
    ) -> None:
        super().__init__()
        self.context_pre_only = context_pre_only
        self.norm1 = AdaLayerNormZero(dim)
        if context_pre_only:
            self.norm1_context = AdaLayerNormContinuous(dim, dim, elementwise_affine=False, eps=1e-6)
        else:
            self.norm1_context = AdaLayerNormZero(dim)
        self.attn = PyramidJointAttention(dim, num_heads, head_dim, eps, context_pre_only, context_norm_name)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff = FeedForward(dim=dim, dim_out=dim, activation_fn="gelu-approximate")
        if not context_pre_only:
            self.norm2_context = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
            self.ff_context = FeedForward(dim=dim, dim_out=dim, activation_fn="gelu-approximate")

    def forward(
        self,
        hidden_states: torch.Tensor,
        context: torch.Tensor,
        temb: torch.Tensor,
        rope: torch.Tensor | None,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        norm_hidden, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.norm1(hidden_states, emb=temb)
        if self.context_pre_only:
            norm_context = self.norm1_context(context, temb)
        else:
            norm_context, c_gate_msa, c_shift_mlp, c_scale_mlp, c_gate_mlp = self.norm1_context(
                context, emb=temb
            )

        attn_video, attn_text = self.attn(norm_hidden, norm_context, rope, mask)
        hidden_states = hidden_states + gate_msa[:, None] * attn_video
        norm_hidden = self.norm2(hidden_states) * (1 + scale_mlp[:, None]) + shift_mlp[:, None]
        hidden_states = hidden_states + gate_mlp[:, None] * self.ff(norm_hidden)

        if self.context_pre_only:
            return None, hidden_states
        context = context + c_gate_msa[:, None] * attn_text
        norm_context = self.norm2_context(context) * (1 + c_scale_mlp[:, None]) + c_shift_mlp[:, None]
        context = context + c_gate_mlp[:, None] * self.ff_context(norm_context)
        if context.dtype == torch.float16:
            context = context.clip(-65504, 65504)
        return context, hidden_states


def interpolated_positions(size: int, full: int) -> torch.Tensor:
    """Positions of ``size`` cells spread over a ``full``-cell axis (the history clips at lower
    resolution are placed on the current clip's grid: linear interpolation of 0..full-1)."""
    grid = torch.arange(full, dtype=torch.float32)
    if size == full:
        return grid
    return F.interpolate(grid[None, None], size=size, mode="linear").reshape(size)
