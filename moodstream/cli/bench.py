"""`moodstream bench models|serve|e2e`: benchmarks that print side-by-side figures and ratios."""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from moodstream.cli._common import fail

# what -> "module:function"; each function takes (json_path: Path | None, seconds: float, soak: bool) and prints
BENCHES = {
    "models": ("serving.benchmarks.models", "run", 3),
    "serve": ("serving.benchmarks.serve", "run", 4),
    "e2e": ("streams.benchmarks.e2e", "run", 8),
}


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        what: str = typer.Argument("e2e", help="models | serve | e2e"),
        json_out: Path | None = typer.Option(None, "--json", help="also write the results as JSON here"),
        seconds: float = typer.Option(60.0, "--seconds", help="steady-state length (e2e)"),
        soak: bool = typer.Option(False, "--soak", help="long memory-growth run (e2e)"),
        baseline_pack: Path | None = typer.Option(None, "--baseline-pack",
                                                  help="models: also measure this pack directory, side by side"),
    ) -> None:
        """Run a benchmark and print its figures (never part of `make test`)."""
        if what not in BENCHES:
            fail(f"unknown benchmark {what!r}; choose one of: {', '.join(BENCHES)}")
        module, func, issue = BENCHES[what]
        try:
            runner = getattr(importlib.import_module(module), func)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                fail(f"'moodstream bench {what}' is not yet available (issue #{issue}).", code=2)
            raise
        if baseline_pack is not None:
            import inspect

            if "baseline_pack" not in inspect.signature(runner).parameters:
                fail(f"'moodstream bench {what}' has no --baseline-pack")
            runner(json_path=json_out, seconds=seconds, soak=soak, baseline_pack=baseline_pack)
        else:
            runner(json_path=json_out, seconds=seconds, soak=soak)
