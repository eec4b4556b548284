"""The synthetic feed: deterministic per seed, with a sentiment drift on one hashtag."""

from __future__ import annotations

from ops.producers.synthetic import SyntheticFeed


def test_synthetic_feed_is_deterministic_and_drifts():
    a = [p.post["text"] if "text" in p.post else p.post["image"]["b64"] for p in SyntheticFeed(200, seed=5).posts()]
    b = [p.post["text"] if "text" in p.post else p.post["image"]["b64"] for p in SyntheticFeed(200, seed=5).posts()]
    assert a == b
    feed = list(SyntheticFeed(2000, seed=1).posts())
    coffee = [p.label == "positive" for p in feed if p.hashtag == "coffee"]
    first, last = coffee[: len(coffee) // 4], coffee[len(coffee) // 2: 3 * len(coffee) // 4]
    assert abs(sum(first) / len(first) - sum(last) / len(last)) > 0.2
    assert any("image" not in p.post for p in feed) and any("text" not in p.post for p in feed)
