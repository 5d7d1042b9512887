"""Pairs and tables of the localisation protocol: which (test, training) pairs are measured, and
how a measured table is printed.

1. Test images: other-class test images that the shortcut model classifies correctly when clean and
   as the target class once patched (the patched version is explained).
2. For each, its top-k Grad-Cos training images *among the patched ones* — this measures
   localisation given correct retrieval; retrieval itself is measured by
   :func:`tfa_tutorial.evaluation.evidence.retrieval_evidence`.

The measurement itself — every map family of :mod:`tfa_tutorial.attribution.families` on the same pairs, with the
clean-model control explaining the same label — is :func:`tfa_tutorial.evaluation.evidence.localisation_evidence`,
the one protocol behind notebook 04 and docs/results.md.
"""
from __future__ import annotations

import torch

from ..attribution.scores import grad_cos

__all__ = ["select_pairs", "format_table"]


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
