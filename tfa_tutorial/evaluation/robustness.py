"""Is the evidence about the paper's map robust? The variants of docs/results.md's "Robustness" table.

Each variant re-runs the localisation protocol of :mod:`.evidence` (flipped test images × training
images, both models explain the shortcut model's prediction, gain = shortcut − clean mass) with
one thing changed:

- a score variant of the registry (:data:`tfa_tutorial.attribution.families.ROBUSTNESS_FAMILIES`: logit
  gradients, parameter subsets, SmoothGrad settings) on the protocol's pairs;
- the pairs (:func:`random_patched_pairs`: random patched training images instead of the top
  Grad-Cos ones, summarised unweighted and weighted by S⁺);
- the model (:data:`tfa_tutorial.attribution.families.MODEL_OPTIONS`: global max pooling, ResNet-9) or the
  training (the full setting: 60k images, 6 epochs), through :func:`variant_experiment`.

Float32 breaks down for an example whose loss is below ~1e-7: p_y − 1 rounds to 0, the loss
gradient is rounding noise, S can flip sign and the maps are uncorrelated with their float64
values. :func:`float32_breakdown` detects such examples and :func:`pair_metrics` computes every
pair that involves one (training or test image) in float64, counting them.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..attribution.families import (
    FAMILIES,
    MODEL_OPTIONS,
    ROBUSTNESS_COMPARISON,
    ROBUSTNESS_KEY_TFA,
    PairContext,
    pair_seed,
)
from ..attribution.gradients import predicted_labels
from ..attribution.reduction import reduce_map
from ..data.patches import PRESETS, inject_patch, patch_all
from ..training.experiment import (
    ShortcutExperiment,
    course_data,
    experiment_settings,
    shortcut_experiment,
)
from ..training.train import shortcut_report, train_model, train_or_load
from .evidence import dilate_masks
from .metrics import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy

__all__ = ["LOSS_FLOOR", "float32_breakdown", "variant_experiment", "random_patched_pairs", "pair_metrics",
           "summarise_pairs"]

#: below this loss a float32 model's per-example gradient is rounding noise (p_y − 1 rounds to 0).
LOSS_FLOOR = 1e-7


@torch.no_grad()
def float32_breakdown(model, inputs: torch.Tensor, targets: torch.Tensor, floor: float = LOSS_FLOOR) -> torch.Tensor:
    """``[N]`` bool: the examples whose cross-entropy loss under a float32 ``model`` is below
    ``floor`` (the loss itself evaluated in float64 from the logits, so it is not rounded to 0).
    All False for a float64 model, whose gradients stay accurate far below 1e-7."""
    dtype = next(model.parameters()).dtype
    if dtype == torch.float64:
        return torch.zeros(len(inputs), dtype=torch.bool)
    if dtype != torch.float32:
        raise ValueError(f"float32_breakdown expects a float32 or float64 model, got {dtype}")
    logits = model(inputs).double()
    return (F.cross_entropy(logits, torch.as_tensor(targets).long(), reduction="none") < floor).cpu()


def variant_experiment(preset: str = "tutorial", seed: int = 0, model_option: str = "SmallCNN", fast: bool = True,
                       progress: bool = False) -> ShortcutExperiment:
    """The shortcut experiment with the model of ``model_option`` (:data:`MODEL_OPTIONS`) and the
    fast (12k images, 3 epochs) or full (60k, 6 epochs) setting. The tutorial's own case (SmallCNN,
    fast) is :func:`tfa_tutorial.shortcut_experiment`; the others are cached under their own names,
    with one clean model per (model, setting, seed) shared by the presets."""
    if model_option not in MODEL_OPTIONS:
        raise ValueError(f"unknown model option {model_option!r}: choose one of {list(MODEL_OPTIONS)}")
    if model_option == "SmallCNN" and fast:
        return shortcut_experiment(preset, seed=seed, fast=True, progress=progress)
    spec = PRESETS[preset]
    settings = experiment_settings(fast)
    train, test = course_data(settings, seed)
    patched_train, patched_test = inject_patch(train, spec), patch_all(test, spec)
    base = {"data": "fashion_mnist", **settings, "model_option": model_option}

    def fit(name, data, config):
        def build():
            return MODEL_OPTIONS[model_option](data.image_shape[0], data.num_classes)

        model, _ = train_or_load(name, build, lambda m: train_model(m, data, epochs=settings["epochs"], seed=seed,
                                                                      progress=progress), config=config, seed=seed)
        return model

    model = fit("robustness-shortcut", patched_train, {**base, "spec": spec})
    clean = fit("robustness-clean", train, base)
    exp = ShortcutExperiment(spec, patched_train, test, patched_test, model, clean, settings, seed)
    exp.report, exp.clean_report = shortcut_report(model, test, spec), shortcut_report(clean, test, spec)
    return exp


def random_patched_pairs(exp, test_idx: torch.Tensor, top_k: int, seed: int = 0) -> torch.Tensor:
    """``[Q, k]`` training indices: for each test image, ``k`` patched training images drawn at
    random (without replacement), instead of the top-k by Grad-Cos."""
    patched = exp.train.patched.nonzero().flatten()
    if len(patched) < top_k:
        raise ValueError(f"only {len(patched)} patched training images for k = {top_k}")
    g = torch.Generator().manual_seed(pair_seed(seed, -1))
    return torch.stack([patched[torch.randperm(len(patched), generator=g)[:top_k]] for _ in range(len(test_idx))])


def _per_pair(maps: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-pair metrics ``{name: [B]}`` of maps ``[B, C, H, W]`` (the protocol and the fair measures)."""
    r, a, wide = reduce_map(maps, "positive", "sum"), reduce_map(maps, "absolute", "sum"), dilate_masks(masks)
    return {
        "mass": relevance_mass_accuracy(r, masks), "rank": relevance_rank_accuracy(r, masks),
        "pointing": pointing_game(r, masks), "mass |map|": relevance_mass_accuracy(a, masks),
        "mass, dilated mask": relevance_mass_accuracy(r, wide),
    }


def pair_metrics(exp, test_idx: torch.Tensor, train_idx: torch.Tensor, families, seed: int = 0,
                 float64_fallback: bool = True) -> dict:
    """Per-pair metrics of ``families`` (names of the registry) on both models, and each pair's score
    S (Grad-Cos, that model). Pairs touched by :func:`float32_breakdown` (the training image's or the
    test image's loss below :data:`LOSS_FLOOR`) are computed with a float64 copy of the model when
    ``float64_fallback``; otherwise they raise ValueError naming how many there are.

    Returns ``{"metrics": {family: {model: {metric: [Q·k] list}}}, "scores": {model: [Q·k] list},
    "float64 pairs": {model: int}}``."""
    X, Y = exp.train.images, exp.train.labels
    xq = exp.patched_test.images[test_idx]
    labels = predicted_labels(exp.model, xq)
    masks = exp.train.masks[train_idx.flatten()]
    out = {"metrics": {f: {} for f in families}, "scores": {}, "float64 pairs": {}}
    for mname, model in {"shortcut model": exp.model, "clean model": exp.clean_model}.items():
        model64 = None
        maps = {f: [] for f in families}
        scores, touched = [], 0
        for q, ti in enumerate(test_idx.tolist()):
            tr = train_idx[q]
            x, y, xt = X[tr], Y[tr], exp.patched_test.images[ti]
            bad = float32_breakdown(model, x, y)
            if bool(float32_breakdown(model, xt[None], labels[q:q + 1])[0]):
                bad[:] = True
            touched += int(bad.sum())
            if bad.any() and not float64_fallback:
                raise ValueError(f"{int(bad.sum())} pairs have a loss below {LOSS_FLOOR:g} under the float32 {mname}: "
                                 "its gradients are rounding noise; pass float64_fallback=True")
            parts = [(~bad, model, next(model.parameters()).dtype)] + ([(bad, None, torch.float64)] if bad.any() else [])
            rows = {f: torch.empty(len(tr), *x.shape[1:], dtype=torch.float64) for f in families}
            s_row = torch.empty(len(tr), dtype=torch.float64)
            for sel, m, dt in parts:
                if not sel.any():
                    continue
                if m is None:
                    model64 = model64 or copy.deepcopy(model).double().eval()
                    m = model64
                ctx = PairContext(m, x[sel].to(dt), y[sel], xt.to(dt), int(labels[q]), int(exp.patched_test.labels[ti]),
                                  exp.test.images[ti].to(dt), seed=pair_seed(seed, q))
                s_row[sel] = ctx.scores("cos").double().cpu()
                for f in families:
                    mp = FAMILIES[f](ctx).detach().double().cpu()
                    rows[f][sel] = mp if mp.shape[1] == x.shape[1] else mp.expand(-1, x.shape[1], -1, -1) / x.shape[1]
            scores.append(s_row)
            for f in families:
                maps[f].append(rows[f])
        for f in families:
            out["metrics"][f][mname] = {k: v.tolist() for k, v in _per_pair(torch.cat(maps[f]), masks).items()}
        out["scores"][mname] = torch.cat(scores).tolist()
        out["float64 pairs"][mname] = touched
    return out


def summarise_pairs(per_pair: dict, weighted: bool = False) -> dict:
    """``{family: {model: {metric: mean}}}`` from :func:`pair_metrics`; with ``weighted`` each pair
    counts with weight max(S, 0) of the model that explains it (``None`` where all weights are 0)."""
    out: dict = {}
    for f, by_model in per_pair["metrics"].items():
        for mname, metrics in by_model.items():
            w = torch.tensor(per_pair["scores"][mname], dtype=torch.float64).clamp_min(0) if weighted else None
            row = {}
            for k, vals in metrics.items():
                v = torch.tensor(vals, dtype=torch.float64)
                if w is None:
                    row[k] = float(v.mean())
                else:
                    row[k] = float((w * v).sum() / w.sum()) if w.sum() > 0 else None
            out.setdefault(f, {})[mname] = row
    return out


#: the comparison rows every variant run measures alongside its own families (same pairs, same model).
COMPARISON = ROBUSTNESS_COMPARISON
_KEY_TFA = ROBUSTNESS_KEY_TFA
_SUBSETS = tuple(n for n in FAMILIES if n.startswith("TFA-Cos, "))

#: name → what the variant changes: ``families`` measured (registry names), ``model`` (a
#: :data:`MODEL_OPTIONS` name), ``fast`` (False: the full setting), ``pairs`` ("top": the protocol's
#: top-k by Grad-Cos, "random": :func:`random_patched_pairs`), ``specificity``: the families to
#: measure in the two-patch experiment as well (the test-dependent ones of the variant).
VARIANTS: dict[str, dict] = {
    "logit gradients": {"families": ("TFA-Logit · gradient, SmoothGrad", "TFA-Logit · gradient × input",
                                     "TFA-Logit · integrated gradients") + COMPARISON,
                        "specificity": ("TFA-Logit · gradient, SmoothGrad", "TFA-Logit · gradient × input",
                                        "TFA-Logit · integrated gradients")},
    "parameter subsets": {"families": _SUBSETS + COMPARISON, "specificity": _SUBSETS},
    "SmoothGrad settings": {"families": tuple(n for n in FAMILIES if "SmoothGrad n=" in n) + COMPARISON,
                            "specificity": tuple(n for n in FAMILIES if "SmoothGrad n=" in n)},
    "random patched pairs": {"families": _KEY_TFA + COMPARISON + ("control · input as map",), "pairs": "random"},
    "SmallCNN, global max pool": {"families": _KEY_TFA + COMPARISON + ("control · input as map",),
                                  "model": "SmallCNN, global max pool"},
    "ResNet9, width 8": {"families": ("TFA-Cos · gradient × input", "TFA-Cos · integrated gradients") + COMPARISON
                         + ("control · input as map",), "model": "ResNet9, width 8"},
    "full setting": {"families": _KEY_TFA + COMPARISON + ("control · input as map",), "fast": False},
}
for _v in VARIANTS.values():
    _unknown = [n for n in _v["families"] + _v.get("specificity", ()) if n not in FAMILIES]
    if _unknown:
        raise RuntimeError(f"a robustness variant names unknown map families: {_unknown}")


def run_variant(name: str, preset: str = "tutorial", seed: int = 0, n_test: int = 8, top_k: int = 4,
                progress: bool = False) -> dict:
    """One (variant, preset, seed) of the robustness table: the variant's families and the
    comparison rows on the same pairs, shortcut and clean model.

    Returns ``{"localisation": {family: {model: {metric: mean}}}, "float64 pairs": {model: n},
    "n_pairs", "n_test", "shortcut report", "clean report"}`` and, for random pairs,
    ``"localisation, weighted by S"``."""
    from .pairs import select_pairs

    if name not in VARIANTS:
        raise ValueError(f"unknown robustness variant {name!r}: choose one of {list(VARIANTS)}")
    v = VARIANTS[name]
    exp = variant_experiment(preset, seed, v.get("model", "SmallCNN"), v.get("fast", True), progress)
    test_idx, train_idx, _ = select_pairs(exp, n_test=n_test, top_k=top_k, seed=seed)
    if v.get("pairs", "top") == "random":
        train_idx = random_patched_pairs(exp, test_idx, top_k, seed)
    per = pair_metrics(exp, test_idx, train_idx, v["families"], seed)
    out = {"localisation": summarise_pairs(per), "float64 pairs": per["float64 pairs"], "n_test": len(test_idx),
           "n_pairs": int(train_idx.numel()), "shortcut report": exp.report, "clean report": exp.clean_report}
    if v.get("pairs") == "random":
        out["localisation, weighted by S"] = summarise_pairs(per, weighted=True)
    return out


def run_variant_specificity(name: str, seed: int = 0, n_test: int = 8, top_k: int = 4) -> dict:
    """The two-patch experiment (:func:`tfa_tutorial.evaluation.evidence.specificity_evidence`) for the
    test-dependent families of variant ``name``."""
    from .evidence import specificity_evidence
    from .specificity import two_patch_experiment

    fams = VARIANTS[name].get("specificity")
    if not fams:
        raise ValueError(f"variant {name!r} has no test-dependent score families to measure for specificity")
    return specificity_evidence(two_patch_experiment(seed=seed), n_test=n_test, top_k=top_k,
                                families=fams + ("TFA-Cos · gradient, SmoothGrad (paper)",), seed=seed)
