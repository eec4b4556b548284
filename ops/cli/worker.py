"""`moodstream worker`: the Faust stream worker (posts → classify → store → predictions, trends, alerts)."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import typer

from moodstream.config import get_settings
from ops.cli._common import console, fail


def load_object(spec: str, settings: Any = None) -> Any:
    """``module:attr`` or ``path/to/file.py:attr``; a class or factory is called (with settings if it takes any)."""
    mod_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"--model must be MODULE:ATTR, got {spec!r}")
    if mod_name.endswith(".py"):
        path = Path(mod_name).resolve()
        name = f"_moodstream_model_{path.stem}"
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ValueError(f"cannot import {path}")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        loader_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(mod_name)
    obj = getattr(module, attr)
    if not (isinstance(obj, type) or (callable(obj) and not hasattr(obj, "classify"))):
        return obj
    try:
        takes_settings = bool(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # no signature to read (a builtin): call it bare
        takes_settings = False
    return obj(settings) if takes_settings and settings is not None else obj()


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker(
        classifier: str | None = typer.Option(
            None, "--classifier", help="serve | http | inprocess (default: serve if RAY_ADDRESS, http if SERVE_URL, "
                                       "else in-process)"),
        model: str | None = typer.Option(None, "--model", help="in-process classifier as MODULE:ATTR or FILE.py:ATTR"),
        no_migrate: bool = typer.Option(False, "--no-migrate", help="do not upgrade the database schema on start"),
    ) -> None:
        """Run the stream worker until Ctrl-C (creates missing topics and migrates the database first)."""
        from streams.logging import configure
        from streams.worker import build_worker_app, prepare, run_worker

        settings = get_settings()
        configure(settings.log_level, settings.log_json)
        if not settings.kafka_brokers:
            fail("MOODSTREAM_KAFKA_BROKERS is not set. Start a broker with 'moodstream broker' and export "
                 "MOODSTREAM_KAFKA_BROKERS=<its address> (or use 'moodstream up').")
        if classifier not in (None, "serve", "http", "inprocess"):
            fail(f"--classifier must be serve, http or inprocess, not {classifier!r}")
        if model and classifier is None:
            classifier = "inprocess"
        try:
            prepare(settings, migrate=not no_migrate)
            obj = load_object(model, settings) if model else None
            app_ = build_worker_app(settings, classifier, obj)
        except Exception as e:
            fail(f"worker cannot start: {type(e).__name__}: {e}")
            return
        console.print(f"worker: group [bold]{settings.consumer_group}[/] on {settings.kafka_brokers}, "
                      f"topic {settings.topic_posts}, classifier {classifier or 'auto'}")
        run_worker(app_, settings.log_level)
