from __future__ import annotations

import asyncio

from streams.cache import LruCache, ResilientCache, content_key, normalise_caption


def test_content_key_normalises_reposts_but_not_images():
    assert normalise_caption("RT @amy:  Hello   World ") == "hello world"
    assert content_key("RT @x: Nice day", b"img") == content_key("nice  day", b"img")
    assert content_key("nice day", b"img") != content_key("nice day", b"img2")
    assert content_key("ab", b"c") != content_key("a", b"bc")


def test_lru_evicts_and_expires():
    async def go():
        c = LruCache(max_items=2)
        await c.set_many({"a": b"1", "b": b"2"}, 60)
        await c.get_many(["a"])
        await c.set_many({"c": b"3"}, 60)
        assert await c.get_many(["a", "b", "c"]) == [b"1", None, b"3"]
        await c.set_many({"d": b"4"}, -1)
        assert await c.get_many(["d"]) == [None]

    asyncio.run(go())


class FakeBrokenCache:
    """FAKE: a cache whose every call fails, standing in for a dead Redis connection."""

    def __init__(self) -> None:
        self.calls = 0

    async def get_many(self, keys):
        self.calls += 1
        raise ConnectionError("down")

    async def set_many(self, items, ttl_s):
        self.calls += 1
        raise ConnectionError("down")

    async def close(self):
        pass


def test_resilient_cache_degrades_and_retries_later(caplog):
    async def go():
        inner = FakeBrokenCache()
        c = ResilientCache(inner, retry_after_s=0.05)
        assert await c.get_many(["a", "b"]) == [None, None]
        await c.set_many({"a": b"1"}, 10)  # skipped: marked down
        assert inner.calls == 1
        await asyncio.sleep(0.06)
        assert await c.get_many(["a"]) == [None]
        assert inner.calls == 2

    asyncio.run(go())
    assert sum("cache unavailable" in r.message for r in caplog.records) == 1
