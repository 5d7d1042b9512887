"""Changing the training set: remove examples, draw random ones, and repair only the pixels a map
selects (masks, fill values, the repaired images, and how much of the real patch a mask covers).
Pure functions of tensors, tested on tiny data; :mod:`tfa_tutorial.fixing.retrain` retrains on the result."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..attribution.families import FAMILIES, REPAIR_FAMILIES, PairContext, pair_seed
from ..attribution.reduction import reduce_map
from ..core.validation import check_finite, check_flags, check_real
from ..data.datasets import ImageDataset

__all__ = ["FILLS", "remove_examples", "random_indices", "repair_masks", "fill_values", "repair_examples",
           "mask_overlap", "repair_maps"]


FILLS = ("class_mean", "image_median", "zero")

_RANDOM_SALT = 0x6A09E667  # decorrelates random removal from the patch injection's seeded draws


def _as_indices(indices, n: int) -> torch.Tensor:
    idx = torch.as_tensor(indices)
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"a bool mask of indices must have shape [{n}], got {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.is_floating_point() or idx.ndim != 1:
        raise TypeError(f"indices must be a 1-D integer tensor (or a [N] bool mask), got {idx.dtype} {tuple(idx.shape)}")
    idx = idx.long()
    if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise ValueError(f"indices must lie in [0, {n}), found range [{int(idx.min())}, {int(idx.max())}]")
    if len(torch.unique(idx)) != len(idx):
        raise ValueError("indices contain duplicates")
    return idx


def remove_examples(train: ImageDataset, indices) -> tuple[ImageDataset, torch.Tensor]:
    """``(the training set without the examples at indices, kept indices [N − F])``; order kept,
    ``train`` unchanged."""
    idx = _as_indices(indices, len(train))
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[idx] = False
    if not keep.any():
        raise ValueError("removing these indices would leave no training data")
    kept = keep.nonzero().flatten()
    return train.subset(kept), kept


def random_indices(n: int, count: int, seed: int = 0, pool=None) -> torch.Tensor:
    """``count`` distinct indices drawn uniformly (seeded) from ``pool`` (default: all of
    ``range(n)``), sorted.

    The generator is seeded with ``seed`` plus a fixed salt, so the draw is independent of other
    seeded draws: :func:`~tfa_tutorial.data.patches.inject_patch` picks the patched images of a class as
    ``randperm(n_class, seed)[:k]``, and an unsalted same-class draw with the same seed would
    remove exactly the patched images first."""
    pool = torch.arange(n) if pool is None else _as_indices(pool, n)
    if not 0 <= count <= len(pool):
        raise ValueError(f"cannot draw {count} random examples from a pool of {len(pool)}")
    gen = torch.Generator().manual_seed(_RANDOM_SALT + seed)
    return pool[torch.randperm(len(pool), generator=gen)[:count]].sort().values


def repair_masks(maps: torch.Tensor, fraction: float = 0.2, smooth: int = 3) -> torch.Tensor:
    """Pixels to repair ``[B, H, W]`` bool: the ``round(fraction · H·W)`` largest values of each
    map (``[B, C, H, W]`` reduced to its positive part summed over channels, or ``[B, H, W]``)
    after a ``smooth``×``smooth`` box average (1 = none), which favours compact regions over
    scattered single pixels."""
    maps = check_finite(torch.as_tensor(maps), "maps", "a map with NaN or inf cannot choose the pixels to repair")
    if maps.ndim == 4:
        maps = reduce_map(maps, "positive", "sum")
    if maps.ndim != 3:
        raise ValueError(f"maps must be [B, C, H, W] or [B, H, W], got shape {tuple(maps.shape)}")
    fraction = check_real(fraction, "fraction", 0.0, 1.0, strict_minimum=True)
    if not isinstance(smooth, int) or isinstance(smooth, bool) or smooth < 1 or smooth % 2 == 0:
        raise ValueError(f"smooth must be an odd positive int (box size in pixels), got {smooth!r}")
    b, h, w = maps.shape
    k = max(1, round(fraction * h * w))
    m = maps.detach().double()
    if smooth > 1:
        m = F.avg_pool2d(m[:, None], smooth, stride=1, padding=smooth // 2, count_include_pad=False)[:, 0]
    keep = torch.zeros(b, h * w, dtype=torch.bool)
    keep.scatter_(1, m.reshape(b, -1).topk(k, dim=1).indices.cpu(), True)
    return keep.view(b, h, w)


def fill_values(train: ImageDataset, indices, fill: str = "class_mean", masks: torch.Tensor | None = None,
                exclude=None) -> torch.Tensor:
    """Replacement pixels ``[F, C, H, W]`` for the images at ``indices``.

    ``"class_mean"``: the mean image of the same class over the training images not in
    ``exclude`` (default: not in ``indices``) — what an ordinary image of that class has there;
    ``"image_median"``: per channel, the median of the image's pixels outside ``masks``
    ``[F, H, W]`` (needed); ``"zero"``: black.
    """
    idx = _as_indices(indices, len(train))
    x = train.images[idx]
    if fill == "zero":
        return torch.zeros_like(x)
    if fill == "image_median":
        if masks is None or masks.shape != (len(idx),) + tuple(x.shape[-2:]):
            raise ValueError("fill='image_median' needs the repair masks [F, H, W]")
        out = torch.empty_like(x)
        for i in range(len(idx)):
            outside = x[i][:, ~masks[i]]  # [C, n_outside]
            med = outside.median(dim=1).values if outside.shape[1] else torch.zeros(x.shape[1], dtype=x.dtype)
            out[i] = med[:, None, None].expand_as(x[i])
        return out
    if fill == "class_mean":
        ref = torch.ones(len(train), dtype=torch.bool)
        ref[_as_indices(idx if exclude is None else exclude, len(train))] = False
        out = torch.empty_like(x)
        for c in torch.unique(train.labels[idx]).tolist():
            pool = ref & (train.labels == c)
            if not pool.any():
                raise ValueError(f"fill='class_mean': no unflagged training image of class {c} to average")
            out[train.labels[idx] == c] = train.images[pool].mean(0)
        return out
    raise ValueError(f"unknown fill {fill!r}: choose one of {FILLS}")


def repair_examples(train: ImageDataset, indices, masks: torch.Tensor, fill: str = "class_mean",
                    exclude=None) -> ImageDataset:
    """A copy of ``train`` in which, for each image at ``indices``, the pixels under ``masks``
    ``[F, H, W]`` (all channels) are replaced by :func:`fill_values`; every other pixel and image
    is unchanged. Flags and ground-truth masks of a :class:`PatchedDataset` are kept (they record
    what the image *was*)."""
    import dataclasses

    idx = _as_indices(indices, len(train))
    masks = torch.as_tensor(masks).bool()
    if masks.shape != (len(idx),) + tuple(train.images.shape[-2:]):
        raise ValueError(f"masks must be [F, H, W] = {(len(idx),) + tuple(train.images.shape[-2:])}, got {tuple(masks.shape)}")
    images = train.images.clone()
    values = fill_values(train, idx, fill, masks, exclude)
    images[idx] = torch.where(masks[:, None], values, train.images[idx])
    return dataclasses.replace(train, images=images, name=f"{train.name}+repaired")


def mask_overlap(repair: torch.Tensor, truth: torch.Tensor) -> dict:
    """How well repair masks ``[F, H, W]`` hit the true patch masks ``[F, H, W]``, over the images
    whose true mask is non-empty: mean ``iou`` (|R ∩ P| / |R ∪ P|), ``coverage`` (share of all
    their patch pixels that were repaired), ``precision`` (share of their repaired pixels that lie on
    the patch), and ``n`` (how many images had a patch)."""
    repair, truth = check_flags(repair, "repair masks"), check_flags(truth, "truth masks")
    if repair.shape != truth.shape:
        raise ValueError(f"repair {tuple(repair.shape)} and truth {tuple(truth.shape)} masks differ in shape")
    has = truth.flatten(1).any(1)
    if not has.any():
        return {"iou": float("nan"), "coverage": float("nan"), "precision": float("nan"), "n": 0}
    r, t = repair[has].flatten(1), truth[has].flatten(1)
    inter, union = (r & t).sum(1).double(), (r | t).sum(1).double()
    return {"iou": float((inter / union).mean()), "coverage": float(inter.sum() / t.sum()),
            "precision": float(inter.sum() / r.sum().clamp_min(1)), "n": int(has.sum())}


def repair_maps(model: nn.Module, train: ImageDataset, indices, map_method: str = "TFA-Cos · integrated gradients",
                test_inputs: torch.Tensor | None = None, test_targets: torch.Tensor | None = None,
                assign: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Maps ``[F, C, H, W]`` of the training images at ``indices`` by ``map_method`` (see
    :data:`~tfa_tutorial.attribution.families.REPAIR_FAMILIES`). TFA maps explain training image ``indices[f]`` for the test image
    ``test_inputs[assign[f]]`` with label ``test_targets[assign[f]]``."""
    if map_method not in REPAIR_FAMILIES:
        raise ValueError(f"unknown map_method {map_method!r}: choose one of {REPAIR_FAMILIES}")
    idx = _as_indices(indices, len(train))
    x, y = train.images[idx], train.labels[idx]
    fam = FAMILIES[map_method]
    if fam.score is None:  # two-step and controls ignore the test image
        return fam(PairContext(model, x, y, None, seed=seed)).detach().cpu()
    if test_inputs is None or assign is None:
        raise ValueError(f"map_method={map_method!r} needs the test images: pass the dict returned by flag_harmful")
    assign = torch.as_tensor(assign).long()
    if assign.shape != (len(idx),):
        raise ValueError(f"assign must give one test row per flagged image, [{len(idx)}], got {tuple(assign.shape)}")
    out = torch.empty_like(x)
    for q in torch.unique(assign).tolist():
        rows = (assign == q).nonzero().flatten()
        yq = None if test_targets is None else test_targets[q]
        out[rows] = fam(PairContext(model, x[rows], y[rows], test_inputs[q], yq, seed=pair_seed(seed, q))).detach().cpu()
    return out
