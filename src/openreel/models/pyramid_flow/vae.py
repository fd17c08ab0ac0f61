"""Pyramid Flow's causal video VAE: a MAGVIT-v2-like 3D convolutional autoencoder that compresses
8x in each spatial direction and 8x in time, with 16 latent channels.

Every 3D convolution is causal in time (two frames of zero padding in front, none behind), so the
first frame is encoded on its own — an image is a one-frame video — and frames 8k+1 map to
latent frames k+1. Normalisation and the mid-block attention work frame by frame. Causality also
means a long video can be decoded a few latent frames at a time, each convolution keeping the
last two input frames of the previous chunk: the result equals decoding all frames at once.

Large frames can also be decoded in overlapping spatial tiles, as the published inference does
(``enable_tiling``): 256-pixel tiles (32 latents) every 192 pixels, each seam cross-faded over 64
pixels, every tile decoded with the same temporal chunking.

Module and parameter names follow the published ``causal_video_vae`` checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class CausalConv3d(nn.Module):
    """A Conv3d padded causally in time and symmetrically in space. In streaming mode it keeps the
    last ``kernel_t - 1`` padded input frames and puts them in front of the next chunk."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int | tuple[int, int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        stride = (stride, 1, 1) if isinstance(stride, int) else stride
        self.time_pad = kernel_size - 1
        self.space_pad = kernel_size // 2
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, bias=bias)
        self.streaming = False
        self._front: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.space_pad
        x = F.pad(x, (pad, pad, pad, pad, 0, 0))
        if self.time_pad:
            front = self._front if self.streaming and self._front is not None else None
            if front is None:
                front = x.new_zeros(*x.shape[:2], self.time_pad, *x.shape[3:])
            x = torch.cat([front, x], dim=2)
            if self.streaming:
                self._front = x[:, :, -self.time_pad :]
        return self.conv(x)


class CausalGroupNorm(nn.GroupNorm):
    """GroupNorm over each frame separately, so no frame's statistics see a later frame."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        return super().forward(frames).reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


class CausalResnetBlock3D(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = CausalGroupNorm(groups, in_channels, eps=eps)
        self.conv1 = CausalConv3d(in_channels, out_channels, 3)
        self.norm2 = CausalGroupNorm(groups, out_channels, eps=eps)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = CausalConv3d(out_channels, out_channels, 3)
        self.nonlinearity = nn.SiLU()
        self.conv_shortcut = (
            CausalConv3d(in_channels, out_channels, 1) if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.conv1(self.nonlinearity(self.norm1(x)))
        hidden = self.conv2(self.dropout(self.nonlinearity(self.norm2(hidden))))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + hidden


class FrameAttention(nn.Module):
    """Single-head self-attention over the pixels of each frame, with a residual connection."""

    def __init__(self, channels: int, groups: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, channels, eps=eps)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels), nn.Dropout(0.0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h * w)
        tokens = self.group_norm(frames).transpose(1, 2)
        query, key, value = self.to_q(tokens), self.to_k(tokens), self.to_v(tokens)
        # The published block upcasts the softmax; attention in float32 does the same job.
        out = F.scaled_dot_product_attention(
            query[:, None].float(), key[:, None].float(), value[:, None].float()
        )
        out = self.to_out[0](out[:, 0].to(x.dtype)).transpose(1, 2)
        return (frames + out).reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


class MidBlock(nn.Module):
    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.resnets = nn.ModuleList([CausalResnetBlock3D(channels, channels, groups) for _ in range(2)])
        self.attentions = nn.ModuleList([FrameAttention(channels, groups)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnets[0](x)
        return self.resnets[1](self.attentions[0](x))


class SpatialDownsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = CausalConv3d(channels, channels, 3, stride=(1, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class TemporalDownsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = CausalConv3d(channels, channels, 3, stride=(2, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SpatialUpsample(nn.Module):
    """A convolution to 4x the channels, then depth-to-space."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = CausalConv3d(channels, channels * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        b, c4, t, h, w = x.shape
        x = x.reshape(b, c4 // 4, 2, 2, t, h, w).permute(0, 1, 4, 5, 2, 6, 3)
        return x.reshape(b, c4 // 4, t, h * 2, w * 2)


class TemporalUpsample(nn.Module):
    """A convolution to 2x the channels, each frame becoming two; the very first frame of a video
    stays one frame (it was encoded alone), so T frames become 2T - 1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = CausalConv3d(channels, channels * 2, 3)
        self.streaming = False
        self._started = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        b, c2, t, h, w = x.shape
        x = x.reshape(b, c2 // 2, 2, t, h, w).permute(0, 1, 3, 2, 4, 5).reshape(b, c2 // 2, t * 2, h, w)
        first_chunk = not (self.streaming and self._started)
        self._started = self.streaming
        return x[:, :, 1:] if first_chunk else x


class DownBlock(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, layers: int, groups: int, spatial: bool, temporal: bool
    ):
        super().__init__()
        self.resnets = nn.ModuleList(
            [
                CausalResnetBlock3D(in_channels if i == 0 else out_channels, out_channels, groups)
                for i in range(layers)
            ]
        )
        self.downsamplers = nn.ModuleList([SpatialDownsample(out_channels)]) if spatial else None
        self.temporal_downsamplers = nn.ModuleList([TemporalDownsample(out_channels)]) if temporal else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        for module in (*(self.downsamplers or ()), *(self.temporal_downsamplers or ())):
            x = module(x)
        return x


class UpBlock(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, layers: int, groups: int, spatial: bool, temporal: bool
    ):
        super().__init__()
        self.resnets = nn.ModuleList(
            [
                CausalResnetBlock3D(in_channels if i == 0 else out_channels, out_channels, groups)
                for i in range(layers)
            ]
        )
        self.upsamplers = nn.ModuleList([SpatialUpsample(out_channels)]) if spatial else None
        self.temporal_upsamplers = nn.ModuleList([TemporalUpsample(out_channels)]) if temporal else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for resnet in self.resnets:
            x = resnet(x)
        for module in (*(self.upsamplers or ()), *(self.temporal_upsamplers or ())):
            x = module(x)
        return x


class CausalVaeEncoder(nn.Module):
    def __init__(self, in_channels, out_channels, channels, layers, groups, spatial, temporal) -> None:
        super().__init__()
        self.conv_in = CausalConv3d(in_channels, channels[0], 3)
        blocks, previous = [], channels[0]
        for index, width in enumerate(channels):
            blocks.append(DownBlock(previous, width, layers[index], groups, spatial[index], temporal[index]))
            previous = width
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = MidBlock(channels[-1], groups)
        self.conv_norm_out = CausalGroupNorm(groups, channels[-1], eps=1e-6)
        self.conv_act = nn.SiLU()
        # Mean and log-variance.
        self.conv_out = CausalConv3d(channels[-1], 2 * out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))


class CausalVaeDecoder(nn.Module):
    def __init__(self, in_channels, out_channels, channels, layers, groups, spatial, temporal) -> None:
        super().__init__()
        self.conv_in = CausalConv3d(in_channels, channels[-1], 3)
        self.mid_block = MidBlock(channels[-1], groups)
        reversed_channels = list(reversed(channels))
        blocks, previous = [], reversed_channels[0]
        for index, width in enumerate(reversed_channels):
            blocks.append(UpBlock(previous, width, layers[index], groups, spatial[index], temporal[index]))
            previous = width
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = CausalGroupNorm(groups, channels[0], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = CausalConv3d(channels[0], out_channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(self.conv_act(self.conv_norm_out(x)))


# The published decode (``decode_latent`` with its default ``save_memory=True``): 256-pixel tiles
# overlapping by a quarter, and one latent frame per temporal chunk after the first.
TILE_SAMPLE_SIZE = 256
TILE_OVERLAP = 0.25
WINDOW_SIZE = 1


def _blend(previous: torch.Tensor, tile: torch.Tensor, extent: int, dim: int) -> torch.Tensor:
    """Cross-fade the first ``extent`` rows (or columns) of ``tile`` from the last ones of
    ``previous``, linearly, as the published ``blend_v``/``blend_h`` do."""
    extent = min(previous.shape[dim], tile.shape[dim], extent)
    if extent == 0:
        return tile
    shape = [1] * tile.ndim
    shape[dim] = extent
    weight = (torch.arange(extent, device=tile.device, dtype=tile.dtype) / extent).reshape(shape)
    head = tile.narrow(dim, 0, extent)
    faded = previous.narrow(dim, previous.shape[dim] - extent, extent) * (1 - weight) + head * weight
    return torch.cat([faded, tile.narrow(dim, extent, tile.shape[dim] - extent)], dim=dim)


class PyramidFlowCausalVAE(ModelMixin, ConfigMixin):
    """The causal video VAE. ``encode`` returns a diagonal Gaussian over the 16-channel latent,
    ``decode`` maps latents back to video in [-1, 1]. Scaling of latents for the transformer is
    the pipeline's job (it differs between the first frame and the rest)."""

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        encoder_in_channels: int = 3,
        encoder_out_channels: int = 16,
        encoder_layers_per_block: tuple[int, ...] = (2, 2, 2, 2),
        encoder_block_out_channels: tuple[int, ...] = (128, 256, 512, 512),
        encoder_spatial_down_sample: tuple[bool, ...] = (True, True, True, False),
        encoder_temporal_down_sample: tuple[bool, ...] = (True, True, True, False),
        encoder_norm_num_groups: int = 32,
        decoder_in_channels: int = 16,
        decoder_out_channels: int = 3,
        decoder_layers_per_block: tuple[int, ...] = (3, 3, 3, 3),
        decoder_block_out_channels: tuple[int, ...] = (128, 256, 512, 512),
        decoder_spatial_up_sample: tuple[bool, ...] = (True, True, True, False),
        decoder_temporal_up_sample: tuple[bool, ...] = (True, True, True, False),
        decoder_norm_num_groups: int = 32,
        downsample_scale: int = 8,
        scaling_factor: float = 0.13025,
    ) -> None:
        super().__init__()
        latent = encoder_out_channels
        self.encoder = CausalVaeEncoder(
            encoder_in_channels,
            latent,
            encoder_block_out_channels,
            encoder_layers_per_block,
            encoder_norm_num_groups,
            encoder_spatial_down_sample,
            encoder_temporal_down_sample,
        )
        self.decoder = CausalVaeDecoder(
            decoder_in_channels,
            decoder_out_channels,
            decoder_block_out_channels,
            decoder_layers_per_block,
            decoder_norm_num_groups,
            decoder_spatial_up_sample,
            decoder_temporal_up_sample,
        )
        self.quant_conv = CausalConv3d(2 * latent, 2 * latent, 1)
        self.post_quant_conv = CausalConv3d(latent, latent, 1)
        # Tiled decoding is off until asked for, as in diffusers' VAEs; the sizes are set there.
        self.use_tiling = False
        self.tile_sample_min_size = TILE_SAMPLE_SIZE
        self.tile_overlap_factor = TILE_OVERLAP

    @property
    def spatial_compression_ratio(self) -> int:
        return 2 ** sum(self.config.encoder_spatial_down_sample)

    @property
    def temporal_compression_ratio(self) -> int:
        return 2 ** sum(self.config.encoder_temporal_down_sample)

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """Video (batch, 3, 8k+1, H, W) in [-1, 1] -> posterior over (batch, 16, k+1, H/8, W/8)."""
        moments = self.quant_conv(self.encoder(x))
        posterior = DiagonalGaussianDistribution(moments)
        if not return_dict:
            return (posterior,)
        return AutoencoderKLOutput(latent_dist=posterior)

    def _set_streaming(self, streaming: bool) -> None:
        for module in self.decoder.modules():
            if isinstance(module, CausalConv3d):
                module.streaming, module._front = streaming, None
            elif isinstance(module, TemporalUpsample):
                module.streaming, module._started = streaming, False
        self.post_quant_conv.streaming, self.post_quant_conv._front = streaming, None

    def enable_tiling(
        self, tile_sample_min_size: int = TILE_SAMPLE_SIZE, tile_overlap_factor: float = TILE_OVERLAP
    ) -> None:
        """Decode frames larger than a tile in overlapping tiles (defaults: the published ones)."""
        spatial = self.spatial_compression_ratio
        if tile_sample_min_size % spatial:
            raise ValueError(f"tile_sample_min_size must be a multiple of {spatial}")
        self.use_tiling = True
        self.tile_sample_min_size = tile_sample_min_size
        self.tile_overlap_factor = tile_overlap_factor

    def disable_tiling(self) -> None:
        self.use_tiling = False

    @property
    def tile_latent_min_size(self) -> int:
        return self.tile_sample_min_size // self.spatial_compression_ratio

    def _decode_in_time(self, z: torch.Tensor, temporal_chunk: bool, window_size: int) -> torch.Tensor:
        if not temporal_chunk or z.shape[2] <= window_size + 1:
            return self.decoder(self.post_quant_conv(z))
        self._set_streaming(True)
        try:
            bounds = [0, window_size + 1, *range(window_size * 2 + 1, z.shape[2], window_size), z.shape[2]]
            chunks = [
                self.decoder(self.post_quant_conv(z[:, :, start:end]))
                for start, end in zip(bounds[:-1], bounds[1:], strict=True)
            ]
        finally:
            self._set_streaming(False)
        return torch.cat(chunks, dim=2)

    def tiled_decode(self, z: torch.Tensor, temporal_chunk: bool, window_size: int) -> torch.Tensor:
        """Tiles of ``tile_latent_min_size`` latents every (1 - overlap) of that; each decoded tile
        is cross-faded into its upper and left neighbours over the overlap and cropped to the stride."""
        tile = self.tile_latent_min_size
        stride = int(tile * (1 - self.tile_overlap_factor))
        blend = int(self.tile_sample_min_size * self.tile_overlap_factor)
        keep = self.tile_sample_min_size - blend
        rows = [
            [
                self._decode_in_time(z[:, :, :, i : i + tile, j : j + tile], temporal_chunk, window_size)
                for j in range(0, z.shape[4], stride)
            ]
            for i in range(0, z.shape[3], stride)
        ]
        out_rows = []
        for i, row in enumerate(rows):
            out_row = []
            for j, decoded in enumerate(row):
                if i > 0:
                    decoded = _blend(rows[i - 1][j], decoded, blend, dim=3)
                if j > 0:
                    decoded = _blend(row[j - 1], decoded, blend, dim=4)
                # Neighbours blend from this tile as blended (the published code blends in place).
                row[j] = decoded
                out_row.append(decoded[:, :, :, :keep, :keep])
            out_rows.append(torch.cat(out_row, dim=4))
        return torch.cat(out_rows, dim=3)

    def decode(
        self,
        z: torch.Tensor,
        return_dict: bool = True,
        temporal_chunk: bool = True,
        window_size: int = WINDOW_SIZE,
    ) -> DecoderOutput | tuple[torch.Tensor]:
        """Latents (batch, 16, T, h, w) -> video (batch, 3, 8(T-1)+1, 8h, 8w).

        With ``temporal_chunk`` the latents are decoded ``window_size`` frames at a time (the first
        chunk one frame longer), as the published inference does to bound memory; with tiling
        enabled, latents wider or taller than a tile are decoded tile by tile.
        """
        tile = self.tile_latent_min_size
        if self.use_tiling and (z.shape[-1] > tile or z.shape[-2] > tile):
            video = self.tiled_decode(z, temporal_chunk, window_size)
        else:
            video = self._decode_in_time(z, temporal_chunk, window_size)
        if not return_dict:
            return (video,)
        return DecoderOutput(sample=video)

    def forward(self, sample: torch.Tensor, generator: torch.Generator | None = None) -> DecoderOutput:
        latent = self.encode(sample).latent_dist.sample(generator=generator)
        return self.decode(latent)
