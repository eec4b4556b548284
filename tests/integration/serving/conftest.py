"""One real local Ray (2 CPUs, no dashboard) and one deployment of the moodstream app for every serving test."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from moodstream.config import Settings
from ops.localhost import free_port

MAX_REQUEST_BYTES = 2 * 1024 * 1024


@dataclass
class ServedApp:
    handle: Any
    url: str
    settings: Settings
    runner: Any


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local Ray for the whole session (Serve and Ray shut down at the end)."""
    import ray
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 1024 * 1024, namespace="serve",
             log_to_driver=False)
    try:
        yield
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


def serve_settings(port: int, **overrides: Any) -> Settings:
    """Small settings for tests: one thread per replica, 2 MB request cap."""
    base = {"serve_port": port, "serve_host": "127.0.0.1", "serve_num_cpus": 0.5, "torch_threads": 1,
            "serve_max_request_bytes": MAX_REQUEST_BYTES, "serve_batch_wait_s": 0.01, "serve_max_batch_size": 32,
            "device": "auto"}
    return Settings(**{**base, **overrides})


@pytest.fixture(scope="session")
def serve_port(ray_cluster: None) -> int:
    """Serve's HTTP proxy, started once on a free loopback port (every app of the session is routed through it)."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    return port


@pytest.fixture(scope="session")
def served(serve_port: int) -> Iterator[ServedApp]:
    """The app deployed once, healthy (every model loaded)."""
    from serving.runner import ServeRunner

    settings = serve_settings(serve_port)
    runner = ServeRunner(settings)
    runner.start()
    handle = runner.deploy(wait=True, timeout_s=600)
    try:
        yield ServedApp(handle=handle, url=runner.url, settings=settings, runner=runner)
    finally:
        runner.close()


@pytest.fixture(scope="session")
def face_jpeg() -> bytes:
    """scikit-image's astronaut (a smiling face) as JPEG bytes."""
    from PIL import Image
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="session")
def mvsa_posts(data_dir: Path) -> list[tuple[str, str, bytes]]:
    """The first 40 MVSA-Single test pairs as (id, caption, image bytes)."""
    root = data_dir / "mvsa_single"
    rows = [line.split("\t") for line in (root / "test.tsv").read_text(encoding="utf-8").splitlines()[1:41]]
    with zipfile.ZipFile(root / "images.zip") as z:
        return [(r[0], r[3], z.read(f"{r[0]}.jpg")) for r in rows]


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(scope="session")
def standin_app(serve_port: int) -> Iterator[Any]:
    """``standin_app(name, any_bytes=False, **settings)``: the real ``Classifier`` ingress and HTTP API with
    ``settings`` (token, rate limit...) over stand-in models (``testkit.standin_serve``), deployed at ``/<name>``;
    returns its base URL. Deleted at the end."""
    from ray import serve

    from testkit.standin_serve import deploy_standin_app

    names: list[str] = []

    def _deploy(name: str, any_bytes: bool = False, **overrides: Any) -> str:
        deploy_standin_app(serve_settings(serve_port, **overrides), name=name, route_prefix=f"/{name}",
                           any_bytes=any_bytes)
        names.append(name)
        return f"http://127.0.0.1:{serve_port}/{name}"

    try:
        yield _deploy
    finally:
        for name in names:
            serve.delete(name)
