"""Run the Serve application: start a local Ray (or connect to ``ray_address``), deploy, wait until healthy.

Used by ``moodstream serve``, the benchmarks, the tests and the stream worker's embedded mode::

    with ServeRunner(settings) as runner:
        runner.deploy()            # blocks until the replicas run, then until every model is loaded
        runner.handle.classify_batch.remote(items).result()
"""

from __future__ import annotations

import logging
import time
from typing import Any

from moodstream.config import Settings

log = logging.getLogger(__name__)
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


class NotReady(TimeoutError):
    """The application did not become healthy in time; ``health`` is its last report."""

    def __init__(self, message: str, health: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.health = health


def start_ray(settings: Settings, num_cpus: int | None = None,
              object_store_memory: int | None = LOCAL_OBJECT_STORE_BYTES) -> bool:
    """Connect to ``settings.ray_address``, or start a local Ray; ``True`` when this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if settings.ray_address:
        ray.init(address=settings.ray_address, namespace="serve", log_to_driver=False)
        return False
    ray.init(num_cpus=num_cpus, include_dashboard=False, object_store_memory=object_store_memory,
             namespace="serve", log_to_driver=False)
    return True


def wait_ready(handle: Any, timeout_s: float = 300.0, poll_s: float = 0.5) -> dict[str, Any]:
    """Poll the Classifier's ``health()`` until every model is loaded; raise ``NotReady`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    health: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        try:
            health = handle.health.remote().result(timeout_s=max(1.0, deadline - time.monotonic()))
        except Exception as e:  # the ingress itself is not up yet
            health = {"ready": False, "error": f"{type(e).__name__}: {e}"}
        if health.get("ready"):
            return health
        failed = {n: m.get("error") for n, m in (health.get("models") or {}).items() if m.get("load_failed")}
        if failed:  # a broken pack or missing weights will not fix itself
            raise NotReady(f"model(s) failed to load: {failed}", health)
        time.sleep(poll_s)
    raise NotReady(f"the app did not become ready in {timeout_s:.0f}s: {health}", health)


def app_handle(settings: Settings) -> Any:
    """A handle to an already deployed app's ``Classifier``, e.g. for the stream worker:
    ``app_handle(settings).classify_batch.remote(items).result()``. Connects to ``ray_address`` (unset: the running
    local cluster, ``auto``) unless Ray is already initialised in this process."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(address=settings.ray_address or "auto", namespace="serve", log_to_driver=False)
    return serve.get_app_handle(settings.serve_app_name)


class ServeRunner:
    """Owns one deployment of the app (and the local Ray it started, if any)."""

    def __init__(self, settings: Settings, num_cpus: int | None = None,
                 object_store_memory: int | None = LOCAL_OBJECT_STORE_BYTES) -> None:
        self.settings = settings
        self.num_cpus = num_cpus
        self.object_store_memory = object_store_memory
        self.started_ray = False
        self.started = False
        self.handle: Any = None
        self.app_name = self.settings.serve_app_name

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        host = self.settings.serve_host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{self.settings.serve_port}"

    def start(self) -> ServeRunner:
        """Start (or connect to) Ray and Serve's HTTP proxy on ``serve_host:serve_port``."""
        from ray import serve

        from serving.auth import check_bind

        check_bind(self.settings.serve_host, self.settings.api_token)
        self.started_ray = start_ray(self.settings, self.num_cpus, self.object_store_memory)
        serve.start(http_options={"host": self.settings.serve_host, "port": self.settings.serve_port})
        self.started = True
        return self

    def deploy(self, wait: bool = True, timeout_s: float = 300.0, load_delay_s: float = 0.0,
               name: str | None = None, route_prefix: str = "/",
               overrides: dict[str, dict[str, Any]] | None = None) -> Any:
        """Deploy the app (as ``name``, default ``serve_app_name``, at ``route_prefix``); with ``wait``, block
        until its replicas run and every model is loaded. ``overrides``: per-deployment options (see
        ``serving.app.bind_app``)."""
        from ray import serve

        from serving.app import bind_app

        if not self.started:
            self.start()
        app = bind_app(self.settings, load_delay_s=load_delay_s, overrides=overrides)
        self.app_name = name or self.settings.serve_app_name
        self.handle = serve._run(app, name=self.app_name, route_prefix=route_prefix, _blocking=wait)
        if wait:
            wait_ready(self.handle, timeout_s)
        return self.handle

    def close(self) -> None:
        """Delete the app; shut Serve and Ray down if this runner started Ray."""
        from ray import serve

        try:
            if self.started_ray:
                serve.shutdown()
            elif self.handle is not None:
                serve.delete(self.app_name)
        finally:
            if self.started_ray:
                import ray

                ray.shutdown()
            self.handle = None

    def __enter__(self) -> ServeRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
