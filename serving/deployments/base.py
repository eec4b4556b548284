"""What the three model deployments share: settings from the app, a background pack load, batching plumbing.

A model replica starts serving at once and loads its model in a background thread, so ``status()`` can say
"not loaded yet" (the ingress's ``/healthz`` answers 503 meanwhile); calls that arrive early wait for the load.
A request carries a *list* of items; ``@serve.batch`` (with ``batch_size_fn=total_items``) joins requests until
``max_batch_size`` items, so one client batch and many single-post requests both fill model batches.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from moodstream.config import Settings
from moodstream.types import ItemError
from serving.device import configure_torch, select_device
from serving.serve_metrics import BatchMeta

log = logging.getLogger("ray.serve")


def total_items(requests: Sequence[Sequence[Any]]) -> int:
    """``batch_size_fn`` for ``@serve.batch``: a batch's size is the number of items over all its requests."""
    return sum(len(r) for r in requests)


# ``@serve.batch`` needs numbers when the class is defined; each replica sets its own from settings at start.
DEFAULT_MAX_BATCH: int = Settings.model_fields["serve_max_batch_size"].default
DEFAULT_BATCH_WAIT_S: float = Settings.model_fields["serve_batch_wait_s"].default


def settings_from(config: dict[str, Any] | None) -> Settings:
    """The replica's settings: the app's serving settings (from the driver that built the app) over the
    replica's environment. The models get plain values from them (``ModelConfig``), never settings."""
    return Settings(**{k: v for k, v in (config or {}).items() if v is not None})


class ModelReplica:
    """Base of the model deployments. Subclasses set ``model_name`` and implement ``_load`` and ``_infer``."""

    model_name = "model"

    def __init__(self, config: dict[str, Any] | None = None, load_delay_s: float = 0.0) -> None:
        self.settings = settings_from(config)
        self.device = select_device(self.settings.device)
        self.threads = configure_torch(self.settings.torch_threads, self.settings.serve_num_cpus)
        self.model: Any = None
        self.version: str | None = None
        self.error: str | None = None
        self._loaded = threading.Event()
        self._load_delay_s = load_delay_s
        self.reconfigure({"max_batch_size": self.settings.serve_max_batch_size,
                          "batch_wait_timeout_s": self.settings.serve_batch_wait_s})
        threading.Thread(target=self._load_in_background, name=f"load-{self.model_name}", daemon=True).start()

    # --- loading ------------------------------------------------------------------------------------
    def _load(self) -> Any:
        raise NotImplementedError

    def _load_in_background(self) -> None:
        t0 = time.perf_counter()
        try:
            if self._load_delay_s:
                time.sleep(self._load_delay_s)
            self.model = self._load()
            from serving.pack import load_pack

            self.version = load_pack(self.settings.model_dir).version
            log.info("%s loaded on %s (%d threads) in %.1fs", self.model_name, self.device, self.threads,
                     time.perf_counter() - t0)
        except Exception as e:  # reported by status() and check_health()
            self.error = f"{type(e).__name__}: {e}"
            log.exception("%s failed to load", self.model_name)
        finally:
            self._loaded.set()

    async def _wait_loaded(self) -> None:
        if not self._loaded.is_set():
            await asyncio.to_thread(self._loaded.wait)
        if self.error:
            raise RuntimeError(f"{self.model_name} model failed to load: {self.error}")

    # --- Serve hooks --------------------------------------------------------------------------------
    def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Serve ``user_config``: ``max_batch_size`` and ``batch_wait_timeout_s`` of this replica's batching."""
        cfg = user_config or {}
        if "max_batch_size" in cfg:
            self.predict.set_max_batch_size(int(cfg["max_batch_size"]))
        if "batch_wait_timeout_s" in cfg:
            self.predict.set_batch_wait_timeout_s(float(cfg["batch_wait_timeout_s"]))

    def check_health(self) -> None:
        """Serve's periodic health check: a replica whose model failed to load is replaced."""
        if self.error:
            raise RuntimeError(f"{self.model_name} model failed to load: {self.error}")

    def status(self) -> dict[str, Any]:
        """Loaded or not (and why not), the device, threads and pack version."""
        return {"model": self.model_name, "loaded": self._loaded.is_set() and self.error is None,
                "error": self.error, "load_failed": self.error is not None, "device": self.device,
                "threads": self.threads, "version": self.version,
                "max_batch_size": self.predict._get_max_batch_size()}

    async def predict(self, items: list[Any]) -> tuple[list[Any], BatchMeta | None]:
        raise NotImplementedError  # each subclass defines it with @serve.batch (one batch queue per deployment)

    # --- batching -----------------------------------------------------------------------------------
    def _infer(self, items: list[Any]) -> list[Any]:
        """Run the model on a flat list of items; one result (or ``ItemError``) per item."""
        raise NotImplementedError

    def _infer_safely(self, items: list[Any]) -> list[Any]:
        """``_infer`` on the batch; if the batch fails, item by item, so only the bad item gets an error."""
        try:
            return self._infer(items)
        except Exception:
            log.exception("%s batch of %d failed; retrying item by item", self.model_name, len(items))
        out: list[Any] = []
        for item in items:
            try:
                out.extend(self._infer([item]))
            except Exception as e:
                out.append(ItemError(f"{self.model_name} model failed: {type(e).__name__}: {e}", self.model_name))
        return out

    async def _run_batch(self, requests: list[list[Any]]) -> list[tuple[list[Any], BatchMeta | None]]:
        """Flatten the requests of one ``@serve.batch`` batch, infer once, split back per request."""
        await self._wait_loaded()
        flat = [item for r in requests for item in r]
        t0 = time.perf_counter()
        results = await asyncio.to_thread(self._infer_safely, flat) if flat else []
        meta = BatchMeta(self.model_name, len(flat), time.perf_counter() - t0)
        out, start = [], 0
        for i, r in enumerate(requests):
            out.append((results[start:start + len(r)], meta if i == 0 else None))
            start += len(r)
        return out
