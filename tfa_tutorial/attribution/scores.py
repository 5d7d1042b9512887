"""Training-data attribution scores between test examples z_j and training examples z_i.

- Grad-Dot  S_dot(z_i, z_j) = ⟨g(z_i), g(z_j)⟩
- Grad-Cos  S_GC(z_i, z_j)  = ⟨g(z_i), g(z_j)⟩ / (‖g(z_i)‖ ‖g(z_j)‖), 0 when either norm is 0.

S > 0 marks a *proponent* (one SGD step on z_i lowers the test loss, to first order), S < 0 an
*opponent*. Scores are computed exactly by streaming: the Q test gradients are computed once,
the training gradients chunk by chunk, so memory is O((Q + chunk)·P), never O(N·P).
"""
from __future__ import annotations

import torch
from torch import nn

from ..core.streaming import chunks, with_progress
from ..core.validation import (
    check_finite,
    check_inputs,
    check_inputs_targets,
    check_int,
    check_model_ready,
    check_real,
)
from .gradients import (
    ParamSelection,
    auto_chunk_size,
    grads_fn,
    predicted_labels,
    select_params,
)

__all__ = ["grad_dot", "grad_cos", "grad_cos_and_dot", "gradient_scores", "unit_rows", "resolve_test_targets"]


def unit_rows(g: torch.Tensor) -> torch.Tensor:
    """Rows divided by their L2 norm; zero rows stay zero (so their cosine is 0, not NaN).
    A row holding NaN or ±inf raises :class:`~tfa_tutorial.core.validation.NonFiniteError` rather than
    becoming a zero row."""
    check_finite(g, "the gradient rows", "the model's loss gradient is not finite: check the model's weights and inputs")
    norms = g.norm(dim=1, keepdim=True)
    return torch.where(norms > 0, g / norms.clamp_min(torch.finfo(g.dtype).tiny), torch.zeros_like(g))


def resolve_test_targets(model: nn.Module, test_inputs: torch.Tensor, test_targets) -> torch.Tensor:
    """The label of each test example's loss: the given labels, or (``None``) the model's
    prediction ŷ_j — by default we explain the prediction, not the error."""
    if test_targets is None:
        return predicted_labels(model, check_inputs(model, test_inputs, "test_inputs"))
    return test_targets


def gradient_scores(
    model: nn.Module,
    train_inputs: torch.Tensor,
    train_targets: torch.Tensor,
    test_inputs: torch.Tensor,
    test_targets: torch.Tensor | None = None,
    score: str = "cos",
    params: ParamSelection = None,
    chunk_size: int | None = None,
    memory_budget: float = 256e6,
    progress: bool = False,
) -> torch.Tensor:
    """Scores ``[Q, N]`` of every test example against every training example (always one tensor;
    :func:`grad_cos_and_dot` returns both kinds from one pass).

    Args:
        score: ``"cos"`` (Grad-Cos) or ``"dot"`` (Grad-Dot).
        test_targets: ``[Q]`` labels for the test losses; ``None`` uses the predicted labels.
        chunk_size: training examples per pass; ``None`` follows ``memory_budget`` (bytes).
    """
    if score not in ("cos", "dot"):
        raise ValueError(f"score must be 'cos' or 'dot', got {score!r}")
    cos, dot = _stream_scores(model, train_inputs, train_targets, test_inputs, test_targets, score == "dot",
                              params, chunk_size, memory_budget, progress, f"Grad-{score.capitalize()}")
    return dot if score == "dot" else cos


def _stream_scores(model, train_inputs, train_targets, test_inputs, test_targets, with_dot: bool, params,
                   chunk_size, memory_budget, progress, label: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Grad-Cos ``[Q, N]`` and (``with_dot``) Grad-Dot ``[Q, N]`` from one pass over the training gradients."""
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
    check_real(memory_budget, "memory_budget", 0, strict_minimum=True)
    check_model_ready(model)
    test_targets = resolve_test_targets(model, test_inputs, test_targets)
    train_inputs, train_targets = check_inputs_targets(model, train_inputs, train_targets, "train_inputs")
    test_inputs, test_targets = check_inputs_targets(model, test_inputs, test_targets, "test_inputs")
    if train_inputs.shape[1:] != test_inputs.shape[1:]:
        raise ValueError(
            f"train and test images differ in shape: {tuple(train_inputs.shape[1:])} vs {tuple(test_inputs.shape[1:])}"
        )
    theta = select_params(model, params)
    n_params = sum(t.numel() for t in theta.values())
    if chunk_size is None:
        chunk_size = auto_chunk_size(model, train_inputs.shape[1:], n_params, memory_budget)
    fn = grads_fn(model, theta)  # checks, parameter selection and engine choice: once, not per chunk
    g_test = torch.cat([fn(test_inputs[s], test_targets[s]) for s in chunks(len(test_inputs), chunk_size)])  # [Q, P]
    test_norms = g_test.norm(dim=1)
    g_test = unit_rows(g_test)  # Grad-Dot is recovered as cos · ‖g_i‖ · ‖g_j‖ below
    out = torch.empty(len(test_inputs), len(train_inputs), dtype=g_test.dtype, device=g_test.device)
    dot_out = torch.empty_like(out) if with_dot else None
    buf = torch.empty(min(chunk_size, len(train_inputs)), n_params, dtype=g_test.dtype, device=g_test.device)
    for s in with_progress(chunks(len(train_inputs), chunk_size), f"{label} over training set", progress):
        g_train = fn(train_inputs[s], train_targets[s], out=buf[: s.stop - s.start])  # reused buffer
        raw = g_test @ g_train.T  # [Q, n] = cos · ‖g_i‖
        norms = g_train.norm(dim=1)
        out[:, s] = torch.where(norms > 0, raw / norms.clamp_min(torch.finfo(raw.dtype).tiny), torch.zeros_like(raw))
        if dot_out is not None:
            dot_out[:, s] = raw * test_norms[:, None]
    return out, dot_out


def grad_dot(model, train_inputs, train_targets, test_inputs, test_targets=None, **opts) -> torch.Tensor:
    """Grad-Dot scores ``[Q, N]`` = ⟨g(z_i), g(z_j)⟩; see :func:`gradient_scores` for options."""
    return gradient_scores(model, train_inputs, train_targets, test_inputs, test_targets, score="dot", **opts)


def grad_cos(model, train_inputs, train_targets, test_inputs, test_targets=None, **opts) -> torch.Tensor:
    """Grad-Cos scores ``[Q, N]`` = cos(g(z_i), g(z_j)) ∈ [−1, 1]; zero gradients score 0.
    See :func:`gradient_scores` for options."""
    return gradient_scores(model, train_inputs, train_targets, test_inputs, test_targets, score="cos", **opts)


def grad_cos_and_dot(model, train_inputs, train_targets, test_inputs, test_targets=None, params: ParamSelection = None,
                     chunk_size: int | None = None, memory_budget: float = 256e6, progress: bool = False):
    """``(Grad-Cos [Q, N], Grad-Dot [Q, N])`` from one pass over the training gradients."""
    return _stream_scores(model, train_inputs, train_targets, test_inputs, test_targets, True, params, chunk_size,
                          memory_budget, progress, "Grad-Cos and Grad-Dot")
