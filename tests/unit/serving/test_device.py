"""Device and per-replica thread selection."""

from __future__ import annotations

import torch

from serving.device import configure_torch, select_device, thread_count


def test_select_device() -> None:
    assert select_device("cpu") == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto") == expected and select_device("cuda") == expected


def test_thread_count() -> None:
    assert thread_count(3, 0.5) == 3
    assert thread_count(None, 0.5) == 1 and thread_count(None, 0) == 1 and thread_count(None, 2.0) == 2


def test_configure_torch_sets_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert configure_torch(None, 1.0) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
