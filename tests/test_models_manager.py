"""`openreel models`: ids a person must type are never cut, the table fits 80 columns, --wide and
--json show everything, and `models rm` frees exactly the model's files from the Hugging Face cache
(layout as huggingface_hub writes it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tests.test_first_hour import fake_download, hf_cache  # noqa: F401 - a fixture
from typer.testing import CliRunner

from openreel.cli import app
from openreel.models.catalog import all_cards

runner = CliRunner()


def models_output(*args: str, columns: int | None) -> str:
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    if columns:
        env["COLUMNS"] = str(columns)
    done = subprocess.run(
        [sys.executable, "-m", "openreel", "models", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("columns", [None, 80, 120])
def test_ids_are_whole_and_the_table_fits(columns):
    """Piped (no terminal: None), at 80 and at 120 columns, each id is the first word of a row."""
    shown = models_output(columns=columns)
    first_words = {line.split()[0] for line in shown.splitlines() if line.strip()}
    assert {card.id for card in all_cards()} <= first_words
    assert "…" not in shown
    assert max(len(line.rstrip()) for line in shown.splitlines()) <= (columns or 80)


def test_wide_and_json_show_everything():
    wide = models_output("--wide", columns=80)
    rows = {line.split()[0]: line for line in wide.splitlines() if line.strip()}
    for card in all_cards():
        assert card.licence in rows[card.id] and ",".join(sorted(card.modes)) in rows[card.id]
    cards = {card["id"]: card for card in json.loads(models_output("list", "--json", columns=None))}
    assert set(cards) == {card.id for card in all_cards()}
    for field in ("modes", "licence", "memory_gib", "fits", "downloaded", "size_on_disk_bytes"):
        assert field in cards["wan2.1-t2v-1.3b"]


def test_rm_frees_a_hub_model(hf_cache):  # noqa: F811
    fake_download(hf_cache, "THUDM/CogVideoX-2b", {"model_index.json": b"{}", "vae/w.bin": b"x" * 4096})
    listed = {c["id"]: c for c in json.loads(runner.invoke(app, ["models", "list", "--json"]).output)}
    assert listed["cogvideox-2b"]["downloaded"] and listed["cogvideox-2b"]["size_on_disk_bytes"] == 4098
    result = runner.invoke(app, ["models", "rm", "cogvideox-2b"])
    assert result.exit_code == 0, result.output
    assert not (hf_cache / "models--THUDM--CogVideoX-2b").exists()
    again = runner.invoke(app, ["models", "rm", "cogvideox-2b"])
    assert again.exit_code != 0 and "not downloaded" in again.output


def test_rm_keeps_what_a_sibling_card_shares(hf_cache):  # noqa: F811
    """Pyramid Flow's 384p and 768p cards share one repository: removing 384p keeps the VAE and
    the 768p transformer."""
    fake_download(
        hf_cache,
        "rain1011/pyramid-flow-miniflux",
        {
            "causal_video_vae/config.json": b"{}",
            "causal_video_vae/w.bin": b"v" * 100,
            "diffusion_transformer_384p/w.bin": b"a" * 300,
            "diffusion_transformer_768p/w.bin": b"b" * 700,
        },
    )
    result = runner.invoke(app, ["models", "rm", "pyramid-flow-miniflux-384p"])
    assert result.exit_code == 0, result.output
    snapshot = next((hf_cache / "models--rain1011--pyramid-flow-miniflux" / "snapshots").iterdir())
    kept = {p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()}
    assert kept == {
        "causal_video_vae/config.json",
        "causal_video_vae/w.bin",
        "diffusion_transformer_768p/w.bin",
    }
    blobs = hf_cache / "models--rain1011--pyramid-flow-miniflux" / "blobs"
    assert sorted(p.stat().st_size for p in blobs.iterdir()) == [2, 100, 700]


def test_rm_an_unknown_id_names_the_problem():
    result = runner.invoke(app, ["models", "rm", "no-such-model"])
    assert result.exit_code != 0 and "unknown model" in result.output
