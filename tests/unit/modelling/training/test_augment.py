"""The augmentation of fusion training: the fused-label rule and the uninformative/mismatched pairs."""

from __future__ import annotations

import numpy as np

from modelling.training.augment import IGNORE, Augmenter, fused_rule
from testkit.probs import NEG, NEU, POS, onehot


def test_fused_rule_and_augmenter() -> None:
    assert fused_rule(np.array([NEG, NEU, POS, POS, NEU]), np.array([NEG, POS, NEU, NEG, NEU])).tolist() == \
        [NEG, POS, POS, -1, NEU]
    n = 20
    rng = np.random.default_rng(0)
    yt, yi = rng.integers(0, 3, n), rng.integers(0, 3, n)
    train = {"tp": onehot(yt), "ip": onehot(yi), "te": np.zeros((n, 4), np.float32), "ie": np.ones((n, 5), np.float32),
             "mask": np.ones((n, 2), np.float32), "y_text": yt, "y_image": yi}
    images = {"ip": onehot([NEU, NEU]), "ie": np.zeros((2, 5), np.float32)}
    extra = Augmenter(train, images, uninformative=0.5, mismatched=0.5).sample(np.random.default_rng(1))
    assert len(extra["y"]) >= 10 and set(extra) == {"tp", "ip", "te", "ie", "mask", "y", "y_text", "y_image"}
    blank = (extra["ie"] == 0).all(1)
    assert blank.sum() == 10
    # uninformative rows carry the caption's own text label
    assert (extra["y"][blank] == extra["tp"][blank].argmax(1)).all()
    # ... and an uninformative image's own label is neutral; every fused target is MVSA's rule of the two
    assert (extra["y_image"][blank] == NEU).all() and (extra["y_text"] == extra["tp"].argmax(1)).all()
    assert (fused_rule(extra["y_text"], extra["y_image"]) == extra["y"]).all()
    assert (extra["y"] >= 0).all()


def test_conflicting_mismatched_pairs_take_the_caption_label_when_asked() -> None:
    n = 40
    yt = np.array([NEG, POS] * (n // 2))
    yi = np.array([POS, NEG] * (n // 2))  # every other item's image is of the opposite polarity half the time
    train = {"tp": onehot(yt), "ip": onehot(yi), "te": np.zeros((n, 4), np.float32), "ie": np.ones((n, 5), np.float32),
             "mask": np.ones((n, 2), np.float32), "y_text": yt, "y_image": yi}
    images = {"ip": onehot([NEU]), "ie": np.zeros((1, 5), np.float32)}
    drop = Augmenter(train, images, uninformative=0.0, mismatched=1.0).sample(np.random.default_rng(0))
    assert (fused_rule(drop["y_text"], drop["y_image"]) >= 0).all()
    text = Augmenter(train, images, uninformative=0.0, mismatched=1.0, conflicts="text").sample(
        np.random.default_rng(0))
    conflict = text["y_image"] == IGNORE
    assert conflict.any() and len(text["y"]) > len(drop["y"])
    assert (text["y"][conflict] == text["y_text"][conflict]).all()
