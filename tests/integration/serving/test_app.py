"""/healthz says 503 until every model replica has loaded its model, then 200."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_health_goes_ready_only_after_load(served) -> None:
    """A second app whose model replicas wait 4 s before loading: its ingress answers 503, then 200."""
    from serving.runner import ServeRunner

    settings = served.settings.model_copy(update={"serve_num_cpus": 0.0})
    runner = ServeRunner(settings)
    runner.start()
    handle = runner.deploy(wait=False, load_delay_s=4.0, name="moodstream-delayed", route_prefix="/delayed")
    try:
        codes: list[int] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{served.url}/delayed/healthz", timeout=10)
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if r.headers.get("content-type", "").startswith("application/json") and "ready" in r.text:
                codes.append(r.status_code)
                if r.status_code == 200:
                    break
                assert r.status_code == 503 and r.json()["ready"] is False
            time.sleep(0.2)
        assert codes and codes[0] == 503 and codes[-1] == 200, codes
        assert handle.health.remote().result(timeout_s=30)["ready"] is True
    finally:
        runner.close()
