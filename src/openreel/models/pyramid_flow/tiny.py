"""A tiny random Pyramid Flow, built in code without the hub, through the real code path.

The parts keep the real compression (8x space and time in the VAE, 2x2 patches, three pyramid
stages), so the tiny card's frame rule (8k+1) and size multiple (64) are the real ones; everything
else is shrunk to a few hundred kilobytes. Two builds are byte for byte the same. Output is noise.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

SEED = 0
VARIANTS = ("miniflux", "sd3")

_WORDS_TEXT = (
    "a an the and of in on at to with from by over under is are while as it its this that "
    "video scene shot camera close up wide slow motion cinematic light shadow sun sunset night day "
    "sky cloud rain snow fog water sea ocean river wave beach forest tree mountain city street road "
    "car train house room window man woman child people dog cat bird fish horse robot walking "
    "running flying red blue green yellow white black gold bright dark warm cold small large old "
    "young beautiful style film animation painting photo realistic detailed high quality low "
    "blurry hyper ultra hd 8k cartoon worst res extra limbs digits misplaced objects mutated "
    "anatomy monochrome horror absolute"
)
WORDS = tuple(_WORDS_TEXT.split())


def _seeded() -> Any:
    import torch

    torch.manual_seed(SEED)
    return torch


def clip_tokenizer() -> Any:
    """A CLIP byte-pair tokenizer whose merges spell the words above; other text falls back to
    single characters, so every English prompt tokenizes."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>"]:
        vocab[token] = len(vocab)
    for char in string.ascii_lowercase + string.digits + string.punctuation:
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    for word in sorted(set(WORDS)):
        symbols = list(word)
        symbols[-1] += "</w>"
        merged = symbols[0]
        for piece in symbols[1:]:
            if merged + piece not in vocab:
                vocab[merged + piece] = len(vocab)
                merges.append((merged, piece))
            merged += piece
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def t5_tokenizer() -> Any:
    """A Unigram T5 tokenizer from an in-code vocabulary: whole words where known, else characters."""
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    pieces += [(char, -8.0) for char in string.ascii_letters + string.digits + string.punctuation]
    pieces += [(f"▁{word}", -4.0) for word in sorted(set(WORDS))]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _clip_encoder(vocab_size: int, hidden: int, projection: int | None) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    _seeded()
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


def _t5_encoder(vocab_size: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    _seeded()
    config = T5Config(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
    )
    return T5EncoderModel(config)


def tiny_vae() -> Any:
    from openreel.models.pyramid_flow.vae import PyramidFlowCausalVAE

    _seeded()
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
    _seeded()
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
        parts.update(tokenizer_2=t5, text_encoder_2=_t5_encoder(len(t5)))
    else:
        # SD3 pools two CLIPs (L and G) through their projections and reads T5 third.
        parts.update(
            text_encoder=_clip_encoder(len(clip), 16, 16),
            tokenizer_2=clip_tokenizer(),
            text_encoder_2=_clip_encoder(len(clip), 24, 16),
            tokenizer_3=t5,
            text_encoder_3=_t5_encoder(len(t5)),
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
