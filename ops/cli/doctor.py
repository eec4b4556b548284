"""`moodstream doctor`: one line per component saying whether it works and, if not, what is wrong."""

from __future__ import annotations

import typer

from moodstream.config import get_settings
from ops.cli._common import console


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor() -> None:
        """Check broker, database, Redis, Ray and the model pack; exit 1 if any is unusable."""
        from ops.doctor import run_checks

        checks = run_checks(get_settings())
        width = max(len(c.component) for c in checks)
        for c in checks:
            mark = "[green]ok  [/]" if c.ok else "[red]FAIL[/]"
            console.print(f"{mark} {c.component:<{width}}  {c.detail}", highlight=False, soft_wrap=True)
            if c.warning:
                console.print(f"[yellow]warn[/] {c.component:<{width}}  {c.warning}", highlight=False, soft_wrap=True)
        if not all(c.ok for c in checks):
            raise typer.Exit(1)
