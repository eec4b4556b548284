"""The robustness rows of issue #14 on a handful of hand-made items."""

from __future__ import annotations

import numpy as np

from modelling.robustness import balanced_accuracy, grey_image, robustness_rows, row, targets_met
from modelling.training.augment import fused_rule
from testkit.probs import NEG, NEU, POS, onehot


def test_row_accuracy_balanced_accuracy_mix_and_flip_rate() -> None:
    y = np.array([NEG, NEG, NEG, POS])
    pred = onehot([NEG, POS, POS, POS])
    ref = onehot([NEG, NEG, NEG, POS])
    r = row(y, pred, reference=ref)
    assert r["accuracy"] == 0.5
    assert r["balanced_accuracy"] == round((1 / 3 + 1) / 2, 4)
    assert r["label_mix"] == {"negative": 0.25, "neutral": 0.0, "positive": 0.75}
    assert r["flip_base"] == 4 and r["flip_rate"] == 0.5
    assert balanced_accuracy(np.array([0, 0, 2]), np.array([0, 0, 0])) == 0.5


def test_rows_on_items_a_text_following_fusion_gets_right() -> None:
    n = 6
    yt = np.array([NEG, POS, NEU, NEG, NEU, POS])
    yi = np.array([NEU, NEU, POS, NEG, NEG, POS])
    feats = {"tp": onehot(yt), "tq": np.zeros((n, 7), np.float32), "te": np.zeros((n, 4), np.float32),
             "ip": onehot(yi), "iq": np.zeros((n, 7), np.float32), "ie": np.ones((n, 5), np.float32),
             "faces": np.zeros(n, np.int64), "mask": np.ones((n, 2), np.float32),
             "y_text": yt, "y_image": yi, "y": fused_rule(yt, yi)}
    images = {"ip": onehot([NEU]), "iq": np.zeros((1, 7), np.float32), "ie": np.zeros((1, 5), np.float32),
              "faces": np.zeros(1, np.int64)}

    def fuse(a):  # follows the evidence: the text unless it is neutral and the image is not
        t, i = a["tp"].argmax(1), np.where(a["mask"][:, 1] > 0, a["ip"].argmax(1), NEU)
        return onehot(np.where(t == NEU, i, t))

    rows = robustness_rows(feats, fuse, images, images)
    assert rows["caption_only"]["n"] == 4
    assert rows["caption_blank_image"]["accuracy"] == 1.0 and rows["caption_blank_image"]["flip_rate"] == 0.0
    assert rows["image_neutral_subset"]["n"] == 2 and rows["image_neutral_subset"]["accuracy"] == 1.0
    assert rows["text_neutral_subset"]["n"] == 2 and rows["text_neutral_subset"]["accuracy"] == 1.0
    assert all(targets_met(rows).values())


def test_grey_image_is_a_png() -> None:
    assert grey_image(128)[:4] == b"\x89PNG"
