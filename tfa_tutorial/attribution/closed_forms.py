"""Closed forms for softmax regression, for teaching and as an independent check of autograd.

For f(x) = W x̃ with x̃ = [vec(x); 1] (``SoftmaxRegression`` with bias) and cross-entropy loss,
the per-sample gradient is the outer product g = δ x̃ᵀ with δ = p − e_y (p = softmax(W x̃)), so

    S_GC(z_i, z_j) = cos(δ_i, δ_j) · cos(x̃_i, x̃_j)          ("error similarity × input similarity")

and the TFA map, by the product rule, is

    ∇_{x_i} S_GC = cos(x̃_i, x̃_j) · W_xᵀ (diag p_i − p_i p_iᵀ) (δ̂_j − (δ̂_i·δ̂_j) δ̂_i) / ‖δ_i‖
                 + cos(δ_i, δ_j) · [(x̂_j − (x̂_i·x̂_j) x̂_i) / ‖x̃_i‖]_{1..d}

(hats are unit vectors, W_x the weight without the bias column). Pure tensor algebra, no autograd.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..training.models import SoftmaxRegression

__all__ = ["softmax_regression_parts", "softmax_regression_grad_cos", "softmax_regression_tfa"]


def softmax_regression_parts(model: SoftmaxRegression, x: torch.Tensor, y: int):
    """(p, δ = p − e_y, x̃) for one image ``x`` ``[C, H, W]``."""
    W, b = model.linear.weight.detach(), model.linear.bias
    b = torch.zeros(W.shape[0], dtype=W.dtype) if b is None else b.detach()
    xf = x.flatten().to(W.dtype)
    p = torch.softmax(W @ xf + b, 0)
    delta = p - F.one_hot(torch.as_tensor(y), W.shape[0]).to(W.dtype)
    xt = torch.cat([xf, torch.ones(1, dtype=W.dtype)]) if model.linear.bias is not None else xf
    return p, delta, xt


def _cos(a, b):
    return (a @ b) / (a.norm() * b.norm())


def softmax_regression_grad_cos(model: SoftmaxRegression, x_i, y_i, x_j, y_j) -> torch.Tensor:
    """S_GC = cos(δ_i, δ_j)·cos(x̃_i, x̃_j), a 0-d tensor."""
    _, di, xi = softmax_regression_parts(model, x_i, y_i)
    _, dj, xj = softmax_regression_parts(model, x_j, y_j)
    return _cos(di, dj) * _cos(xi, xj)


def softmax_regression_tfa(model: SoftmaxRegression, x_i, y_i, x_j, y_j) -> torch.Tensor:
    """∇_{x_i} S_GC by the closed form in the module docstring, shaped like ``x_i``."""
    W = model.linear.weight.detach()
    d = x_i.numel()
    p, a, xt = softmax_regression_parts(model, x_i, y_i)
    _, b, xtj = softmax_regression_parts(model, x_j, y_j)
    ah, bh, xh, xjh = a / a.norm(), b / b.norm(), xt / xt.norm(), xtj / xtj.norm()
    d_cos_delta = W.T @ ((torch.diag(p) - torch.outer(p, p)) @ ((bh - (ah @ bh) * ah) / a.norm()))
    d_cos_x = ((xjh - (xh @ xjh) * xh) / xt.norm())[:d]
    return (d_cos_delta * _cos(xt, xtj) + _cos(a, b) * d_cos_x).reshape(x_i.shape)
