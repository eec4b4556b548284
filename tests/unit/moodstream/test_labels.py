"""Every dataset's labels map onto the project's label sets, as the dataset files declare them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moodstream import labels


def _mapping_file(path: Path) -> dict[int, str]:
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.strip()]
    return {int(i): name.strip() for i, name in rows}


def test_label_sets() -> None:
    assert labels.SENTIMENTS == ("negative", "neutral", "positive")
    assert labels.EMOTIONS == ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")


def test_tweeteval_sentiment_matches_its_mapping_file(data_dir: Path) -> None:
    declared = _mapping_file(data_dir / "tweeteval/sentiment/mapping.txt")
    assert {i: labels.TWEETEVAL_SENTIMENT[i] for i in declared} == declared


def test_tweeteval_emotion_maps_each_declared_class(data_dir: Path) -> None:
    declared = _mapping_file(data_dir / "tweeteval/emotion/mapping.txt")
    assert declared == {0: "anger", 1: "joy", 2: "optimism", 3: "sadness"}
    for i, name in declared.items():
        mapped = labels.TWEETEVAL_EMOTION[i]
        assert mapped in labels.EMOTIONS
        assert mapped == (name if name in labels.EMOTIONS else "joy")


def test_goemotions_ekman_matches_its_label_file(data_dir: Path) -> None:
    declared = _mapping_file(data_dir / "goemotions/ekman_labels.txt")
    assert declared == labels.GOEMOTIONS_EKMAN
    assert set(declared.values()) == set(labels.EMOTIONS)


def test_fer2013_class_names_map(data_dir: Path) -> None:
    names = [str(n) for n in np.load(data_dir / "fer2013/fer2013_48x48.npz")["class_names"]]
    assert [labels.FER2013_NAMES[n] for n in names] == [labels.FER2013[i] for i in range(7)]
    assert set(labels.FER2013.values()) == set(labels.EMOTIONS)


def test_mvsa_labels_are_project_sentiments(data_dir: Path) -> None:
    header, *rows = (data_dir / "mvsa_single/val.tsv").read_text().splitlines()
    cols = header.split("\t")
    seen = {r.split("\t")[cols.index(c)] for r in rows for c in ("text_label", "image_label", "label")}
    assert seen == set(labels.SENTIMENTS)
    assert all(labels.to_sentiment_index("mvsa", s) == labels.SENTIMENTS.index(s) for s in seen)


@pytest.mark.parametrize(("dataset", "label", "expected"), [
    ("fer2013", 3, "joy"), ("fer2013", 0, "anger"), ("goemotions", 4, "neutral"), ("tweeteval-emotion", 2, "joy"),
])
def test_to_emotion_index(dataset: str, label: int, expected: str) -> None:
    assert labels.EMOTIONS[labels.to_emotion_index(dataset, label)] == expected
