"""Counting over many test images with the explorer's state: what notebook 05 measures beyond one
test image (the share of patched training images among the proponents or opponents), and a
text listing of ranked training images."""
from __future__ import annotations

__all__ = ["patched_share", "format_items", "patched_pairs"]

SIDES = ("proponents", "opponents")


def patched_share(state, test_indices, side: str = "proponents", **settings) -> float:
    """Mean over the test images ``test_indices`` (of ``settings.get("test_set")``, default the
    state's) of the share of patched training images among the top-k ``side`` (``"proponents"``
    or ``"opponents"``) that :meth:`ExplorerState.result` ranks with ``settings`` (e.g.
    ``label="true"``, ``test_set="clean"``). Ranking only (``maps=False``): cheap."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    test_indices = list(test_indices)
    if not test_indices:
        raise ValueError("test_indices is empty: give at least one test image")
    shares = []
    for i in test_indices:
        items = getattr(state.result(test_index=i, maps=False, **settings), side)
        if any(it.patched is None for it in items):
            raise ValueError("the training set has no patch flags: nothing to count")
        shares.append(sum(bool(it.patched) for it in items) / len(items))
    return sum(shares) / len(shares)


def format_items(items) -> str:
    """One line per ranked training image: index, label, whether it carries the patch, score."""
    return "\n".join(f"  #{it.index:<6} {it.label_name:<12} {'patch' if it.patched else '-':<6} {it.score:+.3f}"
                     for it in items)


def patched_pairs(state, test_indices, k: int = 4, search: int = 3):
    """The localisation protocol's pairs from the explorer's ranking (its gradient index, so no
    pass over the training set): for each test image of ``test_indices`` (patched test set), its
    ``k`` best Grad-Cos proponents that carry the patch, among the top ``search × k`` (exactly
    re-scored). Returns ``(test_idx [Q], train_idx [Q, k])`` as in
    :func:`tfa_tutorial.evaluation.pairs.select_pairs`, ready for
    :func:`tfa_tutorial.evaluation.evidence.localisation_evidence`. ValueError when a test image
    has fewer than ``k`` patched proponents there."""
    import torch

    test_indices = [int(q) for q in test_indices]
    rows = []
    for q in test_indices:
        items = state.result(test_index=q, test_set="patched", k=search * k, label="predicted", maps=False).proponents
        patched = [it.index for it in items if it.patched][:k]
        if len(patched) < k:
            raise ValueError(f"test image {q}: only {len(patched)} patched training images among its top-{search * k} "
                             f"proponents; lower k or raise search")
        rows.append(patched)
    return torch.tensor(test_indices), torch.tensor(rows)
