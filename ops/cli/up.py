"""`moodstream up`: the whole system on one machine (what `make demo` runs)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer

from moodstream.config import Settings, get_settings
from ops.cli._common import console, fail


def ready_urls(s: Settings, env: dict[str, str], dashboard: bool) -> list[tuple[str, str]]:
    """(what, URL) of everything a person opens once the stack is up."""
    serve = (s.serve_url or env.get("MOODSTREAM_SERVE_URL") or f"http://{s.serve_host}:{s.serve_port}").rstrip("/")
    out = []
    if dashboard:
        out.append(("dashboard", f"http://{s.dashboard_host}:{s.dashboard_port}"))
    out += [("API", f"{serve}/classify  (POST; docs at {serve}/docs)"), ("API metrics", f"{serve}/metrics")]
    if s.worker_web_port:
        out.append(("worker metrics", f"http://127.0.0.1:{s.worker_web_port}/metrics"))
    out.append(("broker", env.get("MOODSTREAM_KAFKA_BROKERS", s.kafka_brokers or "")))
    return out


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
        from ops.progress import Stages

        s = get_settings()
        stack = Stack(settings=s, run_dir=run_dir, replay=replay, synthetic=synthetic, rate=rate,
                      with_dashboard=dashboard, with_publisher=publisher)

        def on_signal(*_: object) -> None:
            stack.stopping.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        feed = (f"replaying {replay}" if replay else "the synthetic feed" if synthetic else
                "the demo feed: real photos, a scripted #launchday shift") + f" at {rate:g} posts/s"
        steps = {
            "broker": ("broker", f"Kafka at {s.kafka_brokers}" if s.kafka_brokers else "embedded Tansu, our topics"),
            "database": ("database", "migrations"),
            "redis": ("cache", "Redis PING"),
            "serve": ("Ray Serve", "loading the text, vision and fusion models: the slow step, about a minute"),
            "worker": ("stream worker", "Faust joins the consumer group"),
            "dashboard": ("dashboard", "Streamlit"),
            "publisher": ("publisher", feed),
        }
        stages = Stages(console)
        try:
            stack.start(on_step=lambda step: stages.begin(*steps.get(step, (step, ""))))
            stages.end()
        except StartupError as e:
            stages.end(ok=False)
            stack.stop()
            if stack.stopping.is_set() and str(e) == "interrupted":
                console.print("stopped during start-up")
                return
            fail(str(e))
        except Exception as e:
            stages.end(ok=False)
            stack.stop()
            fail(f"start-up failed: {e}")
        console.print(f"[green]moodstream is up[/] after {stages.since()}  logs {run_dir}/")
        for name, url in ready_urls(s, stack.env, dashboard):
            console.print(f"  {name:<15} {url}", highlight=False, soft_wrap=True)
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
