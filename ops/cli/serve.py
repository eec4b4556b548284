"""`moodstream serve`: start a local Ray (or connect to MOODSTREAM_RAY_ADDRESS), deploy the classifier app,
wait until every model is loaded, print the URL, and run until Ctrl-C/SIGTERM."""

from __future__ import annotations

import signal
import time

import typer

from moodstream.config import get_settings
from ops.cli._common import console, fail


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str | None = typer.Option(None, help="HTTP address (default: MOODSTREAM_SERVE_HOST, 127.0.0.1)"),
        port: int | None = typer.Option(None, help="HTTP port (default: MOODSTREAM_SERVE_PORT, 8000)"),
        replicas: int | None = typer.Option(None, help="replicas per deployment (default: MOODSTREAM_SERVE_REPLICAS)"),
        num_cpus: int | None = typer.Option(None, "--num-cpus", help="CPUs of the local Ray (default: all)"),
        timeout: float = typer.Option(300.0, help="seconds to wait for the models to load"),
    ) -> None:
        """Serve the classifier over HTTP (POST /classify, GET /healthz, GET /metrics) until Ctrl-C."""
        from serving.runner import NotReady, ServeRunner

        overrides = {k: v for k, v in (("serve_host", host), ("serve_port", port), ("serve_replicas", replicas))
                     if v is not None}
        settings = get_settings().model_copy(update=overrides)
        where = f"Ray at {settings.ray_address}" if settings.ray_address else "a local Ray"
        console.print(f"starting {where} and deploying '{settings.serve_app_name}'...")
        runner = ServeRunner(settings, num_cpus=num_cpus)
        try:
            runner.start()
            for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own handlers
                signal.signal(sig, _interrupt)
            with console.status("loading models..."):
                runner.deploy(wait=True, timeout_s=timeout)
            console.print(f"[green]ready[/] at [bold]{runner.url}[/]  (POST /classify, GET /healthz, "
                          f"GET /metrics, /docs). Ctrl-C stops it.")
            auth = ' -H "Authorization: Bearer $MOODSTREAM_API_TOKEN"' if settings.api_token is not None else ""
            console.print(f'try: curl{auth} -F image=@face.jpg -F text="what a day" {runner.url}/classify',
                          highlight=False, markup=False)
            while True:
                time.sleep(1.0)
        except NotReady as e:
            fail(str(e))
        except KeyboardInterrupt:
            pass
        except Exception as e:  # Ray would not start, the port is taken, the pack is broken...
            fail(f"{type(e).__name__}: {e}")
        finally:
            console.print("shutting down...")
            runner.close()
            console.print("stopped")
