"""A model replica killed with ``ray.kill`` is replaced by Serve and the next request succeeds."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from moodstream.schema import Prediction
from moodstream.types import ClassifyItem

pytestmark = pytest.mark.integration


def _replicas(app: str, deployment: str) -> list[str]:
    import ray

    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["name"].startswith(f"SERVE_REPLICA::{app}#{deployment}#"))


def test_killed_text_replica_is_replaced(served) -> None:
    import ray

    app = served.runner.app_name
    before = _replicas(app, "TextModel")
    assert len(before) == 1, before
    ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)
    item = ClassifyItem(post_id="after-kill", created_at=datetime.now(UTC), text="back on my feet, feeling great")
    out = served.handle.classify_batch.remote([item]).result(timeout_s=300)
    assert isinstance(out[0], Prediction) and out[0].modalities.text is not None
    deadline = time.monotonic() + 120
    while (after := _replicas(app, "TextModel")) == before or not after:
        assert time.monotonic() < deadline, f"no replacement replica: {after}"
        time.sleep(0.5)
    assert set(after).isdisjoint(before)
    assert served.handle.health.remote().result(timeout_s=60)["ready"] is True
