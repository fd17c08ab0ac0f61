"""LTX-2 (Lightricks) through diffusers' LTX2Pipeline: video and its sound made together.

One transformer denoises two token streams at once, the video's latents (LTX-Video's 32x spatial,
8x temporal VAE: frames 8k+1, sides multiples of 32) and the audio's (a mel-spectrogram VAE at
16 kHz, hop 160, compressed 4x in time: 25 latents a second), with cross-attention between them,
so the sound is made in sync with the picture. The pipeline decodes the mel spectrogram with the
audio VAE and turns it into a stereo waveform with its vocoder at ``vocoder.config.
output_sampling_rate`` (24 kHz for LTX-2); it returns ``(frames, audio)``, audio shaped
(batch, channels, samples). The audio length follows ``num_frames / frame_rate``, rounded to whole
audio latents (40 ms): ``render.audio`` fits it to the video's duration exactly.

The text encoder is Gemma 3 12B (gated: Google's Gemma terms must be accepted on the hub); the
pipeline stacks every hidden state of it and the connectors turn those into separate video and
audio text streams.

Conditioning (image-to-video, extension both ways, loops, storyboard keyframes): clips placed at
frame indices, LTX-2's own mechanism (``LTX2ConditionPipeline`` with ``LTX2VideoCondition``s, built
over the loaded text-to-video pipeline's components: no second copy of the weights). The sound is
made anew for the whole window, the given frames' stretch included; the engine crossfades it with
the source clip's own sound across those frames (render.audio), so an extension's sound carries
on from the clip's.

Guidance: the pipeline's defaults are diffusers' LTX-2 reference recipe (CFG 3 for video, 7 for
audio, spatio-temporal guidance at block 28 of 48, modality guidance, rescale 0.7); the docs run
LTX-2.0 with them. Spatio-temporal guidance perturbs one block by index, so the index is scaled
to the loaded transformer's depth (its twin has two blocks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from openreel.errors import UnsupportedModeError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    from openreel.models.catalog import ModelCard
    from openreel.plan import Plan

PIPELINES: dict[str, str] = {"t2v": "LTX2Pipeline"}

# The pipeline returns a waveform beside the frames: the Runner keeps it (render.audio).
MAKES_AUDIO = True

# diffusers' default spatio-temporal guidance block for the 48-block LTX-2 transformer.
_STG_BLOCK, _STG_DEPTH = 28, 48

# Card options passed to the pipeline as they are, when the card sets them.
CALL_OPTIONS = (
    "decode_timestep",
    "decode_noise_scale",
    "guidance_rescale",
    "audio_guidance_scale",
    "stg_scale",
    "audio_stg_scale",
    "modality_scale",
    "audio_modality_scale",
)


# Copied from openreel.models.families.wan.pipeline_class with Wan->LTX-2
def pipeline_class(mode: str) -> type[DiffusionPipeline]:
    """The diffusers pipeline class that serves ``mode``."""
    import diffusers

    if mode not in PIPELINES:
        raise UnsupportedModeError(
            f"LTX-2 models cannot do {mode!r}; they can do {', '.join(PIPELINES)}", param="mode"
        )
    return getattr(diffusers, PIPELINES[mode])


def load_pipeline(
    folder: Path, card: ModelCard, mode: str, dtype: torch.dtype, quantization: Any = None
) -> DiffusionPipeline:
    # The connectors and vocoder are not exported at diffusers' top level: their modules must be
    # imported before from_pretrained can find the classes model_index.json names.
    import diffusers.pipelines.ltx2.connectors  # noqa: F401
    import diffusers.pipelines.ltx2.vocoder  # noqa: F401

    return pipeline_class(mode).from_pretrained(folder, dtype=dtype, quantization_config=quantization)


def call_arguments(plan: Plan, generator: torch.Generator) -> dict[str, Any]:
    arguments = {
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "height": plan.height,
        "width": plan.width,
        "num_frames": plan.num_frames,
        "frame_rate": plan.native_fps,
        "num_inference_steps": plan.steps,
        "guidance_scale": plan.guidance,
        "generator": generator,
    }
    arguments.update({key: plan.options[key] for key in CALL_OPTIONS if key in plan.options})
    return arguments


def prepare_call(pipe: DiffusionPipeline, arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments that depend on the loaded weights: the spatio-temporal guidance block, at the
    same relative depth as diffusers' default (28 of 48) in this transformer."""
    depth = pipe.transformer.config.num_layers
    block = min(depth - 1, round(_STG_BLOCK * depth / _STG_DEPTH))
    return {"spatio_temporal_guidance_blocks": [block], **arguments}


def condition_arguments(items: list[tuple[np.ndarray, int]]) -> dict[str, Any]:
    """Condition a call on clips (F, H, W, 3 floats in [0, 1]) placed at frame indices."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    from openreel.render.conditioning import to_pil

    return {
        "conditions": [
            LTX2VideoCondition(frames=to_pil(frames), index=index, strength=1.0) for frames, index in items
        ]
    }


def pipeline_for(pipe: DiffusionPipeline, arguments: dict[str, Any]) -> DiffusionPipeline:
    """The pipeline that runs these arguments: a conditioned call goes to LTX2ConditionPipeline
    over the same components (made once per loaded pipeline), a plain one to LTX2Pipeline."""
    if "conditions" not in arguments:
        return pipe
    condition = getattr(pipe, "_openreel_condition", None)
    if condition is None:
        import inspect

        from diffusers import LTX2ConditionPipeline

        accepted = inspect.signature(LTX2ConditionPipeline.__init__).parameters
        condition = LTX2ConditionPipeline(**{k: v for k, v in pipe.components.items() if k in accepted})
        condition.set_progress_bar_config(disable=True)
        pipe._openreel_condition = condition
    return condition


def audio_sample_rate(pipe: DiffusionPipeline) -> int:
    """The sample rate of the waveform the pipeline returns (its vocoder's output)."""
    return int(pipe.vocoder.config.output_sampling_rate)


# --- twins ------------------------------------------------------------------------------------

# The tiny Gemma's width: the connectors' and the transformer's caption width follow it.
GEMMA_WIDTH = 32

SIZE_KEYS: dict[str, frozenset[str]] = {
    "LTX2VideoTransformer3DModel": frozenset(
        {
            "num_attention_heads",
            "attention_head_dim",
            "cross_attention_dim",
            "audio_num_attention_heads",
            "audio_attention_head_dim",
            "audio_cross_attention_dim",
            "num_layers",
            "caption_channels",
        }
    ),
    "LTX2TextConnectors": frozenset(
        {
            "caption_channels",
            "text_proj_in_factor",
            "video_connector_num_attention_heads",
            "video_connector_attention_head_dim",
            "video_connector_num_layers",
            "audio_connector_num_attention_heads",
            "audio_connector_attention_head_dim",
            "audio_connector_num_layers",
        }
    ),
    "AutoencoderKLLTX2Video": frozenset(
        {"block_out_channels", "decoder_block_out_channels", "layers_per_block", "decoder_layers_per_block"}
    ),
    "AutoencoderKLLTX2Audio": frozenset({"num_res_blocks", "ch_mult"}),
    "LTX2Vocoder": frozenset({"hidden_channels"}),
    "Gemma3ForConditionalGeneration": frozenset({"text_config", "vision_config"}),
}


def twin_sizes(component: str, class_name: str, twin: ModelCard) -> dict[str, Any]:
    """What a twin shrinks (models/twins.py): widths, depths and heads. The mel and latent layout
    (channels, bins, sample rates, hop, upsampling factors) stays, so the twin's audio has the
    real model's length and rate."""
    from openreel.models.reference import load_reference

    config = load_reference(twin.twin_of)["components"][component]["config"]
    if class_name == "LTX2VideoTransformer3DModel":
        return dict(
            num_attention_heads=4,
            attention_head_dim=8,
            cross_attention_dim=32,
            audio_num_attention_heads=4,
            audio_attention_head_dim=4,
            audio_cross_attention_dim=16,
            num_layers=2,
            caption_channels=GEMMA_WIDTH,
        )
    if class_name == "LTX2TextConnectors":
        return dict(
            caption_channels=GEMMA_WIDTH,
            text_proj_in_factor=_GEMMA_LAYERS + 1,  # every hidden state, the embeddings' too
            video_connector_num_attention_heads=4,
            video_connector_attention_head_dim=GEMMA_WIDTH // 4,
            video_connector_num_layers=1,
            audio_connector_num_attention_heads=4,
            audio_connector_attention_head_dim=GEMMA_WIDTH // 4,
            audio_connector_num_layers=1,
        )
    if class_name == "AutoencoderKLLTX2Video":
        return dict(
            block_out_channels=[width // 32 for width in config["block_out_channels"]],
            decoder_block_out_channels=[width // 32 for width in config["decoder_block_out_channels"]],
            layers_per_block=[1] * len(config["layers_per_block"]),
            decoder_layers_per_block=[1] * len(config["decoder_layers_per_block"]),
        )
    if class_name == "AutoencoderKLLTX2Audio":
        # Its width stays: diffusers sizes the audio latents' statistics by ``base_channels``
        # (128, which is also the patched latent width, 8 channels x 16 mel bins).
        # ``ch_mult`` keeps its length (the down- and upsampling stages) at the base width.
        return dict(num_res_blocks=1, ch_mult=[1] * len(config["ch_mult"]))
    if class_name == "LTX2Vocoder":
        # Each of the five upsampling stages halves the width: 64 leaves two channels at the end.
        return dict(hidden_channels=64)
    raise ValueError(f"no twin sizes for LTX-2's {component} ({class_name})")


_GEMMA_LAYERS = 2


def gemma_sizes(config: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """The tiny Gemma 3: the text model and its SigLIP vision tower shrunk, the attention pattern
    (five sliding-window layers to one global) cut to the twin's depth, the vocabulary the twin
    tokenizer's."""
    text = dict(
        config["text_config"],
        hidden_size=GEMMA_WIDTH,
        intermediate_size=37,
        num_hidden_layers=_GEMMA_LAYERS,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=GEMMA_WIDTH // 4,
        query_pre_attn_scalar=GEMMA_WIDTH // 4,
        layer_types=config["text_config"]["layer_types"][:_GEMMA_LAYERS],
        vocab_size=len(tokenizer),
    )
    vision = dict(
        config["vision_config"],
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
    )
    return dict(text_config=text, vision_config=vision)


def gemma_tokenizer() -> Any:
    """Gemma's byte-fallback BPE tokenizer class with a small vocabulary (the real one has 262k)."""
    from transformers import GemmaTokenizer

    from openreel.models.tiny import WORDS, _bpe_vocab_and_merges

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    byte_tokens = [f"<0x{value:02X}>" for value in range(256)]
    vocab, merges = _bpe_vocab_and_merges(sorted(set(WORDS)), prefix="▁", base=[*specials, *byte_tokens])
    return GemmaTokenizer(vocab=vocab, merges=merges)


def build_twin(reference: dict[str, Any], twin: ModelCard) -> DiffusionPipeline:
    """The LTX-2 twin: every component of the reference, sizes shrunk (twin_sizes, gemma_sizes)."""
    from openreel.models.reference import instantiate, resolve_class
    from openreel.models.tiny import seeded

    # The connectors' and vocoder's modules are imported for resolve_class's dotted names.
    components: dict[str, Any] = {"tokenizer": gemma_tokenizer()}
    for name, component in reference["components"].items():
        if name == "tokenizer":
            continue
        if name == "scheduler":
            components[name] = resolve_class(component["class"]).from_config(component["config"])
            continue
        seeded()
        if name == "text_encoder":
            config = dict(component["config"], **gemma_sizes(component["config"], components["tokenizer"]))
        else:
            class_name = component["class"].rpartition(".")[2]
            config = dict(component["config"], **twin_sizes(name, class_name, twin))
        components[name] = instantiate(component, config)
    return resolve_class(reference["pipeline"])(**components)
