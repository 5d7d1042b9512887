"""Scores that are linear in the training gradient: S_v(z_i) = ⟨g_i, v⟩ / ‖g_i‖ (or ⟨g_i, v⟩).

Grad-Cos and Grad-Dot compare a training gradient g_i = ∇_θ ℓ(f_θ(x_i), y_i) with one *test
vector* v ∈ R^P built from the test example. Choosing v differently separates what a test image
*shares* with a training image from evidence the whole class shares:

=================  ==========================================================  ==============
``kind``           test vector v                                               train norm
=================  ==========================================================  ==============
``"cos"``          ĝ_j = g_j / ‖g_j‖  (Grad-Cos)                               ‖g_i‖
``"dot"``          g_j  (Grad-Dot)                                             none
``"centered"``     (g_j − m_c) / ‖g_j − m_c‖, m_c = mean training gradient of  ‖g_i‖
                   the explained class c: what z_j has beyond the class's
                   average training example ("de-confounded Grad-Cos")
``"contrast"``     ĝ_j(ŷ) − ĝ_j(y): predicted minus true label — what pushed   ‖g_i‖
                   z_j to the wrong class (= Grad-Cos(ŷ) − Grad-Cos(y))
``"counterfactual"`` ĝ(x_j) − ĝ(x'_j), same label: the test image minus a       ‖g_i‖
                   counterfactual (e.g. with the patch removed); it *verifies*
                   a hypothesised shortcut, it cannot discover one
=================  ==========================================================  ==============

Because every S_v is linear in g_i up to the norm, one machinery serves retrieval
(:func:`vector_scores`), autograd TFA maps (:func:`vector_score_fn` with
:func:`tfa_tutorial.attribute`) and the exact position decomposition
(:func:`tfa_tutorial.decompose_score`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.func import grad

from ..core.validation import (
    check_finite,
    check_inputs_targets,
    check_model_ready,
    check_one_image,
)
from .gradients import (
    ParamSelection,
    _Unsupported,
    example_loss_fn,
    flatten_grads,
    frozen_state,
    grads_fn,
    per_sample_grads,
    predicted_labels,
    select_params,
)

__all__ = ["VECTOR_KINDS", "class_mean_gradient", "score_vector", "vector_score_fn", "vector_scores", "divides_by_train_norm"]

VECTOR_KINDS = ("cos", "dot", "centered", "contrast", "counterfactual")


def divides_by_train_norm(kind: str) -> bool:
    """Whether the score of ``kind`` divides by ‖g_i‖ (all but ``"dot"``)."""
    _check_kind(kind)
    return kind != "dot"


def _check_kind(kind: str) -> None:
    if kind not in VECTOR_KINDS:
        raise ValueError(f"unknown score kind {kind!r}: choose one of {VECTOR_KINDS}")


def _unit(v: torch.Tensor) -> torch.Tensor:
    n = check_finite(v, "the test vector").norm()
    return v / n if n > 0 else torch.zeros_like(v)


def _one(model, x, name):
    return check_one_image(model, x, name)


def _label(model, x1, target):
    if target is None:
        return predicted_labels(model, x1).cpu()
    return torch.as_tensor(target).reshape(1).long()


def class_mean_gradient(
    model: nn.Module, train_inputs: torch.Tensor, train_targets: torch.Tensor, label: int,
    max_examples: int = 512, seed: int = 0, params: ParamSelection = None,
) -> torch.Tensor:
    """m_c ``[P]``: the mean per-sample gradient of (up to ``max_examples``, chosen at random with
    ``seed``) training examples of class ``label``."""
    idx = (torch.as_tensor(train_targets) == int(label)).nonzero().flatten()
    if len(idx) == 0:
        raise ValueError(f"no training example has label {label}: cannot form its class-mean gradient")
    if len(idx) > max_examples:
        idx = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))[:max_examples]]
    return per_sample_grads(model, train_inputs[idx], torch.as_tensor(train_targets)[idx], params).mean(0)


def score_vector(
    model: nn.Module,
    test_input: torch.Tensor,
    kind: str = "cos",
    test_target: int | torch.Tensor | None = None,
    true_target: int | torch.Tensor | None = None,
    counterfactual_input: torch.Tensor | None = None,
    class_mean: torch.Tensor | None = None,
    params: ParamSelection = None,
    objective: str = "loss",
) -> torch.Tensor:
    """The test vector v ``[P]`` of one test image ``[C, H, W]`` for score ``kind`` (table above);
    ``objective="logit"`` builds it from logit gradients ∇_θ z_y instead of loss gradients.

    Args:
        test_target: the explained label (``None`` = predicted ŷ_j).
        true_target: the true label y_j (``"contrast"`` only).
        counterfactual_input: ``[C, H, W]`` x'_j (``"counterfactual"`` only).
        class_mean: m_c ``[P]`` of the explained class (``"centered"`` only), from
            :func:`class_mean_gradient`.
    """
    _check_kind(kind)
    check_model_ready(model)
    x1 = _one(model, test_input, "test_input")
    y1 = _label(model, x1, test_target)
    if kind in ("centered", "contrast", "counterfactual") and objective != "loss":
        raise ValueError(f"kind={kind!r} is defined for loss gradients only (objective='loss')")
    g = per_sample_grads(model, x1, y1, params, objective=objective)[0]
    if kind == "dot":
        return g
    if kind == "cos":
        return _unit(g)
    if kind == "centered":
        if class_mean is None:
            raise ValueError("kind='centered' needs class_mean=class_mean_gradient(model, X_train, Y_train, label)")
        if class_mean.shape != g.shape:
            raise ValueError(f"class_mean has shape {tuple(class_mean.shape)}, expected {tuple(g.shape)}")
        return _unit(g - class_mean.to(g))
    if kind == "contrast":
        if true_target is None:
            raise ValueError("kind='contrast' needs true_target (the test image's true label)")
        yt = torch.as_tensor(true_target).reshape(1).long()
        return _unit(g) - _unit(per_sample_grads(model, x1, yt, params)[0])
    if counterfactual_input is None:
        raise ValueError("kind='counterfactual' needs counterfactual_input (e.g. the test image without the patch)")
    xc = _one(model, counterfactual_input, "counterfactual_input")
    if xc.shape != x1.shape:
        raise ValueError(f"counterfactual_input {tuple(xc.shape[1:])} differs in shape from test_input {tuple(x1.shape[1:])}")
    return _unit(g) - _unit(per_sample_grads(model, xc, y1, params)[0])


def vector_score_fn(model: nn.Module, v: torch.Tensor, divide_by_train_norm: bool = True, params: ParamSelection = None,
                    objective: str = "loss"):
    """``fn(x[C,H,W], y[]) -> ⟨g(x, y), v⟩ / ‖g(x, y)‖`` (or without the norm), composable with
    ``torch.func`` — the scalar that TFA maps attribute to the training image's pixels.

    ``fn.batched_grad(xs [B, C, H, W], ys [B])`` gives ∇_x of the same scalar for a whole batch in
    one batched double backward through the per-sample gradient engine (same numbers;
    :func:`tfa_tutorial.attribute` uses it), or ``None`` when the model needs the ``vmap`` path."""
    check_model_ready(model)
    theta = select_params(model, params)
    device = next(iter(theta.values())).device
    n_params = sum(t.numel() for t in theta.values())
    if v.ndim != 1 or v.numel() != n_params:
        raise ValueError(f"test vector must have shape [{n_params}] (the selected parameters), got {tuple(v.shape)}")
    v = v.to(device)
    g_of = grad(example_loss_fn(model, frozen_state(model, theta), objective))

    def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = flatten_grads(g_of(theta, x.to(device), y.to(device)))
        dot = g @ v
        return _cos_from_dot(dot, torch.linalg.vector_norm(g)) if divide_by_train_norm else dot

    engine = grads_fn(model, theta, objective)
    v_blocks = v.split([t.numel() for t in theta.values()])

    def batched_grad(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor | None:
        if engine.batched is None:
            return None
        x = xs.to(device).detach().requires_grad_(True)
        try:
            blocks = engine.batched(x, ys.to(device), create_graph="blocks")  # [B, numel] each, differentiable in x
        except _Unsupported:
            engine.batched = None
            return None
        # dot and norm block by block: no [B, P] concatenation to build and differentiate
        dot = sum(b @ t for b, t in zip(blocks, v_blocks))
        if divide_by_train_norm:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(b, dim=1) for b in blocks], 1), dim=1)
            dot = _cos_from_dot(dot, norm)
        return torch.autograd.grad(dot.sum(), x)[0]  # examples are independent: row b is ∇_{x_b} S_b

    fn.batched_grad = batched_grad
    return fn


def _cos_from_dot(dot: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """⟨g, v⟩ / ‖g‖, and 0 (with a zero gradient, not NaN) where ‖g‖ = 0."""
    return torch.where(norm > 0, dot / torch.where(norm > 0, norm, torch.ones_like(norm)), torch.zeros_like(norm))


def vector_scores(
    model: nn.Module, train_inputs: torch.Tensor, train_targets: torch.Tensor, vectors: torch.Tensor,
    divide_by_train_norm: bool | list[bool] = True, params: ParamSelection = None, chunk_size: int = 256,
    objective: str = "loss",
) -> torch.Tensor:
    """Scores ``[Q, N]`` = ⟨g_i, v_q⟩ / ‖g_i‖ (or without the norm) of every training example
    against each of the test vectors ``[Q, P]``, in one streaming pass over the training set.
    ``divide_by_train_norm`` may be one bool per vector (mixing Grad-Cos-like and Grad-Dot rows)."""
    train_inputs, train_targets = check_inputs_targets(model, train_inputs, train_targets, "train_inputs")
    vectors = vectors if vectors.ndim == 2 else vectors[None]
    flags = [divide_by_train_norm] * len(vectors) if isinstance(divide_by_train_norm, bool) else list(divide_by_train_norm)
    if len(flags) != len(vectors):
        raise ValueError(f"divide_by_train_norm has {len(flags)} entries for {len(vectors)} vectors")
    norm_rows = torch.tensor(flags, dtype=torch.bool)
    out = []
    for s in range(0, len(train_inputs), chunk_size):
        g = per_sample_grads(model, train_inputs[s:s + chunk_size], train_targets[s:s + chunk_size], params,
                             objective=objective)
        raw = vectors.to(g) @ g.T  # [Q, n]
        inv = torch.where(g.norm(dim=1) > 0, 1.0 / g.norm(dim=1).clamp_min(torch.finfo(g.dtype).tiny), torch.zeros(()).to(g))
        out.append(torch.where(norm_rows.to(raw.device)[:, None], raw * inv[None, :], raw))
    return torch.cat(out, dim=1)
