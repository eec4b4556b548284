"""RetryingClient: retries with backoff, waits out an outage, then gives up with a reason per item."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from moodstream.types import ClassifyItem, ItemError
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
