"""How the worker reaches the models: one call per batch, through a ``ClassifierClient``.

``ServeHandleClient`` (a Ray Serve DeploymentHandle, same cluster), ``HttpClassifierClient`` (``POST /classify/items``)
and ``InProcessClient`` (any object with ``classify(items)``). ``RetryingClient`` adds retries with backoff and turns
a batch that still fails into per-item ``ItemError``s, which the agent sends to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from typing import Any, Protocol

from moodstream.config import Settings
from moodstream.schema import Prediction, WireItem
from moodstream.types import ClassifyItem, ItemError
from streams import metrics
from streams.retry import backoff_delays

log = logging.getLogger(__name__)

Result = Prediction | ItemError


class ClassifierClient(Protocol):
    """Classifies a batch; the result list is in the order of ``items``."""

    async def classify(self, items: list[ClassifyItem]) -> list[Result]: ...

    async def close(self) -> None: ...


def coerce_result(obj: Any) -> Result:
    """A Prediction or ItemError from what a backend returned (objects or their JSON dicts)."""
    if isinstance(obj, Prediction | ItemError):
        return obj
    if isinstance(obj, dict):
        if "error" in obj or "reason" in obj:
            return ItemError(str(obj.get("error") or obj.get("reason")), str(obj.get("stage") or "classify"))
        return Prediction.model_validate(obj)
    if hasattr(obj, "reason") and hasattr(obj, "stage"):  # an ItemError from another import path
        return ItemError(str(obj.reason), str(obj.stage))
    if hasattr(obj, "model_dump"):
        return Prediction.model_validate(obj.model_dump())
    raise TypeError(f"classifier returned {type(obj).__name__}")



class InProcessClient:
    """Wraps an object with ``classify(list[ClassifyItem])`` (sync: run in a thread; or async)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    async def classify(self, items: list[ClassifyItem]) -> list[Result]:
        fn = self.model.classify
        out = await fn(items) if inspect.iscoroutinefunction(fn) else await asyncio.to_thread(fn, items)
        return [coerce_result(r) for r in out]

    async def close(self) -> None:
        close = getattr(self.model, "close", None)
        if close is not None:
            res = close()
            if inspect.isawaitable(res):
                await res


class ServeHandleClient:
    """The ``Classifier`` ingress of the Ray Serve app, through a DeploymentHandle."""

    def __init__(self, app_name: str, ray_address: str | None = None) -> None:
        self.app_name = app_name
        self.ray_address = ray_address
        self._handle: Any = None
        self._lock = threading.Lock()  # two batches in flight ask for the handle from two threads at once

    def _get_handle(self) -> Any:
        with self._lock:
            if self._handle is None:
                import ray
                from ray import serve

                if not ray.is_initialized():
                    ray.init(address=self.ray_address or "auto", ignore_reinit_error=True, log_to_driver=False)
                self._handle = serve.get_app_handle(self.app_name)
            return self._handle

    async def classify(self, items: list[ClassifyItem]) -> list[Result]:
        handle = await asyncio.to_thread(self._get_handle)
        out = await handle.classify_batch.remote(items)
        return [coerce_result(r) for r in out]

    async def close(self) -> None:
        self._handle = None


class HttpClassifierClient:
    """``POST {serve_url}/classify/items`` with the already-validated items (``WireItem``); the answer is a list
    in the same order, each a Prediction or ``{"post_id", "error", "stage"}``. With ``token``
    (``MOODSTREAM_API_TOKEN``) every call carries ``Authorization: Bearer <token>``."""

    def __init__(self, serve_url: str, timeout_s: float = 60.0, token: str | None = None) -> None:
        import httpx

        self.url = serve_url.rstrip("/") + "/classify/items"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(timeout=timeout_s, trust_env=False, headers=headers)

    async def classify(self, items: list[ClassifyItem]) -> list[Result]:
        r = await self._client.post(self.url, json=[WireItem.of(i).model_dump(mode="json") for i in items])
        r.raise_for_status()
        return [coerce_result(x) for x in r.json()]

    async def close(self) -> None:
        await self._client.aclose()


class RetryingClient:
    """Retries a failing batch call with capped exponential backoff and jitter.

    A failed *call* (replica died, HTTP 5xx, timeout, the whole app restarting) is an outage, not bad input:
    the batch is retried, unacknowledged, until ``outage_max_s`` has passed (and at least ``retries`` times);
    only then does each item fail to the dead-letter topic. Per-item errors returned by the classifier are
    passed through untouched.
    """

    def __init__(self, inner: ClassifierClient, retries: int = 3, base_delay_s: float = 0.2,
                 max_delay_s: float = 5.0, outage_max_s: float = 600.0) -> None:
        self.inner = inner
        self.retries = retries
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.outage_max_s = outage_max_s

    async def classify(self, items: list[ClassifyItem]) -> list[Result]:
        if not items:
            return []
        last: BaseException | None = None
        started = time.monotonic()
        attempt = 0
        delays = backoff_delays(self.base_delay_s, self.max_delay_s)
        while True:
            if attempt:
                metrics.classify_retries.inc()
                await asyncio.sleep(next(delays))
            attempt += 1
            try:
                out = await self.inner.classify(items)
            except Exception as e:  # any backend failure: replica died, HTTP 5xx, timeout...
                last = e
                log.warning("classifier call failed (attempt %d): %s", attempt, e)
            else:
                if len(out) == len(items):
                    return out
                last = RuntimeError(f"classifier returned {len(out)} results for {len(items)} items")
            if attempt > self.retries and time.monotonic() - started >= self.outage_max_s:
                break
        reason = (f"classification failed after {attempt} attempts over {time.monotonic() - started:.0f}s: "
                  f"{type(last).__name__}: {last}")
        return [ItemError(reason[:500], "classify") for _ in items]

    async def close(self) -> None:
        await self.inner.close()


def make_client(kind: str | None, settings: Settings, model: Any = None) -> RetryingClient:
    """``serve`` | ``http`` | ``inprocess``; None picks serve when ray_address is set, then http, then in-process."""
    if kind is None:
        kind = "serve" if settings.ray_address else "http" if settings.serve_url else "inprocess"
    inner: ClassifierClient
    if kind == "serve":
        inner = ServeHandleClient(settings.serve_app_name, settings.ray_address)
    elif kind == "http":
        if not settings.serve_url:
            raise ValueError("--classifier http needs MOODSTREAM_SERVE_URL")
        token = settings.api_token.get_secret_value() if settings.api_token is not None else None
        inner = HttpClassifierClient(settings.serve_url, settings.serve_request_timeout_s, token=token)
    elif kind == "inprocess":
        inner = InProcessClient(model if model is not None else load_inprocess_model(settings))
    else:
        raise ValueError(f"unknown classifier kind {kind!r}")
    return RetryingClient(inner, retries=settings.serve_retries, outage_max_s=settings.serve_outage_max_s)


def load_inprocess_model(settings: Settings) -> Any:
    """The in-process model pipeline from ``serving`` (the real models, loaded in this process)."""
    from serving.pipeline import load_pipeline

    return load_pipeline(settings)
