"""``Classifier`` ingress: validates, fans one batch of posts out to the model deployments, builds Predictions.

Text and image work for a batch run concurrently (``asyncio.gather`` of the two handle calls); batches larger
than ``serve_max_batch_size`` are split into chunks that each fit one model batch. The same instance serves the
HTTP API (``serving.http_api``) and the handle API used by the stream worker (``classify_batch``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle

from moodstream.schema import Prediction
from moodstream.types import ClassifyItem, ItemError, ModalityResult
from serving.auth import BearerAuth, check_bind
from serving.deployments.base import settings_from
from serving.http_api import api
from serving.pipeline import NO_CONTENT, build_prediction, has_text
from serving.rate_limit import TokenBucketLimiter
from serving.serve_metrics import ServeMetrics

HEALTH_TIMEOUT_S = 2.0
BUSY_GRACE_S = 10.0  # a model that answered a call this recently counts as loaded even if status() times out
RETRYABLE = (RayActorError, ActorUnavailableError, ReplicaUnavailableError)
log = logging.getLogger("ray.serve")


@serve.deployment(name="Classifier")
@serve.ingress(api)
class Classifier:
    """The application's ingress (HTTP and handle)."""

    def __init__(self, text: DeploymentHandle, vision: DeploymentHandle, fusion: DeploymentHandle,
                 config: dict[str, Any] | None = None) -> None:
        from serving.pack import load_pack

        self.settings = settings_from(config)
        self.models = {"text": text, "vision": vision, "fusion": fusion}
        self.chunk = self.settings.serve_max_batch_size
        self.model_version = load_pack(self.settings.model_dir).version
        self.max_request_bytes = self.settings.serve_max_request_bytes
        self.metrics = ServeMetrics()
        check_bind(self.settings.serve_host, self.settings.api_token)
        self.auth = BearerAuth(self.settings.api_token)
        self.limiter = TokenBucketLimiter(self.settings.api_rate_per_s, self.settings.api_rate_burst)
        self._last_ok: dict[str, float] = {}

    # --- handle API ---------------------------------------------------------------------------------
    async def classify_batch(self, items: list[ClassifyItem]) -> list[Prediction | ItemError]:
        """A ``Prediction`` or an ``ItemError`` per item, in input order (what the stream worker calls)."""
        return await self.classify_items(items, api="handle")

    async def health(self) -> dict[str, Any]:
        """``{"ready": bool, "models": {name: status}}``; ready only when every model deployment is loaded."""
        async def one(name: str) -> dict[str, Any]:
            try:
                return await asyncio.wait_for(self.models[name].status.remote(), HEALTH_TIMEOUT_S)
            except Exception as e:  # no replica up yet, it is restarting, or it is saturated with work
                busy = time.monotonic() - self._last_ok.get(name, -1e9) < BUSY_GRACE_S
                return {"model": name, "loaded": busy, "error": None if busy else f"{type(e).__name__}: {e}".strip(),
                        "note": "status timed out, but a call succeeded just now" if busy else None}

        names = list(self.models)
        statuses = dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))
        for name, st in statuses.items():
            self.metrics.models_loaded.labels(name).set(1 if st.get("loaded") else 0)
        return {"ready": all(st.get("loaded") for st in statuses.values()), "model_version": self.model_version,
                "models": statuses}

    # --- the work -----------------------------------------------------------------------------------
    async def classify_items(self, items: Sequence[ClassifyItem | ItemError], api: str
                             ) -> list[Prediction | ItemError]:
        """Classify; slots that are already an ``ItemError`` (rejected by the HTTP layer) pass through."""
        t0 = time.perf_counter()
        m = self.metrics
        m.classify_requests.labels(api).inc()
        m.request_posts.observe(len(items))
        good = [k for k, it in enumerate(items) if isinstance(it, ClassifyItem)]
        posts: list[ClassifyItem] = [items[k] for k in good]  # type: ignore[misc]
        text_idx = [k for k, it in enumerate(posts) if has_text(it)]
        image_idx = [k for k, it in enumerate(posts) if it.image is not None]
        text_res, image_res = await asyncio.gather(
            self._call("text", [posts[k].text for k in text_idx]),
            self._call("vision", [posts[k].image for k in image_idx]),
        )
        texts: list[Any] = [None] * len(posts)
        images: list[Any] = [None] * len(posts)
        for k, r in zip(text_idx, text_res, strict=True):
            texts[k] = r
        for k, r in zip(image_idx, image_res, strict=True):
            images[k] = r
        out: list[Any] = [None] * len(posts)
        ok: list[int] = []
        for k, (t, i) in enumerate(zip(texts, images, strict=True)):
            if isinstance(i, ItemError) or isinstance(t, ItemError):
                out[k] = i if isinstance(i, ItemError) else t
            elif t is None and i is None:
                out[k] = ItemError(NO_CONTENT, stage="classify")
            else:
                ok.append(k)
        fused = await self._call("fusion", [(texts[k], images[k]) for k in ok])
        latency_ms = (time.perf_counter() - t0) * 1000.0
        now = datetime.now(UTC)
        for k, f in zip(ok, fused, strict=True):
            out[k] = f if isinstance(f, ItemError) else self._prediction(posts[k], texts[k], images[k], f,
                                                                          latency_ms, now)
        results: list[Prediction | ItemError] = [
            it if isinstance(it, ItemError) else ItemError(f"not a ClassifyItem: {type(it).__name__}", "validate")
            for it in items]
        for k, r in zip(good, out, strict=True):
            results[k] = r
        n_err = sum(isinstance(r, ItemError) for r in results)
        m.posts.labels("ok").inc(len(results) - n_err)
        m.posts.labels("error").inc(n_err)
        m.request_seconds.observe(time.perf_counter() - t0)
        return results

    def _prediction(self, item: ClassifyItem, text: ModalityResult | None, image: ModalityResult | None,
                    fused: tuple[Any, Any, str], latency_ms: float, now: datetime) -> Prediction:
        sent, emo, strategy = fused
        return build_prediction(post_id=item.post_id, created_at=item.created_at, sentiment=sent, emotion=emo,
                                text=text, image=image, model_version=self.model_version, fusion=strategy,
                                latency_ms=latency_ms, processed_at=now,
                                uncertain_below=self.settings.uncertain_below,
                                conflict_min_confidence=self.settings.conflict_min_confidence)

    async def _call(self, model: str, items: list[Any]) -> list[Any]:
        """Send ``items`` to a model deployment in chunks of at most one model batch; results in order."""
        if not items:
            return []
        chunks = [items[i:i + self.chunk] for i in range(0, len(items), self.chunk)]
        handle = self.models[model]

        async def one(chunk: list[Any]) -> list[Any]:
            for attempt in range(self.settings.serve_retries + 1):
                t0 = time.perf_counter()
                try:
                    results, meta = await handle.predict.remote(chunk)
                except RETRYABLE:  # the replica died mid-call; inference is idempotent, so send it again
                    if attempt == self.settings.serve_retries:
                        raise
                    log.warning("%s replica lost; retrying (%d/%d)", model, attempt + 1, self.settings.serve_retries)
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                self.metrics.observe_model(model, time.perf_counter() - t0, meta)
                self._last_ok[model] = time.monotonic()
                return results
            raise AssertionError("unreachable")

        parts = await asyncio.gather(*(one(c) for c in chunks))
        return [r for part in parts for r in part]
