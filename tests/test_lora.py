"""--lora FILE[:SCALE]: LoRAs load through diffusers' loaders for one run and unload after it.

The LoRAs are made here with peft on the twins' own transformers and saved in diffusers' format
(``transformer.blocks.N.attn1.to_q.lora_A.weight`` for Wan, ``transformer.transformer_blocks...``
for LTX-Video). What is checked is what reaches the Wan twin's VAE decoder: the denoised latents.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import WanDecoder3d
from typer.testing import CliRunner

from openreel.cli import app
from openreel.engine import Engine
from openreel.errors import SpecError
from openreel.models.catalog import all_cards
from openreel.models.twins import build_twin
from openreel.spec import VideoSpec

runner = CliRunner()
SPEC = VideoSpec("a lighthouse at dusk", model="tiny-wan", seconds=0.5, width=96, height=64, steps=2, seed=5)


def make_lora(card_id: str, folder: Path) -> Path:
    """A random rank-4 LoRA on the attention projections of ``card_id``'s twin transformer."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    card = next(card for card in all_cards() if card.id == card_id)
    pipe = build_twin(card)
    torch.manual_seed(0)
    # init_lora_weights=False: B is random too, so the LoRA changes the output from the start.
    config = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False)
    pipe.transformer.add_adapter(config)
    layers = get_peft_model_state_dict(pipe.transformer)
    type(pipe).save_lora_weights(str(folder), transformer_lora_layers=layers, safe_serialization=True)
    return folder / "pytorch_lora_weights.safetensors"


def offered_loras(folder: Path) -> Path:
    """A server's LoRA folder (--lora-dir): a Wan LoRA credited to Ada Lovelace (CC-BY-4.0), an
    LTX-Video LoRA in a folder of its own, and a file that is no LoRA."""
    import shutil

    folder.mkdir(parents=True)
    shutil.copy(make_lora("tiny-wan", folder.parent / "made"), folder / "harbour-look.safetensors")
    credit = {"author": "Ada Lovelace", "license": "CC-BY-4.0"}
    (folder / "harbour-look.safetensors.json").write_text(json.dumps(credit))
    make_lora("tiny-ltx", folder / "ltx-look")
    (folder / "notes.safetensors").write_bytes(b"not a safetensors file")
    return folder


@pytest.fixture(scope="module")
def loras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("loras")
    wan = make_lora("tiny-wan", folder / "wan")
    (folder / "wan" / "pytorch_lora_weights.json").write_text(
        json.dumps({"author": "Ada Lovelace", "license": "CC-BY-4.0"})
    )
    return {"wan": wan, "ltx": make_lora("tiny-ltx", folder / "ltx")}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()  # one warm runner for the module, like a server worker


def decoded_latents(engine: Engine, spec: VideoSpec, output: Path) -> torch.Tensor:
    """The latents the VAE decoder received in a run of ``spec``."""
    seen: list[torch.Tensor] = []
    forward = WanDecoder3d.forward

    def recording(self, x, *args, **kwargs):
        seen.append(x.detach().clone())
        return forward(self, x, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WanDecoder3d, "forward", recording)
        engine.generate(spec, output)
    return torch.cat(seen)


def with_lora(path: Path, scale: float) -> VideoSpec:
    return replace(SPEC, loras=({"source": str(path), "scale": scale},))


def test_a_lora_changes_the_frames_at_scale_one_and_not_at_zero_and_unloads_after(
    engine: Engine, loras: dict[str, Path], tmp_path: Path
) -> None:
    plain = decoded_latents(engine, SPEC, tmp_path / "plain.mp4")
    styled = decoded_latents(engine, with_lora(loras["wan"], 1.0), tmp_path / "styled.mp4")
    assert (styled - plain).abs().max() > 1e-3
    assert torch.equal(decoded_latents(engine, with_lora(loras["wan"], 0.0), tmp_path / "zero.mp4"), plain)
    # The warm pipeline, after a LoRA run, makes the plain model's latents again.
    again = decoded_latents(engine, SPEC, tmp_path / "again.mp4")
    assert torch.equal(again, plain) and engine.runner.loads == 1


def test_the_loras_author_and_licence_are_credited_in_the_recipe(
    engine: Engine, loras: dict[str, Path], tmp_path: Path
) -> None:
    result = engine.generate(with_lora(loras["wan"], 0.7), tmp_path / "credited.mp4")
    recipe = json.loads(result.outputs[0].recipe.read_text())
    assert recipe["credits"]["loras"] == [
        {"id": "pytorch_lora_weights.safetensors", "author": "Ada Lovelace", "licence": "CC-BY-4.0"}
    ]
    assert recipe["spec"]["loras"] == [{"source": str(loras["wan"]), "scale": 0.7}]
    assert result.credits["loras"] == recipe["credits"]["loras"]  # what the API shows


def test_a_lora_for_another_family_is_one_clear_error_naming_it(loras: dict[str, Path]) -> None:
    result = runner.invoke(
        app, ["generate", "a lighthouse", "--model", "tiny-wan", "--lora", f"{loras['ltx']}:0.5", "--dry-run"]
    )
    message = " ".join(result.output.split())
    assert result.exit_code != 0 and "is for LTX-Video, not Wan" in message, result.output


def test_a_file_that_is_no_lora_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(SpecError) as error:
        Engine().plan(replace(SPEC, loras=({"source": str(bad), "scale": 1.0},)))
    assert "not a readable safetensors file" in error.value.message


def test_a_wan_lora_for_layers_the_model_lacks_is_a_clear_error_and_leaves_it_clean(
    engine: Engine, loras: dict[str, Path], tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    # As from a deeper Wan: block 99, which the twin does not have.
    tensors = {k.replace("blocks.0.", "blocks.99."): v for k, v in load_file(str(loras["wan"])).items()}
    deeper = tmp_path / "deeper.safetensors"
    save_file(tensors, str(deeper))
    plain = decoded_latents(engine, SPEC, tmp_path / "plain.mp4")
    with pytest.raises(SpecError) as error:
        engine.generate(with_lora(deeper, 1.0), tmp_path / "deeper.mp4")
    assert "does not fit tiny-wan (Wan)" in error.value.message
    assert not (tmp_path / "deeper.mp4").exists()
    assert torch.equal(decoded_latents(engine, SPEC, tmp_path / "after.mp4"), plain)


def test_a_style_preset_names_loras_beside_it(
    engine: Engine, loras: dict[str, Path], session_home: Path, tmp_path: Path
) -> None:
    styles = session_home / "styles"
    styles.mkdir(exist_ok=True)
    (styles / "lora-look.toml").write_text(
        'name = "LoRA look"\ndescription = "a test look"\nprompt_template = "{prompt}, lit"\n'
        'author = "Test"\nlicence = "CC0-1.0"\n'
        f'loras = [{{source = "{loras["wan"].parent.name}/{loras["wan"].name}", scale = 1.0}}]\n'
    )
    (styles / loras["wan"].parent.name).symlink_to(loras["wan"].parent)
    try:
        result = engine.generate(replace(SPEC, style="lora-look"), tmp_path / "styled.mp4")
    finally:
        (styles / "lora-look.toml").unlink()
    assert [lora["author"] for lora in result.credits["loras"]] == ["Ada Lovelace"]
