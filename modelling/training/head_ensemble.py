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


def blend_heads(members: list[tuple[Head, float, list[int]]], in_dim: int) -> Head:
    """One ``Head`` over a wider input whose logits are ``Σ weight · head(x[:, columns])``.

    ``members``: (head, weight, columns) with ``columns`` the merged input's column for each of the head's inputs, in
    order. All MLPs (their hidden layers side by side) or all linear (their weights summed); ``bias_adjust`` starts at
    zero. Used to blend heads that read different pooled views of one encoder pass (``modelling.training.text_branch``).
    """
    heads = [h for h, _, _ in members]
    out_dim = heads[0].out_dim
    if any(h.out_dim != out_dim or len(c) != h.in_dim for h, _, c in members):
        raise ValueError("each member needs the same out_dim and one column per input")
    if len({bool(h.hidden) for h in heads}) != 1:
        raise ValueError("blend MLP heads with MLP heads, linear with linear")
    with torch.no_grad():
        if not heads[0].hidden:
            out = Head(in_dim, out_dim, hidden=None, dropout=heads[0].dropout)
            out.net[1].weight.zero_()
            out.net[1].bias.zero_()
            for h, w, cols in members:
                out.net[1].weight[:, cols] += w * h.net[1].weight
                out.net[1].bias += w * h.net[1].bias
            return out.eval()
        hidden = sum(h.hidden for h in heads)
        out = Head(in_dim, out_dim, hidden=hidden, dropout=heads[0].dropout)
        for p in out.parameters():
            p.zero_()
        row = 0
        for h, w, cols in members:
            rows = slice(row, row + h.hidden)
            out.net[0].weight[rows, cols] = h.net[0].weight
            out.net[0].bias[rows] = h.net[0].bias
            out.net[3].weight[:, rows] = w * h.net[3].weight
            out.net[3].bias += w * h.net[3].bias
            row += h.hidden
    return out.eval()
