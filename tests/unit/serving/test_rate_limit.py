"""``serving.rate_limit``: the token bucket per client, on a controlled clock."""

from __future__ import annotations

import pytest

from serving.rate_limit import TokenBucketLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_burst_then_refused_then_refilled() -> None:
    clock = Clock()
    lim = TokenBucketLimiter(rate_per_s=2.0, burst=3, clock=clock)
    assert [lim.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = lim.acquire("a")
    assert wait == pytest.approx(0.5)  # one token comes back every 1/rate s
    assert lim.acquire("a") == pytest.approx(0.5)  # a refusal takes no token
    clock.t += 0.5
    assert lim.acquire("a") == 0.0 and lim.acquire("a") > 0
    clock.t += 100
    assert [lim.acquire("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # never more than the burst


def test_clients_have_their_own_buckets() -> None:
    clock = Clock()
    lim = TokenBucketLimiter(rate_per_s=1.0, burst=1, clock=clock)
    assert lim.acquire("10.0.0.1") == 0.0 and lim.acquire("10.0.0.1") > 0
    assert lim.acquire("10.0.0.2") == 0.0


def test_bounded_number_of_clients() -> None:
    clock = Clock()
    lim = TokenBucketLimiter(rate_per_s=1.0, burst=1, max_clients=2, clock=clock)
    for c in ("a", "b", "c"):
        lim.acquire(c)
    assert len(lim._buckets) == 2 and "a" not in lim._buckets


def test_rate_zero_is_off_and_bad_values_refused() -> None:
    lim = TokenBucketLimiter(rate_per_s=0, burst=1)
    assert not lim.enabled and all(lim.acquire("a") == 0.0 for _ in range(1000))
    with pytest.raises(ValueError):
        TokenBucketLimiter(rate_per_s=-1, burst=1)
    with pytest.raises(ValueError):
        TokenBucketLimiter(rate_per_s=1, burst=0)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(w) for w in (0.01, 1.0, 1.2, 7.9)] == ["1", "1", "2", "8"]
