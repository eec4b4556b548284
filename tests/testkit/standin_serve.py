"""STAND-IN model deployments (not models) behind the REAL ``Classifier`` ingress and HTTP API.

For the API's own tests (auth, rate limit, OpenAPI fuzzing): the ingress, its middleware, the routes and the
OpenAPI document are the real ones, deployed on a real Ray Serve; only the three model deployments are the
lexicon stand-in (VADER for text, mean brightness for images), so an app deploys in seconds with its own settings.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from ray import cloudpickle, serve

from moodstream.config import Settings
from moodstream.types import ItemError, ModalityResult
from serving.app import ingress_config, ingress_options
from testkit import lexicon_classifier
from testkit.lexicon_classifier import LexiconClassifier, _emotion_probs, _sentiment_probs

for _module in (sys.modules[__name__], lexicon_classifier):  # tests/ is not on the Ray workers' path
    cloudpickle.register_pickle_by_value(_module)


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
class StandinModel:
    """``predict(list) -> (results, None)`` and ``status()``, as the real model deployments answer."""

    def __init__(self, kind: str, any_bytes: bool = False) -> None:
        self.kind = kind
        self.any_bytes = any_bytes
        self.lexicon = LexiconClassifier()

    def status(self) -> dict[str, Any]:
        return {"model": self.kind, "loaded": True, "error": None, "load_failed": False}

    def _one(self, item: Any) -> Any:
        if self.kind == "text":
            s = self.lexicon._text(item)
            return ModalityResult(sentiment=s, emotion=_emotion_probs(s), embedding=np.zeros(4, np.float32))
        if self.kind == "vision":
            try:
                s = self.lexicon._image(item)
            except Exception as e:
                if not self.any_bytes:
                    return ItemError(f"image cannot be decoded: {type(e).__name__}", "vision")
                data = np.frombuffer(item, np.uint8)
                s = _sentiment_probs(float(data.mean()) / 127.5 - 1.0 if data.size else 0.0)
            return ModalityResult(sentiment=s, emotion=_emotion_probs(s), embedding=np.zeros(4, np.float32),
                                  faces=0)
        text, image = item
        parts = [p for p in (text, image) if p is not None]
        return (np.mean([p.sentiment for p in parts], axis=0), np.mean([p.emotion for p in parts], axis=0),
                "standin")

    async def predict(self, items: list[Any]) -> tuple[list[Any], None]:
        return [self._one(x) for x in items], None


def bind_standin_app(settings: Settings, any_bytes: bool = False) -> Any:
    """The real ``Classifier`` (with ``settings``: token, rate limit, ...) over three stand-in model deployments.
    ``any_bytes``: the vision stand-in classifies any bytes (their mean) instead of refusing what does not decode
    as an image, for the fuzz test: no schema can say that bytes decode as an image."""
    from serving.deployments.classifier import Classifier

    models = [StandinModel.options(name=name).bind(kind, any_bytes)
              for name, kind in (("TextModel", "text"), ("VisionModel", "vision"), ("FusionModel", "fusion"))]
    options = {**ingress_options(settings), "num_replicas": 1}
    options.pop("autoscaling_config", None)
    return Classifier.options(**options).bind(*models, ingress_config(settings))


def deploy_standin_app(settings: Settings, name: str, route_prefix: str, any_bytes: bool = False) -> Any:
    """Deploy it on the running Serve (blocking until its replicas run); returns the ingress handle."""
    return serve.run(bind_standin_app(settings, any_bytes), name=name, route_prefix=route_prefix)
