"""`moodstream worker` (placeholder until issue #5 lands)."""

from __future__ import annotations

import typer

from moodstream.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("worker", help="Not yet available (issue #5).")
    def _cmd() -> None:
        not_yet("worker", 5)
