"""Small torch classification heads (linear or one-hidden-layer MLP), saved as safetensors with JSON metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn


class Head(nn.Module):
    """``Linear(in_dim, out_dim)``, or ``Linear → GELU → Dropout → Linear`` when ``hidden`` is given.

    Optional ``bias_adjust`` (out_dim,) is added to the logits at inference: a per-class offset tuned on
    validation data (e.g. for macro-F1); it is a buffer, saved with the weights. ``temperature`` (a plain attribute,
    1.0 unless the pack's meta sets it: ``serving.calibration``) divides the logits in ``predict_proba``.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None = None, dropout: float = 0.1) -> None:
        super().__init__()
        self.in_dim, self.out_dim, self.hidden, self.dropout = in_dim, out_dim, hidden, dropout
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
            )
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
        self.register_buffer("bias_adjust", torch.zeros(out_dim))
        self.temperature = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, out_dim); ``bias_adjust`` applies in eval mode only."""
        logits = self.net(x)
        return logits if self.training else logits + self.bias_adjust

    @torch.inference_mode()
    def predict_proba(self, x: np.ndarray | torch.Tensor, extra_logits: np.ndarray | None = None) -> np.ndarray:
        """Softmax probabilities (N, out_dim) as float32 numpy, in eval mode. ``extra_logits`` (N, out_dim), e.g. a
        blended second model's (``serving.ngram``), are added to the logits before the temperature."""
        was = self.training
        self.eval()
        t = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x
        logits = self(t.to(next(self.parameters()).device).float())
        if extra_logits is not None:
            logits = logits + torch.as_tensor(np.asarray(extra_logits, dtype=np.float32)).to(logits.device)
        logits = logits / float(self.temperature)
        p = torch.softmax(logits, dim=-1).cpu().numpy()
        self.train(was)
        return p

    def config(self) -> dict[str, Any]:
        """Constructor arguments (what ``load_head`` needs to rebuild it)."""
        return {"in_dim": self.in_dim, "out_dim": self.out_dim, "hidden": self.hidden, "dropout": self.dropout}


def save_head(path: str | Path, head: Head, meta: dict[str, Any] | None = None) -> Path:
    """Write ``head`` to ``path`` (.safetensors); its config and ``meta`` go in the file's JSON metadata.

    Both go under one metadata key (``head``): safetensors writes several keys in no fixed order, and one key
    keeps the file byte-identical across runs of the same seeded training (the pack version hashes the bytes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    header = {"head": json.dumps({"config": head.config(), "meta": meta or {}})}
    save_file(tensors, str(path), metadata=header)
    return path


def read_head_meta(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, meta) stored in a head file, without loading its tensors (also reads the earlier layout with
    separate ``config`` and ``meta`` keys)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        md = f.metadata() or {}
    if "head" in md:
        both = json.loads(md["head"])
        return dict(both.get("config", {})), dict(both.get("meta", {}))
    return json.loads(md.get("config", "{}")), json.loads(md.get("meta", "{}"))


def load_head(path: str | Path, device: str | torch.device = "cpu") -> tuple[Head, dict[str, Any]]:
    """(head in eval mode, meta) from a file written by ``save_head``."""
    config, meta = read_head_meta(path)
    head = Head(**config)
    state = load_file(str(path))
    state.setdefault("bias_adjust", torch.zeros(head.out_dim))
    head.load_state_dict(state, strict=True)
    return head.to(device).eval(), meta
