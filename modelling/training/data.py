"""Readers for the datasets in ``../shared/data`` (layout and formats documented in its README.md).

Every reader takes ``split`` (``train``/``val``/``test``) and ``data_dir`` (the folder holding ``tweeteval/``,
``goemotions/``, ``mvsa_single/``, ``fer2013/``, or that dataset's own folder) and returns labels already
mapped onto the project label sets (``labels.SENTIMENTS`` / ``labels.EMOTIONS`` indices).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moodstream import labels

SPLITS = ("train", "val", "test")


@dataclass
class TextSet:
    """Texts and single-label targets; ``multi`` holds every label of multi-label rows (GoEmotions)."""

    texts: list[str]
    labels: np.ndarray
    names: tuple[str, ...]
    multi: list[tuple[int, ...]] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def sample(self, n: int | None, seed: int) -> TextSet:
        """A seeded random subset of ``n`` rows, in original order (all rows when ``n`` is None or ≥ len)."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        multi = [self.multi[i] for i in idx] if self.multi is not None else None
        return TextSet([self.texts[i] for i in idx], self.labels[idx], self.names, multi)

    def head(self, n: int | None) -> TextSet:
        """The first ``n`` rows (all when ``n`` is None)."""
        if n is None:
            return self
        multi = self.multi[:n] if self.multi is not None else None
        return TextSet(self.texts[:n], self.labels[:n], self.names, multi)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _folder(data_dir: str | Path, *parts: str) -> Path:
    """``data_dir/parts`` when it exists, else ``data_dir`` itself (a dataset's own folder was given)."""
    base = Path(data_dir)
    sub = base.joinpath(*parts)
    return sub if sub.is_dir() else base


def read_tsv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a header-first, TAB-separated, unquoted UTF-8 file."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    if not lines:
        return []
    header = lines[0].split("\t")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise ValueError(f"{path}:{n}: {len(cells)} fields, header has {len(header)}")
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def read_tweeteval_sentiment(split: str, data_dir: str | Path) -> TextSet:
    """TweetEval sentiment → labels over ``SENTIMENTS``."""
    _check_split(split)
    rows = read_tsv(_folder(data_dir, "tweeteval", "sentiment") / f"{split}.tsv")
    y = [labels.to_sentiment_index("tweeteval-sentiment", int(r["label"])) for r in rows]
    return TextSet([r["text"] for r in rows], np.asarray(y, dtype=np.int64), labels.SENTIMENTS)


def read_tweeteval_emotion(split: str, data_dir: str | Path) -> TextSet:
    """TweetEval emotion → labels over ``EMOTIONS`` (optimism maps to joy, as in ``labels.TWEETEVAL_EMOTION``).

    ``multi`` keeps the dataset's own 4-way id (0 anger, 1 joy, 2 optimism, 3 sadness) as a 1-tuple.
    """
    _check_split(split)
    rows = read_tsv(_folder(data_dir, "tweeteval", "emotion") / f"{split}.tsv")
    raw = [int(r["label"]) for r in rows]
    y = [labels.to_emotion_index("tweeteval-emotion", v) for v in raw]
    return TextSet([r["text"] for r in rows], np.asarray(y, dtype=np.int64), labels.EMOTIONS, [(v,) for v in raw])


def read_goemotions(split: str, data_dir: str | Path) -> TextSet:
    """GoEmotions, Ekman grouping → labels over ``EMOTIONS``.

    Single-label rule for multi-label rows: the first listed Ekman label that is not ``neutral`` (a row
    tagged e.g. ``joy,neutral`` is an emotion), else ``neutral``. ``multi`` keeps every label (as
    ``EMOTIONS`` indices) for multi-label use.
    """
    _check_split(split)
    rows = read_tsv(_folder(data_dir, "goemotions") / f"{split}.tsv")
    neutral = labels.EMOTION_INDEX["neutral"]
    texts, y, multi = [], [], []
    for r in rows:
        ids = tuple(labels.to_emotion_index("goemotions", int(v)) for v in r["ekman_labels"].split(",") if v)
        if not ids:
            continue
        emotional = [i for i in ids if i != neutral]
        texts.append(r["text"])
        y.append(emotional[0] if emotional else neutral)
        multi.append(ids)
    return TextSet(texts, np.asarray(y, dtype=np.int64), labels.EMOTIONS, multi)


TEXT_READERS = {
    "tweeteval-sentiment": read_tweeteval_sentiment,
    "tweeteval-emotion": read_tweeteval_emotion,
    "goemotions": read_goemotions,
}


def read_text_dataset(dataset: str, split: str, data_dir: str | Path) -> TextSet:
    """Dispatch on a dataset name of ``TEXT_READERS``."""
    try:
        reader = TEXT_READERS[dataset]
    except KeyError:
        raise ValueError(f"unknown text dataset {dataset!r}; one of {sorted(TEXT_READERS)}") from None
    return reader(split, data_dir)


@dataclass
class MvsaSplit:
    """MVSA-Single rows (``id``, ``text``, ``text_label``, ``image_label``, ``label`` as ``SENTIMENTS`` strings)
    and lazy access to the JPEG bytes of each id through ``images.zip``."""

    rows: list[dict[str, str]]
    zip_path: Path
    _zip: zipfile.ZipFile | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i: int) -> dict[str, str]:
        return self.rows[i]

    def image_bytes(self, item_id: str | int) -> bytes:
        """The JPEG bytes of one id (member ``{id}.jpg`` of ``images.zip``)."""
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.zip_path)
        return self._zip.read(f"{item_id}.jpg")

    def labels(self, column: str = "label") -> np.ndarray:
        """Indices into ``SENTIMENTS`` of ``label`` / ``text_label`` / ``image_label``."""
        return np.asarray([labels.to_sentiment_index("mvsa", r[column]) for r in self.rows], dtype=np.int64)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None


def read_mvsa(split: str, data_dir: str | Path) -> MvsaSplit:
    """MVSA-Single split: rows with id, text, text_label, image_label, label, and ``image_bytes(id)``."""
    _check_split(split)
    folder = _folder(data_dir, "mvsa_single")
    keep = ("id", "text", "text_label", "image_label", "label")
    rows = [{k: r[k] for k in keep} for r in read_tsv(folder / f"{split}.tsv")]
    return MvsaSplit(rows, folder / "images.zip")


def read_fer(split: str, data_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """FER-2013 split: (images uint8 N×48×48, labels int64 over ``EMOTIONS``)."""
    _check_split(split)
    folder = _folder(data_dir, "fer2013")
    with np.load(folder / "fer2013_48x48.npz", allow_pickle=False) as z:
        mask = z["split"] == split
        images = z["images"][mask]
        raw = z["labels"][mask].astype(np.int64)
    mapping = np.asarray([labels.to_emotion_index("fer2013", i) for i in range(len(labels.FER2013))])
    return images, mapping[raw]
