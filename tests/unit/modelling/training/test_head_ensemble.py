"""Blending heads that read different columns of one wider input into a single ``Head``."""

from __future__ import annotations

import pytest
import torch

from modelling.training.head_ensemble import blend_heads
from serving.heads import Head


def _head(in_dim: int, out_dim: int, hidden: int | None, seed: int) -> Head:
    torch.manual_seed(seed)
    head = Head(in_dim, out_dim, hidden=hidden)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_()
    return head.eval()


@pytest.mark.parametrize("hidden", [None, 8])
def test_blend_is_the_weighted_sum_of_the_members_on_their_columns(hidden: int | None) -> None:
    a, b = _head(5, 3, hidden, 0), _head(5, 3, hidden, 1)
    cols_a, cols_b = [0, 1, 2, 3, 8], [4, 1, 2, 5, 8]  # shared columns 1, 2 and 8; 6 and 7 read by neither
    merged = blend_heads([(a, 0.3, cols_a), (b, 0.7, cols_b)], 9)
    x = torch.randn(6, 9)
    with torch.no_grad():
        want = 0.3 * a(x[:, cols_a]) + 0.7 * b(x[:, cols_b])
        got = merged(x)
    assert merged.in_dim == 9 and merged.hidden == (None if hidden is None else 16)
    assert torch.allclose(got, want, atol=1e-5)
    assert float(merged.bias_adjust.abs().sum()) == 0.0


def test_weight_one_is_the_first_head() -> None:
    a, b = _head(4, 2, 8, 0), _head(4, 2, 8, 1)
    merged = blend_heads([(a, 1.0, [0, 1, 2, 3]), (b, 0.0, [4, 5, 6, 7])], 8)
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(merged(x), a(x[:, :4]), atol=1e-6)


def test_mismatched_members_are_refused() -> None:
    with pytest.raises(ValueError, match="MLP heads"):
        blend_heads([(_head(2, 3, 4, 0), 0.5, [0, 1]), (_head(2, 3, None, 1), 0.5, [0, 1])], 2)
    with pytest.raises(ValueError, match="one column per input"):
        blend_heads([(_head(2, 3, 4, 0), 0.5, [0])], 2)
