"""Pure pieces: classifier retries, alert rule, windows, synthetic feed, JSONL and MVSA readers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from moodstream.clock import window_start
from moodstream.types import ClassifyItem, ItemError
from ops.producers.jsonl import read_jsonl
from ops.producers.mvsa import read_mvsa
from ops.producers.synthetic import SyntheticFeed
from streams.alerts import evaluate
from streams.classifier import RetryingClient


class FakeFlakyClassifier:
    """FAKE: fails ``failures`` times, then answers an ItemError per item (no model involved)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def classify(self, items):
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("replica died")
        return [ItemError("ok-marker") for _ in items]

    async def close(self):
        pass


def items(n=2):
    return [ClassifyItem(post_id=str(i), created_at=datetime.now(UTC), text="hi") for i in range(n)]


def test_retrying_client_recovers_then_gives_up():
    ok = asyncio.run(RetryingClient(FakeFlakyClassifier(2), retries=3, base_delay_s=0.001).classify(items()))
    assert [r.reason for r in ok] == ["ok-marker"] * 2
    inner = FakeFlakyClassifier(10)
    bad = asyncio.run(RetryingClient(inner, retries=2, base_delay_s=0.001, outage_max_s=0).classify(items()))
    assert inner.calls == 3 and all("failed after 3 attempts" in r.reason for r in bad)


def test_retrying_client_waits_out_an_outage_longer_than_its_retries():
    inner = FakeFlakyClassifier(8)  # fails 8 calls, then answers
    out = asyncio.run(RetryingClient(inner, retries=2, base_delay_s=0.001, max_delay_s=0.01,
                                      outage_max_s=30).classify(items()))
    assert inner.calls == 9 and [r.reason for r in out] == ["ok-marker"] * 2


def test_alert_rule():
    row = {"hashtag": "x", "window_start": datetime(2024, 1, 1, tzinfo=UTC), "volume": 20, "mean_score": -0.5}
    a = evaluate(row, [0.2, 0.1, 0.3], min_volume=10, threshold=0.4)
    assert a and a["direction"] == "down" and round(a["delta"], 3) == -0.7 and a["id"].startswith("x:2024-01-01")
    assert evaluate({**row, "volume": 5}, [0.2] * 3, min_volume=10, threshold=0.4) is None
    assert evaluate(row, [-0.4] * 3, min_volume=10, threshold=0.4) is None
    assert evaluate(row, [0.5], min_volume=10, threshold=0.4) is None  # too little history


def test_window_start():
    assert window_start(datetime(2024, 1, 1, 12, 3, 59, tzinfo=UTC), 60) == datetime(2024, 1, 1, 12, 3, tzinfo=UTC)


def test_synthetic_feed_is_deterministic_and_drifts():
    a = [p.post["text"] if "text" in p.post else p.post["image"]["b64"] for p in SyntheticFeed(200, seed=5).posts()]
    b = [p.post["text"] if "text" in p.post else p.post["image"]["b64"] for p in SyntheticFeed(200, seed=5).posts()]
    assert a == b
    feed = list(SyntheticFeed(2000, seed=1).posts())
    coffee = [p.label == "positive" for p in feed if p.hashtag == "coffee"]
    first, last = coffee[: len(coffee) // 4], coffee[len(coffee) // 2: 3 * len(coffee) // 4]
    assert abs(sum(first) / len(first) - sum(last) / len(last)) > 0.2
    assert any("image" not in p.post for p in feed) and any("text" not in p.post for p in feed)


def test_jsonl_keeps_bad_lines(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_bytes(json.dumps({"id": "a", "created_at": "2024-01-01T00:00:00Z", "text": "x"}).encode()
                  + b"\n\nnot json\n")
    assert [k for k, _ in read_jsonl(f)] == [b"a", None]


def test_mvsa_directory_forms(tmp_path, data_dir):
    shared = list(read_mvsa(data_dir / "mvsa_single", limit=3))
    assert len(shared) == 3 and all(p["image"]["b64"] and p["id"].startswith("mvsa-") for p in shared)
    (tmp_path / "7.txt").write_text("hello #x")
    (tmp_path / "7.jpg").write_bytes(b"\xff\xd8jpeg")
    [post] = read_mvsa(tmp_path)
    assert post["id"] == "mvsa-7" and post["text"] == "hello #x"
