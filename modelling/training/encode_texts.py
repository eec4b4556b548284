"""Encode every text split the text heads train and evaluate on, once, with a wide set of pooled views.

One MiniLM pass per text gives all of ``VIEWS`` (every layer mean, last-layer max and CLS); they are stored as
``views-`` files (``modelling.training.embed_cache.encode_views``) from which ``cached_embed`` slices whatever view
set a head, the calibration, the fusion training or the evaluation asks for. Smallest and most needed splits first,
so the run can be stopped and resumed (finished splits are skipped).

Run: ``python -m modelling.training.encode_texts --data ../shared/data`` (~30 min on a shared 2-core CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from modelling.training.data import read_mvsa, read_text_dataset
from modelling.training.embed_cache import encode_views
from serving.encoders import TextEncoder

VIEWS = ["mean", "mean@4", "mean@2", "max", "mean@0", "mean@1", "mean@3", "mean@5", "cls"]
ORDER = [("mvsa", "train"), ("mvsa", "val"), ("mvsa", "test"), ("tweeteval-sentiment", "val"),
         ("goemotions", "val"), ("tweeteval-emotion", "val"), ("tweeteval-emotion", "train"),
         ("tweeteval-sentiment", "train"), ("goemotions", "train"), ("tweeteval-sentiment", "test"),
         ("goemotions", "test"), ("tweeteval-emotion", "test")]


def split_texts(data_dir: str | Path, dataset: str, split: str) -> list[str]:
    """The texts of one split, in the order every reader of that split uses; ``train@N``: the seeded random subset of
    N rows that ``TextSet.sample(N, 0)`` takes (e.g. ``text_tweets --tweeteval-subset``)."""
    split, _, n = split.partition("@")
    if dataset == "mvsa":
        d = read_mvsa(split, data_dir)
        texts = [r["text"] for r in d.rows]
        d.close()
        return texts
    return read_text_dataset(dataset, split, data_dir).sample(int(n) if n else None, 0).texts


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="+", metavar="DATASET:SPLIT",
                   help="encode just these splits (e.g. two 1-thread processes over disjoint lists)")
    a = p.parse_args(argv)
    order = [tuple(x.split(":")) for x in a.only] if a.only else ORDER
    torch.set_num_threads(a.threads)
    enc = TextEncoder.load(None, max_tokens=128)
    for dataset, split in order:
        t0 = time.time()
        texts = split_texts(a.data, dataset, split)
        path = encode_views(enc, texts, VIEWS, progress=True)
        print(f"{dataset} {split}: {len(texts)} texts, {time.time() - t0:.0f} s → {path.name}", flush=True)


if __name__ == "__main__":
    main()
