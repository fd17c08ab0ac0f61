"""``python -m openreel.server --port N --database-url URL``: the same server as
``openreel serve``, for process managers and the integration tests."""

from __future__ import annotations

import typer

from openreel.server.cli_commands import serve_command


def main() -> None:
    typer.run(serve_command)


if __name__ == "__main__":
    main()
