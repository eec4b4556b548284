"""A face gate: skip the face detector on images whose backbone features say "no face here" (issue #18).

Face detection (MTCNN: an image pyramid through P-net, then R-net and O-net on the candidates) is the largest part of
an image's CPU, and most posted images hold no face. The backbone's pooled features, computed for every image
anyway, predict well whether the detector will find one. The gate is a logistic regression on those features,
trained on MVSA-Single train images labelled by the detector itself (``modelling.training.face_gate``), with its
threshold chosen on val so that the fused emotion of at most 1 % of posts changes. Below the threshold an image gets
no detector run and counts as faceless (its emotion comes from its sentiment, as for any image without a face).

The gate lives in the pack as ``face_gate.json``; a pack without it, or ``MOODSTREAM_FACE_GATE=false``, detects on
every image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FACE_GATE = "face_gate.json"


@dataclass(frozen=True)
class FaceGate:
    """``p(face | features) = sigmoid(((x - mean) / scale) · weights + bias)``; detect where ``p ≥ threshold``."""

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    meta: dict[str, Any]

    def probability(self, features: np.ndarray) -> np.ndarray:
        """(N, D) raw pooled backbone features → (N,) probability that the detector finds a face."""
        z = ((np.asarray(features, np.float64) - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))

    def keep(self, features: np.ndarray) -> np.ndarray:
        """(N,) booleans: run the face detector on these images."""
        return self.probability(features) >= self.threshold

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "weights": self.weights.tolist(),
                "bias": float(self.bias), "threshold": float(self.threshold), "meta": self.meta}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FaceGate:
        arrays = [np.asarray(d[k], np.float64) for k in ("mean", "scale", "weights")]
        if not (arrays[0].shape == arrays[1].shape == arrays[2].shape) or arrays[0].ndim != 1:
            raise ValueError("face gate: mean, scale and weights must be vectors of one length")
        return cls(*arrays, bias=float(d["bias"]), threshold=float(d["threshold"]), meta=dict(d.get("meta", {})))


def save_face_gate(gate: FaceGate, pack_dir: str | Path) -> Path:
    """Write ``face_gate.json`` into a pack (rounded: the file stays small and diffs stay readable)."""
    d = gate.to_json()
    for k in ("mean", "scale", "weights"):
        d[k] = [round(v, 6) for v in d[k]]
    path = Path(pack_dir) / FACE_GATE
    path.write_text(json.dumps(d, indent=1) + "\n", encoding="utf-8")
    return path


def load_face_gate(pack_dir: str | Path, feature_dim: int) -> FaceGate | None:
    """The pack's gate, or ``None`` when it has none. A gate for other features is an error, not a silent skip."""
    path = Path(pack_dir) / FACE_GATE
    if not path.is_file():
        return None
    gate = FaceGate.from_json(json.loads(path.read_text(encoding="utf-8")))
    if gate.weights.shape[0] != feature_dim:
        raise ValueError(f"{path} expects {gate.weights.shape[0]}-d features, the backbone gives {feature_dim}")
    return gate
