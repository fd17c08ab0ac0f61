"""Twins: tiny random builds of the real cards, made from each card's reference configuration
(``openreel.models.reference``) by shrinking sizes only.

A twin has the real card's pipeline class, the same component classes, the very scheduler
configuration (shift, inverted sigmas, prediction type, ...), patch sizes including temporal ones,
VAE compression, latent channels and normalisation, and frame rules; only widths, depths, head
counts and vocabularies are small. So a test on a twin runs the code path the real weights run,
and a setting that differs on the real checkpoint differs on its twin too.

What to shrink is the family's knowledge (``twin_sizes`` in each family module); which keys may
be shrunk at all is stated here, apart from it (``SIZE_KEYS``), and a test holds every twin to it.
Text encoders and tokenizers are shared across families and shrunk here. Tokenizers are built in
code (no hub): the real ones' classes, with a small vocabulary of video words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openreel.models.catalog import ModelCard, get_card
from openreel.models.families import family_module
from openreel.models.families.ltx2 import SIZE_KEYS as LTX2_SIZE_KEYS
from openreel.models.reference import instantiate, load_reference, resolve_class

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

# The widths the tiny text encoders give their transformers: a family's twin_sizes sets the
# transformer's text width to match.
T5_WIDTH = 32
LLAMA_WIDTH = 16
CLIP_TEXT_WIDTH = 8
CLIP_VISION_WIDTH = 4

_TEXT_VOCABULARY = frozenset(
    {"vocab_size", "bos_token_id", "eos_token_id", "pad_token_id", "image_token_index"}
)

_T5_SIZES = (
    frozenset(
        {
            "d_model",
            "d_kv",
            "d_ff",
            "num_layers",
            "num_decoder_layers",
            "num_heads",
            "relative_attention_num_buckets",
        }
    )
    | _TEXT_VOCABULARY
)

# Per class, the configuration keys a twin may change: sizes (widths, depths, head counts, the
# sample grid of a smaller native size, vocabularies). Everything else must equal the reference.
SIZE_KEYS: dict[str, frozenset[str]] = {
    "CogVideoXTransformer3DModel": frozenset(
        {
            "num_attention_heads",
            "attention_head_dim",
            "time_embed_dim",
            "ofs_embed_dim",
            "text_embed_dim",
            "num_layers",
            "sample_width",
            "sample_height",
        }
    ),
    "MochiTransformer3DModel": frozenset(
        {
            "num_attention_heads",
            "attention_head_dim",
            "num_layers",
            "pooled_projection_dim",
            "text_embed_dim",
            "time_embed_dim",
        }
    ),
    "LTXVideoTransformer3DModel": frozenset(
        {"num_attention_heads", "attention_head_dim", "cross_attention_dim", "num_layers", "caption_channels"}
    ),
    "WanTransformer3DModel": frozenset(
        {
            "num_attention_heads",
            "attention_head_dim",
            "ffn_dim",
            "num_layers",
            "text_dim",
            "image_dim",
            "added_kv_proj_dim",
        }
    ),
    "WanVACETransformer3DModel": frozenset(
        {
            "num_attention_heads",
            "attention_head_dim",
            "ffn_dim",
            "num_layers",
            "text_dim",
            "image_dim",
            "vace_layers",
        }
    ),
    "SkyReelsV2Transformer3DModel": frozenset(
        {"num_attention_heads", "attention_head_dim", "ffn_dim", "num_layers", "text_dim"}
    ),
    "HunyuanVideo15Transformer3DModel": frozenset(
        {
            "num_attention_heads",
            "attention_head_dim",
            "num_layers",
            "num_refiner_layers",
            "text_embed_dim",
            "text_embed_2_dim",
            "image_embed_dim",
            "rope_axes_dim",
            "target_size",  # the pixel grid of a smaller native size
        }
    ),
    "HunyuanVideoTransformer3DModel": frozenset(
        {
            "num_attention_heads",
            "attention_head_dim",
            "num_layers",
            "num_single_layers",
            "num_refiner_layers",
            "text_embed_dim",
            "pooled_projection_dim",
            "rope_axes_dim",
        }
    ),
    "AutoencoderKLCogVideoX": frozenset({"block_out_channels", "layers_per_block", "norm_num_groups"}),
    "AutoencoderKLMochi": frozenset(
        {"encoder_block_out_channels", "decoder_block_out_channels", "layers_per_block"}
    ),
    "AutoencoderKLLTXVideo": frozenset(
        {"block_out_channels", "decoder_block_out_channels", "layers_per_block", "decoder_layers_per_block"}
    ),
    "LTXLatentUpsamplerModel": frozenset({"mid_channels", "num_blocks_per_stage"}),
    "AutoencoderKLWan": frozenset({"base_dim", "decoder_base_dim", "num_res_blocks"}),
    "AutoencoderKLHunyuanVideo": frozenset({"block_out_channels", "layers_per_block", "norm_num_groups"}),
    "AutoencoderKLHunyuanVideo15": frozenset({"block_out_channels", "layers_per_block"}),
    "T5EncoderModel": _T5_SIZES,
    "UMT5EncoderModel": _T5_SIZES,
    "LlamaModel": frozenset(
        {
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
        }
    )
    | _TEXT_VOCABULARY,
    # Qwen2.5-VL's multimodal rotary sections split a head's width: they shrink with it.
    "Qwen2_5_VLTextModel": frozenset(
        {
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "rope_scaling",
            "rope_parameters",  # transformers 5's form of rope_scaling
            "max_window_layers",
            "layer_types",  # one entry per layer
        }
    )
    | _TEXT_VOCABULARY,
    "SiglipVisionModel": frozenset(
        {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"}
    ),
    "CLIPTextModel": frozenset(
        {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "projection_dim"}
    )
    | _TEXT_VOCABULARY,
    "CLIPVisionModel": frozenset(
        {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "projection_dim"}
    ),
    "LlavaForConditionalGeneration": frozenset({"text_config", "vision_config"}) | _TEXT_VOCABULARY,
    # LTX-2's classes: its family module keeps their size keys beside its shrink rule.
    **LTX2_SIZE_KEYS,
}
# Lists whose length is a depth, not a compression: their length may change with the depth.
DEPTH_LISTS = frozenset({"vace_layers", "layer_types"})

# Image processors: the PIL twin of a torchvision-backed class (torchvision does not run beside
# the CPU torch wheel); the processing and its settings are the same.
PROCESSOR_TWINS = {
    "CLIPImageProcessor": "CLIPImageProcessorPil",
    "CLIPImageProcessorFast": "CLIPImageProcessorPil",
    "SiglipImageProcessor": "SiglipImageProcessorPil",
}


def _t5_sizes() -> dict[str, Any]:
    return dict(
        d_model=T5_WIDTH, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8
    )


def _llama_sizes() -> dict[str, Any]:
    return dict(
        hidden_size=LLAMA_WIDTH,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=LLAMA_WIDTH // 4,
    )


def _clip_text_sizes() -> dict[str, Any]:
    return dict(
        hidden_size=CLIP_TEXT_WIDTH,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=32,
    )


def _clip_vision_sizes(width: int = CLIP_VISION_WIDTH) -> dict[str, Any]:
    return dict(
        hidden_size=width,
        intermediate_size=4 * width,
        num_hidden_layers=2,
        num_attention_heads=2,
        projection_dim=32,
    )


def _qwen_sizes() -> dict[str, Any]:
    # Qwen2.5-VL's multimodal rotary sections add up to half a head's width (4 / 2 = 1 + 1 + 0).
    sizes = {key: value for key, value in _llama_sizes().items() if key != "head_dim"}
    return dict(sizes, rope_scaling={"type": "mrope", "mrope_section": [1, 1, 0]})


def _special_ids(tokenizer: Any) -> dict[str, Any]:
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def text_encoder_sizes(class_name: str, config: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """A text or image encoder's shrunk sizes, with the twin tokenizer's vocabulary."""
    if class_name in ("T5EncoderModel", "UMT5EncoderModel"):
        return dict(_t5_sizes(), vocab_size=len(tokenizer))
    if class_name == "LlamaModel":
        return dict(_llama_sizes(), vocab_size=len(tokenizer), **_special_ids(tokenizer))
    if class_name == "CLIPTextModel":
        return dict(_clip_text_sizes(), vocab_size=len(tokenizer), **_special_ids(tokenizer))
    if class_name == "CLIPVisionModel":
        return _clip_vision_sizes()
    if class_name == "Qwen2_5_VLTextModel":
        return dict(
            _qwen_sizes(), vocab_size=len(tokenizer), bos_token_id=None, eos_token_id=tokenizer.eos_token_id
        )
    if class_name == "SiglipVisionModel":
        # The image and patch sizes stay: they set the 729 image tokens the pipeline expects.
        return {key: value for key, value in _clip_vision_sizes().items() if key != "projection_dim"}
    if class_name == "LlavaForConditionalGeneration":
        text = dict(
            config["text_config"], **_llama_sizes(), vocab_size=len(tokenizer), **_special_ids(tokenizer)
        )
        vision = dict(config["vision_config"], **_clip_vision_sizes(8))
        return dict(
            text_config=text,
            vision_config=vision,
            image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
            pad_token_id=tokenizer.pad_token_id,
        )
    raise ValueError(f"no twin sizes for encoder class {class_name}")


def twin_tokenizer(kind: str, *, image: bool = False) -> Any:
    from openreel.models import tiny

    if kind == "t5":
        return tiny.t5_tokenizer()
    if kind == "llama":
        return tiny.llama_tokenizer(image=image)
    if kind == "clip":
        return tiny.clip_tokenizer()
    if kind == "qwen2":
        return tiny.qwen2_tokenizer()
    if kind == "byt5":
        return tiny.byt5_tokenizer()
    raise ValueError(f"no twin tokenizer of kind {kind!r}")


def component_config(
    card: ModelCard, name: str, component: dict[str, Any], tokenizers: dict[str, Any]
) -> dict[str, Any]:
    """The twin's configuration of one weighted component: the reference with sizes shrunk."""
    class_name = component["class"]
    config = dict(component["config"])
    if "config_class" in component:  # a transformers encoder: shrunk the same way in every family
        tokenizer = tokenizers.get(name.replace("text_encoder", "tokenizer"))
        config.update(text_encoder_sizes(class_name, config, tokenizer))
    else:
        family = family_module(card.family)
        config.update(family.twin_sizes(name, class_name, card))
    return config


def build_twin(twin: ModelCard) -> DiffusionPipeline:
    """The twin pipeline of ``twin.twin_of``, seeded, in memory."""
    from openreel.models.tiny import seeded

    real = get_card(twin.twin_of)
    family = family_module(real.family)
    reference = load_reference(real.id)
    if hasattr(family, "build_twin"):  # natively ported families build their own
        return family.build_twin(reference, twin)
    components: dict[str, Any] = {}
    encoders = reference["components"]
    for name, component in encoders.items():
        if name.startswith("tokenizer"):
            encoder = encoders.get(name.replace("tokenizer", "text_encoder"), {})
            image = encoder.get("class") == "LlavaForConditionalGeneration"
            components[name] = twin_tokenizer(component["kind"], image=image)
    for name, component in encoders.items():
        if name.startswith("tokenizer"):
            continue
        if name in ("scheduler", "guider"):  # configured, weightless
            components[name] = resolve_class(component["class"]).from_config(component["config"])
        elif name in ("image_processor", "feature_extractor"):
            cls = resolve_class(PROCESSOR_TWINS.get(component["class"], component["class"]))
            components[name] = cls(**component.get("config", {}))
        elif name == "latent_upsampler":
            continue  # a pipeline of its own: build_twin_upsampler
        else:
            seeded()
            components[name] = instantiate(component, component_config(twin, name, component, components))
    # Pipeline-level settings of the published model_index.json (Wan 2.2 TI2V's per-token timesteps).
    return resolve_class(reference["pipeline"])(**components, **reference.get("pipeline_config", {}))


def build_twin_upsampler(twin: ModelCard, vae: Any) -> Any:
    """LTX-Video's latent upsampler twin, as the published LTXLatentUpsamplePipeline (with the twin's
    VAE, whose latent statistics it needs)."""
    from diffusers import LTXLatentUpsamplePipeline

    from openreel.models.tiny import seeded

    real = get_card(twin.twin_of)
    component = load_reference(real.id)["components"]["latent_upsampler"]
    seeded()
    upsampler = instantiate(component, component_config(twin, "latent_upsampler", component, {}))
    return LTXLatentUpsamplePipeline(vae=vae, latent_upsampler=upsampler)
