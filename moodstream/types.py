"""Plain data passed between the models, the in-process pipeline and the Serve deployments."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


@dataclass(slots=True)
class ModalityResult:
    """One modality's output for one item.

    ``sentiment``: probabilities over ``labels.SENTIMENTS`` (3,); ``emotion``: over ``labels.EMOTIONS``
    (7,); ``embedding``: the pooled encoder features fusion may use; ``faces``: faces found (image only).
    """

    sentiment: np.ndarray
    emotion: np.ndarray
    embedding: np.ndarray
    faces: int | None = None


@dataclass(slots=True)
class ItemError:
    """A per-item failure (corrupt image, empty post...): the batch goes on without it."""

    reason: str
    stage: str = "classify"


@dataclass(slots=True)
class ClassifyItem:
    """What the classifier needs of one post: its id, time, caption and image bytes (already fetched)."""

    post_id: str
    created_at: datetime
    text: str | None = None
    image: bytes | None = None
    hashtags: list[str] = field(default_factory=list)
