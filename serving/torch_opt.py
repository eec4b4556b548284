"""CPU inference speed-ups for the vision nets that keep their outputs (to float rounding).

``for_inference(module, example)`` traces an eval-mode module, freezes it and runs TorchScript's
``optimize_for_inference``: batch norm folded into the convolutions, convolutions run by oneDNN with prepacked
weights and fused ReLU/ReLU6. Measured on one CPU thread: MobileNetV2 about 3×, MTCNN's R/O-nets about 3× (large
batches) and mini-Xception about 1.5× faster; outputs match the eager module within ~1e-5. Not used for P-net: its
input size changes with every image and pyramid level, where the frozen graph gained nothing. Elsewhere (CUDA), or if
tracing fails (the TorchScript APIs are deprecated upstream and may go), the eager module is returned unchanged.
Set ``MOODSTREAM_TORCH_JIT=0`` to always use the eager modules.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def jit_enabled() -> bool:
    """Whether ``MOODSTREAM_TORCH_JIT`` allows the TorchScript path (default: yes)."""
    return os.environ.get("MOODSTREAM_TORCH_JIT", "1").strip().lower() not in ("0", "false", "no", "off")


class Frozen:
    """A frozen, inference-optimised TorchScript module, called with the JIT's profiling executor off: that
    executor re-profiles and re-specialises on new input shapes (batch sizes vary from call to call here), which
    cost more than it saved. The oneDNN rewrites are in the frozen graph itself and stay."""

    def __init__(self, script: Any, module: nn.Module) -> None:
        self.script = script
        self.module = module  # the eager original (its parameters, ``.to`` etc.)

    def __call__(self, *args: torch.Tensor) -> Any:
        with torch.jit.optimized_execution(False):  # thread-local flag, restored on exit
            return self.script(*args)


def for_inference(module: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...]) -> Any:
    """A callable computing ``module(x)`` faster on CPU; the eager ``module`` itself where that does not apply.

    ``module`` must be in eval mode and shape-generic in its batch (and, for fully convolutional nets, spatial)
    dimensions: Python-level shape arithmetic is frozen at the ``example``'s shape by tracing.
    """
    if not jit_enabled():
        return module
    try:
        if next(module.parameters()).device.type != "cpu":
            return module
    except StopIteration:
        return module
    args = example if isinstance(example, tuple) else (example,)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript deprecation / tracer warnings
            traced = torch.jit.trace(module.eval(), args, check_trace=False)
            fast = Frozen(torch.jit.optimize_for_inference(torch.jit.freeze(traced)), module)
            fast(*args)  # first run: oneDNN weight packing happens here, not on the first request
        return fast
    except Exception:  # pragma: no cover - depends on the torch build
        log.warning("TorchScript optimisation of %s failed; using the eager module", type(module).__name__,
                    exc_info=True)
        return module
