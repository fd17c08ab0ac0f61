"""Tiny random builds of every family, without the hub: openreel's `get_dummy_components`.

Each builder makes the family's real text-to-video pipeline class from parts built in code
(transformer, VAE, scheduler, text encoder(s) and tokenizer(s)), seeded so two builds are byte
for byte the same, and saves it in the diffusers layout so ``load_pipeline`` reads it exactly as
it reads published weights. The parts are a few hundred kilobytes, but they keep the family's real
VAE compression and transformer patch size, so the tiny cards' frame_step and size_multiple are
the real ones, and the pipelines run their real code paths (dynamic shifting, decode-timestep
conditioning, embedded guidance, ...). The output is noise.

Transformer and VAE sizes follow diffusers' own fast tests (tests/pipelines/<family>/), except
where those shrink the compression or the text length (LTX's VAE, CogVideoX's text length):
here the real values are kept, so the pipelines can be called with their real defaults.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

SEED = 0

# Words common in video prompts become single tokens; anything else is spelled out letter by
# letter (T5 pieces) or byte by byte (Llama), so every English prompt tokenizes.
_WORD_TEXT = """
    a an the and or of in on at to with from by for over under into through across near
    is are was while as it its this that his her their he she they one two three
    video scene shot camera close up wide slow motion cinematic light lights shadow shadows
    sun sunset sunrise night day sky cloud clouds rain snow fog water sea ocean river lake wave
    waves beach forest tree trees mountain mountains city street road car cars train bridge
    house room window door table chair man woman child people person dog cat bird birds fish
    horse dragon robot walking running flying dancing sitting standing looking playing
    red orange yellow green blue purple pink white black gold golden silver bright dark
    soft warm cold small large big old young beautiful quiet busy neon
    background foreground style film animation painting photo realistic detailed
    high quality low blurry static frame frames color colors
"""
WORDS = tuple(_WORD_TEXT.split())

# HunyuanVideo wraps every prompt in a Llama-3 chat template and crops the template's first 95
# tokens (its length in the real tokenizer). Spelled letter by letter, the template alone would fill
# the 351-token window and push the prompt out; with these words it takes ~120 tiny tokens, so the
# crop stays inside the template and the whole prompt reaches the text encoder.
_TEMPLATE_TEXT = """
    system user Describe describe by detailing following aspects main content and theme
    shape size texture quantity text spatial relationships objects Actions actions events
    behaviors temporal physical movement changes background environment light shadow
    camera angles movements transitions used
"""
TEMPLATE_WORDS = tuple(_TEMPLATE_TEXT.split())
# HunyuanVideo I2V's template adds these to the text-to-video one's.
I2V_TEMPLATE_WORDS = ("according", "reference", "image")
LLAMA_SPECIAL_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


def build_tiny_pipeline(name: str, folder: Path) -> None:
    """Build a tiny pipeline and save it to ``folder``: a family's text-to-video pipeline, or a
    dedicated checkpoint's ("wan-i2v", "wan-vace", "cogvideox-i2v"; the tiny card is "tiny-<name>")."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"no tiny build named {name!r}; known: {', '.join(_BUILDERS)}") from None
    pipe = builder()
    Path(folder).mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder)


def build_tiny_ltx_upsampler(ltx_folder: Path, folder: Path) -> None:
    """LTX-Video's spatial latent upsampler, tiny: saved as an LTXLatentUpsamplePipeline (with the
    tiny model's VAE, whose latent statistics it needs), as the published upsampler is."""
    from diffusers import AutoencoderKLLTXVideo, LTXLatentUpsamplePipeline
    from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

    vae = AutoencoderKLLTXVideo.from_pretrained(Path(ltx_folder) / "vae")
    seeded()
    upsampler = LTXLatentUpsamplerModel(
        in_channels=vae.config.latent_channels,
        mid_channels=32,  # its GroupNorms have 32 groups
        num_blocks_per_stage=1,
        dims=3,
        spatial_upsample=True,
        temporal_upsample=False,
    )
    LTXLatentUpsamplePipeline(vae=vae, latent_upsampler=upsampler).save_pretrained(folder)


# --- text encoders and tokenizers -------------------------------------------------------------


def t5_tokenizer() -> Any:
    """A Unigram (sentencepiece-style) T5 tokenizer: whole words where known, else characters."""
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    pieces += [(char, -8.0) for char in string.ascii_letters + string.digits + string.punctuation]
    pieces += [(f"▁{word}", -4.0) for word in WORDS]
    # extra_ids=0: the sentinel tokens only matter for T5's span-corruption training.
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _t5_config_values(vocab_size: int) -> dict[str, Any]:
    # Sizes from FIELD-NOTES / diffusers' tiny-random-t5; d_model 32 is each transformer's text width.
    return dict(
        vocab_size=vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
    )


def t5_encoder(vocab_size: int) -> Any:
    from transformers import T5Config, T5EncoderModel

    seeded()
    return T5EncoderModel(T5Config(**_t5_config_values(vocab_size)))


def _bpe_vocab_and_merges(
    words: Iterable[str],
    prefix: str = "",
    suffix: str = "",
    base: Iterable[str] = (),
    alphabet: Iterable[str] = string.ascii_letters + string.digits + string.punctuation,
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A BPE vocabulary whose merges rebuild each word left to right from its characters.

    Every merge result is itself in the vocabulary, so any text still tokenizes: unknown words stay
    split into characters (or bytes, for byte-fallback tokenizers).
    """
    vocab: dict[str, int] = {}
    for token in base:
        vocab.setdefault(token, len(vocab))
    for char in [*alphabet, *prefix]:
        vocab.setdefault(char, len(vocab))
        if suffix:
            vocab.setdefault(char + suffix, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in words:
        symbols = list(prefix + word)
        if suffix:
            symbols[-1] += suffix
        left = symbols[0]
        for right in symbols[1:]:
            merged = left + right
            if merged not in vocab:
                vocab[merged] = len(vocab)
                merges.append((left, right))
            left = merged
    return vocab, merges


def _llama_tokenizer(image: bool = False) -> Any:
    """A Llama-style byte-fallback BPE tokenizer (HunyuanVideo's first text encoder).

    ``image``: the LLaVA variant of HunyuanVideo I2V, whose template puts ``<image>`` at token 5
    (the pipeline's ``image_emb_start``) and expands it to the image features there. That needs
    the begin-of-text token, an ``<image>`` token and "system" (right after a header token, so
    without a leading space) as one token, as in Llama 3."""
    from transformers import LlamaTokenizer

    image_specials = ["<image>"] if image else []
    specials = ["<unk>", "<s>", "</s>", "<pad>", *LLAMA_SPECIAL_TOKENS, *image_specials]
    byte_tokens = [f"<0x{value:02X}>" for value in range(256)]
    words = sorted(set(WORDS) | set(TEMPLATE_WORDS) | (set(I2V_TEMPLATE_WORDS) if image else set()))
    vocab, merges = _bpe_vocab_and_merges(words, prefix="▁", base=[*specials, *byte_tokens, "\n"])
    if image:
        left = "s"
        for right in "ystem":
            vocab.setdefault(left + right, len(vocab))
            merges.append((left, right))
            left += right
    # "\n\n" is one token in Llama 3, as the template's line breaks are.
    vocab["\n\n"] = len(vocab)
    merges.append(("\n", "\n"))
    extra = {"bos_token": "<s>", "add_bos_token": True} if image else {}
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, pad_token="<pad>", **extra)
    tokenizer.add_special_tokens({"additional_special_tokens": [*LLAMA_SPECIAL_TOKENS, *image_specials]})
    return tokenizer


def clip_tokenizer() -> Any:
    """A CLIP BPE tokenizer (HunyuanVideo's second text encoder): lower-case words end in </w>."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    # CLIP maps text to its 256-symbol byte alphabet first; with all of it in the vocabulary no
    # character is unknown. Sorted: the alphabet comes back in set order, which changes per process.
    vocab, merges = _bpe_vocab_and_merges(
        sorted({word.lower() for word in WORDS}),
        suffix="</w>",
        base=specials,
        alphabet=sorted(ByteLevel.alphabet()),
    )
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # CLIP's context length


# --- families ---------------------------------------------------------------------------------


def seeded() -> Any:
    """Seed torch's global generator before each part, so each part's weights depend only on
    its own constructor and the whole build is reproducible."""
    import torch

    torch.manual_seed(SEED)
    return torch


def build_cogvideox() -> DiffusionPipeline:
    from diffusers import (
        AutoencoderKLCogVideoX,
        CogVideoXDDIMScheduler,
        CogVideoXPipeline,
        CogVideoXTransformer3DModel,
    )

    tokenizer = t5_tokenizer()
    seeded()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=4,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        # The 2B model's sin-cos position table is rebuilt for any size; these are only defaults.
        sample_width=12,
        sample_height=8,
        sample_frames=33,
        patch_size=2,
        temporal_compression_ratio=4,
        # The position table covers exactly this many text tokens: keep the pipeline's default.
        max_text_seq_length=226,
    )
    seeded()
    vae = AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        temporal_compression_ratio=4,
    )
    # CogVideoX-2b's scheduler settings (v-prediction, zero-SNR, trailing timesteps).
    scheduler = CogVideoXDDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        set_alpha_to_one=True,
        snr_shift_scale=3.0,
        timestep_spacing="trailing",
    )
    return CogVideoXPipeline(
        tokenizer=tokenizer,
        text_encoder=t5_encoder(len(tokenizer)),
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )


def build_cogvideox_i2v() -> DiffusionPipeline:
    """CogVideoX-5b-I2V in small: the image latents enter as extra input channels, with rotary and
    learned position embeddings (which fix the size: 96x64, the tiny card's native size)."""
    from diffusers import CogVideoXImageToVideoPipeline, CogVideoXTransformer3DModel

    t2v = build_cogvideox()
    seeded()
    transformer = CogVideoXTransformer3DModel(
        # Rotary embeddings need a head width divisible by 16; 2 x 16 keeps the 32-wide text.
        num_attention_heads=2,
        attention_head_dim=16,
        in_channels=8,  # 4 noise + 4 image latent channels
        out_channels=4,
        time_embed_dim=2,
        text_embed_dim=32,
        num_layers=1,
        # The learned position table's size is the only size the model runs at: 96x64, 49 frames.
        sample_width=12,
        sample_height=8,
        sample_frames=49,
        patch_size=2,
        temporal_compression_ratio=4,
        max_text_seq_length=226,
        use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True,
    )
    return CogVideoXImageToVideoPipeline(
        tokenizer=t2v.tokenizer,
        text_encoder=t2v.text_encoder,
        vae=t2v.vae,
        transformer=transformer,
        scheduler=t2v.scheduler,
    )


def build_mochi() -> DiffusionPipeline:
    from diffusers import (
        AutoencoderKLMochi,
        FlowMatchEulerDiscreteScheduler,
        MochiPipeline,
        MochiTransformer3DModel,
    )

    tokenizer = t5_tokenizer()
    seeded()
    transformer = MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,
        pooled_projection_dim=16,
        in_channels=12,
        qk_norm="rms_norm",
        text_embed_dim=32,
        time_embed_dim=4,
        activation_fn="swiglu",
        max_sequence_length=256,
    )
    seeded()
    # 32 channels is the floor: Mochi's VAE group-norms in 32 groups. The default expansions keep
    # the real 6x temporal and 8x spatial compression.
    vae = AutoencoderKLMochi(
        latent_channels=12,
        out_channels=3,
        encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32),
        layers_per_block=(1, 1, 1, 1, 1),
    )
    return MochiPipeline(
        tokenizer=tokenizer,
        text_encoder=t5_encoder(len(tokenizer)),
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )


def build_ltx() -> DiffusionPipeline:
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )

    tokenizer = t5_tokenizer()
    seeded()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    seeded()
    # The real compression: 4x4 patchify then three 2x space-time downsamples = 32x spatial, 8x
    # temporal (diffusers' fast test uses patch 1 and two downsamples, which is 4x/4x). Every
    # decoder_* setting is given too: left out, the decoder falls back to its 237M-parameter default.
    # Timestep conditioning is on, as in the 0.9.1+ VAEs, so decode_timestep is exercised. (The
    # 0.9.5+ VAE's residual upsamplers would be truer, but decode ~20x slower even this small.)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=True,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    # LTX-Video 0.9.5+ is published with a plain flow-match scheduler (no resolution-dependent shift)
    # as an LTXConditionPipeline, which is what the 0.9.7 / 0.9.8 cards load.
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False)
    return LTXConditionPipeline(
        tokenizer=tokenizer,
        text_encoder=t5_encoder(len(tokenizer)),
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )


# The tiny Wan transformer, shared by the text-to-video and image-to-video builds (which differ
# in their input channels and image embedding only).
_WAN_TRANSFORMER: dict[str, Any] = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    out_channels=16,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=1024,  # the real value: refinement passes run far past 32 patches
)


def build_wan() -> DiffusionPipeline:
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    tokenizer = t5_tokenizer()
    seeded()
    transformer = WanTransformer3DModel(in_channels=16, **_WAN_TRANSFORMER)
    seeded()
    vae = AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    seeded()
    text_encoder = UMT5EncoderModel(UMT5Config(**_t5_config_values(len(tokenizer))))
    # Wan 2.1's own scheduler; flow_shift is the 480p value and load_pipeline sets the card's.
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        transformer=transformer,
        scheduler=scheduler,
    )


def build_wan_i2v(pos_embed_seq_len: int | None = None) -> DiffusionPipeline:
    """Wan 2.1 I2V in small: the transformer takes the noise, a mask and the image latents (16 + 4
    + 16 channels) and CLIP image tokens; the rest as the text-to-video build. FLF2V's image
    embedding adds positions for two images' tokens (``pos_embed_seq_len``)."""
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel

    t2v = build_wan()
    seeded()
    transformer = WanTransformer3DModel(
        in_channels=36,
        image_dim=4,  # the image encoder's hidden size (the pipeline reads its hidden states)
        pos_embed_seq_len=pos_embed_seq_len,
        **_WAN_TRANSFORMER,
    )
    seeded()
    # CLIPVisionModel, as the published checkpoint and the pipeline's signature have it.
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    return WanImageToVideoPipeline(
        tokenizer=t2v.tokenizer,
        text_encoder=t2v.text_encoder,
        vae=t2v.vae,
        transformer=transformer,
        scheduler=t2v.scheduler,
        image_encoder=image_encoder,
        # The PIL processor: the default one wants torchvision, which does not run beside CPU torch.
        image_processor=CLIPImageProcessorPil(crop_size=32, size=32),
    )


def build_wan_flf2v() -> DiffusionPipeline:
    """Wan 2.1 FLF2V in small: I2V with positions for the first and the last image's CLIP tokens
    (32 x 32 patches + the class token, each)."""
    return build_wan_i2v(pos_embed_seq_len=2 * (32 * 32 + 1))


def build_wan_vace() -> DiffusionPipeline:
    """Wan 2.1 VACE in small: the text-to-video transformer plus VACE blocks that read the
    conditioning latents (16 inactive + 16 reactive latent channels + the 8 x 8 pixel mask folded
    into 64 channels: 96) at layers 0 and 1; the rest as the text-to-video build."""
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    t2v = build_wan()
    seeded()
    transformer = WanVACETransformer3DModel(
        in_channels=16,
        # VACE needs a block at layer 0 (it holds the input projection); both tiny layers get one.
        vace_layers=[0, 1],
        vace_in_channels=96,
        **_WAN_TRANSFORMER,
    )
    return WanVACEPipeline(
        tokenizer=t2v.tokenizer,
        text_encoder=t2v.text_encoder,
        vae=t2v.vae,
        transformer=transformer,
        scheduler=t2v.scheduler,
    )


# The tiny HunyuanVideo transformer, shared by the text-to-video and image-to-video builds (the
# image-to-video one adds only its image-conditioning type).
_HUNYUAN_TRANSFORMER: dict[str, Any] = dict(
    in_channels=4,
    out_channels=4,
    num_attention_heads=2,
    attention_head_dim=10,
    num_layers=1,
    num_single_layers=1,
    num_refiner_layers=1,
    # The real 2x2 patch (diffusers' fast test uses 1), so 16 stays the size multiple.
    patch_size=2,
    patch_size_t=1,
    guidance_embeds=True,
    text_embed_dim=16,
    pooled_projection_dim=8,
    rope_axes_dim=(2, 4, 4),
)


def build_hunyuan() -> DiffusionPipeline:
    from diffusers import (
        AutoencoderKLHunyuanVideo,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideoPipeline,
        HunyuanVideoTransformer3DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, LlamaConfig, LlamaModel

    tokenizer = _llama_tokenizer()
    tokenizer_2 = clip_tokenizer()
    seeded()
    transformer = HunyuanVideoTransformer3DModel(**_HUNYUAN_TRANSFORMER)
    seeded()
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        norm_num_groups=4,
        spatial_compression_ratio=8,
        temporal_compression_ratio=4,
    )
    seeded()
    # The pipeline reads the third-from-last hidden state, so two layers is the minimum.
    text_encoder = LlamaModel(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    seeded()
    text_encoder_2 = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer_2),
            hidden_size=8,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            projection_dim=32,
            # The pooled output is read at the first end-of-text token.
            bos_token_id=tokenizer_2.bos_token_id,
            eos_token_id=tokenizer_2.eos_token_id,
            pad_token_id=tokenizer_2.pad_token_id,
        )
    )
    return HunyuanVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        tokenizer_2=tokenizer_2,
        text_encoder_2=text_encoder_2,
        vae=vae,
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )


def build_hunyuan_i2v() -> DiffusionPipeline:
    """HunyuanVideo I2V (the 16-channel checkpoint) in small: the image's latents replace the first
    latent frame's tokens ("token_replace"), and a LLaVA text encoder reads the image with the
    prompt. Its CLIP vision tower makes 576 image features (336 px / 14 px patches, squared), the
    number the pipeline's default template reserves; the rest as the text-to-video build."""
    from diffusers import HunyuanVideoImageToVideoPipeline, HunyuanVideoTransformer3DModel
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    t2v = build_hunyuan()
    tokenizer = _llama_tokenizer(image=True)
    seeded()
    transformer = HunyuanVideoTransformer3DModel(image_condition_type="token_replace", **_HUNYUAN_TRANSFORMER)
    seeded()
    text_encoder = LlavaForConditionalGeneration(
        LlavaConfig(
            text_config=LlamaConfig(
                vocab_size=len(tokenizer),
                hidden_size=16,
                intermediate_size=37,
                num_attention_heads=4,
                num_hidden_layers=2,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            ),
            vision_config=CLIPVisionConfig(
                hidden_size=8,
                intermediate_size=37,
                projection_dim=32,
                num_attention_heads=4,
                num_hidden_layers=2,
                image_size=336,
                patch_size=14,
            ),
            image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    return HunyuanVideoImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        tokenizer_2=t2v.tokenizer_2,
        text_encoder_2=t2v.text_encoder_2,
        vae=t2v.vae,
        transformer=transformer,
        scheduler=t2v.scheduler,
        # The PIL processor: the default one wants torchvision, which does not run beside CPU torch.
        image_processor=CLIPImageProcessorPil(crop_size=336, size=336),
    )


def build_pyramid_flow() -> DiffusionPipeline:
    # Ported natively; its tiny build lives beside its code.
    from openreel.models.pyramid_flow.tiny import build_tiny_pipeline as build_pyramid

    return build_pyramid("miniflux")


_BUILDERS: dict[str, Callable[[], DiffusionPipeline]] = {
    "cogvideox": build_cogvideox,
    "mochi": build_mochi,
    "ltx": build_ltx,
    "wan": build_wan,
    "hunyuan": build_hunyuan,
    "pyramid-flow": build_pyramid_flow,
    "wan-i2v": build_wan_i2v,
    "wan-flf2v": build_wan_flf2v,
    "cogvideox-i2v": build_cogvideox_i2v,
    "wan-vace": build_wan_vace,
    "hunyuan-i2v": build_hunyuan_i2v,
}
