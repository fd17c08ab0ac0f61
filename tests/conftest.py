"""Shared fixtures. Like llm's tests, the whole program is pointed at a temporary openreel folder,
so nothing touches the user's ~/.openreel. Tiny model builds are kept for the session, since
building one takes about a second."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openreel-home")


@pytest.fixture(autouse=True)
def openreel_home(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENREEL_HOME", str(session_home))
    return session_home
