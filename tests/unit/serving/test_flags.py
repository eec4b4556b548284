"""The per-prediction flags: uncertain and conflict, and the threshold chosen on a validation set."""

from __future__ import annotations

import numpy as np

from serving.flags import (
    choose_uncertain_threshold,
    conflict_mask,
    error_rates,
    flag_stats,
    is_conflict,
    is_uncertain,
)

NEG, NEU, POS = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]


def test_uncertain_is_top_probability_below_threshold() -> None:
    assert is_uncertain([0.5, 0.3, 0.2], 0.6)
    assert not is_uncertain([0.7, 0.2, 0.1], 0.6)


def test_conflict_needs_both_modalities_confident_and_opposite() -> None:
    assert is_conflict(NEG, POS, 0.7) and is_conflict(POS, NEG, 0.7)
    assert not is_conflict(NEG, NEG, 0.7)             # agree
    assert not is_conflict(NEG, NEU, 0.7)             # image neutral
    assert not is_conflict([0.6, 0.2, 0.2], POS, 0.7)  # text not confident enough
    assert not is_conflict(NEG, None, 0.7)             # no image
    m = conflict_mask(np.array([NEG, NEG]), np.array([POS, POS]), np.array([[1, 1], [1, 0]]), 0.7)
    assert m.tolist() == [True, False]


def test_threshold_chosen_so_flagged_posts_err_twice_as_often() -> None:
    # 40 confident posts (0.9), 4 wrong; 20 unsure posts (0.5), 10 wrong.
    probs = np.array([[0.9, 0.05, 0.05]] * 40 + [[0.5, 0.3, 0.2]] * 20)
    y = np.array([0] * 36 + [1] * 4 + [0] * 10 + [1] * 10)
    t = choose_uncertain_threshold(probs, y)
    r = error_rates(probs, y, t)
    assert r["n_flagged"] == 20 and r["error_rate_flagged"] == 0.5 and r["error_rate_rest"] == 0.1
    assert r["ratio"] >= 2
    assert 0.5 < t <= 0.9


def test_flag_stats_reports_both_flags() -> None:
    fused = np.array([NEG, POS, [0.4, 0.35, 0.25]])
    s = flag_stats(fused, np.array([0, 2, 1]), np.array([NEG, NEG, NEU]), np.array([POS, POS, NEU]),
                   np.ones((3, 2)), 0.6, 0.7)
    assert s["uncertain"]["n_flagged"] == 1 and s["uncertain"]["error_rate_flagged"] == 1.0
    assert s["conflict"]["n_flagged"] == 2 and s["conflict"]["accuracy_flagged"] == 1.0


def test_default_uncertain_threshold_is_the_one_chosen_on_val_for_the_packaged_fusion() -> None:
    import json

    from moodstream.config import DEFAULT_UNCERTAIN_BELOW
    from serving.fusion import CONFIG_FILE
    from serving.pack import DEFAULT_PACK_DIR

    flags = json.loads((DEFAULT_PACK_DIR / CONFIG_FILE).read_text(encoding="utf-8"))["flags"]
    assert flags["uncertain_below"] == DEFAULT_UNCERTAIN_BELOW
