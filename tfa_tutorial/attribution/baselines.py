"""Baselines TFA is compared with, each one function:

- feature attribution on any image w.r.t. a label: :func:`saliency`, :func:`smoothgrad`,
  :func:`grad_cam` (on the *test* image: classical FA);
- the **two-step baseline** :func:`two_step_baseline`: rank training images by Grad-Cos, then
  ordinary SmoothGrad of each training image w.r.t. its *own* label — it ignores the test image;
- :func:`random_map`, the chance control.

Saliency-type baselines attribute the logit z_y(x) by default (``output="logit"``); ``"log_prob"``
and ``"loss"`` are offered because the sign convention matters: the gradients of the logit, of
log p_y and of the loss point in different directions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ..core.validation import check_inputs_targets, check_model_ready
from .feature_layer import find_feature_layer
from .gradients import frozen_state
from .methods import attribute

__all__ = ["model_output_fn", "saliency", "smoothgrad", "grad_cam", "two_step_baseline", "random_map"]


def model_output_fn(model: nn.Module, output: str = "logit"):
    """``fn(x[C,H,W], y[]) -> scalar``: the logit z_y, log p_y, or the loss ℓ = −log p_y."""
    if output not in ("logit", "log_prob", "loss"):
        raise ValueError(f"output must be 'logit', 'log_prob' or 'loss', got {output!r}")
    state = frozen_state(model)

    def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = functional_call(model, state, (x.unsqueeze(0),))[0]
        if output == "logit":
            return z.gather(0, y.reshape(1))[0]  # index with a tensor: vmap-safe, no .item()
        lp = F.log_softmax(z, dim=0).gather(0, y.reshape(1))[0]
        return lp if output == "log_prob" else -lp

    return fn


def _prepare(model, inputs, targets):
    check_model_ready(model)
    inputs, targets = check_inputs_targets(model, inputs, targets)
    device = next(model.parameters()).device
    return inputs.to(device), targets.to(device)


def saliency(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, output: str = "logit", **opts) -> torch.Tensor:
    """Signed input gradient ∇_x z_y(x) ``[B, C, H, W]`` (Simonyan et al. 2014, without |·|)."""
    inputs, targets = _prepare(model, inputs, targets)
    return attribute(model_output_fn(model, output), inputs, targets, method="gradient", n_samples=0, **opts)


def smoothgrad(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, n_samples: int = 16, noise: float = 0.15,
    output: str = "logit", **opts,
) -> torch.Tensor:
    """SmoothGrad of z_y ``[B, C, H, W]``: mean gradient over ``n_samples`` noisy copies,
    σ = ``noise`` × each image's value range."""
    inputs, targets = _prepare(model, inputs, targets)
    return attribute(model_output_fn(model, output), inputs, targets, method="gradient", n_samples=n_samples, noise=noise, **opts)


def two_step_baseline(
    model: nn.Module, train_inputs: torch.Tensor, train_targets: torch.Tensor, method: str = "gradient",
    n_samples: int = 16, noise: float = 0.15, output: str = "logit", **opts,
) -> torch.Tensor:
    """The baseline reviewers asked for: after ranking by Grad-Cos, explain each retrieved training
    image by ordinary FA of its *own* label's ``output``, with the same ``method`` (and options) as
    the TFA map it is compared with. ``[B, C, H, W]``; independent of the test image by construction."""
    inputs, targets = _prepare(model, train_inputs, train_targets)
    if method not in ("gradient", "gradient_x_input"):
        n_samples = 0
    return attribute(model_output_fn(model, output), inputs, targets, method=method, n_samples=n_samples, noise=noise, **opts)


def grad_cam(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, layer: nn.Module | None = None) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) ``[B, 1, H, W]``: ReLU(Σ_c α_c A_c) at ``layer`` (default:
    the feature map that the final linear layer pools, :func:`~tfa_tutorial.attribution.feature_layer.find_feature_layer`),
    α_c = spatial mean of ∂z_y/∂A_c, bilinearly upsampled to the input size."""
    inputs, targets = _prepare(model, inputs, targets)
    layer = layer or find_feature_layer(model, inputs[0]).module
    store = {}

    def hook(_m, _i, out):
        out.retain_grad()
        store["a"] = out

    h = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            z = model(inputs)
            z.gather(1, targets[:, None]).sum().backward()
    finally:
        h.remove()
        model.zero_grad(set_to_none=True)
    a, g = store["a"].detach(), store["a"].grad
    cam = F.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(1, keepdim=True))
    return F.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False)


def random_map(shape, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """i.i.d. N(0, 1) map of the given shape: the chance control for every map metric."""
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=dtype)
