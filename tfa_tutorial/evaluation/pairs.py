"""Pairs and tables of the localisation protocol: which (test, training) pairs are measured, and
how a measured table is printed.

1. Test images: other-class test images that the shortcut model classifies correctly when clean and
   as the target class once patched (the patched version is explained).
2. For each, its top-k Grad-Cos training images *among the patched ones* — this measures
   localisation given correct retrieval; retrieval itself is measured by
   :func:`tfa_tutorial.evaluation.evidence.retrieval_evidence`.
3. Each pair becomes one :class:`~tfa_tutorial.attribution.families.PairContext` per model
   (:func:`iter_pair_contexts`): both models explain the shortcut model's prediction
   (:func:`explained_labels`), with one noise seed per test image.

The measurement itself — every map family of :mod:`tfa_tutorial.attribution.families` on the same pairs, with the
clean-model control explaining the same label — is :func:`tfa_tutorial.evaluation.evidence.localisation_evidence`,
the one protocol behind notebook 04 and docs/results.md.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from ..attribution.families import PairContext, pair_seed
from ..attribution.gradients import predicted_labels
from ..attribution.scores import grad_cos
from ..core.streaming import with_progress

__all__ = ["select_pairs", "explained_labels", "iter_pair_contexts", "format_table"]


def select_pairs(exp, n_test: int = 10, top_k: int = 5, seed: int = 0, scores: torch.Tensor | None = None):
    """Pick the (test, training) pairs of the protocol.

    Returns ``(test_idx [Q], train_idx [Q, k], scores [Q, N])``: ``test_idx`` indexes
    ``exp.patched_test``, ``train_idx`` indexes ``exp.train``; ``scores`` are the shortcut model's
    Grad-Cos scores of the chosen (patched) test images against all training images, with the
    predicted labels.
    """
    flipped = exp.flipped_test_indices()
    if len(flipped) == 0:
        raise ValueError("no test image is flipped by the patch: the model did not learn the shortcut")
    order = torch.randperm(len(flipped), generator=torch.Generator().manual_seed(seed))
    test_idx = flipped[order[:n_test]]
    if scores is None:
        scores = grad_cos(exp.model, exp.train.images, exp.train.labels, exp.patched_test.images[test_idx])
    masked = scores.masked_fill(~exp.train.patched[None, :], float("-inf"))
    train_idx = masked.topk(top_k, dim=1).indices
    return test_idx, train_idx, scores


def explained_labels(exp, test_idx: torch.Tensor) -> torch.Tensor:
    """``[Q]`` the label both models explain for the patched test images ``test_idx`` ``[Q]``: the
    shortcut model's prediction (the target class for a flipped image)."""
    return predicted_labels(exp.model, exp.patched_test.images[test_idx])


def iter_pair_contexts(
    exp, test_idx: torch.Tensor, train_idx: torch.Tensor, model, labels: torch.Tensor | None = None,
    class_means: dict | None = None, seed: int = 0, noise_seeds: Sequence[int] | None = None,
    progress: bool = False, desc: str = "",
) -> Iterator[tuple[int, PairContext]]:
    """``(q, ctx)`` for each test image ``q`` of ``test_idx`` ``[Q]`` (indices into
    ``exp.patched_test``) and its training images ``train_idx[q]`` (``train_idx`` ``[Q, k]``,
    indices into ``exp.train``), explained by ``model`` (the shortcut or the clean model).

    ``ctx`` (:class:`~tfa_tutorial.attribution.families.PairContext`): ``x_train`` ``[k, C, H, W]``,
    ``y_train`` ``[k]``, ``x_test`` ``[C, H, W]`` the patched test image, ``label`` ``labels[q]``
    (default :func:`explained_labels`: the shortcut model's prediction, for both models),
    ``true_label`` its true label, ``x_counterfactual`` ``[C, H, W]`` the test image without the
    patch, ``class_mean`` ``class_means[label]`` ``[P]`` of ``model`` (``None`` without
    ``class_means`` or without that label), ``seed`` the noise seed
    :func:`~tfa_tutorial.attribution.families.pair_seed` ``(seed, q)``, or ``noise_seeds[q]`` when
    given. ``progress``: a progress bar labelled ``desc``."""
    labels = explained_labels(exp, test_idx) if labels is None else labels
    X, Y = exp.train.images, exp.train.labels
    for q, ti in enumerate(with_progress(test_idx.tolist(), desc, progress)):
        tr, label = train_idx[q], int(labels[q])
        yield q, PairContext(
            model, X[tr], Y[tr], exp.patched_test.images[ti], label, int(exp.patched_test.labels[ti]),
            exp.test.images[ti], None if class_means is None else class_means.get(label),
            pair_seed(seed, q) if noise_seeds is None else noise_seeds[q],
        )


def format_table(table: dict, chance: float | None = None, digits: int = 2) -> str:
    """Markdown: one row per family, mass / rank / pointing for the shortcut and clean model,
    and the model-specific gain in mass."""
    lines = [
        "| map | mass (shortcut) | rank (shortcut) | pointing (shortcut) | mass (clean) | gain in mass |",
        "|---|---|---|---|---|---|",
    ]
    for fam, row in table.items():
        s, c = row["shortcut model"], row.get("clean model", {})
        gain = s["mass"] - c["mass"] if c else float("nan")
        lines.append(
            f"| {fam} | {s['mass']:.{digits}f} | {s['rank']:.{digits}f} | {s['pointing']:.{digits}f} | "
            f"{c.get('mass', float('nan')):.{digits}f} | {gain:+.{digits}f} |"
        )
    if chance is not None:
        lines.append(f"| chance (mask area) | {chance:.{digits}f} | {chance:.{digits}f} | {chance:.{digits}f} | {chance:.{digits}f} | +0.00 |")
    return "\n".join(lines)
