"""Dataset readers on the real ../shared/data files: sizes and label mappings from its README."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelling.training import data
from moodstream import labels


def test_tweeteval_sentiment(data_dir: Path) -> None:
    ds = data.read_tweeteval_sentiment("val", data_dir)
    assert len(ds) == 2000 and ds.names == labels.SENTIMENTS
    assert np.bincount(ds.labels, minlength=3).tolist() == [312, 869, 819]
    # a dataset's own folder works as data_dir too
    assert len(data.read_tweeteval_sentiment("val", data_dir / "tweeteval" / "sentiment")) == 2000


def test_tweeteval_emotion_maps_optimism_to_joy(data_dir: Path) -> None:
    ds = data.read_tweeteval_emotion("val", data_dir)
    counts = np.bincount(ds.labels, minlength=7)
    e = labels.EMOTION_INDEX
    assert counts[e["anger"]] == 160 and counts[e["sadness"]] == 89
    assert counts[e["joy"]] == 97 + 28  # joy + optimism
    assert ds.multi is not None and sum(m == (2,) for m in ds.multi) == 28


def test_goemotions_single_label_rule(data_dir: Path) -> None:
    ds = data.read_goemotions("val", data_dir)
    assert len(ds) == 5426 and ds.multi is not None
    neutral = labels.EMOTION_INDEX["neutral"]
    for y, ids in zip(ds.labels, ds.multi, strict=True):
        emotional = [i for i in ids if i != neutral]
        assert y == (emotional[0] if emotional else neutral)
    # every Ekman label counted once per row gives the README's val counts
    flat = np.bincount([i for ids in ds.multi for i in ids], minlength=7)
    assert flat[labels.EMOTION_INDEX["joy"]] == 2219 and flat[neutral] == 1766


def test_mvsa_rows_and_images(data_dir: Path) -> None:
    ds = data.read_mvsa("val", data_dir)
    assert len(ds) == 330
    row = ds[0]
    assert set(row) == {"id", "text", "text_label", "image_label", "label"}
    assert ds.image_bytes(row["id"])[:2] == b"\xff\xd8"  # JPEG
    assert np.bincount(ds.labels("label"), minlength=3).tolist() == [95, 40, 195]
    assert np.bincount(ds.labels("image_label"), minlength=3).tolist() == [75, 79, 176]
    ds.close()


def test_fer(data_dir: Path) -> None:
    images, y = data.read_fer("test", data_dir)
    assert images.shape == (3589, 48, 48) and images.dtype == np.uint8
    counts = np.bincount(y, minlength=7)
    assert counts[labels.EMOTION_INDEX["joy"]] == 879 and counts[labels.EMOTION_INDEX["disgust"]] == 55


def test_bad_split(data_dir: Path) -> None:
    with pytest.raises(ValueError):
        data.read_goemotions("dev", data_dir)
