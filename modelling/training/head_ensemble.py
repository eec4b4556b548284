"""Merge a seed ensemble of MLP heads into one ``Head`` of the same kind (no change to serving).

The mean of M heads' logits is itself a one-hidden-layer MLP: the M hidden layers side by side (hidden M·h) and the
output layers side by side, scaled by 1/M. So an ensemble costs one wider matrix product per post, and loads, saves
and serves as any other head."""

from __future__ import annotations

import torch

from serving.heads import Head


def merge_heads(heads: list[Head]) -> Head:
    """One ``Head`` whose logits are the mean of ``heads``' logits (all MLPs of the same shape, or all linear);
    ``bias_adjust`` starts at zero."""
    first = heads[0]
    if any((h.in_dim, h.out_dim, h.hidden) != (first.in_dim, first.out_dim, first.hidden) for h in heads):
        raise ValueError("heads of different shapes cannot be merged")
    m = len(heads)
    if not first.hidden:
        out = Head(first.in_dim, first.out_dim, hidden=None, dropout=first.dropout)
        lin = [h.net[1] for h in heads]
        with torch.no_grad():
            out.net[1].weight.copy_(torch.stack([x.weight for x in lin]).mean(0))
            out.net[1].bias.copy_(torch.stack([x.bias for x in lin]).mean(0))
        return out.eval()
    out = Head(first.in_dim, first.out_dim, hidden=first.hidden * m, dropout=first.dropout)
    with torch.no_grad():
        out.net[0].weight.copy_(torch.cat([h.net[0].weight for h in heads]))
        out.net[0].bias.copy_(torch.cat([h.net[0].bias for h in heads]))
        out.net[3].weight.copy_(torch.cat([h.net[3].weight for h in heads], 1) / m)
        out.net[3].bias.copy_(torch.stack([h.net[3].bias for h in heads]).mean(0))
    return out.eval()
