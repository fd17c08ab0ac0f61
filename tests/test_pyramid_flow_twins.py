"""Pyramid Flow's reference files (the published configurations of the four real cards) and the tiny
twins built from them: the real models' parameter counts match the published figures, and a saved
twin differs from its reference only in sizes."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
import transformers

from openreel.models.pyramid_flow import convert
from openreel.models.pyramid_flow.cards import CARDS
from openreel.models.pyramid_flow.tiny import SIZE_KEYS, build_tiny_pipeline, build_twin, load_reference

REFERENCE_DIR = Path(convert.__file__).resolve().parent.parent / "families" / "reference"
CARD_IDS = [card.id for card in CARDS]
SCHEMA_KEYS = ["card", "repo", "pipeline", "components", "pipeline_config", "params"]
# Published keys our classes do not take: training switches, and settings the converter checks.
NOT_ARGUMENTS = {
    "PyramidFluxTransformer3DModel": {"patch_size", "use_flash_attn", "use_gradient_checkpointing"},
    "PyramidSD3Transformer3DModel": {
        "max_num_frames", "pos_embed_type", "qk_norm", "use_flash_attn", "use_gradient_checkpointing"
    },
    "PyramidFlowCausalVAE": {
        "add_post_quant_conv", "decoder_act_fn", "decoder_block_dropout", "decoder_type",
        "decoder_up_block_types", "encoder_act_fn", "encoder_block_dropout", "encoder_double_z",
        "encoder_down_block_types", "encoder_type", "interpolate", "sample_size",
    },
}  # fmt: skip


def saved_value(saved: dict, key: str) -> object:
    # transformers 5 keeps T5 v1.1's untied head as scale_decoder_outputs=False and always writes
    # tie_word_embeddings=True; the published tie_word_embeddings=False reads back there.
    if key == "tie_word_embeddings" and "scale_decoder_outputs" in saved:
        return saved["scale_decoder_outputs"]
    return saved.get(key, True)


def load_class(dotted: str) -> type:
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def short(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1]


def test_every_card_has_a_reference_in_the_schema() -> None:
    assert sorted(path.stem for path in REFERENCE_DIR.glob("pyramid-flow-*.json")) == sorted(CARD_IDS)
    for card in CARDS:
        text = (REFERENCE_DIR / f"{card.id}.json").read_text()
        reference = json.loads(text)
        assert text == json.dumps(reference, indent=2) + "\n"
        assert list(reference) == SCHEMA_KEYS and reference["card"] == card.id
        assert card.source == f"hub:{reference['repo']}"
        slots = ["tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2"]
        if card.options["variant"] == "sd3":
            slots += ["tokenizer_3", "text_encoder_3"]
        assert list(reference["components"]) == [*slots, "transformer", "vae", "scheduler"]
        assert load_class(reference["pipeline"]).__name__ == "PyramidFlowPipeline"


@pytest.mark.parametrize("card_id", CARD_IDS)
def test_real_models_on_the_meta_device_match_the_published_sizes(card_id: str) -> None:
    reference = load_reference(card_id)
    counts = {}
    for name, component in reference["components"].items():
        if name.startswith("tokenizer"):
            continue
        if name == "scheduler":
            load_class(component["class"]).from_config(component["config"])
            continue
        with torch.device("meta"):
            if "config_class" in component:
                config = getattr(transformers, component["config_class"])(**component["config"])
                model = getattr(transformers, component["class"])(config)
            else:
                model = load_class(component["class"]).from_config(component["config"])
        counts[name] = sum(p.numel() for p in model.parameters())
        if "published_params" in component:
            published = component["published_params"]
            assert abs(counts[name] - published) <= component["published_params_tolerance"] * published, name
    miniflux = card_id.startswith("pyramid-flow-miniflux")
    assert counts["transformer"] == (1_972_059_200 if miniflux else 2_028_334_144)
    assert counts["vae"] == 335_402_067


@pytest.mark.parametrize("card_id", CARD_IDS)
def test_saved_twin_differs_from_its_reference_only_in_sizes(card_id: str, tmp_path: Path) -> None:
    reference = load_reference(card_id)
    build_twin(reference).save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    statistics = {k: v for k, v in reference["pipeline_config"].items() if k != "source"}
    assert {k: index[k] for k in statistics} == pytest.approx(statistics)
    for name, component in reference["components"].items():
        if name.startswith("tokenizer"):
            # transformers 5 has one T5 tokenizer class (T5TokenizerFast is its alias).
            continue
        assert index[name][1] == short(component["class"]), name
        cls = short(component["class"])
        file = "scheduler_config.json" if name == "scheduler" else "config.json"
        saved = json.loads((tmp_path / name / file).read_text())
        changed = {
            key
            for key, value in component["config"].items()
            if json.dumps(saved_value(saved, key)) != json.dumps(value)
        }
        assert changed <= SIZE_KEYS[cls], (name, changed - SIZE_KEYS[cls])
        if "config_class" not in component:
            # Our classes: no constructor argument is left to a default the reference does not name.
            assert {k for k in saved if not k.startswith("_")} == set(component["config"]), name


@pytest.mark.parametrize("card_id", CARD_IDS)
def test_reference_configs_are_what_the_published_folder_loads_as(card_id: str) -> None:
    """``config`` holds our constructor arguments: exactly what ``convert`` makes of the published
    file beside it, which differs only in training switches and settings the converter checks."""
    components = load_reference(card_id)["components"]
    variant = "miniflux" if "miniflux" in card_id else "sd3"
    for name, translate in [
        ("transformer", lambda config: convert.transformer_config(config, variant)),
        ("vae", convert.vae_config),
    ]:
        component = components[name]
        published = component["published_config"]
        assert json.dumps(translate(published)) == json.dumps(component["config"]), name
        assert set(published) - set(component["config"]) == NOT_ARGUMENTS[short(component["class"])]
    # The official loader turns on the causal mask and interpolated positions whatever the file says.
    assert components["transformer"]["config"]["use_temporal_causal"] is True
    assert components["transformer"]["config"]["interp_condition_pos"] is True


def test_twin_keeps_the_published_settings_that_matter() -> None:
    """Spelled out for the miniflux 384p twin (the tiny card): what a twin must not shrink."""
    pipe = build_tiny_pipeline("miniflux")
    assert pipe.vae.config.encoder_out_channels == 16 and pipe.transformer.config.in_channels == 64
    assert pipe.vae_scale_factor_spatial == 8 and pipe.vae_scale_factor_temporal == 8
    assert pipe.size_multiple == 64
    assert dict(pipe.scheduler.config)["gamma"] == pytest.approx(1 / 3) and pipe.num_stages == 3
    assert pipe.text_encoder_2.config.feed_forward_proj == "gated-gelu"
    assert pipe.text_encoder_2.config.relative_attention_num_buckets == 32
    assert pipe.text_encoder.config.hidden_act == "quick_gelu"
    assert pipe.config.image_latent_scale == pytest.approx(1 / 1.8726)
    assert pipe.config.video_latent_shift == pytest.approx(-0.2343)
    assert sum(p.numel() for p in pipe.transformer.parameters()) < 200_000
