"""The HTTP server: the OpenAI Videos API over the job queue. Importing it never imports torch."""

from openreel.server.app import build_app
from openreel.server.settings import Settings

__all__ = ["Settings", "build_app"]
