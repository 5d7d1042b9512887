"""Notebook 07's measurements: the sensitivity test of a spurious and a core neuron, and the
counts that compare the two views — TFA (the explorer's ranking and maps) and neural features —
over many flipped test images."""
from __future__ import annotations

import torch

from ..attribution import neural_features as NF
from ..attribution.reduction import reduce_map
from ..evaluation.metrics import relevance_mass_accuracy
from ..training.train import predict

__all__ = ["core_neuron", "sensitivity_test", "view_counts", "spuriousness_ranking"]


def spuriousness_ranking(spur: dict, name: str, n: int = 5) -> str:
    """The ``n`` most spurious neurons of :func:`~tfa_tutorial.attribution.neural_features.spuriousness`'s
    result ``spur`` as text lines: score (map mass on the patch over the top-m images), chance, their
    ratio and the share of the top images that carry the patch."""
    lines = [f"{name}: most spurious neurons (score = map mass on the patch over the top-{spur['m']} images)"]
    for c in spur["order"][:n].tolist():
        lines.append(f"  neuron {c:>2}: score {spur['score'][c]:.3f}, chance {spur['chance'][c]:.3f}, "
                     f"ratio {spur['ratio'][c]:.2f}, top images with the patch {spur['frac_masked'][c]:.0%}")
    return "\n".join(lines)


def core_neuron(spur: dict, contrib: torch.Tensor) -> int:
    """The neuron most used for the class (largest mean of ``contrib`` ``[N_class, F]``, W·h over the
    class's training images) whose spuriousness ratio (``spur["ratio"]`` ``[F]``, from
    :func:`~tfa_tutorial.attribution.neural_features.spuriousness`) is at most chance (≤ 1);
    the least used neuron if none is."""
    order = contrib.mean(0).argsort(descending=True).tolist()
    return next((c for c in order if spur["ratio"][c] <= 1.0), order[-1])


def sensitivity_test(model, layer, spur: dict, contrib: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                     box: torch.Tensor, target: int, sigma: float = 0.5, repeats: int = 3, seed: int = 0) -> dict:
    """Salient ImageNet's test on images ``x`` ``[B, C, H, W]`` (labels ``y`` ``[B]``): noise
    x + σ ε ⊙ m inside five masks ``[B, H, W]`` — the most spurious neuron's activation map, a core
    neuron's (:func:`core_neuron`), the spurious mask moved at random, the patch box ``box``
    ``[H, W]`` and the box moved at random.

    Returns ``{"spurious": neuron, "core": neuron, "results": {mask: {"target_rate", "acc", "mass"}}``
    (with ``"none"``, no noise; from :func:`~tfa_tutorial.attribution.neural_features.mask_sensitivity`),
    ``"on_box": {mask: mean share of the mask's mass inside the box}}``."""
    spur_n, core_n = int(spur["order"][0]), core_neuron(spur, contrib)
    m_spur = NF.activation_maps(model, x, spur_n, layer)
    m_core = NF.activation_maps(model, x, core_n, layer)
    boxes = box.float().expand(len(x), *box.shape)
    masks = {"spurious": m_spur, "core": m_core, "random": NF.random_mask_like(m_spur, seed=seed + 1),
             "patch box": boxes, "random box": NF.random_mask_like(boxes, seed=seed + 1)}
    res = NF.mask_sensitivity(model, x, y, masks, sigma=sigma, repeats=repeats, seed=seed, target=target)
    on_box = {name: float((m * box).sum(dim=(1, 2)).div(m.sum(dim=(1, 2)).clamp_min(1e-12)).mean())
              for name, m in masks.items()}
    return {"spurious": spur_n, "core": core_n, "results": res, "on_box": on_box}


def view_counts(state, layer, neuron: int, test_indices, box: torch.Tensor, n_tfa: int = 10,
                methods=("gradient",), top: int = 3) -> dict:
    """Both views over the patched test images ``test_indices`` of ``state`` (an
    :class:`~tfa_tutorial.explorer.state.ExplorerState`):

    - neural features: ``"neuron_in_top"``, the share of images whose ``top`` neurons by
      W[pred, c] · h_c(x) include ``neuron``; ``"top_neuron_mass"``, the mean share of the top
      neuron's activation map (on the test image) inside ``box`` ``[H, W]``;
    - TFA, over the first ``n_tfa`` images: ``"patched_share"`` of the top-k proponents, and
      ``"mass"`` ``{method: mean positive mass inside the patch}`` of each explorer map method
      of ``methods`` on the patched proponents (relevance mass accuracy)."""
    test_indices = [int(i) for i in test_indices]
    x = state.test_sets["patched"][test_indices]
    model = state.model
    pred, _ = predict(model, x)
    contrib = layer.weight[pred].cpu() * NF.neural_activations(model, x, layer)  # [B, F]
    top_n = contrib.topk(top, dim=1).indices
    maps = NF.activation_maps(model, x, top_n[:, 0].tolist(), layer)  # [B, F', H, W] or per image below
    if maps.ndim == 4:
        maps = maps[torch.arange(len(x)), torch.arange(len(x))]
    out = {"neuron_in_top": float((top_n == neuron).any(1).float().mean()),
           "top_neuron_mass": float(relevance_mass_accuracy(maps, box.expand(len(x), *box.shape)).mean())}
    shares, mass = [], {m: [] for m in methods}
    for i in test_indices[:n_tfa]:
        r = state.result(test_index=i, maps=False)
        shares.append(sum(bool(p.patched) for p in r.proponents) / len(r.proponents))
        for p in (p for p in r.proponents if p.patched):
            for m in methods:
                shown = reduce_map(state.training_map(p.index, r.settings, method=m), "positive")
                mass[m].append(float(relevance_mass_accuracy(shown[None], p.mask[None])[0]))
    out["patched_share"] = sum(shares) / len(shares)
    out["mass"] = {m: sum(v) / len(v) if v else float("nan") for m, v in mass.items()}
    return out
