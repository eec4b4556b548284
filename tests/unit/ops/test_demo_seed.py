"""The synthetic demo behind the README's screenshots: flags consistent with the probabilities, deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ops import demo_seed


def test_demo_records_carry_consistent_flags() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    recs = demo_seed.demo_records(minutes=10, rate=2, seed=3, now=now)
    assert len(recs) == 1200
    assert all(now - timedelta(minutes=10) <= r.post.created_at < now for r in recs)
    for r in recs:
        pr = r.prediction
        assert pr.sentiment.confidence == pytest.approx(max(pr.sentiment.probs.values()))
        assert pr.sentiment.probs[pr.sentiment.label] == pr.sentiment.confidence
        assert pr.uncertain == (pr.sentiment.confidence < demo_seed.UNCERTAIN_BELOW)
        if pr.conflict:
            text, image = pr.modalities.text, pr.modalities.image
            assert text is not None and image is not None
            t = max(text.sentiment, key=text.sentiment.__getitem__)
            i = max(image.sentiment, key=image.sentiment.__getitem__)
            assert {t, i} == {"positive", "negative"}
            assert min(text.sentiment[t], image.sentiment[i]) >= demo_seed.CONFLICT_MIN
    uncertain = sum(r.prediction.uncertain for r in recs) / len(recs)
    conflict = sum(r.prediction.conflict for r in recs) / len(recs)
    assert 0.03 < uncertain < 0.4 and 0.01 < conflict < 0.2  # something to show, not everything
    again = demo_seed.demo_records(minutes=10, rate=2, seed=3, now=now)
    assert [r.prediction for r in again] == [r.prediction for r in recs]


def test_screenshots_rejects_unknown_pages(capsys) -> None:
    from ops import screenshots

    with pytest.raises(SystemExit):
        screenshots.main(["--db", "sqlite:///nowhere.db", "--pages", "trends,nope"])
    assert "unknown pages ['nope']" in capsys.readouterr().err
