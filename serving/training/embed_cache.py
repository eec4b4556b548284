"""On-disk cache of frozen-encoder embeddings of each dataset split (computed once, reused by training and eval)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from serving.encoders import TextEncoder

CACHE_DIR = Path(os.environ.get("MOODSTREAM_CACHE", Path(__file__).resolve().parents[2] / ".cache")) / "text_emb"


def _key(encoder: TextEncoder, texts: list[str]) -> str:
    h = hashlib.sha256()
    h.update(f"{encoder.name}|{encoder.max_tokens}|{len(texts)}".encode())
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def cached_embed(encoder: TextEncoder, texts: list[str], tag: str, progress: bool = True) -> np.ndarray:
    """Embeddings of ``texts``, read from ``CACHE_DIR`` when the same encoder embedded the same texts before
    (``tag`` only names a new file)."""
    key = _key(encoder, texts)
    found = sorted(CACHE_DIR.glob(f"*-{key}.npy"))
    if found:
        return np.load(found[0])
    path = CACHE_DIR / f"{tag}-{key}.npy"
    emb = encoder.embed(texts, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, emb)
    tmp.replace(path)
    return emb
