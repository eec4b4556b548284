"""`moodstream serve` (placeholder until issue #4 lands)."""

from __future__ import annotations

import typer

from moodstream.cli._common import not_yet


def register(app: typer.Typer) -> None:
    @app.command("serve", help="Not yet available (issue #4).")
    def _cmd() -> None:
        not_yet("serve", 4)
