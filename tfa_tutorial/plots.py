"""Matplotlib figures for the notebooks: image grids, signed map overlays, ranked training images.

Views only: every number shown is computed by the numeric core and passed in. Signed maps are
drawn red (+, supports the score) / blue (−), symmetric around 0, each panel scaled to its own
maximum |value| unless ``vmax`` is given. Masks are drawn as a green outline.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["to_display", "show_image", "show_map", "image_grid", "map_rows", "bar_table"]


def to_display(img: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` in [0, 1] → an array matplotlib shows (H×W gray or H×W×3)."""
    img = torch.as_tensor(img).detach().cpu().float()
    if img.ndim == 3 and img.shape[0] == 1:
        return img[0].numpy()
    if img.ndim == 3:
        return img.permute(1, 2, 0).clamp(0, 1).numpy()
    return img.numpy()


def _outline(ax, mask: torch.Tensor | None, color="lime"):
    if mask is not None and torch.as_tensor(mask).any():
        ax.contour(torch.as_tensor(mask).float().cpu().numpy(), levels=[0.5], colors=color, linewidths=1.2)


def show_image(ax, img, title: str | None = None, mask=None):
    """An image with an optional mask outline and title, no ticks."""
    arr = to_display(img)
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
    _outline(ax, mask)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def show_map(ax, m, img=None, title: str | None = None, mask=None, vmax: float | None = None, alpha: float = 0.75, signed=True):
    """A reduced map ``[H, W]`` as red/blue (signed) or hot (non-negative) overlay on a gray image."""
    m = torch.as_tensor(m).detach().cpu().float().numpy()
    if img is not None:
        base = to_display(img)
        ax.imshow(base if base.ndim == 2 else base.mean(-1), cmap="gray", vmin=0, vmax=1)
    v = vmax if vmax is not None else (float(np.abs(m).max()) or 1.0)
    if signed:
        im = ax.imshow(m, cmap="bwr", vmin=-v, vmax=v, alpha=alpha if img is not None else 1.0)
    else:
        im = ax.imshow(m, cmap="hot", vmin=0, vmax=v, alpha=alpha if img is not None else 1.0)
    _outline(ax, mask)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def image_grid(images, titles: Sequence[str] | None = None, masks=None, ncols: int = 8, size: float = 1.4, suptitle: str | None = None):
    """A grid of images ``[N, C, H, W]``; returns the figure."""
    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            show_image(ax, images[i], titles[i] if titles else None, None if masks is None else masks[i])
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def map_rows(images, rows: dict, col_titles: Sequence[str] | None = None, masks=None, size: float = 1.5,
             suptitle: str | None = None, signed: bool = True, first_col=None, first_col_title: str = ""):
    """One row per method: ``rows = {"TFA": maps[B,H,W], ...}`` over the images ``[B, C, H, W]``,
    shown above them; optionally a first column (e.g. the test image) on the image row."""
    b = len(images)
    extra = 1 if first_col is not None else 0
    fig, axes = plt.subplots(1 + len(rows), b + extra, figsize=(size * (b + extra), size * (1 + len(rows)) + 0.4), squeeze=False)
    if extra:
        show_image(axes[0, 0], first_col, first_col_title)
        for ax in axes[1:, 0]:
            ax.axis("off")
    for j in range(b):
        show_image(axes[0, j + extra], images[j], col_titles[j] if col_titles else None, None if masks is None else masks[j])
    for r, (name, maps) in enumerate(rows.items(), start=1):
        for j in range(b):
            show_map(axes[r, j + extra], maps[j], images[j], mask=None if masks is None else masks[j], signed=signed)
        axes[r, extra].set_ylabel(name, fontsize=8)
        axes[r, extra].yaxis.label.set_visible(True)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def bar_table(table: dict, metric: str, chance: float | None = None, title: str = "", ylabel: str | None = None):
    """Grouped bars: ``table = {method: {"patched": value, "clean": value}}`` for one metric."""
    names = list(table)
    groups = list(next(iter(table.values())))
    x = np.arange(len(names))
    w = 0.8 / len(groups)
    fig, ax = plt.subplots(figsize=(min(0.8 * len(names) + 2, 11), 3.4))
    for g, grp in enumerate(groups):
        ax.bar(x + g * w - 0.4 + w / 2, [table[n][grp] for n in names], w, label=grp)
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label="chance (mask area)")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel or metric)
    ax.set_title(title or metric)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
