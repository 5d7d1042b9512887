"""From diagnosis to fix: flag the training examples
behind shortcut errors, remove or repair them, retrain, and measure again.

    flags = flag_harmful(exp, n_test=20, top_k=50)        # Grad-Cos proponents of wrong predictions
    flags["precision"]                                     # share of flagged images that carry the patch
    fix_and_retrain(exp, "remove", flags)                  # drop them, retrain, shortcut_report
    fix_and_retrain(exp, "repair", flags, map_method="TFA-Cos · integrated gradients")   # overwrite only their top-map pixels
    fix_and_retrain(exp, "random_remove", flags)           # control: as many random images
    fix_and_retrain(exp, "oracle_remove", flags)           # upper bound: every patched image

Harmful examples of a test image z_j (:func:`harmful_examples`): the *proponents of the wrong
prediction* ŷ_j (largest S_GC((x_i, y_i), (x_j, ŷ_j))) and the *opponents of the true label* y_j
(most negative S_GC((x_i, y_i), (x_j, y_j))): one SGD step on a proponent of ŷ_j makes the error
more likely, one on an opponent of y_j makes the right answer less likely (to first order).

Repair keeps every image and changes only a fraction of its pixels: those where a map (TFA or a
baseline, ``map_method=``) is largest, after a small box smoothing, are overwritten with a
``fill`` (the mean image of the same class over the unflagged training images, by default).
How much of the real patch the repair mask covered is reported (IoU and coverage against
``exp.train.masks``), because a repair is only as good as its map.

Every retrained model is a fresh :class:`~tfa_tutorial.models.SmallCNN` trained with the
experiment's settings and seed through :func:`~tfa_tutorial.training.train_or_load`, keyed by the
strategy and a hash of exactly what changed, so reruns load from the cache.
"""
from __future__ import annotations

import hashlib
import time

import torch
import torch.nn.functional as F
from torch import nn

from .data import ImageDataset
from .families import FAMILIES, REPAIR_FAMILIES, PairContext
from .models import SmallCNN
from .patches import PatchedDataset
from .reduction import reduce_map
from .scores import grad_cos, grad_dot
from .tfa import tfa_maps
from .training import predict, shortcut_report, train_model, train_or_load
from .validation import check_finite, check_flags, check_real

__all__ = [
    "STRATEGIES",
    "MAP_METHODS",
    "FILLS",
    "harmful_examples",
    "harmful_maps",
    "flag_harmful",
    "remove_examples",
    "random_indices",
    "repair_maps",
    "repair_masks",
    "fill_values",
    "repair_examples",
    "mask_overlap",
    "modify_training_set",
    "fix_and_retrain",
]

STRATEGIES = ("none", "remove", "repair", "random_remove", "oracle_remove", "oracle_repair")
"""``none``: the shortcut model itself (same data, seed and settings — loaded, not retrained);
``remove``: drop the flagged images; ``repair``: overwrite their top-map pixels;
``random_remove``: drop as many images drawn at random; ``oracle_remove``: drop every patched
image; ``oracle_repair``: restore every patched image's original pixels — exactly the clean
model of the experiment (same seed and settings), so it is loaded, not retrained."""

MAP_METHODS = REPAIR_FAMILIES
"""Maps that choose the pixels to repair: names of the map-family registry (:mod:`.families`),
with its options. ``TFA-Cos · *``: TFA of the Grad-Cos score w.r.t. the training image, for the
flagged image's strongest test image (integrated gradients from a black image with 16 steps /
SmoothGrad × input / the paper's SmoothGrad gradient, both n=16, σ=0.15), times sign(S);
``two-step · *``: the same method on the training image's own-label logit; ``control · input as
map``: the image itself (the brightest pixels — a prior, not an explanation); ``control ·
random``: a random map (chance)."""

FILLS = ("class_mean", "image_median", "zero")

_RANDOM_SALT = 0x6A09E667  # decorrelates random removal from the patch injection's seeded draws


# --------------------------------------------------------------------------------------------
# Finding harmful training examples


def harmful_examples(
    model: nn.Module,
    train: ImageDataset,
    test_inputs: torch.Tensor,
    test_labels: torch.Tensor,
    top_k: int = 5,
    score: str = "cos",
    **score_opts,
) -> dict:
    """The training examples behind each test image's prediction and its error.

    Args:
        test_inputs: ``[Q, C, H, W]``; test_labels: ``[Q]`` the *true* labels y_j.
        score: ``"cos"`` (Grad-Cos) or ``"dot"`` (Grad-Dot).

    Returns a dict with ``pred`` ``[Q]`` (ŷ_j), ``proponents`` / ``proponent_scores`` ``[Q, k]``
    (largest S against (x_j, ŷ_j): they push towards the prediction) and ``opponents`` /
    ``opponent_scores`` ``[Q, k]`` (most negative S against (x_j, y_j): they push away from the
    true label). For a correct prediction both lists explain the right answer.
    """
    if score not in ("cos", "dot"):
        raise ValueError(f"score must be 'cos' or 'dot', got {score!r}")
    test_inputs = torch.as_tensor(test_inputs)
    test_labels = torch.as_tensor(test_labels).long().reshape(-1)
    if test_inputs.ndim != 4 or len(test_inputs) != len(test_labels):
        raise ValueError(f"test_inputs must be [Q, C, H, W] with Q = len(test_labels), got "
                         f"{tuple(test_inputs.shape)} and {len(test_labels)} labels")
    if not 1 <= top_k <= len(train):
        raise ValueError(f"top_k must lie in [1, {len(train)}], got {top_k}")
    pred, _ = predict(model, test_inputs)
    fn = grad_cos if score == "cos" else grad_dot
    q = len(test_inputs)
    # one pass over the training gradients for both labels: queries (x_j, ŷ_j) then (x_j, y_j)
    s = fn(model, train.images, train.labels, torch.cat([test_inputs, test_inputs]), torch.cat([pred, test_labels]),
           **score_opts).cpu()
    s_pred, s_true = s[:q], s[q:]
    pro = s_pred.topk(top_k, dim=1)
    opp = (-s_true).topk(top_k, dim=1)
    return {"pred": pred, "true": test_labels, "proponents": pro.indices, "proponent_scores": pro.values,
            "opponents": opp.indices, "opponent_scores": -opp.values}


def harmful_maps(
    model: nn.Module,
    train: ImageDataset,
    harmful: dict,
    test_inputs: torch.Tensor,
    q: int,
    kind: str = "proponents",
    method: str = "gradient_x_input",
    **tfa_opts,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TFA maps ``[k, C, H, W]`` of test image ``q``'s harmful training examples from
    :func:`harmful_examples`, oriented so that **positive = drives the error**: for
    ``kind="proponents"`` the map of S against (x_q, ŷ_q) (S > 0), for ``"opponents"`` minus the map
    of S against (x_q, y_q) (S < 0). Returns ``(training indices [k], maps)``; ``tfa_opts`` go to
    :func:`~tfa_tutorial.tfa_maps` (default: the options of the registry's Grad-Cos family with
    this ``method``, e.g. SmoothGrad × input with n = 16, σ = 0.15)."""
    if kind not in ("proponents", "opponents"):
        raise ValueError(f"kind must be 'proponents' or 'opponents', got {kind!r}")
    idx = harmful[kind][q]
    label = harmful["pred" if kind == "proponents" else "true"][q]
    opts = next((f.opts for f in FAMILIES.values() if f.score == "cos" and f.method == method), {})
    opts.update(tfa_opts)
    maps = tfa_maps(model, train.images[idx], train.labels[idx], test_inputs[q], label, method=method, **opts).cpu()
    return idx, maps if kind == "proponents" else -maps


def _error_test_images(exp, model, source: str):
    """``(images, true labels, indices, source tags)`` of the test images whose errors we explain."""
    parts = []
    if source in ("flipped", "both"):
        idx = exp.flipped_test_indices(model)
        parts.append((exp.patched_test.images[idx], exp.patched_test.labels[idx], idx, ["flipped"] * len(idx)))
    if source in ("misclassified", "both"):
        pred, _ = predict(model, exp.test.images)
        idx = torch.nonzero(pred != exp.test.labels).flatten()
        parts.append((exp.test.images[idx], exp.test.labels[idx], idx, ["misclassified"] * len(idx)))
    if not parts:
        raise ValueError(f"source must be 'flipped', 'misclassified' or 'both', got {source!r}")
    return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]),
            sum((p[3] for p in parts), []))


def flag_harmful(
    exp,
    n_test: int = 20,
    top_k: int = 50,
    seed: int = 0,
    score: str = "cos",
    source: str = "flipped",
    min_votes: int = 1,
    model: nn.Module | None = None,
    **score_opts,
) -> dict:
    """Flag the training images that drive the model's shortcut errors.

    ``n_test`` test images are drawn (seeded) from ``source``: ``"flipped"`` (patched test images
    of other classes that the patch flips to the target class, explained as patched),
    ``"misclassified"`` (clean test images the model gets wrong) or ``"both"``. For each, its
    ``top_k`` proponents of the wrong prediction by Grad-Cos (``score="dot"``: Grad-Dot) get one
    vote; the flags are the training images with at least ``min_votes`` votes.

    Returns a dict with
        ``flagged`` ``[F]`` int64 training indices (most votes first, then highest score);
        ``votes`` ``[N]`` votes of every training image; ``flag_votes`` ``[F]``;
        ``precision`` share of the flags that carry the patch (``exp.train.patched``),
        ``recall`` share of the patched images that are flagged, ``chance_precision`` the
        patched share of the whole training set (what random flags would reach);
        ``test_inputs`` ``[Q, C, H, W]``, ``test_targets`` ``[Q]`` (predicted labels),
        ``test_labels`` (true), ``test_indices``, ``test_source``; ``best_test`` ``[F]`` the row
        of the test image with the highest score for each flag (its TFA map is used for repair);
        ``scores`` ``[Q, N]``; and the settings.
    """
    if score not in ("cos", "dot"):
        raise ValueError(f"score must be 'cos' or 'dot', got {score!r}")
    if source not in ("flipped", "misclassified", "both"):
        raise ValueError(f"source must be 'flipped', 'misclassified' or 'both', got {source!r}")
    if not isinstance(n_test, int) or n_test < 1:
        raise ValueError(f"n_test must be a positive int, got {n_test!r}")
    n_train = len(exp.train)
    if not isinstance(top_k, int) or not 1 <= top_k <= n_train:
        raise ValueError(f"top_k must be an int in [1, {n_train}], got {top_k!r}")
    if not isinstance(min_votes, int) or min_votes < 1:
        raise ValueError(f"min_votes must be a positive int, got {min_votes!r}")
    model = model or exp.model
    images, labels, idx, tags = _error_test_images(exp, model, source)
    if len(images) == 0:
        raise ValueError(f"no {source} test images: the model makes no such error, so there is nothing to explain")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n_test]
    images, labels, idx = images[order], labels[order], idx[order]
    tags = [tags[int(o)] for o in order]
    pred, _ = predict(model, images)
    fn = grad_cos if score == "cos" else grad_dot
    scores = fn(model, exp.train.images, exp.train.labels, images, pred, **score_opts).cpu()
    top = scores.topk(top_k, dim=1).indices
    votes = torch.bincount(top.flatten(), minlength=n_train)
    cand = torch.nonzero(votes >= min_votes).flatten()
    best_score, best_test = scores[:, cand].max(0)
    # most votes first, then highest score (lexicographic sort: stable sort by the secondary key first)
    o = torch.argsort(best_score, descending=True, stable=True)
    o = o[torch.argsort(votes[cand][o], descending=True, stable=True)]
    flagged, best_test = cand[o], best_test[o]
    patched = exp.train.patched
    n_patched = int(patched.sum())
    return {
        "flagged": flagged,
        "votes": votes,
        "flag_votes": votes[flagged],
        "best_test": best_test,
        "n_flagged": len(flagged),
        "n_patched": n_patched,
        "precision": float(patched[flagged].float().mean()) if len(flagged) else float("nan"),
        "recall": float(patched[flagged].sum()) / n_patched if n_patched else float("nan"),
        "chance_precision": float(patched.float().mean()),
        "test_inputs": images,
        "test_targets": pred,
        "test_labels": labels,
        "test_indices": idx,
        "test_source": tags,
        "scores": scores,
        "n_test": len(images),
        "top_k": top_k,
        "score": score,
        "source": source,
        "min_votes": min_votes,
        "seed": seed,
    }


# --------------------------------------------------------------------------------------------
# Changing the training set (pure functions of tensors, tested on tiny data)


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
    seeded draws: :func:`~tfa_tutorial.patches.inject_patch` picks the patched images of a class as
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


# --------------------------------------------------------------------------------------------
# Maps for repair


def repair_maps(model: nn.Module, train: ImageDataset, indices, map_method: str = "TFA-Cos · integrated gradients",
                test_inputs: torch.Tensor | None = None, test_targets: torch.Tensor | None = None,
                assign: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Maps ``[F, C, H, W]`` of the training images at ``indices`` by ``map_method`` (see
    :data:`MAP_METHODS`). TFA maps explain training image ``indices[f]`` for the test image
    ``test_inputs[assign[f]]`` with label ``test_targets[assign[f]]``."""
    if map_method not in MAP_METHODS:
        raise ValueError(f"unknown map_method {map_method!r}: choose one of {MAP_METHODS}")
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
        out[rows] = fam(PairContext(model, x[rows], y[rows], test_inputs[q], yq, seed=seed + q)).detach().cpu()
    return out


# --------------------------------------------------------------------------------------------
# Fix and retrain


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha1()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _flag_indices(flagged, n: int) -> torch.Tensor:
    if isinstance(flagged, dict):
        if "flagged" not in flagged:
            raise ValueError("flagged must be the dict returned by flag_harmful or a tensor of training indices")
        flagged = flagged["flagged"]
    if flagged is None:
        raise ValueError("this strategy needs the flagged training indices (the dict from flag_harmful)")
    return _as_indices(flagged, n)


def modify_training_set(exp, strategy: str, flagged=None, seed: int = 0, map_method: str = "TFA-Cos · integrated gradients",
                        fill: str = "class_mean", fraction: float = 0.2, smooth: int = 3, pool: str = "all",
                        model: nn.Module | None = None) -> tuple[ImageDataset, dict]:
    """The training set a strategy trains on, and what changed: ``(data, info)`` with
    ``info["changed"]`` the changed training indices, and for repair ``repair_masks`` ``[F, H, W]``
    and the overlap with the true patch (:func:`mask_overlap`). See :func:`fix_and_retrain`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {STRATEGIES}")
    if pool not in ("all", "same_class"):
        raise ValueError(f"pool must be 'all' or 'same_class', got {pool!r}")
    train, n = exp.train, len(exp.train)
    if strategy == "none":
        return train, {"changed": torch.zeros(0, dtype=torch.long)}
    if strategy in ("oracle_remove", "oracle_repair"):
        changed = exp.train.patched_indices
        if len(changed) == 0:
            raise ValueError("the training set has no patched image: the oracle has nothing to fix")
        if strategy == "oracle_remove":
            return remove_examples(train, changed)[0], {"changed": changed}
        return None, {"changed": changed}  # the experiment's clean model is this run
    idx = _flag_indices(flagged, n)
    if len(idx) == 0:
        raise ValueError(f"strategy {strategy!r} needs at least one flagged training index, got none")
    if strategy == "remove":
        return remove_examples(train, idx)[0], {"changed": idx.sort().values}
    if strategy == "random_remove":
        pool_idx = None
        if pool == "same_class":  # as many random images of each class as were flagged in it
            picks = [random_indices(n, int((train.labels[idx] == c).sum()), seed + c, (train.labels == c).nonzero().flatten())
                     for c in torch.unique(train.labels[idx]).tolist()]
            changed = torch.cat(picks).sort().values
        else:
            changed = random_indices(n, len(idx), seed, pool_idx)
        return remove_examples(train, changed)[0], {"changed": changed, "pool": pool}
    # repair
    model = model or exp.model
    tests = flagged if isinstance(flagged, dict) else {}
    maps = repair_maps(model, train, idx, map_method, tests.get("test_inputs"), tests.get("test_targets"),
                       tests.get("best_test"), seed=seed)
    masks = repair_masks(maps, fraction, smooth)
    data = repair_examples(train, idx, masks, fill)
    info = {"changed": idx, "repair_masks": masks, "maps": maps, "map_method": map_method, "fill": fill,
            "fraction": fraction, "smooth": smooth}
    if isinstance(train, PatchedDataset):
        info["overlap"] = mask_overlap(masks, train.masks[idx])
    return data, info


def fix_and_retrain(
    exp,
    strategy: str,
    flagged=None,
    seed: int = 0,
    map_method: str = "TFA-Cos · integrated gradients",
    fill: str = "class_mean",
    fraction: float = 0.2,
    smooth: int = 3,
    pool: str = "all",
    progress: bool = False,
    retrain: bool = False,
) -> dict:
    """Change the training data by ``strategy``, train a fresh SmallCNN with the experiment's
    settings and ``seed``, and measure the shortcut again (:func:`shortcut_report`).

    Args:
        strategy: one of :data:`STRATEGIES`.
        flagged: the dict from :func:`flag_harmful` (needed for TFA repair maps) or ``[F]``
            training indices; ignored by ``none`` and the oracles.
        seed: training seed (use the experiment's seed to compare like with like) and seed of
            the random draws.
        map_method, fill, fraction, smooth: repair only — which map picks the pixels
            (:data:`MAP_METHODS`), what replaces them (:data:`FILLS`), how many
            (``fraction`` of the image) and the box smoothing of the map (:func:`repair_masks`).
        pool: ``random_remove`` only — draw from ``"all"`` training images or, per class, from
            the ``"same_class"`` as the flags.

    Returns ``{"strategy", "n_changed", "n_train", "clean_accuracy", "patched_accuracy",
    "flip_rate", "flip_rate_strict", "report", "changed", "from_cache", "seconds"}``, plus for
    repair ``mask_iou``, ``patch_coverage``, ``repair_precision`` (overlap of the repair masks with
    the true patch over the flagged patched images) and ``map_method``.
    """
    start = time.perf_counter()
    data, info = modify_training_set(exp, strategy, flagged, seed, map_method, fill, fraction, smooth, pool)
    changed = info["changed"]
    if strategy == "none" or strategy == "oracle_repair":
        # the same data, seed and settings as the experiment's own runs: reuse them, do not retrain
        if seed != exp.seed:
            raise ValueError(f"strategy {strategy!r} reuses the experiment's model, trained with seed {exp.seed}; got seed={seed}")
        model, from_cache, n_train = (exp.model if strategy == "none" else exp.clean_model), True, len(exp.train)
    else:
        settings = exp.settings
        config = {"data": "fashion_mnist", **settings, "spec": exp.spec, "exp_seed": exp.seed, "strategy": strategy,
                  "changed": _digest(changed), "n_train": len(data)}
        if strategy == "repair":
            config["repair"] = {"map_method": map_method, "fill": fill, "fraction": fraction, "smooth": smooth,
                                "masks": _digest(info["repair_masks"])}
        shape, k = exp.train.image_shape, exp.train.num_classes

        def fit(m):
            return train_model(m, data, epochs=settings["epochs"], seed=seed, progress=progress)

        model, meta = train_or_load(f"fix-{strategy}", lambda: SmallCNN(shape[0], k), fit, config=config, seed=seed,
                                    retrain=retrain)
        from_cache, n_train = meta["from_cache"], len(data)
    report = shortcut_report(model, exp.test, exp.spec)
    out = {
        "strategy": strategy,
        "n_changed": len(changed),
        "n_train": n_train,
        "clean_accuracy": report["clean_acc"],
        "patched_accuracy": report["patched_acc_other"],
        "flip_rate": report["flip_rate"],
        "flip_rate_strict": report["flip_rate_strict"],
        "n_patched_changed": int(exp.train.patched[changed].sum()),
        "report": report,
        "changed": changed,
        "model": model,
        "from_cache": from_cache,
        "seconds": time.perf_counter() - start,
    }
    if strategy == "repair":
        ov = info.get("overlap", {})
        out.update({"map_method": map_method, "fill": fill, "fraction": fraction, "mask_iou": ov.get("iou"),
                    "patch_coverage": ov.get("coverage"), "repair_precision": ov.get("precision"),
                    "repair_masks": info["repair_masks"], "repaired_images": data.images[changed]})
    return out
