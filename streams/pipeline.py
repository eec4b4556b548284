"""One batch of raw posts → predictions persisted and published. Faust-free, so it is tested on its own.

validate → fetch URL images → cache lookup → dedupe misses by content → one classifier call → cache store →
upsert (retried across DB outages) → publish predictions and dead letters → trend windows. Each step takes the
items still going and returns the ones it passes on and the dead letters of the ones it rejects. The caller acks
the batch's offsets only after ``process`` returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moodstream.config import Settings
from moodstream.schema import DeadLetter, Post, PostError, Prediction, parse_post
from moodstream.types import ClassifyItem, ItemError
from storage.records import PostRecord
from streams import metrics
from streams.cache import Cache, content_key
from streams.classifier import ClassifierClient
from streams.dlq import dead_letter, dlq_message
from streams.fetch import FetchError, ImageFetcher
from streams.outputs import Outputs, max_message_bytes
from streams.persist import Store
from streams.records import RawRecord
from streams.retry import retry_forever
from streams.thumbs import thumbnail
from streams.trends import TrendTracker

log = logging.getLogger(__name__)
FETCH_CONCURRENCY = 16


@dataclass
class BatchReport:
    """What happened to one batch."""

    consumed: int = 0
    dead: int = 0
    cached: int = 0
    deduplicated: int = 0
    classified: int = 0
    persisted: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


@dataclass(slots=True)
class _Work:
    record: RawRecord
    post: Post
    image: bytes | None = None
    key: str = ""
    prediction: Prediction | None = None
    cached: bool = False


class Pipeline:
    """Processes batches; owns no Kafka consumer (the Faust agent feeds it and acks after)."""

    def __init__(self, settings: Settings, *, classifier: ClassifierClient, cache: Cache, fetcher: ImageFetcher,
                 store: Store, outputs: Outputs, trends: TrendTracker | None = None) -> None:
        self.settings = settings
        self.classifier = classifier
        self.cache = cache
        self.fetcher = fetcher
        self.store = store
        self.outputs = outputs
        self.trends = trends
        self._fetch_sem = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def process(self, records: list[RawRecord]) -> BatchReport:
        t0 = time.perf_counter()
        rep = BatchReport(consumed=len(records))
        metrics.consumed.inc(len(records))
        metrics.batch_size.observe(len(records))

        with metrics.timed("validate"):
            work, invalid = self._validate(records)
        with metrics.timed("fetch"):
            work, unfetched = await self._fetch_images(work)
        with metrics.timed("classify"):
            done, unclassified = await self._classify(work, rep)
        with metrics.timed("persist"):
            stored, refused = await self._persist(done)
            dead = invalid + unfetched + unclassified + refused
            await self.store.write_dead_letters(dead)
        with metrics.timed("publish"):
            await self._publish(stored, dead)
        if self.trends is not None and stored:
            with metrics.timed("trends"):
                await self.trends.update(w.post.created_at for w in stored)
                await self.trends.flush_closed()

        now = time.time()
        for w in stored:
            metrics.e2e_created.observe(max(0.0, now - w.post.created_at.timestamp()))
            if w.record.timestamp:
                metrics.e2e_published.observe(max(0.0, now - w.record.timestamp))
        metrics.persisted.inc(len(stored))
        metrics.batch_seconds.observe(time.perf_counter() - t0)
        rep.persisted, rep.dead, rep.dead_letters = len(stored), len(dead), dead
        return rep

    # -- steps ------------------------------------------------------------------------------------

    def _validate(self, records: list[RawRecord]) -> tuple[list[_Work], list[DeadLetter]]:
        """Parse every message; a post id seen twice in one batch is classified once (the last copy wins)."""
        by_id: dict[str, _Work] = {}
        dead: list[DeadLetter] = []
        for rec in records:
            try:
                post = parse_post(rec.value)  # type: ignore[arg-type]
            except PostError as e:
                dead.append(dead_letter(rec, e.reason, "validate"))
                continue
            by_id.pop(post.id, None)
            by_id[post.id] = _Work(rec, post)
        return list(by_id.values()), dead

    async def _fetch_images(self, work: list[_Work]) -> tuple[list[_Work], list[DeadLetter]]:
        """Inline images decoded and checked for size, URL images fetched; each kept item gets its content key."""
        dead: list[DeadLetter] = []

        async def one(w: _Work) -> bool:
            img = w.post.image
            if img is None:
                return True
            if img.b64 is not None:
                w.image = img.data()
                if len(w.image) > self.settings.image_max_bytes:
                    dead.append(dead_letter(w.record, f"image is larger than {self.settings.image_max_bytes} bytes",
                                            "decode", w.post.id))
                    return False
                return True
            try:
                async with self._fetch_sem:
                    w.image = await self.fetcher.fetch(img.url or "")
                return True
            except FetchError as e:
                dead.append(dead_letter(w.record, e.reason, "fetch", w.post.id))
                return False

        ok = await asyncio.gather(*(one(w) for w in work))
        kept = [w for w, good in zip(work, ok, strict=True) if good]
        for w in kept:
            w.key = content_key(w.post.text, w.image)
        return kept, dead

    async def _classify(self, work: list[_Work], rep: BatchReport) -> tuple[list[_Work], list[DeadLetter]]:
        """Cache hits reused, misses deduplicated by content and classified in one call; returns the predicted."""
        now = datetime.now(UTC)
        dead: list[DeadLetter] = []
        hits = await self.cache.get_many([w.key for w in work])
        misses: dict[str, list[_Work]] = {}
        for w, hit in zip(work, hits, strict=True):
            pred = _from_cache(hit)
            if pred is not None:
                w.prediction, w.cached = _for_post(pred, w.post, now, 0.0), True
                rep.cached += 1
            else:
                misses.setdefault(w.key, []).append(w)
        metrics.cached.inc(rep.cached)
        if not misses:
            return work, dead
        firsts = [ws[0] for ws in misses.values()]
        items = [ClassifyItem(post_id=w.post.id, created_at=w.post.created_at, text=w.post.text, image=w.image,
                              hashtags=list(w.post.hashtags or [])) for w in firsts]
        results = await self.classifier.classify(items)
        fresh: dict[str, bytes] = {}
        for first, res in zip(firsts, results, strict=True):
            group = misses[first.key]
            if isinstance(res, ItemError):
                for w in group:
                    dead.append(dead_letter(w.record, res.reason, res.stage, w.post.id))
                continue
            fresh[first.key] = res.to_json()
            rep.classified += 1
            for i, w in enumerate(group):
                w.prediction = res if i == 0 else _for_post(res, w.post, now, res.latency_ms)
                w.cached = i > 0
            rep.deduplicated += len(group) - 1
        metrics.classified.inc(rep.classified)
        metrics.deduplicated.inc(rep.deduplicated)
        await self.cache.set_many(fresh, self.settings.cache_ttl_s)
        return [w for w in work if w.prediction is not None], dead

    async def _persist(self, done: list[_Work]) -> tuple[list[_Work], list[DeadLetter]]:
        """Upsert the predicted posts (with thumbnails); rows the database refuses become dead letters."""
        if not done:
            return [], []
        thumbs = await asyncio.to_thread(
            lambda: [thumbnail(w.image, max_pixels=self.settings.image_max_pixels) if w.image else None
                     for w in done])
        pairs = [(w, PostRecord(post=w.post, prediction=w.prediction, thumbnail=t, cached=w.cached))
                 for w, t in zip(done, thumbs, strict=True) if w.prediction is not None]
        refused = {id(r): reason for r, reason in await self.store.write_predictions([r for _, r in pairs])}
        stored = [w for w, r in pairs if id(r) not in refused]
        dead = [dead_letter(w.record, refused[id(r)], "persist", w.post.id) for w, r in pairs if id(r) in refused]
        return stored, dead

    async def _publish(self, stored: list[_Work], dead: list[DeadLetter]) -> None:
        s = self.settings

        async def send() -> None:
            await asyncio.gather(
                self.outputs.send_many(s.topic_predictions, [(w.post.id.encode(), w.prediction.to_json())
                                                             for w in stored if w.prediction is not None]),
                self.outputs.send_many(s.topic_dlq, [dlq_message(d, max_message_bytes(s.image_max_bytes))
                                                     for d in dead]),
            )

        await retry_forever(send, "kafka producer", transient=lambda e: True, cap_s=s.db_retry_max_s)


def _from_cache(raw: bytes | None) -> Prediction | None:
    if raw is None:
        return None
    try:
        return Prediction.model_validate_json(raw)
    except ValueError:
        return None


def _for_post(pred: Prediction, post: Post, now: datetime, latency_ms: float) -> Prediction:
    """A classification reused for another post (cache hit or same content in the batch)."""
    update: dict[str, Any] = {"post_id": post.id, "created_at": post.created_at, "processed_at": now,
                              "latency_ms": latency_ms}
    return pred.model_copy(update=update)
