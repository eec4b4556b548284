"""`moodstream train|eval|classify` (placeholders until issue #3 lands)."""

from __future__ import annotations

import typer

from moodstream.cli._common import not_yet


def register(app: typer.Typer) -> None:
    for name in ("train", "eval", "classify"):
        app.command(name, help="Not yet available (issue #3).")(lambda n=name: not_yet(n, 3))
