"""Matplotlib figures for the notebooks: image grids, signed map overlays, ranked training images.

Views only: every number shown is computed by the numeric core and passed in. One style for map
figures: signed maps are drawn red (+, supports the score) / blue (−) on a colour scale symmetric
around 0; in :func:`map_rows` each row (one method) shares one scale with a colour bar, and the
maps are drawn on their own (not over the image, so a white patch cannot be mistaken for zero),
with the patch as a green outline. Text is at least 9 pt.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = ["to_display", "show_image", "show_map", "image_grid", "ranked_rows", "map_rows", "bar_table", "advantage_curves",
           "robustness_bars",
           "FONT"]

FONT = 9  # the smallest text size of every figure


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
        ax.set_title(title, fontsize=FONT)
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
        ax.set_title(title, fontsize=FONT)
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
        fig.suptitle(suptitle, fontsize=FONT + 1)
    fig.tight_layout()
    return fig


def ranked_rows(query, query_title: str, rows: dict, size: float = 1.45, suptitle: str | None = None):
    """One figure: the query (test) image on the left, and one row per ranking on the right.

    ``rows = {"Top Grad-Cos proponents": (images [k, C, H, W], titles [k], masks [k, H, W] or None), ...}``."""
    k = max(len(v[0]) for v in rows.values())
    fig, axes = plt.subplots(len(rows), k + 1, figsize=(size * (k + 1) + 0.4, (size + 0.55) * len(rows) + 0.5),
                             squeeze=False, layout="constrained")
    for r, (name, (images, titles, masks)) in enumerate(rows.items()):
        if r == 0:
            show_image(axes[0, 0], query, query_title)
        else:
            axes[r, 0].axis("off")
        for j in range(k):
            ax = axes[r, j + 1]
            if j < len(images):
                show_image(ax, images[j], titles[j], None if masks is None else masks[j])
            else:
                ax.axis("off")
        axes[r, 1].set_ylabel(name, fontsize=FONT + 1)
    if suptitle:
        fig.suptitle(suptitle, fontsize=FONT + 2)
    return fig


def map_rows(images, rows: dict, col_titles: Sequence[str] | None = None, masks=None, size: float = 1.6,
             suptitle: str | None = None, signed: bool = True, first_col=None, first_col_title: str = "",
             overlay: bool = False):
    """One row per method: ``rows = {"TFA": maps[B,H,W], ...}`` over the images ``[B, C, H, W]``,
    shown above them; optionally a first column (e.g. the test image) on the image row.

    Each row shares one colour scale (symmetric around 0 for signed maps) over its B maps, shown
    by a colour bar at the row's end, so that a map's strength can be compared across images.
    Maps are drawn on their own unless ``overlay`` (then over the gray image, 60% opaque); the
    patch masks are outlined in green on every panel."""
    b = len(images)
    extra = 1 if first_col is not None else 0
    fig, axes = plt.subplots(1 + len(rows), b + extra, figsize=(size * (b + extra) + 0.9, size * (1 + len(rows)) + 0.6),
                             squeeze=False, layout="constrained")
    if extra:
        show_image(axes[0, 0], first_col, first_col_title)
        for ax in axes[1:, 0]:
            ax.axis("off")
    for j in range(b):
        show_image(axes[0, j + extra], images[j], col_titles[j] if col_titles else None, None if masks is None else masks[j])
    for r, (name, maps) in enumerate(rows.items(), start=1):
        maps = torch.as_tensor(maps).detach().cpu().float()
        vmax = float(maps.abs().max()) or 1.0
        for j in range(b):
            im = show_map(axes[r, j + extra], maps[j], images[j] if overlay else None, mask=None if masks is None else masks[j],
                          signed=signed, vmax=vmax, alpha=0.6)
        axes[r, extra].set_ylabel(name, fontsize=FONT)
        axes[r, extra].yaxis.label.set_visible(True)
        cbar = fig.colorbar(im, ax=list(axes[r, extra:]), shrink=0.9, pad=0.01)
        cbar.ax.tick_params(labelsize=FONT)
        cbar.ax.yaxis.get_offset_text().set_fontsize(FONT)
    if suptitle:
        fig.suptitle(suptitle, fontsize=FONT + 2)
    return fig


def bar_table(table: dict, metric: str, chance: float | None = None, title: str = "", ylabel: str | None = None):
    """Grouped bars: ``table = {method: {"patched": value, "clean": value}}`` for one metric, each
    bar labelled with its value."""
    names = list(table)
    groups = list(next(iter(table.values())))
    x = np.arange(len(names))
    w = 0.8 / len(groups)
    fig, ax = plt.subplots(figsize=(min(0.9 * len(names) + 3.5, 12), 3.6))
    for g, grp in enumerate(groups):
        bars = ax.bar(x + g * w - 0.4 + w / 2, [table[n][grp] for n in names], w, label=grp)
        ax.bar_label(bars, fmt="%.2f", fontsize=FONT, padding=1)
    if chance is not None:
        ax.axhline(chance, color="k", ls="--", lw=1, label="chance (mask area)")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=FONT)
    ax.set_ylabel(ylabel or metric)
    ax.set_title(title or metric)
    ax.margins(y=0.15)  # room for the value labels
    ax.legend(fontsize=FONT, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def advantage_curves(curves: dict, title: str = ""):
    """The one-step test (:func:`tfa_tutorial.evaluation.faithfulness.faithfulness_curves` with a
    dict of maps) as two panels, insertion and deletion, each map's **advantage over k random
    pixels** against k: up = more faithful than random in *both* panels (insertion: the map's pixels
    lower the test loss more than random ones; deletion: removing them hurts the step more). The
    grey band is ±1 sd of the random draws around 0. Returns the figure."""
    names = list(curves)
    first = curves[names[0]]
    ks = torch.as_tensor(first["k"]).tolist()
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 3.8), layout="constrained")
    for ax, mode in zip(axes, ("insertion", "deletion")):
        sd = torch.as_tensor(first[mode]["random_std"]).double().numpy()
        ax.fill_between(ks, -sd, sd, color="k", alpha=0.15, label="random pixels ±1 sd")
        ax.axhline(0.0, color="k", lw=1, ls="--")
        for n in names:
            ax.plot(ks, torch.as_tensor(curves[n][f"{mode}_advantage"]).double().numpy(), marker="o", ms=4, label=n,
                    ls=":" if n.startswith("control") else "-")
        ax.set_xlabel("k pixels " + ("kept" if mode == "insertion" else "deleted") + " per training image", fontsize=FONT)
        ax.set_ylabel("advantage over random (ΔL)", fontsize=FONT)
        ax.set_title(f"{mode}: up = more faithful than random", fontsize=FONT + 1)
        ax.tick_params(labelsize=FONT)
    axes[1].legend(fontsize=FONT, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title, fontsize=FONT + 1)
    return fig


def robustness_bars(rows: list[dict], title: str = ""):
    """The robustness verdict as a figure: one panel per configuration, one group of three horizontal
    bars per objection (rows of :func:`tfa_tutorial.evaluation.verdict.robustness_rows`) — the
    paper's map, the best test-dependent map and the best two-step map, each its gain over the clean
    model (mean over seeds, error bar ±1 sd where there are several seeds). Right = more model-specific
    mass on the patch; all panels share the gain axis. Returns the figure."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    labels = list(dict.fromkeys(r["label"] for r in rows))
    series = (("paper's map", "paper gain", "0.6"), ("best test-dependent map", "tfa gain", "tab:blue"),
              ("best two-step map", "two gain", "tab:orange"))
    fig, axes = plt.subplots(1, len(configs), figsize=(5.2 * len(configs) + 2.6, 0.42 * len(labels) + 1.6),
                             sharex=True, sharey=True, layout="constrained", squeeze=False)
    y = np.arange(len(labels))
    h = 0.8 / len(series)
    for ax, config in zip(axes[0], configs):
        by_label = {r["label"]: r for r in rows if r["config"] == config}
        for k, (name, key, color) in enumerate(series):
            vals, errs = [], []
            for lab in labels:
                leaf = by_label.get(lab, {}).get(key)
                vals.append(np.nan if leaf is None else leaf["mean"])
                errs.append(0.0 if leaf is None or leaf["n"] < 2 or leaf["sd"] != leaf["sd"] else leaf["sd"])
            ax.barh(y - 0.4 + (k + 0.5) * h, vals, h, xerr=errs, color=color, label=name,
                    error_kw={"lw": 0.8, "capsize": 1.5})
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_title(f"{config}", fontsize=FONT + 1)
        ax.set_xlabel("gain in mass on the patch (shortcut − clean model)", fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(y)
    axes[0][0].set_yticklabels(labels, fontsize=FONT)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(fontsize=FONT, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title, fontsize=FONT + 1)
    return fig
