"""STAND-IN for the model pipeline (not a model): a tiny deterministic classifier for stream tests.

Text: VADER's compound score; image: mean brightness (bright = positive, dark = negative). It has the
``classify(list[ClassifyItem]) -> list[Prediction | ItemError]`` shape of the real in-process pipeline and the
Serve ``Classifier``, so the integration tests can swap the real one in through the ``classifier`` fixture.
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import numpy as np

from moodstream.schema import Modalities, ModalityOut, Prediction, emotion_out, sentiment_out
from moodstream.types import ClassifyItem, ItemError

MODEL_VERSION = "lexicon-standin-1"


def _sentiment_probs(score: float) -> np.ndarray:
    """A score in [-1, 1] as (negative, neutral, positive) probabilities."""
    pos, neg = max(score, 0.0), max(-score, 0.0)
    neu = max(0.0, 1.0 - pos - neg) * 0.8
    p = np.array([neg + 0.05, neu + 0.05, pos + 0.05])
    return p / p.sum()


def _emotion_probs(s: np.ndarray) -> np.ndarray:
    # anger, disgust, fear, joy, sadness, surprise, neutral
    e = np.array([s[0] * 0.3, 0.02, 0.02, s[2], s[0] * 0.7, 0.02, s[1]]) + 0.01
    return e / e.sum()


def _modality(s: np.ndarray | None, faces: int | None = None) -> ModalityOut | None:
    if s is None:
        return None
    return ModalityOut(sentiment=sentiment_out(s).probs, emotion=emotion_out(_emotion_probs(s)).probs, faces=faces)


class LexiconClassifier:
    """Deterministic stand-in; counts calls and items so tests can see batching and caching."""

    def __init__(self, *_: object) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._vader = SentimentIntensityAnalyzer()
        self.calls = 0
        self.items = 0

    def _text(self, text: str) -> np.ndarray:
        return _sentiment_probs(self._vader.polarity_scores(text)["compound"])

    @staticmethod
    def _image(data: bytes) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im.draft("L", (64, 64))
            g = np.asarray(im.convert("L").resize((32, 32)), dtype=np.float32)
        return _sentiment_probs(float(g.mean()) / 127.5 - 1.0)

    def classify(self, items: list[ClassifyItem]) -> list[Prediction | ItemError]:
        self.calls += 1
        self.items += len(items)
        out: list[Prediction | ItemError] = []
        for it in items:
            t0 = time.perf_counter()
            text = self._text(it.text) if it.text and it.text.strip() else None
            try:
                image = self._image(it.image) if it.image else None
            except Exception as e:
                out.append(ItemError(f"image cannot be decoded: {type(e).__name__}", "decode"))
                continue
            if text is None and image is None:
                out.append(ItemError("nothing to classify", "classify"))
                continue
            parts = [p for p in (text, image) if p is not None]
            fused = np.mean(parts, axis=0)
            mods = Modalities(text=_modality(text), image=_modality(image, faces=0))
            out.append(Prediction(
                post_id=it.post_id, model_version=MODEL_VERSION, created_at=it.created_at,
                processed_at=datetime.now(UTC), sentiment=sentiment_out(fused),
                emotion=emotion_out(_emotion_probs(fused)),
                modalities=mods, fusion="late", latency_ms=(time.perf_counter() - t0) * 1000,
            ))
        return out
