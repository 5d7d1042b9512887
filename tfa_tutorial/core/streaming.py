"""Streaming over a data set in chunks, with an optional progress bar: the loop every pass over the
training set shares (per-sample gradients, Grad-Cos, the gradient index, the evidence loops)."""
from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

__all__ = ["chunks", "with_progress"]

T = TypeVar("T")


def chunks(n: int, size: int) -> list[slice]:
    """``[slice(0, size), slice(size, 2·size), ...]`` covering ``range(n)``; the last may be shorter."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def with_progress(items: Iterable[T], desc: str, show: bool = True, leave: bool = False) -> Iterator[T]:
    """``items`` behind a tqdm progress bar labelled ``desc`` when ``show``, else ``items`` as they are."""
    if not show:
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, desc=desc, leave=leave))
