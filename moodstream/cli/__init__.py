"""The ``moodstream`` command. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="moodstream",
    help="Multimodal sentiment and emotion over a Kafka stream.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# module name -> registers commands on ``app`` through ``register(app)``
COMMAND_MODULES = (
    "broker", "publish", "doctor", "worker", "serve", "dashboard", "models", "bench", "up",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"moodstream.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
