"""A compact VGG-style expression network trained by our own code on FER-2013 (``modelling.training.fer_cnn``).

Input: (N, 1, S, S) grayscale faces scaled like the mini-Xception's, ``(gray / 255 - 0.5) * 2`` (S = ``size``, 48 by
default: FER-2013's own resolution). Four stages of two 3×3 conv → BN → ReLU (widths w, 2w, 4w, 8w), 2×2 max-pool
between stages, global average pool, dropout, linear to the 7 FER-2013 classes (the project's ``EMOTIONS`` order).
Weights are stored as safetensors with the constructor config in the file's metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn


def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FerCNN(nn.Module):
    """VGG-style CNN: 4 stages × 2 convs (w, 2w, 4w, 8w channels), GAP, dropout, linear."""

    def __init__(self, width: int = 32, size: int = 48, num_classes: int = 7, dropout: float = 0.3) -> None:
        super().__init__()
        self.width, self.size, self.num_classes, self.dropout = width, size, num_classes, dropout
        layers: list[nn.Module] = []
        cin = 1
        for stage in range(4):
            cout = width * 2 ** stage
            layers += _conv_bn(cin, cout) + _conv_bn(cout, cout)
            if stage < 3:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) normalised faces → (N, classes) logits."""
        return self.head(self.features(x).mean(dim=(2, 3)))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (what ``load_fer_cnn`` needs)."""
        return {"width": self.width, "size": self.size, "num_classes": self.num_classes, "dropout": self.dropout}


def save_fer_cnn(model: FerCNN, path: str | Path, meta: dict[str, Any] | None = None, half: bool = True) -> None:
    """Write the weights (fp16 when ``half``: the pack's size budget) with config + ``meta`` in the metadata."""
    from safetensors.torch import save_file

    sd = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(path), metadata={"fer_cnn": json.dumps({"config": model.config(), "meta": meta or {}},
                                                            sort_keys=True)})


def load_fer_cnn(path: str | Path) -> FerCNN:
    """Read weights written by ``save_fer_cnn`` (as float32, eval mode)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        info = json.loads((f.metadata() or {})["fer_cnn"])
    model = FerCNN(**info["config"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()},
                          strict=True)
    return model.eval()
