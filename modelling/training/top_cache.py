"""Cache of MiniLM's lower-layer activations for top-layer fine-tuning (issue #17).

One frozen encoder pass per text stores, per dataset split, the hidden states entering the top ``n_top`` layers
(``hidden_states[L - n_top]``) as fp16, ragged (each text's real tokens only, no padding), plus the pooled lower-layer
views the heads read (``mean@4``, ``mean@2``) that the fine-tune cannot change. Files under ``<out>/<dataset>_<split>``:
``hidden.npy`` (T_total, d) fp16, ``offsets.npy`` (N + 1,) int64, ``views.npy`` (N, d·len(views)) float32,
``meta.json``. Finished splits are skipped, so the run can be stopped and resumed.

Run: ``python -m modelling.training.top_cache --data ../shared/data --out runs/top_cache`` (single process).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from modelling.training.encode_texts import split_texts
from serving.encoders import TextEncoder
from serving.top_layers import encoder_layers

ORDER = [("mvsa", "train"), ("mvsa", "val"), ("tweeteval-sentiment", "val"), ("goemotions", "val"),
         ("tweeteval-emotion", "val"), ("tweeteval-emotion", "train"), ("tweeteval-sentiment", "train"),
         ("goemotions", "train"), ("mvsa", "test"), ("tweeteval-emotion", "test"), ("goemotions", "test"),
         ("tweeteval-sentiment", "test")]  # ``train@N``: the seeded subset of N rows (``TextSet.sample(N, 0)``)
FIXED_VIEWS = ["mean@4", "mean@2"]


class SplitCache:
    """A cached split: ragged fp16 hidden states (memory-mapped) and the fixed pooled views."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        self.hidden = np.load(path / "hidden.npy", mmap_mode="r")
        self.offsets = np.load(path / "offsets.npy")
        self.views = np.load(path / "views.npy")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per text."""
        return np.diff(self.offsets)

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded float32 hidden states (B, T, d) and attention mask (B, T) of the texts ``idx``."""
        lens = self.lengths[idx]
        steps = np.arange(int(lens.max()))
        valid = steps[None, :] < lens[:, None]
        tok = np.where(valid, self.offsets[idx][:, None] + steps[None, :], self.offsets[idx][:, None])
        h = np.asarray(self.hidden[tok.ravel()], dtype=np.float32).reshape(*tok.shape, -1)
        h[~valid] = 0.0
        return torch.from_numpy(h), torch.from_numpy(valid.astype(np.int64))


def _pool_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(h.dtype)
    return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1)


@torch.inference_mode()
def cache_split(enc: TextEncoder, texts: list[str], out: Path, n_top: int = 1, batch_size: int = 64,
                limit: int | None = None) -> None:
    """Write one split's cache to ``out`` (see the module docstring)."""
    from tqdm.auto import tqdm

    layer = enc.n_layers - n_top
    if len(encoder_layers(enc.model)) > layer:  # the top layers' own output is not needed: run the lower ones only
        enc.model.encoder.layer = encoder_layers(enc.model)[:layer]
    texts = texts[:limit] if limit else texts
    order = np.argsort([len(t) for t in texts], kind="stable")
    chunks: list[np.ndarray | None] = [None] * len(texts)
    views = np.zeros((len(texts), enc.dim * len(FIXED_VIEWS)), dtype=np.float32)
    for s in tqdm(range(0, len(order), batch_size), desc=out.name, unit="batch"):
        idx = order[s : s + batch_size]
        batch = enc.tokenize([texts[i] for i in idx])
        hs = enc.model(**batch, output_hidden_states=True).hidden_states
        mask = batch["attention_mask"]
        fixed = [_pool_mean(hs[int(v.split("@")[1])], mask) for v in FIXED_VIEWS]
        views[idx] = torch.cat(fixed, -1).float().cpu().numpy()
        h = hs[layer].to(torch.float16).cpu().numpy()
        n_tok = mask.sum(1).cpu().numpy()
        for j, i in enumerate(idx):
            chunks[i] = h[j, : int(n_tok[j])]
    lens = np.array([len(c) for c in chunks], dtype=np.int64)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "hidden.npy", np.concatenate(chunks))
    np.save(out / "offsets.npy", np.concatenate([[0], np.cumsum(lens)]))
    np.save(out / "views.npy", views)
    meta = {"n": len(texts), "limit": limit, "layer": layer, "n_layers": enc.n_layers, "views": FIXED_VIEWS,
            "encoder": enc.name, "max_tokens": enc.max_tokens}
    (out / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--out", type=Path, default=Path("runs/top_cache"))
    p.add_argument("--n-top", type=int, default=1, help="layers to fine-tune: cache the input of the top N")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (on a shared 2-core machine 1 ran 4× faster than 2: no spin-waiting)")
    p.add_argument("--only", nargs="+", metavar="DATASET:SPLIT")
    p.add_argument("--limit", type=int, help="only the first N texts of each split (smoke tests)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=64)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    enc = TextEncoder.load(None, max_tokens=128, device=a.device)
    enc.model.float()
    for dataset, split in [tuple(x.split(":")) for x in a.only] if a.only else ORDER:
        out = a.out / f"{dataset}_{split}"
        if (out / "meta.json").is_file():
            continue
        t0 = time.time()
        texts = split_texts(a.data, dataset, split)
        cache_split(enc, texts, out, a.n_top, a.batch, a.limit)
        n = min(len(texts), a.limit or len(texts))
        print(f"{dataset} {split}: {n} texts, {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
