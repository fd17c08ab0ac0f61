"""A tiny random Pyramid Flow, built in code without the hub, through the real code path.

The parts keep the real compression (8x space and time in the VAE, 2x2 patches, three pyramid
stages), so the tiny card's frame rule (8k+1) and size multiple (64) are the real ones; everything
else is shrunk to a few hundred kilobytes. Two builds are byte for byte the same. Output is noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openreel.models.tiny import clip_tokenizer, seeded, t5_encoder, t5_tokenizer

SEED = 0
VARIANTS = ("miniflux", "sd3")



def _clip_encoder(vocab_size: int, hidden: int, projection: int | None) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    seeded()
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=77,
        projection_dim=projection or hidden,
        # CLIP pools at the first end-of-text token; ids from the tokenizer above.
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def tiny_vae() -> Any:
    from openreel.models.pyramid_flow.vae import PyramidFlowCausalVAE

    seeded()
    return PyramidFlowCausalVAE(
        encoder_out_channels=4,
        encoder_layers_per_block=(1, 1, 1, 1),
        encoder_block_out_channels=(8, 8, 16, 16),
        encoder_norm_num_groups=4,
        decoder_in_channels=4,
        decoder_layers_per_block=(1, 1, 1, 1),
        decoder_block_out_channels=(8, 8, 16, 16),
        decoder_norm_num_groups=4,
    )


def tiny_transformer(variant: str) -> Any:
    seeded()
    if variant == "miniflux":
        from openreel.models.pyramid_flow.transformer_flux import PyramidFluxTransformer3DModel

        return PyramidFluxTransformer3DModel(
            in_channels=4 * 4,  # 4 latent channels, 2x2 patches
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=16,
            axes_dims_rope=(4, 6, 6),
        )
    from openreel.models.pyramid_flow.transformer_sd3 import PyramidSD3Transformer3DModel

    return PyramidSD3Transformer3DModel(
        sample_size=16,
        in_channels=4,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        caption_projection_dim=32,
        pooled_projection_dim=16 + 16,
        joint_attention_dim=32,
        pos_embed_max_size=32,
    )


def build_tiny_pipeline(variant: str = "miniflux") -> Any:
    """The tiny pipeline in memory (``build_tiny_pyramid_flow`` saves it)."""
    from openreel.models.pyramid_flow.pipeline import LATENT_STATISTICS, PyramidFlowPipeline
    from openreel.models.pyramid_flow.scheduler import PyramidFlowMatchScheduler

    if variant not in VARIANTS:
        raise ValueError(f"unknown Pyramid Flow variant {variant!r}; known: {', '.join(VARIANTS)}")
    clip, t5 = clip_tokenizer(), t5_tokenizer()
    parts: dict[str, Any] = {"tokenizer": clip, "text_encoder": _clip_encoder(len(clip), 16, None)}
    if variant == "miniflux":
        parts.update(tokenizer_2=t5, text_encoder_2=t5_encoder(len(t5)))
    else:
        # SD3 pools two CLIPs (L and G) through their projections and reads T5 third.
        parts.update(
            text_encoder=_clip_encoder(len(clip), 16, 16),
            tokenizer_2=clip_tokenizer(),
            text_encoder_2=_clip_encoder(len(clip), 24, 16),
            tokenizer_3=t5,
            text_encoder_3=t5_encoder(len(t5)),
        )
    parts.update(transformer=tiny_transformer(variant), vae=tiny_vae())
    for part in parts.values():
        if hasattr(part, "eval"):
            # Inference mode, as from_pretrained leaves models: the text encoders have dropout.
            part.eval()
    return PyramidFlowPipeline(scheduler=PyramidFlowMatchScheduler(), **parts, **LATENT_STATISTICS[variant])


def build_tiny_pyramid_flow(folder: Path, variant: str = "miniflux") -> None:
    """Build the tiny ``variant`` pipeline and save it to ``folder`` in the diffusers layout."""
    pipe = build_tiny_pipeline(variant)
    Path(folder).mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder)
