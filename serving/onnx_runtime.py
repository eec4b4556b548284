"""ONNX Runtime sessions that stand in for the torch modules: torch tensors in, torch tensors out.

``OrtModule(path)`` is called like the module it was exported from, so the surrounding code (pre- and
post-processing, batching, MTCNN's box maths) stays one code path for both runtimes. ``RUNTIMES`` are the values of
the ``MOODSTREAM_RUNTIME`` setting.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

RUNTIMES = ("onnx", "torch")
log = logging.getLogger(__name__)


def check_runtime(runtime: str) -> str:
    """``runtime`` when it is one of ``RUNTIMES``, else a ``ValueError``."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    return runtime


def effective_runtime(runtime: str, device: str | torch.device = "cpu") -> str:
    """``runtime``, except ``onnx`` on a CUDA device when the installed ONNX Runtime has no CUDA provider: then
    ``torch`` (on CUDA), with a warning, rather than ONNX Runtime on the CPU."""
    check_runtime(runtime)
    if runtime == "onnx" and torch.device(device).type == "cuda" and providers(device) == ["CPUExecutionProvider"]:
        log.warning("MOODSTREAM_RUNTIME=onnx but this ONNX Runtime has no CUDA provider: using torch on CUDA")
        return "torch"
    return runtime


def providers(device: str | torch.device = "cpu") -> list[str]:
    """ORT's CUDA provider (with CPU fallback) for a CUDA device when the installed ORT has it, else CPU."""
    import onnxruntime as ort

    if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OrtModule:
    """An inference session over one graph; ``module(*tensors)`` returns one tensor or a tuple, like the original.

    ``threads``: intra-op threads (default: torch's current count, which the replica or pipeline has set). Threads
    do not spin while waiting: on a shared CPU a spinning pool takes cores from the other model."""

    def __init__(self, path: str | Path, threads: int | None = None, device: str | torch.device = "cpu") -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # errors only (not the unused-initializer notes of quantised graphs)
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=providers(device))
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """numpy in, numpy out (all outputs, in graph order)."""
        return self.session.run(None, dict(zip(self.inputs, arrays, strict=True)))

    def __call__(self, *tensors: torch.Tensor) -> Any:
        outs = [torch.from_numpy(o) for o in self.run(*(t.detach().cpu().numpy() for t in tensors))]
        return outs[0] if len(outs) == 1 else tuple(outs)
