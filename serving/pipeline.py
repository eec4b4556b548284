"""The in-process classifier: pack + TextModel + VisionModel + FusionModel, loaded once, batched per call.

``build_prediction`` is the one place a ``Prediction`` is assembled; the Ray Serve ``Classifier`` reuses it, so this
module imports nothing from Ray.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from moodstream.config import DEFAULT_CONFLICT_MIN_CONFIDENCE, DEFAULT_UNCERTAIN_BELOW, Settings
from moodstream.labels import EMOTIONS, SENTIMENTS
from moodstream.schema import Modalities, ModalityOut, Prediction, emotion_out, probs_dict, sentiment_out
from moodstream.types import ClassifyItem, ItemError, ModalityResult
from serving.flags import is_conflict, is_uncertain
from serving.model_config import ModelConfig

NO_CONTENT = "post has no usable text and no image"


def modality_out(result: ModalityResult | None) -> ModalityOut | None:
    """Wire form of one modality's output (``None`` stays ``None``)."""
    if result is None:
        return None
    return ModalityOut(sentiment=probs_dict(SENTIMENTS, result.sentiment), emotion=probs_dict(EMOTIONS, result.emotion),
                       faces=result.faces)


def build_prediction(*, post_id: str, created_at: datetime, sentiment: np.ndarray, emotion: np.ndarray,
                     text: ModalityResult | None, image: ModalityResult | None, model_version: str, fusion: str,
                     latency_ms: float, processed_at: datetime | None = None,
                     uncertain_below: float = DEFAULT_UNCERTAIN_BELOW,
                     conflict_min_confidence: float = DEFAULT_CONFLICT_MIN_CONFIDENCE) -> Prediction:
    """Assemble a ``Prediction`` from fused (calibrated) probabilities and the per-modality results, with its
    ``uncertain`` and ``conflict`` flags (``serving.flags``; thresholds from the caller's settings)."""
    return Prediction(
        post_id=post_id, model_version=model_version, created_at=created_at,
        processed_at=processed_at or datetime.now(UTC),
        sentiment=sentiment_out(sentiment), emotion=emotion_out(emotion),
        modalities=Modalities(text=modality_out(text), image=modality_out(image)),
        fusion=fusion, latency_ms=round(float(latency_ms), 3),
        uncertain=is_uncertain(sentiment, uncertain_below),
        conflict=is_conflict(text.sentiment if text is not None else None,
                             image.sentiment if image is not None else None, conflict_min_confidence),
    )


def has_text(item: ClassifyItem) -> bool:
    """Whether the item's caption has anything but whitespace."""
    return bool(item.text and item.text.strip())


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def thread_plan(torch_threads: int | None, cpus: int | None = None) -> tuple[int, bool]:
    """(torch intra-op threads, run text and vision side by side) for the in-process pipeline.

    Default: half the CPUs each for the text and the vision batch, run concurrently, rather than all CPUs for one
    model at a time: no OpenMP fork/join per op (the vision model's ops are small: MTCNN's nets, MobileNetV2 on
    4-image chunks), and on a shared machine a multi-threaded op stalls at every barrier where one of its cores is
    taken (2-core box under load: 2 threads were 5-8× slower per post than 1). An explicit ``torch_threads`` is
    kept; side by side then only if the CPUs hold two models with that many threads each.
    """
    cpus = cpus or available_cpus()
    threads = int(torch_threads) if torch_threads else max(1, cpus // 2)
    return threads, cpus >= 2 * threads


@dataclass
class Pipeline:
    """Everything needed to classify posts in this process."""

    pack: Any
    text: Any
    vision: Any
    fusion: Any
    # Run the text batch on a second thread while the vision batch runs (torch releases the GIL in its kernels).
    parallel: bool = False
    # Thresholds of the per-prediction flags (settings ``uncertain_below`` / ``conflict_min_confidence``).
    uncertain_below: float = DEFAULT_UNCERTAIN_BELOW
    conflict_min_confidence: float = DEFAULT_CONFLICT_MIN_CONFIDENCE
    runtime: str = "torch"
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, config: ModelConfig | None = None) -> Pipeline:
        """Load the pack and the models ``config`` names (default: the packaged pack, on the best device)."""
        from serving.device import select_device
        from serving.fusion import FusionModel
        from serving.pack import load_pack
        from serving.text_model import TextModel
        from serving.vision_model import VisionModel

        config = config or ModelConfig()
        threads, parallel = thread_plan(config.torch_threads)
        import torch

        torch.set_num_threads(threads)
        device = select_device(config.device)
        pack = load_pack(config.pack_dir)
        text = TextModel.load(pack_dir=pack.dir, encoder=config.text_encoder, device=device,
                              max_tokens=config.text_max_tokens, runtime=config.runtime, onnx_cache=config.onnx_cache)
        vision = VisionModel.load(pack_dir=pack.dir, device=device, backbone=config.vision_backbone,
                                  max_bytes=config.image_max_bytes, max_pixels=config.image_max_pixels,
                                  runtime=config.runtime, onnx_cache=config.onnx_cache, face_model=config.face_model,
                                  face_gate=config.face_gate)
        fusion = FusionModel.load(pack.dir, strategy=config.fusion_strategy)
        return cls(pack=pack, text=text, vision=vision, fusion=fusion, parallel=parallel, runtime=vision.runtime,
                   uncertain_below=config.uncertain_below, conflict_min_confidence=config.conflict_min_confidence)

    @property
    def version(self) -> str:
        """The pack version every prediction carries."""
        return self.pack.version

    def run_models(self, items: Sequence[ClassifyItem]
                   ) -> tuple[list[ModalityResult | None], list[ModalityResult | ItemError | None]]:
        """One text batch and one image batch over the items that have them; ``None`` where absent."""
        text_idx = [k for k, it in enumerate(items) if has_text(it)]
        image_idx = [k for k, it in enumerate(items) if it.image is not None]
        texts: list[ModalityResult | None] = [None] * len(items)
        images: list[ModalityResult | ItemError | None] = [None] * len(items)
        text_in = [items[k].text for k in text_idx]
        pending = None
        if text_idx and image_idx and self.parallel:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-text")
            pending = self._pool.submit(self.text.predict, text_in)
        if image_idx:
            for k, res in zip(image_idx, self.vision.predict([items[k].image for k in image_idx]), strict=True):
                images[k] = res
        if text_idx:
            out = pending.result() if pending is not None else self.text.predict(text_in)
            for k, res in zip(text_idx, out, strict=True):
                texts[k] = res
        return texts, images

    def classify(self, items: Sequence[ClassifyItem]) -> list[Prediction | ItemError]:
        """A ``Prediction`` or an ``ItemError`` per item, in input order.

        An item fails alone: when its image cannot be decoded (even if it has text: the post is not what it claims)
        or when it has neither text nor image.
        """
        t0 = time.perf_counter()
        texts, images = self.run_models(items)
        out: list[Prediction | ItemError | None] = [None] * len(items)
        ok: list[int] = []
        for k, (t, i) in enumerate(zip(texts, images, strict=True)):
            if isinstance(i, ItemError):
                out[k] = i
            elif t is None and i is None:
                out[k] = ItemError(NO_CONTENT, stage="classify")
            else:
                ok.append(k)
        fused = self.fusion.fuse([texts[k] for k in ok], [images[k] for k in ok]) if ok else []
        latency_ms = (time.perf_counter() - t0) * 1000.0
        now = datetime.now(UTC)
        for k, (sent, emo) in zip(ok, fused, strict=True):
            it = items[k]
            out[k] = build_prediction(post_id=it.post_id, created_at=it.created_at, sentiment=sent, emotion=emo,
                                      text=texts[k], image=images[k],  # type: ignore[arg-type]
                                      model_version=self.version, fusion=self.fusion.strategy,
                                      latency_ms=latency_ms, processed_at=now, uncertain_below=self.uncertain_below,
                                      conflict_min_confidence=self.conflict_min_confidence)
        return out  # type: ignore[return-value]


def load_pipeline(settings: Settings) -> Pipeline:
    """The pipeline the settings name (the stream worker's in-process classifier and the benchmarks use this)."""
    return Pipeline.load(ModelConfig.from_settings(settings))
