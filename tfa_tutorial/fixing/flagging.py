"""Finding the training examples behind shortcut errors: the proponents of the wrong prediction
and the opponents of the true label (Grad-Cos), their maps, and the flagged set with its precision
(see :mod:`tfa_tutorial.fixing.retrain` for what is done with it)."""
from __future__ import annotations

import torch
from torch import nn

from ..attribution.families import FAMILIES
from ..attribution.scores import grad_cos, grad_dot
from ..attribution.tfa import tfa_maps
from ..data.datasets import ImageDataset
from ..training.train import predict

__all__ = ["harmful_examples", "harmful_maps", "flag_harmful"]


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
