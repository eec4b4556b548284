"""`moodstream dashboard` (placeholder until issue #6 lands)."""

from __future__ import annotations

import typer

from moodstream.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("dashboard", help="Not yet available (issue #6).")
    def _cmd() -> None:
        not_yet("dashboard", 6)
