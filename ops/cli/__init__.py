"""The ``moodstream`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import typer

from ops.cli import bench, broker, dashboard, doctor, export, models, publish, serve, up, worker

app = typer.Typer(
    name="moodstream",
    help="Multimodal sentiment and emotion over a Kafka stream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (broker, publish, doctor, worker, serve, dashboard, models, export, bench, up):
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
