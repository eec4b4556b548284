"""`moodstream up` (placeholder until issue #7 lands)."""

from __future__ import annotations

import typer

from moodstream.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("up", help="Not yet available (issue #7).")
    def _cmd() -> None:
        not_yet("up", 7)
