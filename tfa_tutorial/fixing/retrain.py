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

Every retrained model is a fresh :class:`~tfa_tutorial.training.models.SmallCNN` trained with the
experiment's settings and seed through :func:`~tfa_tutorial.training.train.train_or_load`, keyed by the
strategy and a hash of exactly what changed, so reruns load from the cache.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from ..core.hashing import digest
from ..data.datasets import ImageDataset
from ..data.patches import PatchedDataset
from ..training.models import SmallCNN
from ..training.train import shortcut_report, train_model, train_or_load
from .repair import (
    _as_indices,
    mask_overlap,
    random_indices,
    remove_examples,
    repair_examples,
    repair_maps,
    repair_masks,
)

__all__ = ["STRATEGIES", "modify_training_set", "fix_and_retrain"]

STRATEGIES = ("none", "remove", "repair", "random_remove", "oracle_remove", "oracle_repair")
"""``none``: the shortcut model itself (same data, seed and settings — loaded, not retrained);
``remove``: drop the flagged images; ``repair``: overwrite their top-map pixels;
``random_remove``: drop as many images drawn at random; ``oracle_remove``: drop every patched
image; ``oracle_repair``: restore every patched image's original pixels — exactly the clean
model of the experiment (same seed and settings), so it is loaded, not retrained."""

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
                  "changed": digest(changed), "n_train": len(data)}
        if strategy == "repair":
            config["repair"] = {"map_method": map_method, "fill": fill, "fraction": fraction, "smooth": smooth,
                                "masks": digest(info["repair_masks"])}
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
