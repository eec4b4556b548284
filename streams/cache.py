"""Result cache keyed by content: reposts of the same caption and image skip the models.

``content_key`` hashes the normalised caption and the image bytes. ``RedisCache`` is the shared cache,
``LruCache`` the in-process one; ``ResilientCache`` wraps either so a cache outage only costs hits.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
from collections import OrderedDict
from typing import Protocol

from moodstream.config import Settings
from streams import metrics

log = logging.getLogger(__name__)

_RT = re.compile(r"^\s*rt\s+@\w+:?\s*", re.IGNORECASE)
_WS = re.compile(r"\s+")


def normalise_caption(text: str | None) -> str:
    """NFKC, lower case, without a leading ``RT @user:``, whitespace collapsed."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text)
    t = _RT.sub("", t)
    return _WS.sub(" ", t).strip().lower()


def content_key(text: str | None, image: bytes | None) -> str:
    """sha256 (hex) of the normalised caption and the image bytes, length-prefixed so parts cannot collide."""
    cap = normalise_caption(text).encode()
    img = image or b""
    h = hashlib.sha256()
    h.update(b"t%d:" % len(cap))
    h.update(cap)
    h.update(b"i%d:" % len(img))
    h.update(img)
    return h.hexdigest()


class Cache(Protocol):
    """Bytes by key, with a time to live."""

    async def get_many(self, keys: list[str]) -> list[bytes | None]: ...

    async def set_many(self, items: dict[str, bytes], ttl_s: int) -> None: ...

    async def close(self) -> None: ...


class LruCache:
    """In-process LRU with per-entry expiry (the default when no Redis is configured)."""

    def __init__(self, max_items: int = 100_000) -> None:
        self.max_items = max_items
        self._d: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        now = time.monotonic()
        out: list[bytes | None] = []
        for k in keys:
            hit = self._d.get(k)
            if hit is None or hit[0] < now:
                if hit is not None:
                    del self._d[k]
                out.append(None)
            else:
                self._d.move_to_end(k)
                out.append(hit[1])
        return out

    async def set_many(self, items: dict[str, bytes], ttl_s: int) -> None:
        expires = time.monotonic() + ttl_s
        for k, v in items.items():
            self._d[k] = (expires, v)
            self._d.move_to_end(k)
        while len(self._d) > self.max_items:
            self._d.popitem(last=False)

    async def close(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


class RedisCache:
    """Redis: one ``MGET`` per lookup, one pipelined ``SET EX`` per store; keys under ``prefix``."""

    def __init__(self, url: str, prefix: str = "moodstream:pred:", timeout_s: float = 0.5) -> None:
        import redis.asyncio as redis

        self.prefix = prefix
        self._r = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
                                       retry_on_timeout=False)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        return list(await self._r.mget([self.prefix + k for k in keys]))

    async def set_many(self, items: dict[str, bytes], ttl_s: int) -> None:
        if not items:
            return
        async with self._r.pipeline(transaction=False) as p:
            for k, v in items.items():
                p.set(self.prefix + k, v, ex=ttl_s)
            await p.execute()

    async def close(self) -> None:
        await self._r.aclose()


class ResilientCache:
    """Degrades to "no cache" when the inner cache fails: logs once, retries it after ``retry_after_s``."""

    def __init__(self, inner: Cache, retry_after_s: float = 10.0) -> None:
        self.inner = inner
        self.retry_after_s = retry_after_s
        self._down_until = 0.0
        self._down = False

    @property
    def available(self) -> bool:
        return not self._down or time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException) -> None:
        metrics.cache_errors.inc()
        if not self._down:
            log.warning("cache unavailable, running without it: %s", exc, extra={"error": type(exc).__name__})
        self._down = True
        self._down_until = time.monotonic() + self.retry_after_s

    def _ok(self) -> None:
        if self._down:
            log.info("cache is back")
        self._down = False

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys or not self.available:
            return [None] * len(keys)
        try:
            out = await self.inner.get_many(keys)
        except Exception as e:  # any cache failure only costs hits
            self._failed(e)
            return [None] * len(keys)
        self._ok()
        return out

    async def set_many(self, items: dict[str, bytes], ttl_s: int) -> None:
        if not items or not self.available:
            return
        try:
            await self.inner.set_many(items, ttl_s)
        except Exception as e:
            self._failed(e)
            return
        self._ok()

    async def close(self) -> None:
        try:
            await self.inner.close()
        except Exception as e:  # pragma: no cover - closing a dead connection
            log.debug("cache close failed: %s", e)


def make_cache(settings: Settings, prefix: str | None = None) -> ResilientCache:
    """Redis when ``redis_url`` is set, else the in-process LRU; either wrapped in ``ResilientCache``.

    The Redis key prefix is ``prefix``, else the ``cache_prefix`` setting (``MOODSTREAM_CACHE_PREFIX``).
    """
    prefix = prefix or settings.cache_prefix
    inner: Cache = RedisCache(settings.redis_url, prefix) if settings.redis_url else LruCache(settings.cache_max_items)
    return ResilientCache(inner)
