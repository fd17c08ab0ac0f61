import json

import pytest

from openreel.errors import RecipeError, SpecError, UnknownModelError, WeightsMissingError
from openreel.models.catalog import get_card
from openreel.models.weights import resolve_card, weights_folder
from openreel.recipe import FORMAT, read_recipe, spec_from_recipe
from openreel.styles import all_styles, get_style

SORA_STYLES = {"archival", "film-noir", "cardboard-papercraft", "whimsical-stop-motion", "balloon-world"}


def test_builtin_styles_are_complete():
    styles = all_styles()
    assert set(styles) >= SORA_STYLES
    assert len(styles) >= 10
    for style in styles.values():
        assert "{prompt}" in style.prompt_template
        assert style.author and style.licence and style.description


def test_user_style_is_added_and_can_override(openreel_home):
    folder = openreel_home / "styles"
    folder.mkdir(exist_ok=True)
    (folder / "neon.toml").write_text(
        'name = "Neon"\ndescription = "Neon signs"\nprompt_template = "{prompt}, neon"\n'
        'author = "me"\nlicence = "CC-BY-4.0"\n[suggested]\nsteps = 12\n'
    )
    try:
        neon = get_style("neon")
        assert neon.steps == 12 and not neon.builtin
    finally:
        (folder / "neon.toml").unlink()


def test_broken_user_style_is_a_clear_error(openreel_home):
    folder = openreel_home / "styles"
    folder.mkdir(exist_ok=True)
    (folder / "bad.toml").write_text('name = "Bad"\nprompt_template = "no placeholder"\n')
    try:
        with pytest.raises(SpecError, match="bad.toml lacks description, author, licence"):
            all_styles()
    finally:
        (folder / "bad.toml").unlink()


def test_unknown_style_lists_choices():
    with pytest.raises(SpecError, match="film-noir") as info:
        get_style("vaporwave")
    assert info.value.param == "style"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "other"}', "not an openreel recipe"),
        (json.dumps({"format": FORMAT, "spec": {"prompt": "x", "seconds": -2}}), "spec is invalid"),
    ],
)
def test_bad_recipes(tmp_path, content, fragment):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(RecipeError, match=fragment):
        spec_from_recipe(read_recipe(path))


def test_missing_recipe(tmp_path):
    with pytest.raises(RecipeError, match="cannot read recipe"):
        read_recipe(tmp_path / "nope.json")


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownModelError, match="tiny-wan") as info:
        resolve_card("sora-3")
    assert info.value.param == "model"


def test_hub_model_offline_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(WeightsMissingError) as info:
        weights_folder(get_card("wan2.1-t2v-1.3b"))
    message = info.value.message
    assert "openreel models pull wan2.1-t2v-1.3b" in message
    assert "--model /path/to/" in message
    assert "--model tiny-wan" in message


def test_local_folder_needs_model_index(tmp_path):
    with pytest.raises(SpecError, match="neither a diffusers model folder"):
        resolve_card(str(tmp_path))


def test_published_pyramid_flow_folder_is_recognised(tmp_path):
    for part in ("causal_video_vae", "diffusion_transformer_384p"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "config.json").write_text("{}")
    card = resolve_card(str(tmp_path))
    assert card.family == "pyramid-flow" and card.options["resolution"] == "384p"
    assert card.source == f"local:{tmp_path}"
