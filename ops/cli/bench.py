"""`moodstream bench models|serve|e2e`: benchmarks that print side-by-side figures and ratios."""

from __future__ import annotations

from pathlib import Path

import typer

from moodstream.config import get_settings
from ops.cli._common import console, fail
from ops.progress import Stages

BENCHES = ("models", "serve", "e2e", "trends")


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        what: str = typer.Argument("e2e", help="models | serve | e2e | trends"),
        json_out: Path | None = typer.Option(None, "--json", help="also write the results as JSON here"),
        seconds: float | None = typer.Option(None, "--seconds",
                                             help="steady-state length (e2e: 60; trends: 10 per row)"),
        soak: bool = typer.Option(False, "--soak", help="long memory-growth run (e2e)"),
        writers: int = typer.Option(4, "--writers", help="trends: concurrent writers"),
        baseline_pack: Path | None = typer.Option(None, "--baseline-pack",
                                                  help="models: also measure this pack directory, side by side"),
    ) -> None:
        """Run a benchmark and print its figures (never part of `make test`)."""
        if what not in BENCHES:
            fail(f"unknown benchmark {what!r}; choose one of: {', '.join(BENCHES)}")
        if what != "trends":
            seconds = seconds or 60.0
        if baseline_pack is not None and what != "models":
            fail("--baseline-pack applies to 'moodstream bench models' only")
        with Stages(console).step(f"bench {what}", "stage lines and figures follow"):
            if what == "models":
                from ops.bench.models import run as run_models

                run_models(get_settings(), json_path=json_out, seconds=seconds, soak=soak, baseline_pack=baseline_pack)
            elif what == "trends":
                from ops.bench.trends import run as run_trends

                run_trends(get_settings(), json_path=json_out, seconds=seconds or 10.0, writers=writers)
            elif what == "serve":
                from ops.bench.serve import run

                run(get_settings(), json_path=json_out, seconds=seconds, soak=soak)
            else:
                from ops.bench.e2e import run

                run(get_settings(), json_path=json_out, seconds=seconds, soak=soak)
