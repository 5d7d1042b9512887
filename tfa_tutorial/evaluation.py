"""Does a training-feature map find the shortcut? Like-for-like measurement with controls (SPEC §4).

Protocol (notes/tfa-experiment-1.md, kept so numbers stay comparable):

1. Test images: other-class test images that the shortcut model classifies correctly when clean and
   as the target class once patched (the patched version is explained, with its predicted label).
2. For each, its top-k Grad-Cos training images *among the patched ones* — this measures
   localisation given correct retrieval; retrieval itself is measured by
   :func:`retrieval_auprc`.
3. Every map family is computed on the same pairs, reduced to its positive part (channel sum) and
   scored against the known patch mask with relevance mass accuracy, relevance rank accuracy and
   the pointing game.
4. Controls: the same pipeline and pairs with the **clean model** (trained without the patch: a
   map that still "finds" the patch there is a prior, not evidence), the **input itself** as a
   map (the patch is the brightest region) and a **random** map; chance = the mask's area.

The model-specific gain of a family is its score with the shortcut model minus its score with the
clean model.
"""
from __future__ import annotations

from typing import Callable

import torch

from .decomposition import decompose_score
from .score_vectors import score_vector
from .baselines import grad_cam, random_map, saliency, two_step_baseline
from .metrics import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, shortcut_detection_auprc
from .reduction import reduce_map
from .scores import grad_cos, grad_dot
from .tfa import tfa_maps

__all__ = ["MAP_FAMILIES", "select_pairs", "retrieval_auprc", "localisation_table", "format_table"]

MapFn = Callable[..., torch.Tensor]  # (model, x_train[k], y_train[k], x_test, y_test, seed) -> [k, C, H, W]


def _tfa(**kw) -> MapFn:
    return lambda m, xtr, ytr, xte, yte, seed: tfa_maps(m, xtr, ytr, xte, yte, seed=seed, **kw)


def _decomposition(**kw) -> MapFn:
    def fn(m, xtr, ytr, xte, yte, seed):
        v = score_vector(m, xte, "cos", test_target=yte)
        d = decompose_score(m, xtr, ytr, v, **kw)
        return d.maps * torch.where(d.scores < 0, -1.0, 1.0).to(d.maps).view(-1, 1, 1, 1)

    return fn


def _two_step(**kw) -> MapFn:
    return lambda m, xtr, ytr, xte, yte, seed: two_step_baseline(m, xtr, ytr, seed=seed, **kw)


#: name → map function; each TFA method has its two-step counterpart with the same method. The
#: exact decomposition (:func:`tfa_tutorial.decompose_score`) is multiplied by sign(S), so its
#: positive part supports the score. The full grid of methods × scores is in :mod:`.evidence`.
MAP_FAMILIES: dict[str, MapFn] = {
    "TFA gradient, SmoothGrad (paper)": _tfa(n_samples=16, noise=0.15),
    "TFA gradient, raw": _tfa(n_samples=0),
    "TFA gradient × input": _tfa(method="gradient_x_input", n_samples=16, noise=0.15),
    "TFA integrated gradients": _tfa(method="integrated_gradients", steps=16),
    "TFA-Dot gradient, SmoothGrad": _tfa(score="dot", n_samples=16, noise=0.15),
    "TFA exact decomposition": _decomposition(mapping="rf"),
    "two-step SmoothGrad (own logit)": _two_step(n_samples=16, noise=0.15),
    "two-step gradient × input": _two_step(method="gradient_x_input", n_samples=16, noise=0.15),
    "two-step integrated gradients": _two_step(method="integrated_gradients", steps=16),
    "input as map": lambda m, xtr, ytr, xte, yte, seed: xtr.clone(),
    "random": lambda m, xtr, ytr, xte, yte, seed: random_map(xtr.shape, seed=seed, dtype=xtr.dtype),
}


def select_pairs(exp, n_test: int = 10, top_k: int = 5, seed: int = 0, scores: torch.Tensor | None = None):
    """Pick the (test, training) pairs of the protocol.

    Returns ``(test_idx [Q], train_idx [Q, k], scores [Q, N])``: ``test_idx`` indexes
    ``exp.patched_test``, ``train_idx`` indexes ``exp.train``; ``scores`` are the shortcut model's
    Grad-Cos scores of the chosen (patched) test images against all training images, with the
    predicted labels.
    """
    flipped = exp.flipped_test_indices()
    if len(flipped) == 0:
        raise ValueError("no test image is flipped by the patch: the model did not learn the shortcut")
    order = torch.randperm(len(flipped), generator=torch.Generator().manual_seed(seed))
    test_idx = flipped[order[:n_test]]
    if scores is None:
        scores = grad_cos(exp.model, exp.train.images, exp.train.labels, exp.patched_test.images[test_idx])
    masked = scores.masked_fill(~exp.train.patched[None, :], float("-inf"))
    train_idx = masked.topk(top_k, dim=1).indices
    return test_idx, train_idx, scores


def retrieval_auprc(exp, test_idx: torch.Tensor, model=None, seed: int = 0, cos=None, dot=None) -> dict:
    """quanda's shortcut-detection AUPRC on these (patched) test images against the training
    images' ``patched`` flags, for Grad-Cos, Grad-Dot, random scores, and the *label-only* control
    (score 1 when the training label equals the test prediction): how much of the AUPRC label
    agreement alone explains. Pass precomputed ``cos``/``dot`` ``[Q, N]`` to skip recomputing."""
    model = model or exp.model
    xq = exp.patched_test.images[test_idx]
    if cos is None:
        cos = grad_cos(model, exp.train.images, exp.train.labels, xq)
    if dot is None:
        dot = grad_dot(model, exp.train.images, exp.train.labels, xq)
    rnd = torch.rand(cos.shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        pred = model(xq).argmax(1)
    label_only = (exp.train.labels[None, :] == pred[:, None]).double()
    flags = exp.train.patched
    return {
        "Grad-Cos": shortcut_detection_auprc(cos, flags),
        "Grad-Dot": shortcut_detection_auprc(dot, flags),
        "label only": shortcut_detection_auprc(label_only, flags),
        "random": shortcut_detection_auprc(rnd, flags),
        "prevalence (chance)": float(flags.float().mean()),
    }


def _scores(maps: torch.Tensor, masks: torch.Tensor) -> dict:
    reduced = reduce_map(maps, "positive", "sum")
    return {
        "mass": float(relevance_mass_accuracy(reduced, masks).mean()),
        "rank": float(relevance_rank_accuracy(reduced, masks).mean()),
        "pointing": float(pointing_game(reduced, masks).mean()),
    }


def localisation_table(
    exp,
    test_idx: torch.Tensor,
    train_idx: torch.Tensor,
    families: dict[str, MapFn] | None = None,
    seed: int = 0,
    test_image_baselines: bool = True,
    progress: bool = True,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{family: {"shortcut model": {mass, rank, pointing}, "clean model": {...}}}`` averaged over
    all (test, training) pairs; with ``test_image_baselines`` also classical FA on the *test*
    image (saliency, Grad-CAM w.r.t. the predicted label) against the test image's patch mask."""
    families = MAP_FAMILIES if families is None else families
    from tqdm.auto import tqdm

    table: dict[str, dict[str, dict[str, float]]] = {}
    models = {"shortcut model": exp.model, "clean model": exp.clean_model}
    jobs = [(f, mname) for f in families for mname in models]
    for fam, mname in tqdm(jobs, desc="map families", disable=not progress, leave=False):
        model = models[mname]
        maps, masks = [], []
        for q, ti in enumerate(test_idx.tolist()):
            tr = train_idx[q]
            xte = exp.patched_test.images[ti]
            yte = None  # explain the prediction of the model at hand
            maps.append(families[fam](model, exp.train.images[tr], exp.train.labels[tr], xte, yte, seed + q))
            masks.append(exp.train.masks[tr])
        table.setdefault(fam, {})[mname] = _scores(torch.cat(maps), torch.cat(masks))
    if test_image_baselines:
        xq = exp.patched_test.images[test_idx]
        mq = exp.patched_test.masks[test_idx]
        for mname, model in models.items():
            with torch.no_grad():
                pred = model(xq).argmax(1)
            table.setdefault("test-image saliency (classical FA)", {})[mname] = _scores(saliency(model, xq, pred), mq)
            table.setdefault("test-image Grad-CAM (classical FA)", {})[mname] = _scores(grad_cam(model, xq, pred), mq)
    return table


def format_table(table: dict, chance: float | None = None, digits: int = 2) -> str:
    """Markdown: one row per family, mass / rank / pointing for the shortcut and clean model,
    and the model-specific gain in mass."""
    lines = [
        "| map | mass (shortcut) | rank (shortcut) | pointing (shortcut) | mass (clean) | gain in mass |",
        "|---|---|---|---|---|---|",
    ]
    for fam, row in table.items():
        s, c = row["shortcut model"], row.get("clean model", {})
        gain = s["mass"] - c["mass"] if c else float("nan")
        lines.append(
            f"| {fam} | {s['mass']:.{digits}f} | {s['rank']:.{digits}f} | {s['pointing']:.{digits}f} | "
            f"{c.get('mass', float('nan')):.{digits}f} | {gain:+.{digits}f} |"
        )
    if chance is not None:
        lines.append(f"| chance (mask area) | {chance:.{digits}f} | {chance:.{digits}f} | {chance:.{digits}f} | {chance:.{digits}f} | +0.00 |")
    return "\n".join(lines)
