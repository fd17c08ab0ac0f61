"""Recipes pin the weights: a hub model's recipe records the commit the Hugging Face cache
resolved, and replaying it loads that commit even after the cache's main ref moved on. Checked
on a Hugging Face cache laid out on disk (models--owner--repo/snapshots/<commit>, refs/main)
holding tiny Wan pipelines, and on the videos made."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from openreel.engine import Engine
from openreel.errors import WeightsMissingError
from openreel.models import weights
from openreel.models.catalog import get_card
from openreel.recipe import read_recipe, spec_from_recipe
from openreel.render.encode import read_frames
from openreel.spec import VideoSpec

REPO = "openreel-test/tiny-wan-diffusers"
OLD, NEW = "a" * 40, "b" * 40
CARD = replace(get_card("tiny-wan"), id="test-hub-wan", source=f"hub:{REPO}", title="Test hub Wan")


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache whose repo holds two snapshots, OLD (refs/main) and NEW (different weights)."""
    import huggingface_hub.constants
    import torch
    from diffusers import WanTransformer3DModel

    cache = tmp_path / "hf-cache"
    storage = cache / f"models--{REPO.replace('/', '--')}"
    shutil.copytree(weights.ensure_tiny(get_card("tiny-wan")), storage / "snapshots" / OLD)
    shutil.copytree(storage / "snapshots" / OLD, storage / "snapshots" / NEW)
    transformer = WanTransformer3DModel.from_pretrained(storage / "snapshots" / NEW / "transformer")
    with torch.no_grad():
        transformer.proj_out.weight.neg_()
    transformer.save_pretrained(storage / "snapshots" / NEW / "transformer")
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(OLD)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    original = weights.get_card
    monkeypatch.setattr(weights, "get_card", lambda name: CARD if name == CARD.id else original(name))
    return storage


def make(output: Path, spec: VideoSpec | None = None) -> np.ndarray:
    spec = spec or VideoSpec(
        prompt="a red car on a wet street", model=CARD.id, seconds=1.0, width=96, height=64, steps=2, seed=4
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    Engine().generate(spec, output)
    return np.stack(list(read_frames(output)))


def test_a_replay_loads_the_recorded_revision(hub_cache: Path, tmp_path: Path) -> None:
    first = make(tmp_path / "first" / "v.mp4")
    recipe = read_recipe(tmp_path / "first" / "v.json")
    assert recipe["model"]["revision"] == OLD

    # A newer download: the cache's main ref now names another commit with other weights.
    (hub_cache / "refs" / "main").write_text(NEW)
    latest = make(tmp_path / "latest" / "v.mp4")
    assert read_recipe(tmp_path / "latest" / "v.json")["model"]["revision"] == NEW
    assert not np.array_equal(latest, first)

    again = make(tmp_path / "again" / "v.mp4", spec_from_recipe(recipe))
    replayed = json.loads((tmp_path / "again" / "v.json").read_text())
    assert replayed["model"]["revision"] == OLD
    assert replayed["spec"] == recipe["spec"]  # the replay's own recipe replays the same way
    np.testing.assert_array_equal(again, first)


def test_a_replay_whose_revision_is_gone_says_so(hub_cache: Path, tmp_path: Path) -> None:
    make(tmp_path / "first" / "v.mp4")
    recipe = read_recipe(tmp_path / "first" / "v.json")
    shutil.rmtree(hub_cache / "snapshots" / OLD)
    (hub_cache / "refs" / "main").write_text(NEW)
    with pytest.raises(WeightsMissingError, match=f"Revision {OLD} of {REPO}"):
        Engine().generate(spec_from_recipe(recipe), tmp_path / "again.mp4")


def test_tiny_models_record_a_fingerprint(tmp_path: Path) -> None:
    spec = VideoSpec(prompt="a red car", model="tiny-wan", seconds=1.0, width=96, height=64, steps=2, seed=4)
    make(tmp_path / "v.mp4", spec)
    model = read_recipe(tmp_path / "v.json")["model"]
    assert model["revision"] is None and model["fingerprint"].startswith("sha256:")
    folder = weights.ensure_tiny(get_card("tiny-wan"))
    copy = shutil.copytree(folder, tmp_path / "copy")
    assert weights.fingerprint(copy) == model["fingerprint"]
    config = json.loads((copy / "scheduler" / "scheduler_config.json").read_text())
    config["flow_shift"] = 7.0
    (copy / "scheduler" / "scheduler_config.json").write_text(json.dumps(config))
    assert weights.fingerprint(copy) != model["fingerprint"]
