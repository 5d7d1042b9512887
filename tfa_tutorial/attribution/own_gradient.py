"""How much of a Grad-Cos decomposition is the training image's own gradient?

For a training image z_i and the test vector ĝ_j = g_j / ‖g_j‖, split ĝ_j into its part along
ĝ_i = g_i / ‖g_i‖ and the rest r_ij ⟂ g_i:  ĝ_j = S_ij ĝ_i + r_ij,  with S_ij = Grad-Cos. The exact
decomposition (:func:`~tfa_tutorial.attribution.decomposition.decompose_score`) is linear in the
test vector, so

    map(ĝ_j) = S_ij · map(ĝ_i) + map(r_ij),

where map(ĝ_i) — the **own-gradient map** — sums to 1 and depends on the training image only,
and the **test-specific part** map(r_ij) sums to 0. When a retrieved training image's gradient is
nearly parallel to the test gradient, the first term dominates and every test image gets almost
the same map; the second term is what this test image adds.
"""
from __future__ import annotations

import torch
from torch import nn

from .decomposition import decompose_score
from .gradients import per_sample_grads

__all__ = ["own_gradient_maps", "specific_part", "map_correlation"]


def own_gradient_maps(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]``: for each training image ``x[b]`` (``[B, C, H, W]``, labels ``y`` ``[B]``),
    the exact decomposition of its Grad-Cos with itself, ⟨g_b, ĝ_b⟩ / ‖g_b‖ = 1, over its pixels
    (each map sums to 1 up to float rounding)."""
    g = per_sample_grads(model, x, y)
    # ⟨g_b, ĝ_b⟩ / ‖g_b‖ = ⟨g_b, g_b / ‖g_b‖²⟩: the norms are known, so the decomposition need not recompute them
    v = g / g.pow(2).sum(dim=1, keepdim=True).clamp_min(1e-30)
    return torch.cat([decompose_score(model, x[b:b + 1], y[b:b + 1], v[b], divide_by_train_norm=False).maps
                      for b in range(len(x))])


def specific_part(maps: torch.Tensor, scores: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """``maps − scores · own`` (``[B, 1, H, W]``, ``[B]``, ``[B, 1, H, W]``): the decomposition of the
    part of the test vector orthogonal to each training image's own gradient; each map sums to 0."""
    return maps - scores.view(-1, 1, 1, 1) * own


def map_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[B]`` Pearson correlation of each pair of maps ``a[i]``, ``b[i]`` (``[B, ...]``, flattened),
    in float64: how alike a decomposition map and its own-gradient map are."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return torch.stack([torch.corrcoef(torch.stack([x, y]))[0, 1] for x, y in zip(a, b)])
