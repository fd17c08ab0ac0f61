"""The local prompt policy: default file, categories, allow-list, off switch, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from openreel import safety
from openreel.errors import OpenreelError


@pytest.fixture(autouse=True)
def no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(safety.POLICY_ENV, raising=False)


def test_default_policy_written_on_first_use(openreel_home: Path) -> None:
    (openreel_home / "policy.toml").unlink(missing_ok=True)
    safety.check_prompt("a lighthouse in a storm, cinematic")
    written = (openreel_home / "policy.toml").read_text()
    assert written == safety.DEFAULT_POLICY
    policy = safety.load_policy()
    assert {c.name for c in policy.categories} == {"sexual_minors", "non_consensual_intimate"}


def test_blocked_prompt_names_the_rule() -> None:
    with pytest.raises(safety.PolicyBlocked) as info:
        safety.check_prompt("Make a DEEPFAKE-nude of my neighbour")
    err = info.value
    assert isinstance(err, OpenreelError)
    assert (err.code, err.status, err.param) == ("moderation_blocked", 400, "prompt")
    assert err.category == "non_consensual_intimate"
    assert "non_consensual_intimate" in err.message and "deepfake nude" in err.message


def test_custom_categories_allow_list_and_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy_file = tmp_path / "studio-policy.toml"
    policy_file.write_text(
        'allow = ["water gun"]\n[categories.weapons]\ndescription = "Weapons"\nterms = ["gun*", "rifle"]\n'
    )
    monkeypatch.setenv(safety.POLICY_ENV, str(policy_file))
    safety.check_prompt("kids playing with a water gun in the garden")  # allowed phrase wins
    safety.check_prompt("a begun painting")  # whole words only
    with pytest.raises(safety.PolicyBlocked, match="weapons"):
        safety.check_prompt("a cowboy with two guns")
    policy_file.write_text('enabled = false\n[categories.weapons]\nterms = ["gun*"]\n')
    safety.check_prompt("a cowboy with two guns")


def test_broken_or_missing_policy_refuses_rather_than_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(safety.POLICY_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(safety.PolicyError, match="does not exist"):
        safety.check_prompt("anything")
    bad = tmp_path / "bad.toml"
    bad.write_text("[categories.x]\nterms = 3\n")
    monkeypatch.setenv(safety.POLICY_ENV, str(bad))
    with pytest.raises(safety.PolicyError, match="terms"):
        safety.check_prompt("anything")
