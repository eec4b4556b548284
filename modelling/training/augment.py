"""Fusion training augmentation (issue #14): teach the fusion nets to weigh each modality's evidence.

Per epoch, on top of the real MVSA train pairs, ``Augmenter.sample`` draws:

* **uninformative-image pairs**: a train caption with a flat grey image or an unrelated sample photo
  (``robustness.TRAIN_GREYS`` / ``TRAIN_PHOTOS``; never the evaluation images), target = the caption's
  ``text_label`` (an image without sentiment is "neutral", so MVSA's rule gives the text label);
* **mismatched pairs**: a train caption with another train item's image, target = MVSA's fusion rule applied to
  (``text_label`` of the caption, ``image_label`` of the image): agree → that label, one neutral → the other,
  positive/negative conflict → not used (MVSA drops those pairs too), or with ``conflicts="text"`` the caption's
  ``text_label`` (an image must not overturn a clear caption; its ``y_image`` is then ``IGNORE``).

The uninformative images' features come from the real vision model (``VisionModel.predict``: MobileNetV2 features,
image head, faces), the same as serving.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from moodstream.labels import SENTIMENT_INDEX

NEU = SENTIMENT_INDEX["neutral"]
KEYS = ("tp", "ip", "te", "ie", "mask")
IGNORE = -100  # a target the losses skip (torch's default ignore_index)
LABELS = ("y", "y_text", "y_image")  # fused target, and the targets of a factored net's text and image outputs


def fused_rule(text_label: np.ndarray, image_label: np.ndarray) -> np.ndarray:
    """MVSA's fused label of (text, image) label pairs; -1 where they are polar and opposite (dropped)."""
    t, i = np.asarray(text_label), np.asarray(image_label)
    out = np.where(t == i, t, np.where(t == NEU, i, np.where(i == NEU, t, -1)))
    return out.astype(np.int64)


def training_images(vision_model: Any) -> dict[str, np.ndarray]:
    """``image_arrays`` of the training-only uninformative images (grey levels + sample photos)."""
    from modelling.robustness import TRAIN_GREYS, TRAIN_PHOTOS, grey_image, image_arrays, sample_photo

    images = [grey_image(g) for g in TRAIN_GREYS] + [sample_photo(n) for n in TRAIN_PHOTOS]
    return image_arrays(vision_model, images)


class Augmenter:
    """Draws the augmented rows of one epoch from the real train features (``uninformative`` and ``mismatched``:
    each the share of train captions that get such a copy per epoch; ``conflicts``: what a positive/negative
    mismatched pair becomes, ``"drop"`` or ``"text"``)."""

    def __init__(self, train: dict[str, Any], images: dict[str, np.ndarray], *, uninformative: float = 0.5,
                 mismatched: float = 0.5, conflicts: str = "drop") -> None:
        self.train, self.images = train, images
        if conflicts not in ("drop", "text"):
            raise ValueError(f"conflicts must be 'drop' or 'text', not {conflicts!r}")
        self.uninformative, self.mismatched, self.conflicts = uninformative, mismatched, conflicts
        self.captions = np.flatnonzero(train["mask"][:, 0] > 0)
        self.with_image = np.flatnonzero(train["mask"][:, 1] > 0)

    def config(self) -> dict[str, Any]:
        return {"uninformative": self.uninformative, "mismatched": self.mismatched, "conflicts": self.conflicts,
                "images": len(self.images["ip"])}

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Augmented rows (``tp, ip, te, ie, mask``; targets ``y, y_text, y_image``: an uninformative image's
        ``y_image`` is neutral) for one epoch."""
        tr = self.train
        parts: list[dict[str, np.ndarray]] = []
        n_u = round(self.uninformative * len(self.captions))
        if n_u:
            rows = rng.choice(self.captions, n_u, replace=False)
            img = rng.integers(0, len(self.images["ip"]), n_u)
            parts.append({"tp": tr["tp"][rows], "te": tr["te"][rows], "ip": self.images["ip"][img],
                          "ie": self.images["ie"][img], "mask": np.ones((n_u, 2), np.float32),
                          "y": tr["y_text"][rows], "y_text": tr["y_text"][rows],
                          "y_image": np.full(n_u, NEU, np.int64)})
        n_m = round(self.mismatched * len(self.captions))
        if n_m and len(self.with_image) > 1:
            rows = rng.choice(self.captions, n_m, replace=False)
            other = rng.choice(self.with_image, n_m)
            y = fused_rule(tr["y_text"][rows], tr["y_image"][other])
            y_image = tr["y_image"][other].copy()
            if self.conflicts == "text":  # the caption's explicit label wins; no (text, image) pair target
                conflict = y < 0
                y[conflict], y_image[conflict] = tr["y_text"][rows][conflict], IGNORE
            keep = (y >= 0) & (other != rows)
            rows, other, y, y_image = rows[keep], other[keep], y[keep], y_image[keep]
            parts.append({"tp": tr["tp"][rows], "te": tr["te"][rows], "ip": tr["ip"][other], "ie": tr["ie"][other],
                          "mask": np.ones((len(rows), 2), np.float32), "y": y, "y_text": tr["y_text"][rows],
                          "y_image": y_image})
        if not parts:
            return {**{k: tr[k][:0] for k in KEYS}, **{k: np.zeros(0, np.int64) for k in LABELS}}
        return {k: np.ascontiguousarray(np.concatenate([p[k] for p in parts]).astype(np.int64 if k in LABELS
                                                                                      else np.float32))
                for k in (*KEYS, *LABELS)}
