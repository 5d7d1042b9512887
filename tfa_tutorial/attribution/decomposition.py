"""An exact, first-order decomposition of Grad-Dot / Grad-Cos over positions of the training image.

No second derivative is needed. For every layer the per-sample weight gradient is a *sum over the
layer's output positions u*: for a convolution g_W = Σ_u δ(u) ⊗ unfold(a)(u), with δ = ∂ℓ/∂z the
gradient at the layer's output and a its input. Dotting with the test vector v (reshaped like the
parameter, G) splits the score into per-position contributions that sum to it exactly:

=====================  =========================================================================
parameter              contribution c(u) of output position u
=====================  =========================================================================
conv weight / bias     Σ_o δ_o(u) · conv2d(a, G_W)_o(u)  +  Σ_o δ_o(u) G_b[o]
norm γ / β (BN, GN)    Σ_o δ_o(u) (x̂_o(u) G_γ[o] + G_β[o]),  x̂ the normalised input
linear after a global  Σ_k δ_k Σ_f G_W[k, f] f_f(u) / |U|  +  δ·G_b / |U|  (pushed through the
average pool           average pool onto the feature map f)
any other linear       one global term, spread uniformly over the image
=====================  =========================================================================

so Σ_layers Σ_u c(u) = ⟨g_i, v⟩, and dividing by ‖g_i‖ gives Grad-Cos (v = ĝ_j). Each layer's grid
is mapped to pixels by a sum-preserving rule: ``"rf"`` spreads c(u) uniformly over the receptive
field of u (clipped to the image; found on an all-positive linear surrogate of the network) and
``"nearest"`` upsamples by cells. The pixel map is exact only in its total; on the grid it is exact.

The maps hardly depend on the test
image when g_i ∥ v (they equal cos · the training image's own gradient-energy map up to a small
residual); the ``"counterfactual"`` and ``"contrast"`` test vectors of :mod:`.score_vectors`
isolate the test-dependent part.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..core.validation import (
    check_finite,
    check_inputs_targets,
    check_int,
    check_model_ready,
)
from .gradients import per_sample_grads, select_params

__all__ = ["ScoreDecomposition", "decompose_score", "receptive_fields", "MAPPINGS"]

MAPPINGS = ("rf", "nearest")
_SUPPORTED = (nn.Conv2d, nn.BatchNorm2d, nn.GroupNorm, nn.Linear)


@dataclass
class ScoreDecomposition:
    """Result of :func:`decompose_score` for B training images and one test vector.

    Attributes:
        maps: ``[B, 1, H, W]`` pixel map, the sum of ``layer_maps``; ``maps.sum((1,2,3)) == scores``.
        scores: ``[B]`` the score ⟨g_i, v⟩ / ‖g_i‖ (or ⟨g_i, v⟩), restricted to ``layers``.
        layer_maps: ``{module name: [B, 1, H, W]}``.
        grids: ``{module name: [B, h, w]}`` contributions on the layer's own output grid
            (``[B, 1, 1]`` for a global term), exact before any mapping.
        norms: ``[B]`` ‖g_i‖ over all parameters (1 when the score is not normalised).
    """

    maps: torch.Tensor
    scores: torch.Tensor
    layer_maps: dict[str, torch.Tensor] = field(default_factory=dict)
    grids: dict[str, torch.Tensor] = field(default_factory=dict)
    norms: torch.Tensor | None = None

    def layer_shares(self) -> dict[str, torch.Tensor]:
        """Signed share of the score per layer, ``{name: [B]}``; sums to 1 where the score ≠ 0."""
        s = self.scores
        safe = torch.where(s != 0, s, torch.ones_like(s))
        return {k: m.sum((1, 2, 3)) / safe for k, m in self.layer_maps.items()}

    def block_maps(self, prefixes: dict[str, str | tuple[str, ...]]) -> dict[str, torch.Tensor]:
        """Sum ``layer_maps`` by module-name prefix: ``{"block 1": "features.0", ...}`` → maps."""
        out = {}
        for label, pre in prefixes.items():
            pre = (pre,) if isinstance(pre, str) else tuple(pre)
            parts = [m for k, m in self.layer_maps.items() if any(k == p or k.startswith(p + ".") for p in pre)]
            out[label] = sum(parts) if parts else torch.zeros_like(self.maps)
        return out


def _param_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    mods = []
    for name, m in model.named_modules():
        own = [p for p in m.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if not isinstance(m, _SUPPORTED):
            raise NotImplementedError(
                f"decompose_score supports Conv2d, BatchNorm2d, GroupNorm and Linear layers; "
                f"module {name!r} is a {type(m).__name__} with trainable parameters"
            )
        if isinstance(m, nn.Conv2d) and m.padding_mode != "zeros":
            raise NotImplementedError(f"conv {name!r} uses padding_mode={m.padding_mode!r}; only 'zeros' is supported")
        if isinstance(m, nn.BatchNorm2d) and (m.training or m.running_mean is None):
            raise ValueError(f"BatchNorm {name!r} must be in eval mode with running statistics (call model.eval())")
        mods.append((name, m))
    return mods


def _split_vector(model: nn.Module, v: torch.Tensor) -> dict[str, torch.Tensor]:
    theta = select_params(model)
    n = sum(t.numel() for t in theta.values())
    if not isinstance(v, torch.Tensor) or v.ndim != 1 or v.numel() != n:
        raise ValueError(f"the test vector must have shape [{n}] (all trainable parameters), got {tuple(getattr(v, 'shape', ()))}")
    check_finite(v, "the test vector v")
    out, o = {}, 0
    for name, t in theta.items():
        out[name] = v[o:o + t.numel()].reshape(t.shape)
        o += t.numel()
    return out


def _avg_pool_source(model: nn.Module):
    """Global average pools ``(name, module)`` whose input can carry a following linear's term."""
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size in (1, (1, 1))]


class _Capture:
    """Forward hooks recording each parametrised module's input and output, and pool inputs."""

    def __init__(self, modules, pools):
        self.io: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.pool_in: dict[str, torch.Tensor] = {}
        self.handles = []
        for name, m in modules:
            self.handles.append(m.register_forward_hook(self._hook(name)))
        for name, m in pools:
            self.handles.append(m.register_forward_hook(self._pool_hook(name)))

    def _hook(self, name):
        def hook(_m, inp, out):
            if name in self.io:
                raise NotImplementedError(f"module {name!r} is called twice in one forward pass; not supported")
            self.io[name] = (inp[0], out)
        return hook

    def _pool_hook(self, name):
        def hook(_m, inp, _out):
            self.pool_in[name] = inp[0]
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def _contribution(m: nn.Module, a: torch.Tensor, d: torch.Tensor, G: dict[str, torch.Tensor]) -> torch.Tensor:
    """c(u) ``[B, h, w]`` of a conv / norm layer, or ``[B]`` of a linear layer."""
    Gw, Gb = G.get("weight"), G.get("bias")
    if isinstance(m, nn.Conv2d):
        c = torch.zeros(d.shape[0], *d.shape[2:], dtype=d.dtype, device=d.device)
        if Gw is not None:
            c = c + (d * F.conv2d(a, Gw, None, m.stride, m.padding, m.dilation, m.groups)).sum(1)
        if Gb is not None:
            c = c + (d * Gb[None, :, None, None]).sum(1)
        return c
    if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
        if isinstance(m, nn.BatchNorm2d):
            xhat = F.batch_norm(a, m.running_mean, m.running_var, None, None, False, 0.0, m.eps)
        else:
            xhat = F.group_norm(a, m.num_groups, None, None, m.eps)
        c = torch.zeros(d.shape[0], *d.shape[2:], dtype=d.dtype, device=d.device)
        if Gw is not None:
            c = c + (d * xhat * Gw[None, :, None, None]).sum(1)
        if Gb is not None:
            c = c + (d * Gb[None, :, None, None]).sum(1)
        return c
    raise AssertionError(type(m))


def _surrogate(model: nn.Module) -> nn.Module:
    """All-positive linear stand-in with the same wiring: convs with unit weights and no bias,
    norms and activations removed, max-pools turned into average pools."""
    s = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()
    for name, m in list(s.named_modules()):
        if not name:
            continue
        parent = s.get_submodule(name.rsplit(".", 1)[0]) if "." in name else s
        leaf = name.rsplit(".", 1)[-1]
        if isinstance(m, nn.Conv2d):
            with torch.no_grad():
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Dropout, nn.Dropout2d)):
            setattr(parent, leaf, nn.Identity())
        elif isinstance(m, nn.MaxPool2d):
            setattr(parent, leaf, nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode))
    return s


_RF_CACHE: "OrderedDict[tuple, dict[str, torch.Tensor]]" = OrderedDict()
_RF_CACHE_SIZE = 8


def _plain(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str)) or (
        isinstance(value, tuple) and all(_plain(v) for v in value))


def _structure_key(model: nn.Module) -> tuple:
    """What the receptive fields depend on: for every module, its class (a class redefined in a
    notebook is a new object, even with the same name and repr), the code of its ``forward`` (also
    when replaced on the instance) and its plain attributes (stride, padding, flags...)."""
    parts = []
    for name, m in model.named_modules():
        fwd = getattr(m, "forward", None)
        code = getattr(getattr(fwd, "__func__", fwd), "__code__", None)
        attrs = tuple(sorted((k, v) for k, v in vars(m).items() if not k.startswith("_") and _plain(v)))
        parts.append((name, type(m), code, attrs))
    return tuple(parts)


def receptive_fields(model: nn.Module, image_shape, names: list[str], pool_names: list[str] = ()) -> dict[str, torch.Tensor]:
    """Binary receptive-field matrices ``{name: [h·w, H·W]}`` of each named module's *output* grid
    (and of each named pool's *input* grid, keyed ``"pool:<name>"``), from an all-positive linear
    surrogate of ``model``: row u marks the image pixels that output position u depends on.

    Cached (the last few models) by the model's structure: each module's class, ``forward`` code
    and plain attributes, so editing and re-running a model definition recomputes them."""
    key = (_structure_key(model), repr(model), tuple(image_shape), tuple(names), tuple(pool_names))
    if key in _RF_CACHE:
        _RF_CACHE.move_to_end(key)
        return _RF_CACHE[key]
    s = _surrogate(model)
    outs: dict[str, torch.Tensor] = {}
    handles = []
    mods = dict(s.named_modules())
    for n in names:
        handles.append(mods[n].register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o)))
    for n in pool_names:
        handles.append(mods[n].register_forward_hook(lambda _m, i, _o, n=n: outs.__setitem__("pool:" + n, i[0])))
    x = torch.ones(1, *image_shape, dtype=torch.float64, requires_grad=True)
    try:
        s(x)
    finally:
        for h in handles:
            h.remove()
    rf = {}
    for n, o in outs.items():
        if o.ndim != 4:
            continue
        grid = o.sum(1).reshape(-1)  # [h·w]
        eye = torch.eye(len(grid), dtype=grid.dtype)
        (jac,) = torch.autograd.grad(grid, x, eye, retain_graph=True, is_grads_batched=True)
        rf[n] = (jac.reshape(len(grid), image_shape[0], -1).abs().sum(1) > 0).to(torch.float32)
    _RF_CACHE[key] = rf
    while len(_RF_CACHE) > _RF_CACHE_SIZE:
        _RF_CACHE.popitem(last=False)
    return rf


def _to_pixels(grid: torch.Tensor, H: int, W: int, mapping: str, rf: torch.Tensor | None) -> torch.Tensor:
    """Sum-preserving map of ``[B, h, w]`` contributions to ``[B, 1, H, W]`` pixels."""
    B, h, w = grid.shape
    if h * w == 1:
        return (grid.reshape(B, 1, 1, 1) / (H * W)).expand(B, 1, H, W).clone()
    if mapping == "nearest":
        if H % h or W % w:
            raise ValueError(f"mapping='nearest' needs a grid ({h}×{w}) that divides the image ({H}×{W}); use 'rf'")
        up = F.interpolate(grid[:, None], size=(H, W), mode="nearest")
        return up / ((H // h) * (W // w))
    R = rf.to(grid)
    return ((grid.reshape(B, -1) / R.sum(1)) @ R).reshape(B, 1, H, W)


def decompose_score(
    model: nn.Module,
    train_inputs: torch.Tensor,
    train_targets: torch.Tensor,
    v: torch.Tensor,
    divide_by_train_norm: bool = True,
    mapping: str = "rf",
    layers: str | list[str] | None = None,
    chunk_size: int = 64,
) -> ScoreDecomposition:
    """Decompose S_v(z_i) = ⟨g_i, v⟩ / ‖g_i‖ over positions of each training image, exactly.

    Args:
        train_inputs: ``[B, C, H, W]`` training images x_i; train_targets: ``[B]`` labels y_i.
        v: ``[P]`` test vector over all trainable parameters, e.g. ĝ_j for Grad-Cos, g_j for
            Grad-Dot (``divide_by_train_norm=False``); see :func:`tfa_tutorial.score_vector`.
        divide_by_train_norm: divide by ‖g_i‖ (over all parameters), as Grad-Cos does.
        mapping: ``"rf"`` (receptive field) or ``"nearest"`` (cells), see the module docstring.
        layers: keep only modules whose name equals or starts with one of these prefixes
            (e.g. ``"features.0"`` = the first conv block); the score is then that part of S_v.

    Returns:
        :class:`ScoreDecomposition`; ``maps.sum((1, 2, 3))`` equals ``scores`` to rounding, and
        ``scores`` equals ⟨g_i, v⟩/‖g_i‖ computed from per-sample gradients when ``layers=None``.
    """
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping must be one of {MAPPINGS}, got {mapping!r}")
    chunk_size = check_int(chunk_size, "chunk_size")
    check_model_ready(model)
    train_inputs, train_targets = check_inputs_targets(model, train_inputs, train_targets, "train_inputs")
    if train_inputs.ndim != 4:
        raise ValueError(f"train_inputs must be images [B, C, H, W], got shape {tuple(train_inputs.shape)}")
    mods = _param_modules(model)
    Gall = _split_vector(model, v)
    if layers is not None:
        wanted = [layers] if isinstance(layers, str) else list(layers)
        kept = [(n, m) for n, m in mods if any(n == w or n.startswith(w + ".") for w in wanted)]
        if not kept:
            raise ValueError(f"layers {wanted} match no parametrised module; they are {[n for n, _ in mods]}")
    else:
        kept = mods
    pools = _avg_pool_source(model)
    device = next(model.parameters()).device
    B, C, H, W = train_inputs.shape
    names = [n for n, m in mods if not isinstance(m, nn.Linear)]
    rf = receptive_fields(model, (C, H, W), names, [n for n, _ in pools]) if mapping == "rf" else {}

    grids: dict[str, list[torch.Tensor]] = {n: [] for n, _ in kept}
    for s in range(0, B, chunk_size):
        x = train_inputs[s:s + chunk_size].to(device)
        y = train_targets[s:s + chunk_size].to(device)
        cap = _Capture(mods, pools)
        try:
            with torch.enable_grad():
                logits = model(x)
                loss = F.cross_entropy(logits, y, reduction="sum")
                outs = [cap.io[n][1] for n, _ in kept]
                deltas = torch.autograd.grad(loss, outs)
        finally:
            cap.remove()
        for (n, m), d in zip(kept, deltas):
            a = cap.io[n][0].detach()
            G = {k.rsplit(".", 1)[-1]: t.to(d) for k, t in Gall.items() if k.rsplit(".", 1)[0] == n}
            if isinstance(m, nn.Linear):
                grids[n].append(_linear_grid(m, a, d.detach(), G, cap.pool_in, pools))
            else:
                grids[n].append(_contribution(m, a, d.detach(), G).detach())
    grid_t = {n: torch.cat(g) for n, g in grids.items()}

    if divide_by_train_norm:
        norms = per_sample_grads(model, train_inputs, train_targets).norm(dim=1)
        safe = torch.where(norms > 0, norms, torch.ones_like(norms))
        scale = torch.where(norms > 0, 1.0 / safe, torch.zeros_like(norms))
    else:
        norms = torch.ones(B, dtype=v.dtype, device=device)
        scale = norms
    layer_maps = {}
    for n, g in grid_t.items():
        g = g * scale.to(g).view(-1, 1, 1)
        grid_t[n] = g
        key = n if n in rf else _pool_key(n, g, pools)
        layer_maps[n] = _to_pixels(g, H, W, mapping, rf.get(key))
    maps = sum(layer_maps.values())
    return ScoreDecomposition(maps=maps, scores=maps.sum((1, 2, 3)), layer_maps=layer_maps, grids=grid_t, norms=norms)


def _pool_key(name, grid, pools):
    return "pool:" + pools[0][0] if pools and grid.shape[1] * grid.shape[2] > 1 else name


def _linear_grid(m: nn.Linear, a, d, G, pool_in, pools) -> torch.Tensor:
    """A linear layer's term: pushed down onto the pooled feature map when its input is the
    global average of one (checked numerically), else one global value ``[B, 1, 1]``."""
    Gw, Gb = G.get("weight"), G.get("bias")
    for pname, _ in pools[:1]:
        f = pool_in.get(pname)
        if f is not None and f.ndim == 4 and f.shape[0] == a.shape[0] and f.shape[1] == a.shape[1] \
                and torch.allclose(f.mean((2, 3)), a, rtol=1e-5, atol=1e-6):
            f = f.detach()
            hw = f.shape[2] * f.shape[3]
            c = torch.zeros(f.shape[0], f.shape[2], f.shape[3], dtype=d.dtype, device=d.device)
            if Gw is not None:
                c = c + torch.einsum("bk,kf,bfhw->bhw", d, Gw, f) / hw
            if Gb is not None:
                c = c + (d @ Gb)[:, None, None] / hw
            return c
    total = torch.zeros(a.shape[0], dtype=d.dtype, device=d.device)
    if Gw is not None:
        total = total + torch.einsum("bk,kf,bf->b", d, Gw, a)
    if Gb is not None:
        total = total + d @ Gb
    return total.reshape(-1, 1, 1)
