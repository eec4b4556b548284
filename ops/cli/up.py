"""`moodstream up`: the whole system on one machine (what `make demo` runs)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer

from moodstream.config import get_settings
from ops.cli._common import console, fail


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(
        replay: Path | None = typer.Option(None, "--replay", help="JSONL file or MVSA-layout folder to publish"),
        synthetic: bool = typer.Option(False, "--synthetic",
                                       help="publish the synthetic feed instead of the demo feed of real photos"),
        rate: float = typer.Option(5.0, help="posts per second of the publisher (0 = as fast as possible)"),
        dashboard: bool = typer.Option(True, "--dashboard/--no-dashboard", help="start the dashboard"),
        publisher: bool = typer.Option(True, "--publisher/--no-publisher", help="start the publisher"),
        run_dir: Path = typer.Option(Path(".moodstream"), help="where each component's log goes"),
        duration: float = typer.Option(0.0, help="stop by itself after this many seconds (0 = run until Ctrl-C)"),
    ) -> None:
        """Start broker, database, Ray Serve, worker, dashboard and a publisher; Ctrl-C stops everything."""
        from sqlalchemy import create_engine

        from ops.launcher import Stack, StartupError

        s = get_settings()
        stack = Stack(settings=s, run_dir=run_dir, replay=replay, synthetic=synthetic, rate=rate,
                      with_dashboard=dashboard, with_publisher=publisher)

        def on_signal(*_: object) -> None:
            stack.stopping.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:
            stack.start(on_step=lambda step: console.print(f"[cyan]starting[/] {step} …"))
        except StartupError as e:
            stack.stop()
            if stack.stopping.is_set() and str(e) == "interrupted":
                console.print("stopped during start-up")
                return
            fail(str(e))
        except Exception as e:
            stack.stop()
            fail(f"start-up failed: {e}")
        bootstrap = stack.env["MOODSTREAM_KAFKA_BROKERS"]
        console.print(f"[green]moodstream is up[/]  broker {bootstrap}  logs {run_dir}/")
        console.print(f"  HTTP API   http://{s.serve_host}:{s.serve_port}/classify  (docs: /docs)")
        if dashboard:
            console.print(f"  dashboard  http://{s.dashboard_host}:{s.dashboard_port}")
        console.print("Ctrl-C stops everything.")
        engine = create_engine(s.database_url)
        started = time.monotonic()
        last: tuple[float, int] | None = None
        try:
            while not stack.stopping.wait(2.0):
                dead = [c.name for c in stack.dead_children() if c.name != "publisher"]
                if dead:
                    console.print(f"[red]{', '.join(dead)} exited[/]; see the logs in {run_dir}/")
                    break
                try:
                    st = stack.status(engine)
                except Exception as e:  # status is best effort; the stack keeps running
                    console.print(f"status unavailable: {e}")
                    continue
                now = time.monotonic()
                rate_now = 0.0 if last is None else (st["classified"] - last[1]) / max(now - last[0], 1e-6)
                last = (now, int(st["classified"]))
                console.print(f"published {st['published']:>7}  classified {st['classified']:>7}  "
                              f"dead-lettered {st['dead_lettered']:>5}  {rate_now:6.1f} posts/s", highlight=False)
                if duration and now - started >= duration:
                    break
        finally:
            console.print("stopping …")
            stack.stop()
            engine.dispose()
            console.print("stopped")
