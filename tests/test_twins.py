"""The real cards' reference configurations and their twins.

- Every real card's components, built at full size on the meta device, have the parameter counts
  the reference records and the planner uses, within the published figure's rounding.
- Every real card has a twin, and the twin saved in the diffusers layout differs from its
  reference only in size keys: the same pipeline class, component classes, scheduler
  configuration, patch sizes, compression and latent normalisation.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from pathlib import Path

import pytest

from openreel.hardware import Hardware
from openreel.models.catalog import CARDS, TINY_CARDS, get_card, twin_for
from openreel.models.pyramid_flow.tiny import SIZE_KEYS as PYRAMID_SIZE_KEYS
from openreel.models.reference import (
    instantiate,
    load_reference,
    meta_param_counts,
    model_components,
    reference_ids,
    resolve_class,
)
from openreel.models.twins import DEPTH_LISTS, PROCESSOR_TWINS, SIZE_KEYS

REAL = [card.id for card in CARDS]
# Metadata that transformers and diffusers write beside a configuration: not architecture.
_METADATA = {"architectures", "transformers_version", "dtype", "torch_dtype", "output_hidden_states"}


def test_every_real_card_has_a_reference_and_a_twin():
    assert sorted(REAL) == reference_ids()
    twins = {card.twin_of for card in TINY_CARDS}
    assert set(REAL) <= twins
    for card_id in REAL:
        twin = twin_for(card_id)
        real = get_card(card_id)
        assert twin.is_tiny and twin.family == real.family
        # The frame rule, fps and settings are the real card's: only the size is small.
        for key in ("fps", "frame_step", "max_frames", "size_multiple", "modes", "min_steps", "upscaler"):
            assert getattr(twin, key) == getattr(real, key), (card_id, key)
        assert twin.options == real.options


@pytest.mark.parametrize("card_id", REAL)
def test_full_size_parameter_counts_match_the_reference_and_the_published_figures(card_id):
    reference = load_reference(card_id)
    counts = meta_param_counts(reference)
    # The recorded counts (what the planner reads) are the architecture's.
    assert reference["params"] == counts, "run `python -m openreel.models.reference` to update"
    assert "published_params" in reference["components"]["transformer"]
    for name, component in model_components(reference).items():
        if "published_params" in component:
            published = component["published_params"]
            tolerance = component.get("published_params_tolerance", 0.05)
            assert abs(counts[name] / published - 1) <= tolerance, (name, counts[name], published)


def test_memory_plans_follow_the_parameter_counts():
    """The weights decide what fits: a 14B model with its 5.7B text encoder does not fit a 24 GiB
    card whole, the 1.3B model does."""
    from openreel.plan import plan_memory

    gpu = Hardware("cuda", "bfloat16", "NVIDIA L4", 24.0, 8)
    small, large = get_card("wan2.1-t2v-1.3b"), get_card("wan2.1-t2v-14b")
    assert small.weights_gib < 16 < large.weights_gib
    assert not plan_memory(small, gpu, 832, 480, 81).group_offload
    assert plan_memory(large, gpu, 1280, 720, 81).group_offload
    roomy = replace(gpu, memory_gib=139.0, name="NVIDIA H200")
    roomy_plan = plan_memory(large, roomy, 1280, 720, 81)
    assert not roomy_plan.group_offload and roomy_plan.reason.startswith("fits in memory")


def full_config(component: dict, config: dict) -> dict:
    """A component's whole configuration as its class fills it in (defaults included)."""
    import torch

    with torch.device("meta"):
        model = instantiate(component, config)
    if hasattr(model.config, "to_dict"):  # a transformers configuration
        values = model.config.to_dict()
    else:  # a diffusers one: what the constructor takes (a published config may carry stale keys)
        accepted = inspect.signature(type(model).__init__).parameters
        values = {key: value for key, value in model.config.items() if key in accepted}
    return {key: value for key, value in values.items() if not key.startswith("_") and key not in _METADATA}


def public(config) -> dict:
    return {key: value for key, value in dict(config).items() if not key.startswith("_")}


def differing(reference: dict, twin: dict) -> dict[str, tuple]:
    keys = set(reference) | set(twin)
    return {key: (reference.get(key), twin.get(key)) for key in keys if reference.get(key) != twin.get(key)}


@pytest.fixture(scope="module")
def saved_twins(tmp_path_factory) -> dict[str, Path]:
    from openreel.models.twins import build_twin

    root = tmp_path_factory.mktemp("twins")
    folders = {}
    for card_id in REAL:
        twin = twin_for(card_id)
        folders[card_id] = root / twin.id
        build_twin(twin).save_pretrained(folders[card_id])
    return folders


@pytest.mark.parametrize("card_id", REAL)
def test_a_twin_differs_from_its_reference_only_in_sizes(card_id, saved_twins):
    reference = load_reference(card_id)
    folder = saved_twins[card_id]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == reference["pipeline"].rpartition(".")[2]
    components = reference["components"]
    published = {name for name in components if name != "latent_upsampler"}
    saved_parts = {key for key, value in index.items() if isinstance(value, list) and value[0] is not None}
    assert published == saved_parts
    # The pipeline's own settings (model_index.json's other entries): the published ones, else the
    # pipeline's defaults.
    pipeline = resolve_class(reference["pipeline"])
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(pipeline.__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    settings = {key: value for key, value in public(index).items() if key not in saved_parts}
    for key, value in settings.items():
        if isinstance(value, list):  # an optional component left out: [null, null]
            assert defaults.get(key) is None and value == [None, None], key
        else:
            assert value == reference.get("pipeline_config", {}).get(key, defaults.get(key)), key
    for name, component in components.items():
        if name == "latent_upsampler":
            continue
        saved_class = index[name][1]
        expected_class = component["class"].rpartition(".")[2]
        if name in ("image_processor", "feature_extractor"):
            assert saved_class == PROCESSOR_TWINS.get(expected_class, expected_class)
            saved = json.loads((folder / name / "preprocessor_config.json").read_text())
            for key, value in component["config"].items():
                assert saved[key] == value, (name, key)
            continue
        if name.startswith("tokenizer"):
            # transformers 5 has one class for each tokenizer ("...Fast" names the same class).
            assert resolve_class(saved_class) is resolve_class(expected_class), name
            continue
        assert saved_class == expected_class, name
        if name in ("scheduler", "guider"):  # configured, weightless (HunyuanVideo 1.5's guidance)
            configured = resolve_class(component["class"])
            saved = configured.from_pretrained(folder, subfolder=name).config
            expected = configured.from_config(component["config"]).config
            assert public(saved) == public(expected)
            continue
        config_file = folder / name / "config.json"
        twin_config = {
            key: value
            for key, value in json.loads(config_file.read_text()).items()
            if not key.startswith("_") and key not in _METADATA
        }
        reference_config = full_config(component, component["config"])
        twin_config = full_config(component, twin_config)
        changed = differing(reference_config, twin_config)
        allowed = (PYRAMID_SIZE_KEYS if card_id.startswith("pyramid-flow") else SIZE_KEYS)[expected_class]
        assert set(changed) <= allowed, (name, {k: v for k, v in changed.items() if k not in allowed})
        for key, (real_value, twin_value) in changed.items():
            if isinstance(real_value, list | tuple) and key not in DEPTH_LISTS:
                # Per-stage lists keep their length: the stages are the compression.
                assert len(real_value) == len(twin_value), (name, key)
        assert changed, f"{name} of {card_id}'s twin is full size"


def test_a_twin_built_by_an_older_openreel_is_rebuilt(tmp_path, monkeypatch):
    """A saved twin whose stamp does not match (an older reference or shrink rule) is set aside and
    built again, instead of loading weights that no longer fit its card."""
    from openreel.models.weights import ensure_tiny

    monkeypatch.setenv("OPENREEL_HOME", str(tmp_path))
    twin = get_card("tiny-hunyuan")
    folder = ensure_tiny(twin)
    (folder / "left-by-the-old-build").write_text("x")
    assert ensure_tiny(twin) == folder and (folder / "left-by-the-old-build").exists()  # current: kept
    (folder / "openreel-twin.txt").write_text("an older build\n")
    assert ensure_tiny(twin) == folder
    assert not (folder / "left-by-the-old-build").exists()
    assert (folder / "model_index.json").is_file()
