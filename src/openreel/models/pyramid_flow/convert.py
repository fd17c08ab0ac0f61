"""Loading the official Pyramid Flow checkpoints in their published folder layout.

rain1011/pyramid-flow-miniflux and rain1011/pyramid-flow-sd3 are not diffusers pipelines (no
``model_index.json``); each holds::

    causal_video_vae/             config.json + weights      (shared VAE)
    diffusion_transformer_384p/   config.json + weights      (640x384, up to 5 s)
    diffusion_transformer_768p/   config.json + weights      (1280x768, up to 10 s)
    text_encoder/, tokenizer/     CLIP-L                     (both variants)
    text_encoder_2/, tokenizer_2/ T5-XXL (miniflux) or CLIP-G (sd3)
    text_encoder_3/, tokenizer_3/ T5-XXL                     (sd3 only)

Our modules use the published parameter names, so converting a state dict only strips training
wrappers (``dit.``/``vae.`` prefixes of full training checkpoints) and drops buffers we rebuild;
the configs are translated (training switches dropped, the overrides the official inference
applies at load time made explicit). ``load_official_pipeline`` builds the models on the meta
device and assigns the weights, so peak memory is one copy of the weights.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch

VARIANTS = ("miniflux", "sd3")
RESOLUTIONS = ("384p", "768p")
VAE_FOLDER = "causal_video_vae"

# Buffers some checkpoints carry that the published inference does not use: the SD3 model is loaded
# with rotary time positions, so a temporal sin-cos table, if saved, is ignored.
_UNUSED_KEYS = ("pos_embed.temp_pos_embed",)
_WRAPPER_PREFIXES = ("dit.", "vae.", "module.")


def transformer_folder(resolution: str) -> str:
    if resolution not in RESOLUTIONS:
        raise ValueError(
            f"unknown Pyramid Flow resolution {resolution!r}; published: {', '.join(RESOLUTIONS)}"
        )
    return f"diffusion_transformer_{resolution}"


def is_official_layout(folder: Path) -> bool:
    folder = Path(folder)
    return (folder / VAE_FOLDER / "config.json").is_file() and any(
        (folder / transformer_folder(r) / "config.json").is_file() for r in RESOLUTIONS
    )


def _require(config: dict[str, Any], key: str, allowed: Any, where: str) -> None:
    if key in config and config[key] != allowed:
        raise ValueError(f"{where}: {key}={config[key]!r} is not supported (expected {allowed!r})")


def _known_arguments(config: dict[str, Any], cls: type) -> dict[str, Any]:
    """The entries of a published config that are arguments of our class; the rest are training
    switches (flash attention, checkpointing) or settings checked separately."""
    names = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return {key: value for key, value in config.items() if key in names}


def transformer_config(config: dict[str, Any], variant: str) -> dict[str, Any]:
    """Our constructor arguments from a published transformer ``config.json``."""
    where = f"{variant} transformer config"
    if variant == "miniflux":
        from openreel.models.pyramid_flow.transformer_flux import PyramidFluxTransformer3DModel

        out = _known_arguments(config, PyramidFluxTransformer3DModel)
        # build_pyramid_dit passes these at load time, whatever the file says (the published file
        # says the same rotary split).
        out.update(use_temporal_causal=True, interp_condition_pos=True)
        out["axes_dims_rope"] = tuple(out.get("axes_dims_rope", (16, 24, 24)))
        return out
    if variant == "sd3":
        _require(config, "pos_embed_type", "sincos", where)
        _require(config, "qk_norm", "rms_norm", where)
        from openreel.models.pyramid_flow.transformer_sd3 import PyramidSD3Transformer3DModel

        out = _known_arguments(config, PyramidSD3Transformer3DModel)
        out.update(use_temporal_causal=True, interp_condition_pos=True)
        return out
    raise ValueError(f"unknown Pyramid Flow variant {variant!r}; known: {', '.join(VARIANTS)}")


def vae_config(config: dict[str, Any]) -> dict[str, Any]:
    """Our VAE arguments from the published ``causal_video_vae/config.json``."""
    where = "causal_video_vae config"
    for side in ("encoder", "decoder"):
        _require(config, f"{side}_type", "causal_vae_conv", where)
        _require(config, f"{side}_act_fn", "silu", where)
        if any(config.get(f"{side}_block_dropout", [0.0])):
            raise ValueError(f"{where}: {side}_block_dropout must be zero for inference")
    for key, kind in (
        ("encoder_down_block_types", "DownEncoderBlockCausal3D"),
        ("decoder_up_block_types", "UpDecoderBlockCausal3D"),
    ):
        if any(block != kind for block in config.get(key, [])):
            raise ValueError(f"{where}: {key} must all be {kind}")
    _require(config, "encoder_double_z", True, where)
    _require(config, "interpolate", False, where)
    _require(config, "add_post_quant_conv", True, where)
    from openreel.models.pyramid_flow.vae import PyramidFlowCausalVAE

    out = _known_arguments(config, PyramidFlowCausalVAE)
    return {k: tuple(v) if isinstance(v, list) else v for k, v in out.items()}


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Published parameter names -> ours (the same names, minus wrappers and unused buffers)."""
    converted = {}
    for key, value in state.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        if key in _UNUSED_KEYS:
            continue
        converted[key] = value
    return converted


def read_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Every weight file of a model folder: safetensors (sharded or not) or PyTorch ``.bin``."""
    from diffusers.models.model_loading_utils import load_state_dict

    folder = Path(folder)
    files = (
        sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin")) or sorted(folder.glob("*.pt"))
    )
    if not files:
        raise FileNotFoundError(f"no weights (*.safetensors, *.bin) in {folder}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_state_dict(str(file)))
    return state


def _load_model(cls: type, kwargs: dict[str, Any], folder: Path, dtype: torch.dtype) -> Any:
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = cls(**kwargs)
    state = convert_state_dict(read_state_dict(folder))
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(
            f"{folder} does not match {cls.__name__}: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(dtype).eval()


def load_official_transformer(folder: Path, variant: str, dtype: torch.dtype = torch.bfloat16) -> Any:
    from openreel.models.pyramid_flow.transformer_flux import PyramidFluxTransformer3DModel
    from openreel.models.pyramid_flow.transformer_sd3 import PyramidSD3Transformer3DModel

    config = json.loads((Path(folder) / "config.json").read_text())
    cls = PyramidFluxTransformer3DModel if variant == "miniflux" else PyramidSD3Transformer3DModel
    return _load_model(cls, transformer_config(config, variant), Path(folder), dtype)


def load_official_vae(folder: Path, dtype: torch.dtype = torch.bfloat16) -> Any:
    from openreel.models.pyramid_flow.vae import PyramidFlowCausalVAE

    config = json.loads((Path(folder) / "config.json").read_text())
    return _load_model(PyramidFlowCausalVAE, vae_config(config), Path(folder), dtype)


def load_official_pipeline(
    folder: Path, variant: str, resolution: str = "384p", dtype: torch.dtype = torch.bfloat16
) -> Any:
    """A PyramidFlowPipeline from a folder in the published layout (a local copy or a Hugging Face
    cache snapshot)."""
    from transformers import AutoTokenizer, CLIPTextModel, CLIPTextModelWithProjection, T5EncoderModel

    from openreel.models.pyramid_flow.pipeline import LATENT_STATISTICS, PyramidFlowPipeline
    from openreel.models.pyramid_flow.scheduler import PyramidFlowMatchScheduler

    folder = Path(folder)
    if variant not in VARIANTS:
        raise ValueError(f"unknown Pyramid Flow variant {variant!r}; known: {', '.join(VARIANTS)}")
    if not is_official_layout(folder):
        raise FileNotFoundError(
            f"{folder} is not a Pyramid Flow checkpoint folder (expected {VAE_FOLDER}/ and "
            f"{transformer_folder(resolution)}/ with config.json)"
        )

    def text_model(cls: type, name: str) -> Any:
        return cls.from_pretrained(folder / name, dtype=dtype).eval()

    if variant == "miniflux":
        text = dict(
            tokenizer=AutoTokenizer.from_pretrained(folder / "tokenizer"),
            text_encoder=text_model(CLIPTextModel, "text_encoder"),
            tokenizer_2=AutoTokenizer.from_pretrained(folder / "tokenizer_2"),
            text_encoder_2=text_model(T5EncoderModel, "text_encoder_2"),
        )
    else:
        text = dict(
            tokenizer=AutoTokenizer.from_pretrained(folder / "tokenizer"),
            text_encoder=text_model(CLIPTextModelWithProjection, "text_encoder"),
            tokenizer_2=AutoTokenizer.from_pretrained(folder / "tokenizer_2"),
            text_encoder_2=text_model(CLIPTextModelWithProjection, "text_encoder_2"),
            tokenizer_3=AutoTokenizer.from_pretrained(folder / "tokenizer_3"),
            text_encoder_3=text_model(T5EncoderModel, "text_encoder_3"),
        )
    return PyramidFlowPipeline(
        transformer=load_official_transformer(folder / transformer_folder(resolution), variant, dtype),
        vae=load_official_vae(folder / VAE_FOLDER, dtype),
        # The published inference: 3 stages over thirds of the schedule, gamma 1/3, no shift.
        scheduler=PyramidFlowMatchScheduler(),
        **text,
        **LATENT_STATISTICS[variant],
    )


def official_snapshot(repo_id: str, resolution: str, revision: str | None = None) -> Path:
    """The cached snapshot of a published repository (only the parts one resolution needs)."""
    from huggingface_hub import snapshot_download

    patterns = [f"{transformer_folder(resolution)}/*", f"{VAE_FOLDER}/*", "text_encoder*/*", "tokenizer*/*"]
    return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True))


def convert_to_diffusers(
    source: Path, target: Path, variant: str, resolution: str, dtype: torch.dtype
) -> None:
    """Write a published checkpoint folder as a diffusers pipeline folder (``model_index.json``)."""
    load_official_pipeline(source, variant, resolution, dtype).save_pretrained(target)
