"""Evaluation metrics, following the field's protocols so numbers are comparable.

Training-example level
    :func:`shortcut_detection_auprc` — quanda's ``ShortcutDetectionMetric``: per test example, the
    area under the precision–recall curve of its scores against "this training image carries the
    patch" (average-precision form, as torcheval's ``binary_auprc``), averaged over test examples.

Pixel level (maps ``[B, H, W]`` already reduced, masks ``[B, H, W]`` bool; Quantus' definitions)
    :func:`relevance_mass_accuracy` — positive relevance inside the mask ÷ total positive relevance.
    :func:`relevance_rank_accuracy` — share of the top-K pixels (K = mask size) inside the mask.
    :func:`pointing_game` — 1 if the maximum of the map lies in the mask (a constant map: 0).

Faithfulness
    :func:`one_step_test` — the paper's insertion test (keep only the top-k pixels of the training
    images, one SGD step, change of the test loss) and the matching deletion test, each against
    k random pixels.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad

from ..attribution.gradients import frozen_state
from ..core.validation import (
    NonFiniteError,
    check_finite,
    check_flags,
    check_inputs_targets,
    check_int,
    check_model_ready,
    check_real,
    is_whole_number,
)

__all__ = [
    "average_precision",
    "shortcut_detection_auprc",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "pointing_game",
    "one_step_test",
]


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the precision–recall curve, step form: Σ_t (R_t − R_{t−1}) P_t over the distinct
    score thresholds t in decreasing order (tied scores enter together). 0 if no positive.

    ``labels`` are boolean flags (bool, or 0/1): class ids are refused, not cast to True. NaN or
    infinite scores raise :class:`~tfa_tutorial.core.validation.NonFiniteError`."""
    scores = check_finite(torch.as_tensor(scores, dtype=torch.float64).flatten(), "scores")
    labels = check_flags(torch.as_tensor(labels).flatten(), "labels (positive flags)")
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.numel()} scores but {labels.numel()} labels")
    n_pos = int(labels.sum())
    if n_pos == 0:
        return 0.0
    order = torch.argsort(scores, descending=True, stable=True)
    s, l = scores[order], labels[order].double()
    tp = torch.cumsum(l, 0)
    last_of_tie = torch.ones_like(s, dtype=torch.bool)
    last_of_tie[:-1] = s[1:] != s[:-1]
    tp, rank = tp[last_of_tie], (torch.arange(1, len(s) + 1, dtype=torch.float64))[last_of_tie]
    precision, recall = tp / rank, tp / n_pos
    d_recall = torch.diff(recall, prepend=torch.zeros(1, dtype=torch.float64))
    return float((d_recall * precision).sum())


def shortcut_detection_auprc(scores: torch.Tensor, patched: torch.Tensor) -> float:
    """quanda's shortcut-detection metric: mean over test examples of the AUPRC of ``scores[q]``
    ``[N]`` against ``patched`` ``[N]``.

    Args:
        scores: ``[Q, N]`` attribution scores; callers pass only the filtered test examples
            (true class ≠ shortcut class, predicted as the shortcut class).
        patched: ``[N]`` bool, training example carries the patch.
    """
    scores = torch.as_tensor(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [Q, N], got shape {tuple(scores.shape)}")
    check_finite(scores, "scores")
    patched = check_flags(patched, "patched")
    if patched.shape != (scores.shape[1],):
        raise ValueError(f"patched must be [N] = [{scores.shape[1]}], got {tuple(patched.shape)}")
    if scores.shape[0] == 0:
        raise ValueError("no test examples: the filtered test set is empty")
    if not patched.any():
        raise ValueError("no training example is patched: AUPRC is undefined")
    return float(sum(average_precision(s, patched) for s in scores) / scores.shape[0])


def _check_maps_masks(maps: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    maps, masks = torch.as_tensor(maps), check_flags(masks, "masks")
    check_finite(maps, "maps", "a map with NaN or inf has no meaningful localisation score")
    if maps.ndim == 2:
        maps, masks = maps[None], masks[None] if masks.ndim == 2 else masks
    if maps.ndim != 3:
        raise ValueError(f"maps must be reduced to [B, H, W] (see reduce_map), got shape {tuple(maps.shape)}")
    if masks.shape != maps.shape:
        raise ValueError(f"masks {tuple(masks.shape)} and maps {tuple(maps.shape)} differ in shape")
    if not masks.flatten(1).any(1).all():
        raise ValueError("every mask needs at least one pixel inside")
    return maps.flatten(1).double(), masks.flatten(1)


def relevance_mass_accuracy(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per map ``[B]``: Σ_{mask} max(m, 0) / Σ max(m, 0) (Arras et al. 2022); 0 for an all-≤0 map.
    Chance for a random map is the mask's area fraction."""
    m, k = _check_maps_masks(maps, masks)
    pos = m.clamp_min(0)
    total = pos.sum(1)
    inside = (pos * k).sum(1)
    return torch.where(total > 0, inside / total.clamp_min(1e-300), torch.zeros_like(total))


def relevance_rank_accuracy(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per map ``[B]``: share of the K highest-valued pixels that lie in the mask, K = mask size
    (Arras et al. 2022). Ties are broken by pixel order."""
    m, k = _check_maps_masks(maps, masks)
    out = torch.empty(len(m), dtype=torch.float64)
    for b in range(len(m)):
        K = int(k[b].sum())
        top = torch.topk(m[b], K).indices
        out[b] = k[b][top].double().mean()
    return out


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per map ``[B]``: 1.0 if the map's maximum pixel lies in the mask (Zhang et al. 2018).

    A constant map (e.g. all zero: nothing positive to point at) has no maximum and counts as a
    miss, 0.0 — not as a hit on pixel (0, 0). When several pixels share the maximum, the entry is
    the share of them inside the mask: the expected hit under a uniformly random tie-break, so no
    pixel order is favoured."""
    m, k = _check_maps_masks(maps, masks)
    top = m.max(1, keepdim=True).values
    at_max = m == top
    share = (at_max & k).sum(1).double() / at_max.sum(1).double()
    constant = m.min(1).values == top.squeeze(1)
    return torch.where(constant, torch.zeros_like(share), share)


def _top_k_masks(maps: torch.Tensor, k: int) -> torch.Tensor:
    flat = maps.flatten(1)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep.scatter_(1, flat.topk(k, dim=1).indices, True)
    return keep.view_as(maps)


def one_step_test(
    model: nn.Module,
    train_inputs: torch.Tensor,
    train_targets: torch.Tensor,
    maps: torch.Tensor,
    test_inputs: torch.Tensor,
    test_targets: torch.Tensor,
    ks: Sequence[int],
    lr: float = 0.1,
    mode: str = "insertion",
    fill: float = 0.0,
    n_random: int = 5,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The paper's faithfulness test, one SGD step from the trained θ.

    For each k: build masked training images — ``mode="insertion"`` keeps only the top-k pixels of
    ``maps`` (all channels), the rest set to ``fill``; ``mode="deletion"`` sets the top-k pixels to
    ``fill`` and keeps the rest — take one SGD step θ' = θ − lr ∇_θ mean_i ℓ(x̃_i, y_i), and record
    ΔL = L_test(θ') − L_test(θ), the mean test cross-entropy change. The same with k random pixels
    (mean over ``n_random`` draws) is the control.

    To first order ΔL ≈ −lr ⟨∇L_test, g(x̃)⟩. A faithful map makes insertion lower the loss more
    than random (more negative ΔL), and deletion lower it less than random.

    Args:
        train_inputs: ``[B, C, H, W]``; maps: ``[B, H, W]`` reduced maps, higher = more relevant.
        test_inputs, test_targets: ``[Q, C, H, W]``, ``[Q]``.

    Returns:
        ``{"k": [K], "map": [K], "random": [K], "random_std": [K]}`` ΔL values.
    """
    if mode not in ("insertion", "deletion"):
        raise ValueError(f"mode must be 'insertion' or 'deletion', got {mode!r}")
    lr = check_real(lr, "lr", 0, strict_minimum=True)
    fill = check_real(fill, "fill")
    n_random = check_int(n_random, "n_random")
    seed = check_int(seed, "seed", None)
    check_model_ready(model)
    train_inputs, train_targets = check_inputs_targets(model, train_inputs, train_targets, "train_inputs")
    test_inputs, test_targets = check_inputs_targets(model, test_inputs, test_targets, "test_inputs")
    maps = check_finite(torch.as_tensor(maps), "maps", "a map with NaN or inf cannot rank pixels")
    if maps.shape != (train_inputs.shape[0],) + tuple(train_inputs.shape[-2:]):
        raise ValueError(f"maps must be [B, H, W] = {(train_inputs.shape[0],) + tuple(train_inputs.shape[-2:])}, got {tuple(maps.shape)}")
    n_pix = maps[0].numel()
    ks = list(ks)
    if not ks:
        raise ValueError("ks is empty: give at least one number of pixels k")
    if any(not is_whole_number(k) or not 1 <= int(k) <= n_pix for k in ks):
        raise ValueError(f"every k must lie in [1, {n_pix}] and be a whole number, got {ks}")
    ks = [int(k) for k in ks]
    device = next(model.parameters()).device
    train_inputs, train_targets = train_inputs.to(device), train_targets.to(device)
    test_inputs, test_targets = test_inputs.to(device), test_targets.to(device)
    theta = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    frozen = frozen_state(model, theta)

    def loss(th, x, y):
        return F.cross_entropy(functional_call(model, {**frozen, **th}, (x,)), y)

    with torch.no_grad():
        base = loss(theta, test_inputs, test_targets)
    g_of = grad(loss)

    def delta(keep: torch.Tensor) -> float:
        keep = keep if mode == "insertion" else ~keep
        x = torch.where(keep[:, None], train_inputs, torch.full_like(train_inputs, fill))
        g = g_of(theta, x, train_targets)
        with torch.no_grad():
            stepped = {n: theta[n] - lr * g[n] for n in theta}
            d = float(loss(stepped, test_inputs, test_targets) - base)
        if not math.isfinite(d):
            raise NonFiniteError(f"the test loss after one SGD step with lr={lr:g} is not finite: lower lr")
        return d

    gen = torch.Generator().manual_seed(seed)
    out = {"k": torch.tensor(list(ks)), "map": [], "random": [], "random_std": []}
    for k in ks:
        out["map"].append(delta(_top_k_masks(maps.to(device), k)))
        rand = [delta(_top_k_masks(torch.rand(maps.shape, generator=gen).to(device), k)) for _ in range(n_random)]
        out["random"].append(sum(rand) / len(rand))
        out["random_std"].append(float(torch.tensor(rand).std()) if len(rand) > 1 else 0.0)
    return {key: torch.as_tensor(v, dtype=torch.float64) if key != "k" else v for key, v in out.items()}
