"""Training feature attribution (TFA): which regions of a training image x_i drive its
training-data-attribution score for a test example z_j (Bacha & George 2025).

    M(x_i | z_j) = ∇_{x_i} S((x_i, y_i), z_j),   S = Grad-Cos (default) or Grad-Dot,

a signed ``[C, H, W]`` map. Only the training gradient g(z_i) = ∇_θ ℓ(f_θ(x_i), y_i) depends on
x_i, so this is a double backward (mixed second derivatives ∂²ℓ/∂x∂θ), done here with
``torch.func`` as ``vmap(grad(x ↦ S(grad_θ ℓ(θ; x, y_i), g_j)))`` over images and noise samples.

SmoothGrad (``n_samples > 0``) averages M over noisy copies x_i + ε of the *training* image with
σ = ``noise`` × the image's value range; the test gradient stays fixed. Other ``method=`` choices
(gradient × input, integrated gradients, occlusion) attribute the *value* of the score rather
than its local sensitivity; see :mod:`.methods`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.validation import check_inputs_targets, check_model_ready, check_one_image
from .gradients import ParamSelection
from .methods import attribute
from .score_vectors import divides_by_train_norm, score_vector, vector_score_fn
from .scores import resolve_test_targets

__all__ = ["tda_score_fn", "tfa_map", "tfa_maps"]


def tda_score_fn(
    model: nn.Module,
    test_input: torch.Tensor,
    test_target: torch.Tensor | int | None = None,
    score: str = "cos",
    params: ParamSelection = None,
):
    """The score of one training example as a function of its image, for a fixed test example.

    Returns ``fn(x[C,H,W], y[]) -> S((x, y), z_j)``, composable with ``torch.func``:
    ``score="cos"`` gives ⟨g(x, y), ĝ_j⟩ / ‖g(x, y)‖ with ĝ_j = g_j/‖g_j‖ (0 when either gradient
    is 0); ``score="dot"`` gives ⟨g(x, y), g_j⟩. ``test_target=None`` uses the predicted label.
    The same function as ``vector_score_fn(model, score_vector(model, test_input, score, test_target))``,
    with the inputs checked.
    """
    if score not in ("cos", "dot"):
        raise ValueError(f"score must be 'cos' or 'dot', got {score!r}")
    check_model_ready(model)
    test_input = check_one_image(model, test_input, "test_input")
    if test_target is not None:
        test_target = torch.as_tensor(test_target).reshape(1)
    test_target = resolve_test_targets(model, test_input, test_target)
    test_input, test_target = check_inputs_targets(model, test_input, test_target, "test_input")
    v = score_vector(model, test_input[0], score, test_target=test_target, params=params)
    return vector_score_fn(model, v, divides_by_train_norm(score), params)


def tfa_maps(
    model: nn.Module,
    train_inputs: torch.Tensor,
    train_targets: torch.Tensor,
    test_input: torch.Tensor,
    test_target: torch.Tensor | int | None = None,
    n_samples: int = 0,
    noise: float = 0.15,
    score: str = "cos",
    method: str = "gradient",
    params: ParamSelection = None,
    chunk_size: int = 32,
    seed: int | None = 0,
    **method_opts,
) -> torch.Tensor:
    """TFA maps ``[B, C, H, W]`` of B training images for one test example.

    Args:
        train_inputs: ``[B, C, H, W]`` training images x_i; train_targets: ``[B]`` their labels y_i.
        test_input: ``[C, H, W]`` the test image x_j; test_target: its label, ``None`` = predicted.
        n_samples: SmoothGrad samples n (0 = the raw gradient); noise: σ as a fraction of each
            training image's value range.
        score: ``"cos"`` (Grad-Cos, the paper's) or ``"dot"`` (Grad-Dot).
        method: ``"gradient"`` (the paper's), ``"gradient_x_input"``, ``"integrated_gradients"``
            or ``"occlusion"``; ``method_opts`` go to :func:`tfa_tutorial.attribute`
            (``baseline``, ``steps``, ``window``, ``stride``, ``fill``, ``noise_range``).
        chunk_size: (image × noise sample) pairs per ``vmap`` call; each needs a double backward,
            so memory grows with it (≈ 10 MB per pair for the 61k-parameter SmallCNN).
    """
    fn = tda_score_fn(model, test_input, test_target, score, params)
    train_inputs, train_targets = check_inputs_targets(model, train_inputs, train_targets, "train_inputs")
    if train_inputs.shape[1:] != test_input.shape:
        raise ValueError(
            f"training images {tuple(train_inputs.shape[1:])} and test image {tuple(test_input.shape)} differ in shape"
        )
    device = next(model.parameters()).device
    return attribute(
        fn, train_inputs.to(device), train_targets.to(device), method=method, n_samples=n_samples,
        noise=noise, chunk_size=chunk_size, seed=seed, **method_opts,
    )


def tfa_map(
    model: nn.Module,
    train_input: torch.Tensor,
    train_target: torch.Tensor | int,
    test_input: torch.Tensor,
    test_target: torch.Tensor | int | None = None,
    n_samples: int = 0,
    noise: float = 0.15,
    score: str = "cos",
    **opts,
) -> torch.Tensor:
    """TFA map ``[C, H, W]`` = ∇_{x_i} S((x_i, y_i), z_j) for one (training, test) pair, with
    SmoothGrad over ``n_samples`` noisy copies of the training image. See :func:`tfa_maps`."""
    if not isinstance(train_input, torch.Tensor) or train_input.ndim < 1:
        raise TypeError("train_input must be one image tensor [C, H, W]")
    y = torch.as_tensor(train_target).reshape(1)
    return tfa_maps(model, train_input.unsqueeze(0), y, test_input, test_target, n_samples, noise, score, **opts)[0]
