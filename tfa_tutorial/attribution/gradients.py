"""Per-sample loss gradients g(z) = ∇_θ ℓ(f_θ(x), y) with ``torch.func``.

``per_sample_grads`` returns the flattened gradients as a matrix ``[N, P]``; the helpers here
(``select_params``, ``loss_fn``, ``flatten``) are shared by the scores (:mod:`.scores`) and the TFA
maps (:mod:`.tfa`), which never materialise more than a chunk of that matrix.

Conventions: the model is evaluated in **eval mode**, the loss ℓ is cross-entropy of one
example (batch of 1, mean reduction = the example's own loss), θ is all trainable parameters
unless ``params`` selects a subset by name or name prefix.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from ..core.streaming import chunks, with_progress
from ..core.validation import (
    check_finite,
    check_inputs_targets,
    check_int,
    check_model_ready,
    check_real,
)

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


def frozen_state(model: nn.Module, selected: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Everything ``functional_call`` needs besides θ: the buffers and the parameters not in
    ``selected``, detached (``selected=None``: every parameter is frozen too)."""
    selected = selected or {}
    state = {n: b.detach() for n, b in model.named_buffers()}
    state.update({n: p.detach() for n, p in model.named_parameters() if n not in selected})
    return state


#: what a per-example gradient differentiates: the cross-entropy loss ℓ (the default, Grad-Cos)
#: or the logit z_y of the example's label (the logit-gradient variant of Grad-Cos).
OBJECTIVES = ("loss", "logit")


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown gradient objective {objective!r}: choose one of {OBJECTIVES}")
    return objective


def _objective_value(logits: torch.Tensor, y: torch.Tensor, objective: str, reduction: str) -> torch.Tensor:
    """Cross-entropy or the label's logit of ``logits`` ``[N, K]`` at labels ``y`` ``[N]``."""
    if objective == "loss":
        return F.cross_entropy(logits, y, reduction=reduction)
    z = logits.gather(1, y.reshape(-1, 1)).squeeze(1)
    return z.sum() if reduction == "sum" else z.mean()


def example_loss_fn(model: nn.Module, frozen: dict[str, torch.Tensor], objective: str = "loss") -> Callable:
    """ℓ(θ; x, y) for one example (or its logit z_y with ``objective="logit"``):
    ``fn(theta_dict, x[C,H,W], y[]) -> scalar``."""
    check_objective(objective)

    def fn(theta: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, {**frozen, **theta}, (x.unsqueeze(0),))
        return _objective_value(logits, y.unsqueeze(0), objective, "mean")

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
    max_chunk: int = 32,
) -> int:
    """How many examples to process in one batched call so the chunk fits ``memory_budget`` bytes.

    Each example costs its gradient (P floats) plus its activations and their gradients, estimated
    from one forward pass of a single example (×4 for saved tensors and the backward pass).
    On 2 CPU cores, chunks of about 32 examples were fastest for SmallCNN (larger ones leave
    the cache and make the per-example convolution weight gradients slower), hence the cap.
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


# ---------------------------------------------------------------- batched engine (hooks)
class _Unsupported(Exception):
    """The model uses a layer or a pattern the batched engine does not handle: use ``vmap``."""


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm)


def _supported(m: nn.Module) -> bool:
    if isinstance(m, nn.Linear):
        return True
    if isinstance(m, nn.Conv2d):
        return m.groups == 1 and m.padding_mode == "zeros" and not isinstance(m.padding, str)
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        # eval-mode BatchNorm with running statistics is a per-channel affine map of each example
        return isinstance(m, _NORMS) and m.track_running_stats and not m.training
    return isinstance(m, nn.GroupNorm)


def _patches(a: torch.Tensor, m: nn.Conv2d) -> torch.Tensor:
    """The input patches of a convolution, ``[N, Cin·kh·kw, H'·W']`` (what ``F.unfold`` returns),
    as one strided view of the padded input and one copy."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = m.kernel_size, m.stride, m.dilation, m.padding
    ap = F.pad(a, (pw, pw, ph, ph)).contiguous()
    n, c, hp, wp = ap.shape
    ho, wo = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    v = ap.as_strided((n, c, kh, kw, ho, wo), (c * hp * wp, hp * wp, dh * wp, dw, sh * wp, sw))
    return v.reshape(n, c * kh * kw, ho * wo)


def _layer_grads(m: nn.Module, a: torch.Tensor, dy: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-example gradients ``{attr: [N, *shape]}`` of a layer's own parameters from its input
    ``a`` and the gradient ``dy`` of the summed loss w.r.t. its output (Opacus-style)."""
    n = a.shape[0]
    if isinstance(m, nn.Linear):
        a2, d2 = a.reshape(n, -1, a.shape[-1]), dy.reshape(n, -1, dy.shape[-1])
        return {"weight": torch.bmm(d2.transpose(1, 2), a2), "bias": d2.sum(1)}
    if isinstance(m, nn.Conv2d) and m.in_channels == 1:
        # one input channel: the unfolded input is small, and a batched matmul beats N groups
        d2 = dy.reshape(n, dy.shape[1], -1)  # [N, Cout, L]
        return {"weight": torch.bmm(d2, _patches(a, m).transpose(1, 2)).view(n, *m.weight.shape), "bias": d2.sum(2)}
    if isinstance(m, nn.Conv2d):
        # The weight gradient of a convolution with one group per example, [1, N·Cin, H, W] in and
        # [1, N·Cout, H', W'] out, is the stack of the N per-example weight gradients: one native
        # kernel, no unfolded copy of the input (the weight argument only gives the shape).
        o = m.out_channels
        shape = (n * o,) + tuple(m.weight.shape[1:])
        gw = torch.ops.aten.convolution_backward(
            dy.reshape((1, n * o) + tuple(dy.shape[2:])), a.reshape((1, -1) + tuple(a.shape[2:])),
            m.weight.new_empty(shape), None, m.stride, m.padding, m.dilation, False, [0, 0], n, [False, True, False],
        )[1]
        return {"weight": gw.view(n, *m.weight.shape), "bias": dy.sum((2, 3))}
    if isinstance(m, nn.GroupNorm):
        xhat = F.group_norm(a, m.num_groups, eps=m.eps)
    else:
        shape = (1, -1) + (1,) * (a.ndim - 2)
        xhat = (a - m.running_mean.view(shape)) * torch.rsqrt(m.running_var.view(shape) + m.eps)
    dims = tuple(range(2, a.ndim))
    dw = (dy * xhat).sum(dims) if dims else dy * xhat
    return {"weight": dw, "bias": dy.sum(dims) if dims else dy}


class _BatchedGrads:
    """Per-example gradients of a whole chunk from one batched forward and backward.

    The examples' losses are independent (an eval-mode, per-example model), so the gradient of
    their sum w.r.t. a layer's output holds each example's own output gradient; each selected
    layer's per-example parameter gradient follows from it and the layer's input (a batched
    matmul for linear layers, a grouped convolution's weight gradient for convolutions). Same numbers as ``vmap(grad(ℓ))`` up to rounding,
    at the cost of about one training step. Models with other layers, a layer called twice per
    forward, or in-place edits of a hooked tensor raise :class:`_Unsupported`."""

    def __init__(self, model: nn.Module, theta: dict[str, torch.Tensor], objective: str = "loss"):
        self.model = model
        self.objective = check_objective(objective)
        self.names = list(theta)
        self.shapes = [t.shape for t in theta.values()]
        self.sizes = [t.numel() for t in theta.values()]
        ends = torch.tensor(self.sizes).cumsum(0).tolist()
        self.columns = {k: slice(e - size, e) for k, size, e in zip(self.names, self.sizes, ends)}
        modules = dict(model.named_modules())
        self.owners: dict[nn.Module, list[tuple[str, str]]] = {}
        for name in self.names:
            mod_name, _, attr = name.rpartition(".")
            m = modules[mod_name]
            if not _supported(m):
                raise _Unsupported(f"{type(m).__name__} ({name})")
            self.owners.setdefault(m, []).append((attr, name))
        selected = {id(getattr(m, attr)): m for m, pairs in self.owners.items() for attr, _ in pairs}
        for m in model.modules():  # a tied (shared) parameter also gets gradient through another layer
            if any(id(p) in selected and selected[id(p)] is not m for p in m._parameters.values() if p is not None):
                raise _Unsupported(f"a parameter of {type(m).__name__} is shared with another layer")

    def __call__(self, x: torch.Tensor, y: torch.Tensor, create_graph: bool | str = False, out: torch.Tensor | None = None):
        """``[N, P]`` flattened per-example gradients (written into ``out`` when given);
        differentiable w.r.t. ``x`` when ``create_graph`` (then ``x`` must require grad), and
        ``create_graph="blocks"`` returns the per-parameter blocks ``[N, numel]`` unconcatenated."""
        seen: dict[nn.Module, tuple] = {}

        def hook(m, inp, out):
            if m in seen or not isinstance(inp[0], torch.Tensor) or not isinstance(out, torch.Tensor):
                raise _Unsupported(f"{type(m).__name__} called twice or on a non-tensor")
            seen[m] = (inp[0], inp[0]._version, out, out._version)

        handles = [m.register_forward_hook(hook) for m in self.owners]
        try:
            with torch.enable_grad():
                logits = self.model(x)
        finally:
            for h in handles:
                h.remove()
        if logits.ndim != 2 or len(seen) != len(self.owners):
            raise _Unsupported("a selected layer is unused or the output is not [N, K] logits")
        if any(a._version != va or o._version != vo for a, va, o, vo in seen.values()):
            raise _Unsupported("a hooked tensor was modified in place")
        mods = list(self.owners)
        loss = _objective_value(logits, y, self.objective, "sum")
        outs = [seen[m][2] for m in mods]
        if not all(o.requires_grad for o in outs):
            raise _Unsupported("a layer output does not require grad")
        douts = torch.autograd.grad(loss, outs, create_graph=bool(create_graph))
        n = x.shape[0]
        if not create_graph:
            if out is None:
                out = torch.empty(n, sum(self.sizes), dtype=logits.dtype, device=logits.device)
            for m, d in zip(mods, douts):  # each layer's gradients go to their columns while still in cache
                g = _layer_grads(m, seen[m][0].detach(), d)
                for attr, name in self.owners[m]:
                    out[:, self.columns[name]] = g[attr].reshape(n, -1)
            return out
        per_name = {}
        for m, d in zip(mods, douts):
            g = _layer_grads(m, seen[m][0], d)
            for attr, name in self.owners[m]:
                per_name[name] = g[attr].reshape(n, -1)
        blocks = [per_name[k] for k in self.names]
        return blocks if create_graph == "blocks" else torch.cat(blocks, dim=1)


@torch.no_grad()
def predicted_labels(model: nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """ŷ = argmax_k f_θ(x)_k for each input, ``[N]`` int64 on the inputs' device. Non-finite
    logits raise instead of becoming class 0."""
    batch_size = check_int(batch_size, "batch_size")
    device = next(model.parameters()).device
    out = [check_finite(model(inputs[s].to(device)), "the model's logits",
                        "check the inputs and the model's weights").argmax(1) for s in chunks(len(inputs), batch_size)]
    return torch.cat(out).to(inputs.device)


def per_sample_grads(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    params: ParamSelection = None,
    chunk_size: int | None = None,
    memory_budget: float = 256e6,
    progress: bool = False,
    objective: str = "loss",
) -> torch.Tensor:
    """Flattened per-example gradients G[n] = ∇_θ ℓ(f_θ(x_n), y_n) (``objective="logit"``: of the
    label's logit, ∇_θ f_θ(x_n)_{y_n}).

    Args:
        model: in eval mode (BatchNorm uses running statistics).
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
    inputs, targets = check_inputs_targets(model, inputs, targets)
    fn = grads_fn(model, theta, objective)
    if chunk_size is None:
        chunk_size = auto_chunk_size(model, inputs.shape[1:], sum(t.numel() for t in theta.values()), memory_budget)
    # one [N, P] buffer, filled chunk by chunk: no per-chunk results, no final concatenation
    out = torch.empty((len(inputs), fn.n_params), dtype=inputs.dtype, device=fn.device)
    for s in with_progress(chunks(len(inputs), chunk_size), "per-sample gradients", progress):
        fn(inputs[s], targets[s], out=out[s])
    return check_finite(out, "the per-sample gradients",
                        "the loss gradient overflowed or the model is not finite on these inputs")


class _GradsFn:
    """``(x, y) -> [n, P]`` per-example gradients of one chunk, without input checks: the batched
    engine when the model allows it, else ``vmap(grad(ℓ))`` (decided on the first call)."""

    def __init__(self, model: nn.Module, theta: dict[str, torch.Tensor], objective: str = "loss"):
        self.model, self.theta, self.objective = model, theta, check_objective(objective)
        self.device = next(iter(theta.values())).device
        self.n_params = sum(t.numel() for t in theta.values())
        try:
            self.batched = _BatchedGrads(model, theta, objective)
        except _Unsupported:
            self.batched = None
        self._vmapped = None

    @property
    def uses_vmap(self) -> bool:
        return self.batched is None

    def vmapped(self) -> Callable:
        if self._vmapped is None:
            loss = example_loss_fn(self.model, frozen_state(self.model, self.theta), self.objective)
            self._vmapped = vmap(grad(loss), in_dims=(None, 0, 0))
        return self._vmapped

    def __call__(self, x: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        x, y = x.to(self.device), y.to(self.device)
        if self.batched is not None:
            try:
                return self.batched(x, y, out=out)
            except _Unsupported:
                self.batched = None
        g = flatten_grads(self.vmapped()(self.theta, x, y), batched=True)
        return g if out is None else out.copy_(g)


def grads_fn(model: nn.Module, theta: dict[str, torch.Tensor], objective: str = "loss") -> _GradsFn:
    """The chunk-level per-example gradient function over ``theta`` (from :func:`select_params`),
    built once and reused for every chunk; inputs must already be checked."""
    return _GradsFn(model, theta, objective)
