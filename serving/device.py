"""Device and thread selection for one model replica: CUDA when present (and allowed), else CPU."""

from __future__ import annotations

import math


def select_device(preference: str = "auto") -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without a GPU falls back to ``cpu``."""
    if preference == "cpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def thread_count(torch_threads: int | None, num_cpus: float) -> int:
    """Intra-op threads for a replica: the explicit setting, else the CPUs the replica reserves (at least 1)."""
    if torch_threads:
        return int(torch_threads)
    return max(1, math.floor(num_cpus)) if num_cpus else 1


def configure_torch(torch_threads: int | None, num_cpus: float) -> int:
    """Set torch's intra-op thread count for this process; returns the count used."""
    import torch

    n = thread_count(torch_threads, num_cpus)
    torch.set_num_threads(n)
    return n
