"""The demo-feed check: its figures on hand-made rows, and one real run of the in-process pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import demo_check
from ops.producers.demo import CAPTIONS, LAUNCH


def _row(written: str, text: str, fused: str, *, emo: str = "joy", flagged: bool = False) -> dict:
    return {"text": f"{written}/{text}/{fused}", "photo": "coffee", "written_sentiment": written,
            "written_emotion": "joy", "text_sentiment": text, "text_emotion": "joy", "fused_sentiment": fused,
            "fused_emotion": emo, "confidence": 0.6, "uncertain": flagged, "conflict": False}


def test_score_counts_only_clear_captions_overturned_to_the_other_polarity() -> None:
    rows = [_row("negative", "negative", "positive", flagged=True),  # overturned, flagged
            _row("positive", "positive", "negative"),  # overturned, not flagged
            _row("negative", "neutral", "positive"),  # the text model misread it: not the image's doing
            _row("negative", "negative", "neutral"),  # softened, not overturned
            _row("neutral", "neutral", "positive", emo="anger"),  # a neutral caption cannot be overturned
            _row("positive", "positive", "positive")]
    s = demo_check.score(rows)
    assert s["n"] == 6 and s["against_caption"] == 2 and s["against_caption_flagged"] == 1
    assert s["fused_sentiment_agrees"] == pytest.approx(1 / 6, abs=1e-4)
    assert s["text_sentiment_agrees"] == pytest.approx(5 / 6, abs=1e-4)
    assert s["fused_emotion_agrees"] == pytest.approx(5 / 6, abs=1e-4)
    assert [p["fused_sentiment"] for p in s["against_caption_posts"]] == ["positive", "negative"]
    assert demo_check.score([])["n"] == 0


def test_every_demo_caption_once_with_its_photo() -> None:
    caps = demo_check.demo_captions()
    assert len(caps) == sum(map(len, CAPTIONS.values())) + sum(map(len, LAUNCH.values()))
    assert len({c.text for _, c in caps}) == len(caps)


def test_a_real_run_scores_every_caption_and_writes_its_report(tmp_path: Path) -> None:
    from moodstream.config import Settings
    from serving.pipeline import load_pipeline

    result = demo_check.run(load_pipeline(Settings(runtime="torch")))
    assert result["n"] == len(demo_check.demo_captions()) == len(result["rows"])
    assert result["model_version"].startswith("moodstream-pack-")
    assert result["text_sentiment_agrees"] >= 0.8  # the text model reads the captions we wrote for it
    assert result["against_caption"] == len(result["against_caption_posts"]) >= result["against_caption_flagged"]
    paths = demo_check.write(result, tmp_path / "demo.json", tmp_path)
    page = (tmp_path / "demo.md").read_text(encoding="utf-8")
    assert paths == [tmp_path / "demo.json", tmp_path / "demo.md", tmp_path / "EVAL.md"]
    assert "| fused sentiment agrees |" in page
    assert all(r["text"] in page for r in result["rows"])
    summary = (tmp_path / "EVAL.md").read_text(encoding="utf-8")  # the demo's row joins the eval summary
    assert f"| {result['fused_sentiment_agrees']:.3f} | {result['text_sentiment_agrees']:.3f} |" in summary
    assert f"{result['against_caption']} ({result['against_caption_flagged']})" in summary
    assert demo_check.write(result, tmp_path / "elsewhere.json", tmp_path)[-1] == tmp_path / "demo.md"
