"""Faithfulness curves: does one SGD step on *only the pixels a map selects* move the
test loss the way the map says?

Built on :func:`tfa_tutorial.evaluation.metrics.one_step_test` (the paper's test), run for several k and in
both directions:

- **insertion**: keep only the top-k pixels of each training image (the rest set to ``fill``),
  take one SGD step θ' = θ − lr ∇_θ mean_i ℓ(x̃_i, y_i), record ΔL = L_test(θ') − L_test(θ);
  against the same with k random pixels. A faithful map of *proponents* lowers the test loss more
  than random: ``insertion_advantage = random − map > 0``.
- **deletion**: set the top-k pixels to ``fill`` and keep the rest; a faithful map removes more of
  the loss decrease than random does: ``deletion_advantage = map − random > 0``.

``maps`` may be one tensor or a dict ``{name: maps}``; every map in a dict is tested against the
*same* random pixel draws (same ``seed``), so their curves share one control.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..attribution.families import FAITHFULNESS_FAMILIES, PairContext, family, pair_seed
from ..attribution.reduction import reduce_map
from ..core.validation import check_int, is_whole_number
from .metrics import one_step_test

__all__ = ["faithfulness_curves", "family_maps", "DEFAULT_KS"]

DEFAULT_KS = (16, 48, 96, 144, 256, 400)


def _reduced(maps: torch.Tensor, x_train: torch.Tensor, sign: str) -> torch.Tensor:
    maps = torch.as_tensor(maps).detach()
    if maps.ndim == x_train.ndim and maps.shape == x_train.shape:
        return reduce_map(maps, sign, "sum")
    if maps.ndim == 3:
        return maps
    raise ValueError(f"maps must be [B, C, H, W] like the training images {tuple(x_train.shape)} or reduced "
                     f"[B, H, W], got {tuple(maps.shape)}")


def _curves_one(model, x_train, y_train, x_test, y_test, maps, ks, seed, lr, fill, n_random) -> dict:
    device = next(model.parameters()).device
    with torch.no_grad():
        base = F.cross_entropy(model(torch.as_tensor(x_test).to(device)), torch.as_tensor(y_test).long().to(device))
    out = {"k": torch.tensor(list(ks)), "base_loss": float(base)}
    for mode in ("insertion", "deletion"):
        r = one_step_test(model, x_train, y_train, maps, x_test, y_test, ks, lr=lr, mode=mode, fill=fill,
                          n_random=n_random, seed=seed)
        out[mode] = {"map": r["map"], "random": r["random"], "random_std": r["random_std"]}
    out["insertion_advantage"] = out["insertion"]["random"] - out["insertion"]["map"]
    out["deletion_advantage"] = out["deletion"]["map"] - out["deletion"]["random"]
    return out


def faithfulness_curves(
    model: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    maps,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
    lr: float = 1e-5,
    fill: float = 0.0,
    n_random: int = 5,
    sign: str = "positive",
) -> dict:
    """Insertion and deletion curves over ``ks`` for one map or several.

    Args:
        x_train, y_train: ``[B, C, H, W]``, ``[B]`` the training images the step is taken on (e.g.
            the top proponents of the test images).
        x_test, y_test: ``[Q, C, H, W]``, ``[Q]`` the test images and the labels whose mean loss is
            measured (the predicted labels, to test an explanation of the prediction).
        maps: ``[B, C, H, W]`` (reduced with ``sign`` — default its positive part — summed over
            channels), ``[B, H, W]`` already reduced (higher = more relevant), or a dict of them.
        ks: numbers of pixels kept (insertion) or removed (deletion) per image.
        lr, fill, n_random: step size, value of the removed pixels, random draws per k. Keep
            the step small enough that |ΔL| stays well below the base test loss (returned as
            ``base_loss``): the test is a first-order one, and a large step (e.g. 0.1 for the
            tutorial's SmallCNN, whose masked-image gradients are large) drives every curve,
            map and random alike, to ΔL = −base_loss.

    Returns, for one map: ``{"k": [K], "base_loss", "insertion": {"map", "random", "random_std"},
    "deletion": {...}, "insertion_advantage": [K], "deletion_advantage": [K]}`` (ΔL values,
    float64); for a dict of maps: ``{name: that}``.
    """
    if isinstance(maps, dict):
        if not maps:
            raise ValueError("maps is an empty dict: give at least one map")
        return {name: faithfulness_curves(model, x_train, y_train, x_test, y_test, m, ks, seed, lr, fill, n_random, sign)
                for name, m in maps.items()}
    if not isinstance(x_train, torch.Tensor) or x_train.ndim != 4:
        raise ValueError(f"x_train must be a [B, C, H, W] tensor, got {getattr(x_train, 'shape', type(x_train))}")
    ks = list(ks)
    if any(not is_whole_number(k) for k in ks):
        raise ValueError(f"every k must be a whole number of pixels, got {ks}")
    ks = [int(k) for k in ks]
    n_random = check_int(n_random, "n_random")
    if not ks:
        raise ValueError("ks is empty: give at least one number of pixels")
    return _curves_one(model, x_train, y_train, x_test, y_test, _reduced(maps, x_train, sign), ks, seed, lr, fill,
                       n_random)


def family_maps(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                y_test: torch.Tensor, names=FAITHFULNESS_FAMILIES, seed: int = 0) -> dict[str, torch.Tensor]:
    """The maps of the one-step test, from the map-family registry: ``{name: [Q·k, C, H, W]}`` (the
    decomposition ``[Q·k, 1, H, W]``) for ``x_train`` ``[Q, k, C, H, W]`` / ``y_train`` ``[Q, k]``,
    the k training images of each test image ``x_test[q]`` ``[C, H, W]`` explained for label
    ``y_test[q]``; rows in the order of ``x_train.flatten(0, 1)``, ready for
    :func:`faithfulness_curves`. ``names``: families of :mod:`tfa_tutorial.attribution.families`
    (default :data:`~tfa_tutorial.attribution.families.FAITHFULNESS_FAMILIES`); score-based maps are
    oriented by sign(S) as everywhere in the registry; SmoothGrad noise is seeded
    :func:`~tfa_tutorial.attribution.families.pair_seed` ``(seed, q)``, as in the localisation protocol."""
    if x_train.ndim != 5 or y_train.shape != x_train.shape[:2] or len(x_test) != len(x_train):
        raise ValueError(f"x_train must be [Q, k, C, H, W] with y_train [Q, k] and Q test images, got "
                         f"{tuple(x_train.shape)}, {tuple(y_train.shape)}, {len(x_test)} test images")
    out: dict[str, list] = {n: [] for n in names}
    for q in range(len(x_test)):
        ctx = PairContext(model, x_train[q], y_train[q], x_test[q], int(y_test[q]), seed=pair_seed(seed, q))
        for n in names:
            out[n].append(family(n)(ctx).detach().cpu())
    return {n: torch.cat(v) for n, v in out.items()}
