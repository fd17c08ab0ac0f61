"""The HTTP server: the OpenAI Videos API over the job queue. Importing it never imports torch.

``build_app`` and ``Settings`` load FastAPI on first use, so ``openreel --help`` and the other
CLI commands that only mount ``openreel serve`` stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openreel.server.app import build_app
    from openreel.server.settings import Settings

__all__ = ["Settings", "build_app"]


def __getattr__(name: str) -> Any:
    if name == "build_app":
        from openreel.server.app import build_app

        return build_app
    if name == "Settings":
        from openreel.server.settings import Settings

        return Settings
    raise AttributeError(name)
