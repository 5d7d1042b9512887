"""Feature-attribution methods for any scalar function of one image, f(x, y) → R.

TFA applies them to the Grad-Cos score of a training image (:mod:`.tfa`), the two-step baseline
and test-image saliency apply them to a logit (:mod:`.baselines`). Sharing one engine makes every
comparison like-for-like: the same method, noise, steps and chunking, only f differs.

Methods (``method=``):

- ``"gradient"``: ∇_x f(x). With ``n_samples > 0``: SmoothGrad (Smilkov et al. 2017),
  (1/n) Σ_k ∇_x f(x + ε_k), ε_k ~ N(0, σ²), σ = ``noise`` × (max x − min x) of each image
  (zennit's / PAIR saliency's convention; Captum's ``stdevs`` is an absolute σ instead).
- ``"gradient_x_input"``: x ⊙ (SmoothGrad) gradient.
- ``"integrated_gradients"``: (x − x₀) ⊙ (1/m) Σ_k ∇f(x₀ + α_k (x − x₀)), α_k = (k − ½)/m
  (midpoint rule). Promises completeness Σ map ≈ f(x) − f(x₀); see :func:`completeness_gap`.
- ``"occlusion"``: f(x) − f(x with a window filled), averaged over the windows covering a pixel.

``fn`` must be composable with ``torch.func`` (no ``.item()``, no in-place on inputs).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from ..core.validation import check_int, check_real

__all__ = ["METHODS", "attribute", "ig_baseline", "completeness_gap", "noise_sigma"]

METHODS = ("gradient", "gradient_x_input", "integrated_gradients", "occlusion")

ScalarFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def noise_sigma(x: torch.Tensor, noise: float, noise_range: float | None = None) -> torch.Tensor:
    """Absolute SmoothGrad σ per image ``[B, 1, 1, 1]``: ``noise`` × input range."""
    noise = check_real(noise, "noise", 0)
    if noise_range is not None:
        noise_range = check_real(noise_range, "noise_range", 0)
        return torch.full((x.shape[0],) + (1,) * (x.ndim - 1), noise * noise_range, dtype=x.dtype, device=x.device)
    flat = x.reshape(x.shape[0], -1)
    rng = (flat.max(1).values - flat.min(1).values).clamp_min(torch.finfo(x.dtype).eps)
    return (noise * rng).reshape((-1,) + (1,) * (x.ndim - 1))


def ig_baseline(x: torch.Tensor, baseline="black") -> torch.Tensor:
    """Reference image x₀ for integrated gradients, same shape as ``x`` ``[B, C, H, W]``:
    ``"black"`` (zeros), ``"mean"`` (each image's mean value), ``"blur"`` (Gaussian blur, σ = 2 px)
    or a tensor broadcastable to ``x``."""
    if isinstance(baseline, torch.Tensor):
        return baseline.to(x).expand_as(x)
    if baseline == "black":
        return torch.zeros_like(x)
    if baseline == "mean":
        return x.mean(dim=tuple(range(1, x.ndim)), keepdim=True).expand_as(x).clone()
    if baseline == "blur":
        r = torch.arange(-6, 7, dtype=x.dtype, device=x.device)
        k = torch.exp(-(r**2) / (2 * 2.0**2))
        k = k / k.sum()
        c = x.shape[1]
        y = F.conv2d(F.pad(x, (6, 6, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        return F.conv2d(F.pad(y, (0, 0, 6, 6), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    raise ValueError(f"baseline must be 'black', 'mean', 'blur' or a tensor, got {baseline!r}")


def _batched_grad(fn: ScalarFn, xs: torch.Tensor, ys: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """∇_x fn for each row, chunk by chunk: ``fn.batched_grad(x_chunk, y_chunk)`` when ``fn`` has one
    (it may return ``None`` to decline), else ``vmap(grad(fn))``."""
    fast = getattr(fn, "batched_grad", None)
    g = vmap(grad(fn))
    out = []
    for s in range(0, len(xs), chunk_size):
        r = fast(xs[s : s + chunk_size], ys[s : s + chunk_size]) if fast is not None else None
        out.append(r if r is not None else g(xs[s : s + chunk_size], ys[s : s + chunk_size]))
    return torch.cat(out)


def _batched_value(fn: ScalarFn, xs: torch.Tensor, ys: torch.Tensor, chunk_size: int) -> torch.Tensor:
    f = vmap(fn)
    with torch.no_grad():
        return torch.cat([f(xs[s : s + chunk_size], ys[s : s + chunk_size]) for s in range(0, len(xs), chunk_size)])


def _smooth_grad(fn, x, y, n_samples, noise, noise_range, chunk_size, generator):
    if n_samples == 0:
        return _batched_grad(fn, x, y, chunk_size)
    sigma = noise_sigma(x, noise, noise_range)
    eps = torch.randn((n_samples,) + tuple(x.shape), generator=generator, dtype=x.dtype).to(x.device)
    noisy = (x.unsqueeze(0) + sigma.unsqueeze(0) * eps).transpose(0, 1)  # [B, n, C, H, W]
    flat = noisy.reshape((-1,) + tuple(x.shape[1:]))
    g = _batched_grad(fn, flat, y.repeat_interleave(n_samples), chunk_size)
    return g.reshape(noisy.shape).mean(1)


def _pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints ``(h, w)``, each ≥ 1."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")
        return check_int(value[0], f"{name}[0]"), check_int(value[1], f"{name}[1]")
    v = check_int(value, name)
    return v, v


def _occlusion(fn, x, y, window, stride, fill, chunk_size):
    b, c, h, w = x.shape
    wh, ww = _pair(window, "occlusion window")
    sh, sw = _pair(stride, "occlusion stride")
    if wh > h or ww > w:
        raise ValueError(f"occlusion window {(wh, ww)} is larger than the image {(h, w)}")
    rows = list(range(0, h - wh + 1, sh))
    cols = list(range(0, w - ww + 1, sw))
    if rows[-1] != h - wh:
        rows.append(h - wh)
    if cols[-1] != w - ww:
        cols.append(w - ww)
    masks = torch.zeros(len(rows) * len(cols), h, w, dtype=x.dtype, device=x.device)
    for k, (r, q) in enumerate((r, q) for r in rows for q in cols):
        masks[k, r : r + wh, q : q + ww] = 1
    out = torch.zeros_like(x)
    base = _batched_value(fn, x, y, chunk_size)  # [B]
    cover = masks.sum(0).clamp_min(1)
    for i in range(b):
        occluded = x[i].unsqueeze(0) * (1 - masks[:, None]) + fill * masks[:, None]  # [M, C, H, W]
        vals = _batched_value(fn, occluded, y[i].expand(len(masks)), chunk_size)  # [M]
        drop = base[i] - vals
        out[i] = ((drop[:, None, None] * masks).sum(0) / cover).expand(c, h, w)
    return out


def attribute(
    fn: ScalarFn,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    method: str = "gradient",
    n_samples: int = 0,
    noise: float = 0.15,
    noise_range: float | None = None,
    baseline="black",
    steps: int = 32,
    window: int | tuple[int, int] = 4,
    stride: int | tuple[int, int] = 2,
    fill: float = 0.0,
    chunk_size: int = 64,
    seed: int | None = 0,
) -> torch.Tensor:
    """Attribution maps ``[B, C, H, W]`` of ``fn(x_b, y_b)`` for each input, by ``method``.

    Args:
        fn: scalar function of one image ``[C, H, W]`` and its label ``[]``.
        inputs: ``[B, C, H, W]``; targets: ``[B]``.
        n_samples, noise, noise_range: SmoothGrad (``gradient`` and ``gradient_x_input`` only).
        baseline, steps: integrated gradients.
        window, stride, fill: occlusion.
        chunk_size: images (× noise samples, × path steps) per ``vmap`` call.
        seed: seeds the SmoothGrad noise (``None``: torch's global generator).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {METHODS}")
    n_samples = check_int(n_samples, "n_samples", 0)
    if n_samples and method not in ("gradient", "gradient_x_input"):
        raise ValueError(f"n_samples (SmoothGrad) applies to 'gradient' and 'gradient_x_input', not {method!r}")
    chunk_size = check_int(chunk_size, "chunk_size")
    noise = check_real(noise, "noise", 0)
    fill = check_real(fill, "occlusion fill")
    if seed is not None:
        seed = check_int(seed, "seed", None)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    if method == "gradient":
        return _smooth_grad(fn, inputs, targets, n_samples, noise, noise_range, chunk_size, generator)
    if method == "gradient_x_input":
        return inputs * _smooth_grad(fn, inputs, targets, n_samples, noise, noise_range, chunk_size, generator)
    if method == "integrated_gradients":
        steps = check_int(steps, "steps (integrated gradients)")
        x0 = ig_baseline(inputs, baseline)
        alphas = (torch.arange(steps, dtype=inputs.dtype, device=inputs.device) + 0.5) / steps
        path = x0.unsqueeze(1) + alphas.view(1, -1, 1, 1, 1) * (inputs - x0).unsqueeze(1)  # [B, m, C, H, W]
        g = _batched_grad(fn, path.reshape((-1,) + tuple(inputs.shape[1:])), targets.repeat_interleave(steps), chunk_size)
        return (inputs - x0) * g.reshape(path.shape).mean(1)
    return _occlusion(fn, inputs, targets, window, stride, fill, chunk_size)


def completeness_gap(fn: ScalarFn, inputs, targets, maps, baseline="black", chunk_size: int = 64) -> torch.Tensor:
    """Relative completeness error per image ``[B]``: |Σ map − (f(x) − f(x₀))| / |f(x) − f(x₀)|.

    Integrated gradients promise 0 up to the Riemann error for smooth f; for ReLU networks and
    scores such as Grad-Cos the gap stays large where f jumps along the path."""
    chunk_size = check_int(chunk_size, "chunk_size")
    x0 = ig_baseline(inputs, baseline)
    delta = _batched_value(fn, inputs, targets, chunk_size) - _batched_value(fn, x0, targets, chunk_size)
    total = maps.reshape(len(maps), -1).sum(1)
    return (total - delta).abs() / delta.abs().clamp_min(torch.finfo(delta.dtype).tiny)
