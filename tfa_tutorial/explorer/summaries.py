"""Counting over many test images with the explorer's state: what notebook 05 measures beyond one
test image (the share of patched training images among the proponents or opponents), and a
text listing of ranked training images."""
from __future__ import annotations

__all__ = ["patched_share", "format_items"]

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
