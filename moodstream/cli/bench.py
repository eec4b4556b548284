"""`moodstream bench ...` (placeholder until issues #3, #4, #8 land)."""

from __future__ import annotations

import typer

from moodstream.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("bench", help="Not yet available (issue #8).")
    def _bench(what: str = typer.Argument("e2e")) -> None:
        not_yet(f"bench {what}", 8)
