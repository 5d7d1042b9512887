"""Neural features: the global, model-level view of spurious and core features (Salient ImageNet).

Singla & Feizi ("Salient ImageNet: How to discover spurious features in deep learning?", ICLR 2022)
read a trained classifier through its **penultimate-layer neurons** ("neural features"):

- the penultimate features of an image x are the channels A_c(x) ``[h, w]`` of the last spatial
  layer, globally pooled to h_c(x) (the input of the final linear layer z = W h + b);
- a neuron's **contribution** to class k on image x is W[k, c] · h_c(x) (weight × activation);
  the neurons a class uses most are those with the largest mean contribution;
- a neuron is visualised by its **top-activating training images** (largest h_c) and its
  **feature-activation map** on each: A_c(x) upsampled (bilinear) to the image size and
  min–max normalised to [0, 1] — a *soft mask* of where the feature is;
- the **sensitivity test** adds Gaussian noise inside a soft mask, x' = x + σ · ε ⊙ m with
  ε ~ N(0, I), and measures how accuracy changes: a model that depends on a (spurious) feature
  loses accuracy when noise hides it.

In this tutorial the spurious feature is planted (the patch), so we have its ground-truth masks.
:func:`spuriousness` scores every neuron by how much of its activation-map mass lies inside the
known patch masks over its top-activating images — a ranking that uses activations and masks but
**not class labels**. (Salient ImageNet has no masks: humans label each neuron core/spurious from
its top images and maps; the masks stand in for that human judgement here.)

TFA (:mod:`tfa_tutorial.attribution.tfa`) is the *test-specific* counterpart: which regions of which training
images drive *this* prediction. Neural features are *global*: which features the model uses for
a class at all, shown through the training images that excite them most.

Shapes: images ``[N, C, H, W]``; pooled activations ``[N, F]`` (F neurons); raw maps
``[N, F, h, w]``; soft masks ``[N, H, W]`` in [0, 1].
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.validation import (
    check_finite,
    check_inputs,
    check_int,
    check_model_ready,
    check_real,
)
from ..training.train import predict
from .feature_layer import FeatureLayer, find_feature_layer

__all__ = [
    "neural_activations",
    "activation_maps",
    "minmax_maps",
    "class_contributions",
    "top_neurons",
    "top_activating",
    "ablation_effect",
    "spuriousness",
    "noise_in_mask",
    "random_mask_like",
    "mask_sensitivity",
]


def _layer(model, images, layer):
    return layer if layer is not None else find_feature_layer(model, images[0])


@torch.no_grad()
def neural_activations(
    model: nn.Module, images: torch.Tensor, layer: FeatureLayer | None = None, maps: bool = False,
    batch_size: int = 512,
):
    """Penultimate activations of ``images`` ``[N, C, H, W]``.

    Returns h ``[N, F]`` (the pooled features, the final Linear's input), or ``(h, A)`` with the raw
    feature maps A ``[N, F, h, w]`` when ``maps=True`` (memory N·F·h·w floats: ask only for the
    images you show). Computed in eval mode without gradients, on the model's device; returned on CPU."""
    check_model_ready(model)
    images = check_inputs(model, images, "images")
    layer = _layer(model, images, layer)
    device = next(model.parameters()).device
    store = {}
    hook = layer.module.register_forward_hook(lambda _m, _i, out: store.__setitem__("a", out))
    hs, As = [], []
    try:
        for i in range(0, len(images), batch_size):
            model(images[i:i + batch_size].to(device))
            a = store["a"]
            hs.append((a.mean(dim=(2, 3)) if layer.pooling == "avg" else a.amax(dim=(2, 3))).cpu())
            if maps:
                As.append(a.cpu())
    finally:
        hook.remove()
    h = torch.cat(hs)
    return (h, torch.cat(As)) if maps else h


def minmax_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min–max normalise each map ``[..., H, W]`` to [0, 1]; a constant map becomes all zeros.
    A map holding NaN or ±inf raises instead of becoming all zeros."""
    check_finite(maps, "maps")
    lo = maps.amin(dim=(-2, -1), keepdim=True)
    hi = maps.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (maps - lo) / span.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


def activation_maps(
    model: nn.Module, images: torch.Tensor, neurons: int | Sequence[int] | torch.Tensor,
    layer: FeatureLayer | None = None, normalize: bool = True, batch_size: int = 256,
) -> torch.Tensor:
    """Feature-activation maps (Salient ImageNet's soft masks) of ``neurons`` on ``images``.

    Returns ``[N, len(neurons), H, W]`` (``[N, H, W]`` for one int neuron): A_c(x) bilinearly
    upsampled to the image size, each map min–max normalised to [0, 1] (``normalize=False`` keeps
    the upsampled raw activations)."""
    images = check_inputs(model, images, "images")
    layer = _layer(model, images, layer)
    single = isinstance(neurons, int) and not isinstance(neurons, bool)
    idx = _neuron_index(neurons, layer.num_features)
    out = []
    for i in range(0, len(images), batch_size):
        _, a = neural_activations(model, images[i:i + batch_size], layer, maps=True, batch_size=batch_size)
        m = F.interpolate(a[:, idx], size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False)
        out.append(minmax_maps(m) if normalize else m)
    maps = torch.cat(out)
    return maps[:, 0] if single else maps


def _neuron_index(neurons, n_features: int) -> torch.Tensor:
    idx = torch.as_tensor([neurons] if isinstance(neurons, int) else neurons)
    if idx.ndim != 1 or idx.numel() == 0 or idx.is_floating_point() or idx.dtype == torch.bool:
        raise ValueError(f"neurons must be an int or a non-empty 1-D list of ints, got {neurons!r}")
    if int(idx.min()) < 0 or int(idx.max()) >= n_features:
        raise ValueError(f"neuron indices must lie in [0, {n_features}), got range [{int(idx.min())}, {int(idx.max())}]")
    return idx.long()


def class_contributions(
    model: nn.Module, images: torch.Tensor, target: int, layer: FeatureLayer | None = None,
    activations: torch.Tensor | None = None,
) -> torch.Tensor:
    """Contribution of every neuron to the logit of class ``target``: W[target, c] · h_c(x), ``[N, F]``.

    The logit is z_target(x) = Σ_c W[target, c] h_c(x) + b_target, so the rows sum to the logit
    minus the bias. Pass precomputed ``activations`` h ``[N, F]`` to skip the forward pass."""
    layer = _layer(model, images, layer)
    k = layer.classifier.out_features
    if not isinstance(target, int) or isinstance(target, bool) or not 0 <= target < k:
        raise ValueError(f"target must be a class index in [0, {k}), got {target!r}")
    h = neural_activations(model, images, layer) if activations is None else activations
    if h.ndim != 2 or h.shape[1] != layer.num_features:
        raise ValueError(f"activations must have shape [N, {layer.num_features}], got {tuple(h.shape)}")
    check_finite(h, "activations")
    return layer.weight[target].cpu().to(h.dtype) * h


def top_neurons(contributions: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` neurons with the largest mean contribution over the rows of ``contributions``
    ``[N, F]`` (Salient ImageNet: the top-5 neural features of a class, averaged over its images).
    Returns ``(indices [k], mean contributions [k])``, largest first."""
    if contributions.ndim != 2 or len(contributions) == 0:
        raise ValueError(f"contributions must be a non-empty [N, F] tensor, got {tuple(contributions.shape)}")
    k = min(check_int(k, "k"), contributions.shape[1])
    check_finite(contributions, "contributions")
    mean = contributions.mean(0)
    v, i = mean.topk(k)
    return i, v


def top_activating(activations: torch.Tensor, neuron: int, m: int = 16) -> torch.Tensor:
    """Indices ``[m]`` of the rows of ``activations`` h ``[N, F]`` where neuron ``neuron`` is largest
    (its top-activating images), largest first."""
    if activations.ndim != 2:
        raise ValueError(f"activations must be [N, F], got {tuple(activations.shape)}")
    neuron = check_int(neuron, "neuron", 0)
    _neuron_index(neuron, activations.shape[1])
    check_finite(activations, "activations")
    return activations[:, neuron].topk(min(check_int(m, "m"), len(activations))).indices


@torch.no_grad()
def ablation_effect(
    model: nn.Module, images: torch.Tensor, target: int, layer: FeatureLayer | None = None,
    activations: torch.Tensor | None = None,
) -> dict:
    """A causal check of single neurons: switch neuron c off (h_c := 0 before the final Linear,
    logits recomputed exactly as W h + b) and count how many ``images`` are still predicted as
    ``target``. Returns ``{"base": share predicted as target, "drop": [F] base minus share with c
    off, "order": neurons by drop, largest first}``. Uses no masks and no labels."""
    layer = _layer(model, images, layer)
    h = neural_activations(model, images, layer) if activations is None else activations
    w = layer.weight.cpu().to(h.dtype)
    b = layer.classifier.bias.detach().cpu().to(h.dtype) if layer.classifier.bias is not None else torch.zeros(w.shape[0], dtype=h.dtype)
    logits = h @ w.T + b
    base = (logits.argmax(1) == target).to(h.dtype).mean()
    # switching c off changes every logit k by −W[k, c] h_c
    off = logits[:, None, :] - h[:, :, None] * w.T[None]  # [N, F, K]
    drop = base - (off.argmax(2) == target).to(h.dtype).mean(0)
    return {"base": float(base), "drop": drop, "order": drop.argsort(descending=True)}


@torch.no_grad()
def spuriousness(
    model: nn.Module, images: torch.Tensor, masks: torch.Tensor, m: int = 32,
    layer: FeatureLayer | None = None, activations: torch.Tensor | None = None,
    neurons: Sequence[int] | None = None,
) -> dict:
    """Score every neuron by how much of its activation map lies on the known spurious region.

    For neuron c, take its ``m`` top-activating images among ``images`` (by h_c, no labels used);
    on each, the share of the (normalised, upsampled) activation map's mass inside the mask,
    mass_in(c, i) = Σ_{p∈mask_i} m_c(x_i)[p] / Σ_p m_c(x_i)[p]; the score is its mean over the m
    images. The chance level is the mean mask area over the same images (a map spread evenly puts
    that share inside); ``ratio`` = score / chance. Images without the patch have an empty mask and
    add 0 to both.

    Args:
        masks: ``[N, H, W]`` bool (or [0, 1]) ground-truth masks of the spurious region, or one
            ``[H, W]`` mask for every image.
        neurons: score only these (default: all F).

    Returns a dict of ``[F']`` tensors: ``neurons``, ``score``, ``chance``, ``ratio``,
    ``frac_masked`` (share of the top images with a non-empty mask), and ``top`` ``[F', m]``
    (the top image indices), ``m`` (the number of top images used); ``order`` ranks the neurons by
    ``score``, most spurious first.
    """
    images = check_inputs(model, images, "images")
    layer = _layer(model, images, layer)
    n, _, hh, ww = images.shape
    masks = torch.as_tensor(masks)
    if masks.shape == (hh, ww):
        masks = masks.expand(n, hh, ww)
    if masks.shape != (n, hh, ww):
        raise ValueError(f"masks must have shape [{n}, {hh}, {ww}] or [{hh}, {ww}], got {tuple(masks.shape)}")
    masks = masks.float()
    h = neural_activations(model, images, layer) if activations is None else activations
    if h.shape != (n, layer.num_features):
        raise ValueError(f"activations must have shape [{n}, {layer.num_features}], got {tuple(h.shape)}")
    check_finite(h, "activations")
    idx = _neuron_index(list(range(layer.num_features)) if neurons is None else list(neurons), layer.num_features)
    m = min(check_int(m, "m"), n)
    top = h[:, idx].topk(m, dim=0).indices.T  # [F', m]
    # maps of every needed image for every neuron at once (each top image once)
    needed = top.flatten().unique()
    pos = torch.full((n,), -1, dtype=torch.long)
    pos[needed] = torch.arange(len(needed))
    maps = activation_maps(model, images[needed], idx.tolist(), layer)  # [U, F', H, W]
    scores, chance, frac = [], [], []
    for j in range(len(idx)):
        rows = pos[top[j]]
        mj = maps[rows, j]  # [m, H, W]
        mk = masks[top[j]]
        total = mj.sum(dim=(1, 2)).clamp_min(1e-12)
        scores.append(((mj * mk).sum(dim=(1, 2)) / total).mean())
        chance.append(mk.mean(dim=(1, 2)).mean())
        frac.append((mk.flatten(1).amax(1) > 0).float().mean())
    score, chance, frac = torch.stack(scores), torch.stack(chance), torch.stack(frac)
    ratio = torch.where(chance > 0, score / chance.clamp_min(1e-12), torch.zeros_like(score))
    return {"neurons": idx, "score": score, "chance": chance, "ratio": ratio, "frac_masked": frac, "top": top, "m": m,
            "order": idx[score.argsort(descending=True)]}


def noise_in_mask(images: torch.Tensor, masks: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """x' = x + σ · ε ⊙ m (Salient ImageNet's noise test), ε ~ N(0, I) seeded, ``masks`` ``[N, H, W]``
    soft masks in [0, 1] broadcast over channels. Not clipped to [0, 1]."""
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {tuple(images.shape)}")
    if masks.shape != (images.shape[0],) + tuple(images.shape[2:]):
        raise ValueError(f"masks must have shape [{images.shape[0]}, {images.shape[2]}, {images.shape[3]}], got {tuple(masks.shape)}")
    sigma = check_real(sigma, "sigma", 0)
    g = torch.Generator().manual_seed(check_int(seed, "seed", None))
    eps = torch.randn(images.shape, generator=g, dtype=images.dtype)
    return images + float(sigma) * eps * masks[:, None].to(images.dtype)


def random_mask_like(masks: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A random control mask of **equal mass and shape**: each mask ``[N, H, W]`` moved by a random
    circular shift (dy, dx) ~ U{0..H−1} × U{0..W−1} (``torch.roll``), so it keeps its values, its
    total and its blob shape but sits at a random place."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be [N, H, W], got {tuple(masks.shape)}")
    g = torch.Generator().manual_seed(int(seed))
    n, hh, ww = masks.shape
    dy = torch.randint(0, hh, (n,), generator=g).tolist()
    dx = torch.randint(0, ww, (n,), generator=g).tolist()
    return torch.stack([torch.roll(m, (a, b), dims=(0, 1)) for m, a, b in zip(masks, dy, dx)])


@torch.no_grad()
def mask_sensitivity(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor | dict,
    sigma: float = 0.5, repeats: int = 3, seed: int = 0, target: int | None = None,
) -> dict:
    """The sensitivity test: accuracy of ``model`` on ``images`` with Gaussian noise (σ) added inside
    each soft mask, x + σ ε ⊙ m, averaged over ``repeats`` noise draws.

    ``masks`` is one ``[N, H, W]`` tensor or a dict ``{name: masks}`` (e.g. spurious, core, random).
    Returns ``{"none": row, name: row, ...}``; each row has ``acc`` (accuracy), ``drop`` (accuracy
    without noise minus with), ``mass`` (mean mask mass per image, in pixels) and, with ``target``,
    ``target_rate`` (share predicted as ``target``: the flip rate on patched images of other classes)."""
    images = check_inputs(model, images, "images")
    repeats = check_int(repeats, "repeats")
    sigma = check_real(sigma, "sigma", 0)
    labels = torch.as_tensor(labels).long()
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape [{len(images)}], got {tuple(labels.shape)}")
    if isinstance(masks, torch.Tensor):
        masks = {"mask": masks}

    def row(x_list):
        accs, rates = [], []
        for x in x_list:
            pred, _ = predict(model, x)
            accs.append(float((pred == labels).float().mean()))
            if target is not None:
                rates.append(float((pred == target).float().mean()))
        r = {"acc": sum(accs) / len(accs)}
        if target is not None:
            r["target_rate"] = sum(rates) / len(rates)
        return r

    out = {"none": {**row([images]), "mass": 0.0}}
    for name, mk in masks.items():
        mk = torch.as_tensor(mk).to(images.dtype)
        r = row([noise_in_mask(images, mk, sigma, seed + t) for t in range(repeats)])
        r["mass"] = float(mk.sum(dim=(1, 2)).mean())
        r["drop"] = out["none"]["acc"] - r["acc"]
        out[name] = r
    return out
