"""Vision training smoke run on a tiny slice: writes loadable heads and a meta file into a fresh pack dir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from modelling.training.vision import evaluate_fer, train_vision
from serving.heads import load_head
from serving.vision_model import FER_WEIGHTS, META, SENTIMENT_HEAD, VisionModel

REPORT_KEYS = {"dataset", "split", "n", "accuracy", "macro_f1", "weighted_f1", "per_class"}


def test_train_vision_smoke(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelling.training.vision as tv

    monkeypatch.setattr(tv, "CACHE_DIR", tmp_path / "cache")
    report = tmp_path / "report.json"
    meta = train_vision(data_dir, tmp_path / "pack", seed=0, limit=12, progress=False, report=report)
    pack = tmp_path / "pack"
    for name in (SENTIMENT_HEAD, FER_WEIGHTS, META):
        assert (pack / name).is_file()
    head, head_meta = load_head(pack / SENTIMENT_HEAD)
    assert (head.in_dim, head.out_dim) == (1280, 3) and head_meta["seed"] == 0
    assert json.loads((pack / META).read_text())["seed"] == 0 and meta["limit"] == 12
    metrics = json.loads(report.read_text())
    assert set(metrics["fer2013_test"]) >= REPORT_KEYS and metrics["fer2013_test"]["n"] == 12
    assert set(metrics["mvsa_image_test"]["per_class"]) == {"negative", "neutral", "positive"}
    assert any((tmp_path / "cache").glob("mvsa-train-*.npy"))

    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buf, "JPEG")
    (r,) = VisionModel.load(pack_dir=pack).predict([buf.getvalue()])
    assert r.faces == 1 and np.isclose(r.sentiment.sum(), 1, atol=1e-5)


def test_train_vision_is_seeded(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelling.training.vision as tv

    monkeypatch.setattr(tv, "CACHE_DIR", tmp_path / "cache")
    x, y = tv.mvsa_features(data_dir, "train", limit=12, progress=False)
    xv, yv = tv.mvsa_features(data_dir, "val", limit=12, progress=False)
    h1, f1, _ = tv.fit_sentiment_head(x, y, xv, yv, seed=3, hidden=None, weight_decay=1e-2, dropout=0.1, epochs=3)
    h2, f2, _ = tv.fit_sentiment_head(x, y, xv, yv, seed=3, hidden=None, weight_decay=1e-2, dropout=0.1, epochs=3)
    assert f1 == f2 and np.allclose(h1.predict_proba(x), h2.predict_proba(x))


def test_evaluate_fer_report_format(data_dir: Path) -> None:
    m = evaluate_fer(data_dir, "test", limit=50)
    assert set(m) >= REPORT_KEYS and m["dataset"] == "fer2013" and m["split"] == "test" and m["n"] == 50
    assert set(m["per_class"]["joy"]) == {"precision", "recall", "f1", "support"}
