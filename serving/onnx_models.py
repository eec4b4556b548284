"""Put the loaded text and vision models on ONNX Runtime: export (or reuse) their graphs, swap in sessions.

``text_graph(model, ...)`` and ``vision_graphs(model, ...)`` export from the torch modules the models hold, so
whatever the pack loaded into them is what runs. The pre- and post-processing around the nets stays shared.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from serving.onnx_export import export_cnn, export_cnn_int8, export_text, graph_dir
from serving.onnx_runtime import OrtModule

# Quantisation per net, chosen with `moodstream eval --runtime both` (docs/PERFORMANCE.md): int8 where every eval
# figure stayed within 0.5 points of PyTorch, fp32 elsewhere. Dynamic int8 MiniLM (per channel) was 3× faster but
# moved GoEmotions accuracy by -0.66 points and MVSA fused by +1.3: the text graph is fp32. Static int8 MobileNetV2
# (QDQ, per channel, calibrated on the sample photos) kept MVSA image accuracy but moved the fused strategies, which
# read the 1280-d embedding, by up to 4.7 macro-F1 points: the backbone graph is fp32 too.
TEXT_INT8 = False
BACKBONE_INT8 = False


def pack_version(pack_dir: str | Path | None) -> str:
    """The pack's version (``serving.pack``), or ``unversioned`` for a directory without a manifest (the graph
    names still carry the weights' digest)."""
    from serving.pack import PackError, load_pack

    try:
        return load_pack(pack_dir).version
    except PackError:
        return "unversioned"


@dataclass
class TextGraph:
    """The encoder's pooled views ``pools`` as one ONNX session fed the tokenizer outputs ``names``."""

    module: OrtModule
    pools: list[str]
    names: list[str]

    def views(self, batch: dict[str, torch.Tensor], pools: list[str], dim: int) -> np.ndarray:
        """The requested pooled views (a subset of ``self.pools``, any order) of a tokenised batch."""
        out = self.module.run(*(batch[n].cpu().numpy() for n in self.names))[0]
        cols = [out[:, self.pools.index(p) * dim:(self.pools.index(p) + 1) * dim] for p in pools]
        return np.ascontiguousarray(np.hstack(cols), dtype=np.float32)


def text_graph(encoder: Any, pools: list[str], pack_dir: str | Path | None, cache_dir: str | Path | None = None,
               quantize: bool = TEXT_INT8) -> TextGraph:
    """Export (or reuse) the encoder's graph for ``pools`` and open a session on it."""
    folder = graph_dir(pack_version(pack_dir), cache_dir)
    path = export_text(encoder, pools, folder, quantize=quantize)
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoder.tokenize(["x"])]
    return TextGraph(OrtModule(path, device=encoder.device), list(pools), names)


def sample_photos() -> list[Path]:
    """Colour sample photographs shipped with scikit-image (the MobileNetV2 calibration set)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    names = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg",
             "motorcycle_left.png", "color.png", "camera.png", "clock_motion.png", "brick.png", "grass.png",
             "gravel.png", "moon.png", "page.png", "text.png", "horse.png", "coins.png")
    return [data / n for n in names if (data / n).is_file()]


def calibration_batches(size: int = 224, batch: int = 8) -> Iterator[np.ndarray]:
    """Normalised (B, 3, size, size) batches: each sample photo whole, mirrored and as four corner crops."""
    from PIL import Image, ImageOps

    from serving.backbones import preprocess

    images: list[Image.Image] = []
    for path in sample_photos():
        im = Image.open(path).convert("RGB")
        w, h = im.size
        crops = [im, ImageOps.mirror(im)] + [im.crop(b) for b in ((0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2),
                                                                  (0, h // 2, w // 2, h), (w // 2, h // 2, w, h))]
        images += crops
    for i in range(0, len(images), batch):
        yield preprocess(images[i:i + batch], size).numpy()


def fer_graph(fer: torch.nn.Module, pack_dir: str | Path | None, cache_dir: str | Path | None = None,
              device: str | torch.device = "cpu") -> OrtModule:
    """The expression net (as loaded: a single net or an ensemble module) on ONNX Runtime, fp32."""
    from serving.fer_net import FER_INPUT

    folder = graph_dir(pack_version(pack_dir), cache_dir)
    return OrtModule(export_cnn(fer, torch.zeros(2, 1, FER_INPUT, FER_INPUT), folder, "fer", ["logits"]),
                     device=device)


def vision_graphs(model: Any, pack_dir: str | Path | None, cache_dir: str | Path | None = None,
                  backbone_int8: bool = BACKBONE_INT8) -> None:
    """Swap ONNX sessions into a loaded ``VisionModel`` where they pay: backbone, P-net and the expression net."""
    from serving.backbones import IMAGE_SIZE, Embedder
    folder = graph_dir(pack_version(pack_dir), cache_dir)
    dev = model.device
    embedder = Embedder(model.backbone).eval()
    example = torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    if backbone_int8:
        path = export_cnn_int8(embedder, example, folder, "backbone", ["features"], calibration_batches)
    else:
        path = export_cnn(embedder, example, folder, "backbone", ["features"])
    model.embed_fn = OrtModule(path, device=dev)
    model.fer_fn = fer_graph(model.fer, pack_dir, cache_dir, device=dev)
    det = model.detector
    det.pnet_fn = OrtModule(export_cnn(det.pnet, torch.zeros(1, 3, 24, 32), folder, "pnet", ["reg", "prob"],
                                       spatial=True), device=dev)
    # R-net and O-net stay on the frozen TorchScript graphs: on their small crop batches ORT was slower (bench
    # models, per-stage timers: R-net 4.5 vs 3.3 ms per image, O-net 3.0 vs 2.4).
    model.runtime = "onnx"
