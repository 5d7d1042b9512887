"""Per-sample loss gradients g(z) = ∇_θ ℓ(f_θ(x), y) with ``torch.func``.

``per_sample_grads`` returns the flattened gradients as a matrix ``[N, P]``; the helpers here
(``select_params``, ``loss_fn``, ``flatten``) are shared by the scores (:mod:`.scores`) and the TFA
maps (:mod:`.tfa`), which never materialise more than a chunk of that matrix.

Conventions (SPEC §2): the model is evaluated in **eval mode**, the loss ℓ is cross-entropy of one
example (batch of 1, mean reduction = the example's own loss), θ is all trainable parameters
unless ``params`` selects a subset by name or name prefix.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .validation import check_finite, check_inputs_targets, check_int, check_model_ready, check_real

__all__ = [
    "select_params",
    "per_sample_grads",
    "example_loss_fn",
    "flatten_grads",
    "auto_chunk_size",
    "predicted_labels",
]

ParamSelection = None | str | Sequence[str]


def select_params(model: nn.Module, params: ParamSelection = None) -> dict[str, torch.Tensor]:
    """The parameters θ the gradients are taken over, as an ordered ``{name: tensor}`` dict.

    Args:
        params: ``None`` for all trainable parameters; otherwise a name or list of names, each an
            exact parameter name (``"classifier.weight"``) or a module prefix (``"classifier"``,
            ``"features.0"``). Order follows ``model.named_parameters()``.

    Raises:
        ValueError: when the selection matches no trainable parameter, naming the valid names.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if params is None:
        chosen = named
    else:
        wanted = [params] if isinstance(params, str) else list(params)
        if not wanted:
            raise ValueError("params is an empty list: give None (all parameters) or at least one name")
        chosen = [
            (n, p) for n, p in named if any(n == w or n.startswith(w.rstrip(".") + ".") for w in wanted)
        ]
        unmatched = [w for w in wanted if not any(n == w or n.startswith(w.rstrip(".") + ".") for n, _ in named)]
        if unmatched:
            raise ValueError(
                f"params {unmatched} match no trainable parameter; valid names are "
                f"{[n for n, _ in named]}"
            )
    if not chosen:
        raise ValueError("the parameter selection is empty: the model has no trainable parameter selected")
    return {n: p.detach() for n, p in chosen}


def _frozen_state(model: nn.Module, selected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Everything ``functional_call`` needs besides θ: buffers and unselected parameters."""
    state = {n: b.detach() for n, b in model.named_buffers()}
    state.update({n: p.detach() for n, p in model.named_parameters() if n not in selected})
    return state


def example_loss_fn(model: nn.Module, frozen: dict[str, torch.Tensor]) -> Callable:
    """ℓ(θ; x, y) for one example: ``fn(theta_dict, x[C,H,W], y[]) -> scalar``."""

    def fn(theta: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, {**frozen, **theta}, (x.unsqueeze(0),))
        return F.cross_entropy(logits, y.unsqueeze(0))

    return fn


def flatten_grads(g: dict[str, torch.Tensor], batched: bool = False) -> torch.Tensor:
    """Concatenate a gradient dict into ``[P]`` (or ``[B, P]`` when ``batched``)."""
    if batched:
        return torch.cat([t.reshape(t.shape[0], -1) for t in g.values()], dim=1)
    return torch.cat([t.reshape(-1) for t in g.values()])


def auto_chunk_size(
    model: nn.Module,
    example_shape: Sequence[int],
    n_params: int,
    memory_budget: float = 256e6,
    max_chunk: int = 128,
) -> int:
    """How many examples to process in one ``vmap`` call so the chunk fits ``memory_budget`` bytes.

    Each example costs its gradient (P floats) plus its activations and their gradients, estimated
    from one forward pass of a single example (×4 for saved tensors and the backward pass).
    Measured on 2 CPU cores, chunks of 64–128 are fastest anyway (notes/env.md), hence the cap.
    """
    acts = 0

    def hook(_m, _i, out):
        nonlocal acts
        if isinstance(out, torch.Tensor):
            acts += out.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        with torch.no_grad():
            model(torch.zeros(1, *example_shape, device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
    bytes_per_example = 4 * (n_params + 4 * acts + int(torch.tensor(example_shape).prod()))
    return int(max(1, min(max_chunk, memory_budget // max(bytes_per_example, 1))))


def _chunks(n: int, size: int) -> Iterable[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


@torch.no_grad()
def predicted_labels(model: nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """ŷ = argmax_k f_θ(x)_k for each input, ``[N]`` int64 on the inputs' device. Non-finite
    logits raise instead of becoming class 0."""
    batch_size = check_int(batch_size, "batch_size")
    device = next(model.parameters()).device
    out = [check_finite(model(inputs[s].to(device)), "the model's logits",
                        "check the inputs and the model's weights").argmax(1) for s in _chunks(len(inputs), batch_size)]
    return torch.cat(out).to(inputs.device)


def per_sample_grads(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    params: ParamSelection = None,
    chunk_size: int | None = None,
    memory_budget: float = 256e6,
    progress: bool = False,
) -> torch.Tensor:
    """Flattened per-example gradients G[n] = ∇_θ ℓ(f_θ(x_n), y_n).

    Args:
        model: in eval mode (BatchNorm uses running statistics; SPEC §2).
        inputs: ``[N, C, H, W]`` (or any ``[N, ...]`` the model accepts), floating point.
        targets: ``[N]`` int64 class labels in ``[0, K)``.
        params: parameter selection, see :func:`select_params`.
        chunk_size: examples per ``vmap`` call; ``None`` picks one from ``memory_budget`` bytes.

    Returns:
        ``[N, P]`` tensor on the model's device, P = number of selected parameters, columns in
        ``named_parameters()`` order. This holds all N gradients: for scoring many training
        examples use :func:`tfa_tutorial.grad_cos`, which streams instead.
    """
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, "chunk_size")
    check_real(memory_budget, "memory_budget", 0, strict_minimum=True)
    check_model_ready(model)
    theta = select_params(model, params)
    device = next(iter(theta.values())).device
    inputs, targets = check_inputs_targets(model, inputs, targets)
    fn = vmap(grad(example_loss_fn(model, _frozen_state(model, theta))), in_dims=(None, 0, 0))
    if chunk_size is None:
        chunk_size = auto_chunk_size(model, inputs.shape[1:], sum(t.numel() for t in theta.values()), memory_budget)
    out = []
    chunks = list(_chunks(len(inputs), chunk_size))
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="per-sample gradients", leave=False)
    for s in chunks:
        out.append(flatten_grads(fn(theta, inputs[s].to(device), targets[s].to(device)), batched=True))
    return check_finite(torch.cat(out), "the per-sample gradients",
                        "the loss gradient overflowed or the model is not finite on these inputs")
