"""Export the loaded PyTorch models to ONNX graphs in a cache directory (``moodstream export onnx``, or on first load).

Graphs are exported from the torch modules as loaded (whatever weights the pack put in them), so a retrained head,
a fine-tuned encoder layer or an expression-net ensemble is exported as it runs. A graph's file lives under
``<cache>/<pack version>-x<EXPORTER_VERSION>/`` and its name carries a digest of the module's weights: a new pack,
a new exporter or new weights give a new file; an existing one is reused. Files are written to a temporary name and
renamed, so replicas exporting at the same time never read a half-written graph.

Graphs: ``text-*`` the encoder plus its pooled views, ``backbone-*`` MobileNetV2's pooled features, ``pnet-*``
MTCNN's proposal net (any image size), ``fer-*`` the expression net. All fp32 as shipped (``serving.onnx_models``);
``export_text(quantize=True)`` (dynamic int8) and ``export_cnn_int8`` (static int8, calibrated) are kept for the
trials recorded in ``reports/int8_trials``: a ``-int8`` suffix names those files.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

# Bump when the export or quantisation recipe changes: every cached graph is then exported again.
EXPORTER_VERSION = "1"
OPSET = 17
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "onnx"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The graph cache: ``cache_dir`` when given, else ``.cache/onnx`` beside the checkout."""
    return Path(cache_dir).expanduser() if cache_dir else DEFAULT_CACHE_DIR


def graph_dir(pack_version: str, cache_dir: str | Path | None = None) -> Path:
    """Folder of one pack version's graphs (keyed by the exporter version too)."""
    return cache_root(cache_dir) / f"{pack_version}-x{EXPORTER_VERSION}"


def prune_graphs(keep: Path, cache_dir: str | Path | None = None) -> list[tuple[Path, int]]:
    """Remove every other pack or exporter version's graph folder from the cache (``moodstream export onnx
    --prune``); ``keep`` is the folder in use. Returns (folder, bytes freed) per folder removed. Folders whose name
    is not a graph folder's (``moodstream-pack-*-x*``) are left alone."""
    import shutil

    root = cache_root(cache_dir)
    removed = []
    if not root.is_dir():
        return removed
    for folder in sorted(root.glob("moodstream-pack-*-x*")):
        if not folder.is_dir() or folder.resolve() == Path(keep).resolve():
            continue
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        shutil.rmtree(folder)
        removed.append((folder, size))
    return removed


def module_digest(module: nn.Module, *extra: str) -> str:
    """Short sha256 of a module's state (names, shapes and bytes) and ``extra`` strings (e.g. the pooled views)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()[:12]


def on_cpu(module: nn.Module) -> nn.Module:
    """``module`` itself when its weights are on the CPU, else a CPU copy (the loaded module stays where it is)."""
    try:
        if next(module.parameters()).device.type == "cpu":
            return module
    except StopIteration:
        return module
    return copy.deepcopy(module).cpu()


def _export(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, inputs: Sequence[str],
            outputs: Sequence[str], dynamic: dict[str, dict[int, str]]) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(path), input_names=list(inputs), output_names=list(outputs),
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def cached_graph(folder: Path, stem: str, build: Callable[[Path], None]) -> Path:
    """``folder/stem.onnx``, built by ``build(tmp_path)`` when missing (written to a temporary name, then renamed)."""
    path = folder / f"{stem}.onnx"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{stem}.{os.getpid()}.tmp.onnx"
    try:
        build(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("exported %s", path)
    return path


# ---- the text encoder ------------------------------------------------------------------------------------------
class TextPools(nn.Module):
    """``TextEncoder.pool`` as a module: token ids (+ mask, + type ids) → the pooled views side by side."""

    def __init__(self, encoder, pools: Sequence[str], names: Sequence[str]) -> None:
        super().__init__()
        self.encoder, self.model, self.pools, self.names = encoder, encoder.model, list(pools), list(names)
        self.branch = encoder.branch  # a submodule too, so tracing sees its weights as parameters

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.encoder.pool(dict(zip(self.names, tensors, strict=True)), self.pools)


def export_text(encoder, pools: Sequence[str], folder: Path, quantize: bool = True) -> Path:
    """The encoder's pooled views ``pools`` as one graph (``int8`` dynamic quantisation when ``quantize``)."""
    sample = {k: v.cpu() for k, v in encoder.tokenize(["an example caption to trace #tag", "short"]).items()}
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    cpu_encoder = dataclasses.replace(encoder, model=on_cpu(encoder.model), device=torch.device("cpu"), graph=None,
                                      branch=None if encoder.branch is None else on_cpu(encoder.branch))
    wrapper = TextPools(cpu_encoder, pools, names)
    stem = f"text-{module_digest(encoder.model, encoder.name, *pools)}" + ("-int8" if quantize else "")

    def build(tmp: Path) -> None:
        dyn = {n: {0: "batch", 1: "tokens"} for n in names} | {"views": {0: "batch"}}
        if not quantize:
            _export(wrapper, tuple(sample[n].cpu() for n in names), tmp, names, ["views"], dyn)
            return
        fp32 = tmp.with_name(tmp.name + ".fp32.onnx")
        try:
            _export(wrapper, tuple(sample[n].cpu() for n in names), fp32, names, ["views"], dyn)
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])  # per channel: cosine to fp32 0.99 (per tensor 0.96)
        finally:
            fp32.unlink(missing_ok=True)

    return cached_graph(folder, stem, build)


# ---- the CNNs --------------------------------------------------------------------------------------------------
def export_cnn(module: nn.Module, example: torch.Tensor, folder: Path, name: str, outputs: Sequence[str],
               spatial: bool = False) -> Path:
    """A convolutional net, fp32, dynamic in the batch (and, with ``spatial``, height and width)."""
    axes = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
    dyn = {"x": axes} | {o: {0: "batch"} for o in outputs}
    stem = f"{name}-{module_digest(module)}"
    return cached_graph(folder, stem, lambda tmp: _export(on_cpu(module), (example.cpu(),), tmp, ["x"], outputs, dyn))


def export_cnn_int8(module: nn.Module, example: torch.Tensor, folder: Path, name: str, outputs: Sequence[str],
                    calibration: Callable[[], Iterable[np.ndarray]]) -> Path:
    """A convolutional net with static int8 quantisation (QDQ, per channel) calibrated on ``calibration()``
    batches, dynamic in the batch."""
    stem = f"{name}-{module_digest(module)}-int8"

    def build(tmp: Path) -> None:
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        fp32 = tmp.with_name(tmp.name + ".fp32.onnx")

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter({"x": b.astype(np.float32)} for b in calibration())

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.it, None)

        try:
            _export(on_cpu(module), (example.cpu(),), fp32, ["x"], outputs,
                    {"x": {0: "batch"}} | {o: {0: "batch"} for o in outputs})
            quantize_static(str(fp32), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finally:
            fp32.unlink(missing_ok=True)

    return cached_graph(folder, stem, build)
