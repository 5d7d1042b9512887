"""How the explorer draws: colours, legends, PNG tiles of images and map overlays, HTML snippets,
and a static matplotlib figure of one result (no widgets; :mod:`tfa_tutorial.explorer.view` is the view)."""
from __future__ import annotations

import html
import io

import numpy as np
import torch
from PIL import Image as PILImage

from .results import Detail, ExplorerResult, TrainItem
from .settings import (
    IG_STEPS,
    MAP_METHODS,
    SCORES,
    SMOOTHGRAD_METHODS,
    TWO_STEP_OCCLUSION,
)

__all__ = ["image_png", "overlay_png", "overlay_rgb", "explorer_figure", "OVERLAY_LEGEND", "OWN_LABEL_LEGEND", "METHOD_LEGENDS",
           "SIGN_LABELS", "LIST_LABELS"]

# overlay colours (RGB in [0, 1]): positive = supports the score, negative = opposes it
POSITIVE = np.array([0.84, 0.10, 0.11])
NEGATIVE = np.array([0.13, 0.40, 0.85])
ABSOLUTE = np.array([0.58, 0.0, 0.83])
PATCH = np.array([0.0, 0.85, 0.2])
TILE_SCALE = 4  # 28 px -> 112 px tiles
TEST_SCALE = 6
DETAIL_SCALE = 6

OVERLAY_LEGEND = (
    "<span style='color:#d61a1c'><b>red</b></span> = supports the score, "
    "<span style='color:#2166d9'><b>blue</b></span> = opposes it (how, depends on the map method below); "
    "<span style='color:#00b030'><b>green box</b></span> = the planted patch (ground truth). "
    "Each tile is scaled to its own largest |value|."
)

# the same for maps of the training image's own label (they explain no score)
OWN_LABEL_LEGEND = (
    "<span style='color:#d61a1c'><b>red</b></span> = used for the training image's own label, "
    "<span style='color:#2166d9'><b>blue</b></span> = speaks against it; "
    "<span style='color:#00b030'><b>green box</b></span> = the planted patch (ground truth). "
    "Each tile is scaled to its own largest |value|."
)

# what a positive (red) value means, per map method; no map is multiplied by sign(score)
METHOD_LEGENDS = {
    "two_step_occlusion": f"map = two-step occlusion ({TWO_STEP_OCCLUSION['window']}×{TWO_STEP_OCCLUSION['window']} "
                          f"windows, stride {TWO_STEP_OCCLUSION['stride']}, fill 0) of the training image's own "
                          "label: red = occluding this region lowers the training image's own-label logit (what in "
                          "this image the model uses for its label). It does not depend on the test image: the "
                          "ranking (the Grad-Cos / Grad-Dot score) is what connects it to the test image "
                          "(n, σ do not apply).",
    "gradient": "map = gradient of the score w.r.t. the training image's pixels (SmoothGrad n, σ): "
                "red = brightening the pixel raises the score.",
    "gradient_x_input": "map = gradient × input: each pixel's first-order share of the score (n, σ do not apply).",
    "integrated_gradients": f"map = integrated gradients from a black image, {IG_STEPS} steps: each pixel's share of the "
                            "score's change along the path (n, σ do not apply).",
    "decomposition": "map = exact decomposition of the score over the training image's positions: it sums to the "
                     "shown score; red adds to it, blue subtracts (n, σ do not apply).",
}

SIGN_LABELS = {"signed": "signed (+ red, − blue)", "positive": "positive part", "negative": "negative part", "absolute": "absolute value"}
LIST_LABELS = {"flipped": "shortcut-flipped", "misclassified": "misclassified", "correct": "correct"}


# ---------------------------------------------------------------------- PNG rendering


def _gray(img: torch.Tensor) -> np.ndarray:
    """``[C, H, W]`` in [0, 1] → float RGB ``[H, W, 3]``."""
    a = torch.as_tensor(img).detach().cpu().float().clamp(0, 1).numpy()
    if a.ndim == 2:
        a = a[None]
    if a.shape[0] == 1:
        return np.repeat(a[0][..., None], 3, axis=2)
    return np.moveaxis(a[:3], 0, -1)


def _upscale(rgb: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


def _outline(rgb: np.ndarray, mask, scale: int, color=PATCH) -> np.ndarray:
    """Draw the border of ``mask`` ``[H, W]`` on an upscaled image, 1 px thick (2 px for scale ≥ 6)."""
    if mask is None:
        return rgb
    m = torch.as_tensor(mask).detach().cpu().bool().numpy()
    if not m.any():
        return rgb
    big = _upscale(m[..., None], scale)[..., 0]
    inner = big.copy()
    width = 2 if scale >= 6 else 1
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        shrunk[0, :] = shrunk[-1, :] = False
        shrunk[:, 0] = shrunk[:, -1] = False
        inner = shrunk
    border = big & ~inner
    out = rgb.copy()
    out[border] = color
    return out


def overlay_rgb(img: torch.Tensor, m: torch.Tensor, sign: str = "signed", opacity: float = 0.7,
                vmax: float | None = None) -> np.ndarray:
    """A reduced map ``[H, W]`` over the gray image ``[C, H, W]``: float RGB ``[H, W, 3]``.

    Colour by sign (red +, blue −; one colour for a non-negative reduction), alpha =
    ``opacity`` × |value| / ``vmax`` (default: the map's largest |value|), so zero is transparent."""
    base = _gray(img).mean(-1, keepdims=True).repeat(3, -1)
    a = torch.as_tensor(m).detach().cpu().float().numpy()
    v = float(np.abs(a).max()) if vmax is None else float(vmax)
    if not np.isfinite(v) or v <= 0:
        return base
    w = np.clip(np.abs(a) / v, 0, 1) ** 0.75 * float(opacity)
    if sign == "signed":
        color = np.where((a >= 0)[..., None], POSITIVE, NEGATIVE)
    elif sign == "positive":
        color = np.broadcast_to(POSITIVE, base.shape)
    elif sign == "negative":
        color = np.broadcast_to(NEGATIVE, base.shape)
    else:
        color = np.broadcast_to(ABSOLUTE, base.shape)
    return base * (1 - w[..., None]) + color * w[..., None]


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)).save(buf, format="png")
    return buf.getvalue()


def image_png(img: torch.Tensor, mask=None, scale: int = TILE_SCALE) -> bytes:
    """PNG bytes of an image ``[C, H, W]`` in [0, 1], upscaled (nearest) with the mask outlined."""
    return _png(_outline(_upscale(_gray(img), scale), mask, scale))


def overlay_png(img: torch.Tensor, m: torch.Tensor, sign: str = "signed", opacity: float = 0.7, mask=None,
                scale: int = TILE_SCALE) -> bytes:
    """PNG bytes of :func:`overlay_rgb`, upscaled, with the patch mask outlined."""
    return _png(_outline(_upscale(overlay_rgb(img, m, sign, opacity), scale), mask, scale))


# ---------------------------------------------------------------------- HTML snippets


def _esc(s) -> str:
    return html.escape(str(s))


def _probs_html(test) -> str:
    rows = []
    for name, p in test.top_classes(3):
        rows.append(
            f"<tr><td style='padding-right:6px'>{_esc(name)}</td>"
            f"<td style='width:110px'><div style='background:#7a7a7a;height:10px;width:{max(1, round(100 * p))}px'></div></td>"
            f"<td style='text-align:right'>{100 * p:.1f}%</td></tr>"
        )
    return "<table style='font-size:12px;line-height:1.2'>" + "".join(rows) + "</table>"


def _test_html(r: ExplorerResult) -> str:
    t = r.test
    verdict = "<span style='color:#1a7f37'>correct</span>" if t.correct else "<span style='color:#c62828'><b>wrong</b></span>"
    flip = " · <b style='color:#b26a00'>shortcut-flipped</b>" if t.flipped else ""
    explained = "the prediction" if t.label_mode == "predicted" else "the true label"
    return (
        f"<div style='font-size:13px;line-height:1.45'>"
        f"<b>Test image #{t.index}</b> ({_esc(t.test_set)} test set){flip}<br>"
        f"true: <b>{_esc(t.label_name)}</b> · predicted: <b>{_esc(t.pred_name)}</b> ({verdict})<br>"
        f"explaining {explained}: <b>{_esc(t.target_name)}</b> · score: {SCORES[r.settings.score]}"
        f" · maps: {_esc(MAP_METHODS[r.settings.method])}"
        f"{_probs_html(t)}</div>"
    )


def _item_html(item: TrainItem, score_name: str) -> str:
    if item.patched is None:
        patch = ""
    elif item.patched:
        patch = "<span style='background:#00b030;color:white;padding:0 3px;border-radius:3px'>patch</span>"
    else:
        patch = "<span style='color:#777'>no patch</span>"
    return (
        f"<div style='font-size:11px;line-height:1.3;text-align:center'>"
        f"#{item.index} · {_esc(item.label_name)}<br>{patch} · {score_name} {item.score:+.3f}</div>"
    )


def _detail_html(d: Detail, r: ExplorerResult) -> str:
    patch = "" if d.patched is None else (" · <b style='color:#00a02c'>carries the patch</b>" if d.patched else " · no patch")
    return (
        f"<div style='font-size:13px'><b>Training image #{d.index}</b> · label {_esc(d.label_name)}{patch} · "
        f"{SCORES[r.settings.score]} {d.score:+.3f} for test image #{r.test.index} "
        f"(explaining {_esc(r.test.target_name)}). Map method: <b>{_esc(MAP_METHODS[d.method])}</b>. Reduction: {_esc(SIGN_LABELS[r.settings.sign])}, channels "
        f"{_esc(r.settings.channels)}.</div>"
    )


def _message_html(text: str) -> str:
    return (
        "<div style='background:#fdecea;color:#8a1c1c;border:1px solid #f5c2c0;padding:4px 8px;"
        f"border-radius:4px;font-size:13px'>{html.escape(text)}</div>"
    )


def explorer_figure(result: ExplorerResult, size: float = 1.6):
    """The explorer's view as a static matplotlib figure (the fallback for readers without
    widgets), in the course's one map style (:mod:`tfa_tutorial.teaching.plots`): the test image,
    then the proponents and the opponents, each image above its map; all maps share one colour
    scale (symmetric around 0 for signed maps) shown by a colour bar, the patch outlined in green,
    text ≥ 9 pt. Returns the (pyplot) figure; show it with ``plt.show()``."""
    import matplotlib.pyplot as plt
    import torch

    from ..teaching.plots import FONT, show_image, show_map

    r = result
    if r.test is None:
        raise ValueError(f"the result has nothing to show: {r.message or 'no test image'}")
    s = r.settings
    k = max(len(r.proponents), len(r.opponents), 1)
    fig, axes = plt.subplots(4, k + 1, figsize=(size * (k + 1) + 1.0, size * 4 * 1.2 + 0.6), squeeze=False,
                             layout="constrained")
    t = r.test
    show_image(axes[0, 0], t.image, f"test #{t.index}\ntrue {t.label_name}\npred {t.pred_name} ({float(t.probs[t.pred]):.0%})")
    for ax in axes[1:, 0]:
        ax.axis("off")
    axes[2, 0].text(0.0, 0.5, f"explaining\n{t.target_name}\n({t.label_mode})", fontsize=FONT, va="center",
                    transform=axes[2, 0].transAxes)
    signed = s.sign == "signed"
    shown = [it.shown for it in r.proponents + r.opponents if it.shown is not None]
    vmax = float(torch.stack([torch.as_tensor(m).abs().max() for m in shown]).max()) if shown else 1.0
    score_name = SCORES[s.score]
    im = None
    for row, (name, items) in enumerate((("proponents", r.proponents), ("opponents", r.opponents))):
        for j in range(k):
            ax_img, ax_map = axes[2 * row, j + 1], axes[2 * row + 1, j + 1]
            if j >= len(items):
                ax_img.axis("off")
                ax_map.axis("off")
                continue
            it = items[j]
            patch = "" if it.patched is None else (" · patch" if it.patched else "")
            show_image(ax_img, it.image, f"#{it.index}{patch}\n{it.label_name}\n{score_name} {it.score:+.2f}", mask=it.mask)
            ax_img.title.set_color("#00802a" if it.patched else "black")
            if it.shown is None:
                ax_map.axis("off")
                continue
            im = show_map(ax_map, it.shown, mask=it.mask, vmax=vmax or 1.0, signed=signed)
        axes[2 * row, 1].set_ylabel(name, fontsize=FONT)
        axes[2 * row + 1, 1].set_ylabel("map", fontsize=FONT)
    if im is not None:
        cbar = fig.colorbar(im, ax=list(axes[1:, 1:].flat), shrink=0.6, pad=0.01)
        cbar.ax.tick_params(labelsize=FONT)
    if s.method not in SMOOTHGRAD_METHODS:
        n_desc = MAP_METHODS[s.method]
    else:
        n_desc = f"SmoothGrad n={s.n_samples}, σ={s.noise:.2f}" if s.n_samples else "raw gradient"
    fig.suptitle(f"Top-{k} proponents and opponents by {score_name}; map: {n_desc} ({s.sign}; "
                 f"{'red +, blue −' if signed else 'brighter = larger'}; one scale; green box = patch)", fontsize=FONT + 1)
    return fig
