"""Helpers shared by the command modules."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Print one clear error line and exit."""
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def not_yet(name: str, issue: int) -> None:
    """For commands that another issue fills in."""
    fail(f"'moodstream {name}' is not yet available (tracked in issue #{issue}).", code=2)
