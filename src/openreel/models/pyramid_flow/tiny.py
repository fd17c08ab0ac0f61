"""Tiny random Pyramid Flow "twins", built in code from a real card's reference configuration.

``build_twin(reference)`` takes a reference file (``models/families/reference/pyramid-flow-*.json``)
and builds the pipeline with every model shrunk in size only: widths, depths, heads and vocabularies
(the keys in ``SIZE_KEYS``). Everything else stays as published: 2x2 patches, the VAE's 8x space and
time compression and its 16 latent channels, the scheduler's stages, gamma and shift, the latent
normalisation, activations, position tables. So a twin runs the real code paths with the real frame
rule (8k+1) and size multiple (64). Two builds are byte for byte the same. Output is noise.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from openreel.models.tiny import clip_tokenizer, seeded, t5_tokenizer

SEED = 0
VARIANTS = ("miniflux", "sd3")
REFERENCE_DIR = Path(__file__).resolve().parent.parent / "families" / "reference"

# Per class (the last part of a reference's "class"), the config keys a twin may change. Token ids
# index the vocabulary, so they change with it.
_CLIP_SIZES = frozenset(
    {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
     "projection_dim", "bos_token_id", "eos_token_id", "pad_token_id"}
)  # fmt: skip
SIZE_KEYS: dict[str, frozenset[str]] = {
    "PyramidFluxTransformer3DModel": frozenset(
        {"num_layers", "num_single_layers", "attention_head_dim", "num_attention_heads",
         "joint_attention_dim", "pooled_projection_dim", "axes_dims_rope"}
    ),
    "PyramidSD3Transformer3DModel": frozenset(
        {"num_layers", "attention_head_dim", "num_attention_heads", "caption_projection_dim",
         "joint_attention_dim", "pooled_projection_dim"}
    ),
    "PyramidFlowCausalVAE": frozenset(
        {"encoder_block_out_channels", "decoder_block_out_channels", "encoder_layers_per_block",
         "decoder_layers_per_block", "encoder_norm_num_groups", "decoder_norm_num_groups"}
    ),
    "PyramidFlowMatchScheduler": frozenset(),
    "CLIPTextModel": _CLIP_SIZES,
    "CLIPTextModelWithProjection": _CLIP_SIZES,
    "T5EncoderModel": frozenset(
        {"vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads"}
    ),
}  # fmt: skip

_HEADS, _HEAD_DIM = 2, 16
_CLIP_WIDTHS = (16, 24)  # first and second CLIP: different, so a swapped slot cannot go unnoticed
_PROJECTION = 16
_T5 = dict(d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)
_VAE = dict(
    encoder_block_out_channels=(8, 8, 16, 16),
    decoder_block_out_channels=(8, 8, 16, 16),
    encoder_layers_per_block=(1, 1, 1, 1),
    decoder_layers_per_block=(1, 1, 1, 1),
    encoder_norm_num_groups=4,
    decoder_norm_num_groups=4,
)


def load_reference(card_id: str) -> dict[str, Any]:
    return json.loads((REFERENCE_DIR / f"{card_id}.json").read_text())


def _class(dotted: str) -> type:
    if "." not in dotted:
        import transformers

        return getattr(transformers, dotted)
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _text_encoder(component: dict[str, Any], sizes: dict[str, Any]) -> Any:
    import transformers

    seeded()
    config_class = getattr(transformers, component["config_class"])
    config = config_class(**{**component["config"], **sizes})
    return _class(component["class"])(config).eval()


def _clip_sizes(vocab: int, width: int, projection: int) -> dict[str, Any]:
    # The tiny CLIP tokenizer: <|startoftext|> is 0, <|endoftext|> 1 (CLIP pools there and pads with it).
    return dict(
        vocab_size=vocab,
        hidden_size=width,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=projection,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )


def _text_parts(components: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Twin tokenizers and text encoders; returns them and the pooled width they give."""
    parts: dict[str, Any] = {}
    pooled = 0
    clip_index = 0
    for name, component in components.items():
        if not name.startswith("text_encoder"):
            continue
        slot = name[len("text_encoder") :]
        if component["config_class"] == "T5Config":
            tokenizer = t5_tokenizer()
            # The tiny T5 vocabulary keeps T5's ids: <pad> 0, </s> 1.
            encoder = _text_encoder(component, {"vocab_size": len(tokenizer), **_T5})
        else:
            tokenizer = clip_tokenizer()
            width = _CLIP_WIDTHS[clip_index]
            with_projection = component["class"] == "CLIPTextModelWithProjection"
            projection = _PROJECTION if with_projection else width
            encoder = _text_encoder(component, _clip_sizes(len(tokenizer), width, projection))
            pooled += projection
            clip_index += 1
        parts[f"tokenizer{slot}"] = tokenizer
        parts[f"text_encoder{slot}"] = encoder
    return parts, pooled


def _transformer_sizes(cls_name: str, config: dict[str, Any], pooled: int) -> dict[str, Any]:
    sizes: dict[str, Any] = dict(
        num_layers=1 if cls_name == "PyramidFluxTransformer3DModel" else 2,
        attention_head_dim=_HEAD_DIM,
        num_attention_heads=_HEADS,
        joint_attention_dim=_T5["d_model"],
        pooled_projection_dim=pooled,
    )
    if cls_name == "PyramidFluxTransformer3DModel":
        # The rotary split keeps its proportions (16/24/24 of 64 -> 4/6/6 of 16).
        scale = config["attention_head_dim"] // _HEAD_DIM
        sizes.update(num_single_layers=1, axes_dims_rope=tuple(d // scale for d in config["axes_dims_rope"]))
    else:
        # SD3: the last joint block drops its text stream, so two blocks keep both kinds.
        sizes.update(caption_projection_dim=_HEADS * _HEAD_DIM)
    return sizes


def build_twin(reference: dict[str, Any]) -> Any:
    """The ``reference``'s pipeline with random weights, shrunk in the ``SIZE_KEYS`` only."""
    from openreel.models.pyramid_flow import scheduler as _scheduler  # noqa: F401  (import for _class)
    from openreel.models.pyramid_flow.pipeline import PyramidFlowPipeline

    components = reference["components"]
    parts, pooled = _text_parts(components)

    # The references hold our constructor arguments (``config``) beside the published files.
    transformer = components["transformer"]
    cls = _class(transformer["class"])
    config = transformer["config"]
    seeded()
    parts["transformer"] = cls(**{**config, **_transformer_sizes(cls.__name__, config, pooled)})

    vae = components["vae"]
    seeded()
    parts["vae"] = _class(vae["class"])(**{**vae["config"], **_VAE})

    scheduler = components["scheduler"]
    parts["scheduler"] = _class(scheduler["class"]).from_config(scheduler["config"])
    for part in parts.values():
        if hasattr(part, "eval"):
            # Inference mode, as from_pretrained leaves models: the text encoders have dropout.
            part.eval()
    statistics = {k: v for k, v in reference["pipeline_config"].items() if k != "source"}
    return PyramidFlowPipeline(**parts, **statistics)


def build_tiny_pipeline(variant: str = "miniflux") -> Any:
    """The tiny card's pipeline: the 384p twin of ``variant`` (``build_tiny_pyramid_flow`` saves it)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown Pyramid Flow variant {variant!r}; known: {', '.join(VARIANTS)}")
    return build_twin(load_reference(f"pyramid-flow-{variant}-384p"))


def build_tiny_pyramid_flow(folder: Path, variant: str = "miniflux") -> None:
    """Build the tiny ``variant`` pipeline and save it to ``folder`` in the diffusers layout."""
    pipe = build_tiny_pipeline(variant)
    Path(folder).mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder)
