"""Which training-feature map finds the shortcut? Every method × every score, with controls.

The map families (a score kind attributed by one method, the two-step baseline, the controls) are
the registry of :mod:`tfa_tutorial.attribution.families`; this module measures them.

Protocol — the one localisation protocol of the package (docs/results.md and notebook 04 both
call :func:`localisation_evidence`): flipped test images × their top-k patched training images by
Grad-Cos (:func:`tfa_tutorial.evaluation.pairs.select_pairs`); **both** models explain the *same* label,
the shortcut model's prediction (the target class), so the clean-model control is like-for-like;
score-based maps are multiplied by sign(S) so that positive means "supports the score"; mass /
rank / pointing on the positive part against the patch mask. The model-specific gain is shortcut
minus clean. :func:`test_image_baselines` scores classical FA on the test image with the same
label and metrics; :func:`specificity_evidence` runs the two-patch test-specificity experiment
of :mod:`.specificity`.
"""
from __future__ import annotations

import math

import torch

from ..attribution import families as _registry
from ..attribution.baselines import grad_cam, model_output_fn, saliency
from ..attribution.decomposition import decompose_score
from ..attribution.families import (
    FAMILIES,
    MapFamily,
    PairContext,
    family,
    family_group,
    pair_seed,
)
from ..attribution.gradients import predicted_labels
from ..attribution.methods import attribute
from ..attribution.reduction import reduce_map
from ..attribution.score_vectors import (
    class_mean_gradient,
    divides_by_train_norm,
    score_vector,
    vector_score_fn,
    vector_scores,
)
from ..attribution.scores import grad_cos
from ..core.streaming import with_progress
from ..data.patches import apply_patch
from .metrics import (
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    shortcut_detection_auprc,
)
from .pairs import explained_labels, iter_pair_contexts
from .specificity import normalised_specificity

__all__ = [
    "merge_results", "seed_runs",
    "PairContext", "EVIDENCE_FAMILIES", "SPECIFICITY_FAMILIES", "family_group", "retrieval_evidence",
    "localisation_evidence", "test_image_baselines", "specificity_evidence", "completeness_evidence",
    "aggregate_seeds", "format_mean_sd", "localisation_over_seeds", "load_results", "dilate_masks",
]


#: name → :class:`~tfa_tutorial.attribution.families.MapFamily`: every family of the registry (names start with their
#: group) but the robustness variants (:data:`tfa_tutorial.attribution.families.ROBUSTNESS_FAMILIES`).
EVIDENCE_FAMILIES: dict[str, MapFamily] = {k: v for k, v in FAMILIES.items() if k not in _registry.ROBUSTNESS_FAMILIES}

#: the test-dependent families (and the two-step baseline, zero by construction) for the two-patch experiment.
SPECIFICITY_FAMILIES: dict[str, MapFamily] = {k: FAMILIES[k] for k in _registry.SPECIFICITY_FAMILIES}


def _resolve(fams) -> dict[str, MapFamily]:
    """A dict name → family from names of the registry (or a dict name → callable, kept as is)."""
    if isinstance(fams, dict):
        return fams
    return {n: family(n) for n in fams}


def dilate_masks(masks: torch.Tensor, pixels: int = 1) -> torch.Tensor:
    """``[B, H, W]`` bool masks grown by ``pixels`` in every direction (8-neighbourhood): edge
    responses of a sensitivity map straddle the patch border."""
    if masks.ndim != 3 or masks.dtype != torch.bool:
        raise ValueError(f"masks must be [B, H, W] bool, got {tuple(masks.shape)} {masks.dtype}")
    k = 2 * int(pixels) + 1
    return torch.nn.functional.max_pool2d(masks[:, None].float(), k, stride=1, padding=int(pixels))[:, 0] > 0


def _metrics(maps: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
    """mass / rank / pointing of the positive part (the protocol), plus the fair measures for
    sensitivity maps: the same on |map| and the positive-part mass against masks dilated by one pixel."""
    r = reduce_map(maps, "positive", "sum")
    a = reduce_map(maps, "absolute", "sum")
    wide = dilate_masks(masks)
    return {
        "mass": float(relevance_mass_accuracy(r, masks).mean()),
        "rank": float(relevance_rank_accuracy(r, masks).mean()),
        "pointing": float(pointing_game(r, masks).mean()),
        "mass |map|": float(relevance_mass_accuracy(a, masks).mean()),
        "rank |map|": float(relevance_rank_accuracy(a, masks).mean()),
        "mass, dilated mask": float(relevance_mass_accuracy(r, wide).mean()),
        "mass |map|, dilated mask": float(relevance_mass_accuracy(a, wide).mean()),
        "chance, dilated mask": float(wide.flatten(1).double().mean(1).mean()),
    }


RETRIEVAL_KINDS = {"cos": "Grad-Cos", "dot": "Grad-Dot", "centered": "centered Grad-Cos",
                   "contrast": "contrast (predicted − true label)"}


def retrieval_evidence(exp, test_idx: torch.Tensor, seed: int = 0, kinds=("cos", "dot", "centered", "contrast"),
                       cos: torch.Tensor | None = None, dot: torch.Tensor | None = None) -> dict[str, float]:
    """quanda's shortcut-detection AUPRC of each score kind in ``kinds`` (and label-only / random
    controls) for the patched test images ``test_idx`` against the training images' ``patched`` flags.

    The label-only control scores 1 when the training label equals the test prediction: how much
    of the AUPRC label agreement alone explains. Pass precomputed Grad-Cos / Grad-Dot scores
    ``cos`` / ``dot`` ``[Q, N]`` (with the predicted labels) to skip recomputing them."""
    model, X, Y = exp.model, exp.train.images, exp.train.labels
    xq = exp.patched_test.images[test_idx]
    pred = predicted_labels(model, xq)
    true = exp.patched_test.labels[test_idx]
    scores = {"cos": cos, "dot": dot}
    todo = [k for k in kinds if scores.get(k) is None]
    means = {int(c): class_mean_gradient(model, X, Y, int(c), seed=seed) for c in pred.unique()} if "centered" in todo else {}
    Q = len(xq)
    if todo:
        vecs = torch.stack([score_vector(model, xq[q], k, test_target=pred[q], true_target=true[q],
                                         class_mean=means.get(int(pred[q]))) for k in todo for q in range(Q)])
        s = vector_scores(model, X, Y, vecs, [divides_by_train_norm(k) for k in todo for _ in range(Q)]).cpu()
        scores.update({k: s[i * Q:(i + 1) * Q] for i, k in enumerate(todo)})
    flags = exp.train.patched
    out = {RETRIEVAL_KINDS[k]: shortcut_detection_auprc(scores[k], flags) for k in kinds}
    out["label only"] = shortcut_detection_auprc((Y[None, :] == pred[:, None]).double(), flags)
    out["random"] = shortcut_detection_auprc(torch.rand(Q, len(Y), generator=torch.Generator().manual_seed(seed)), flags)
    out["prevalence (chance)"] = float(flags.float().mean())
    return out


def localisation_evidence(
    exp, test_idx: torch.Tensor, train_idx: torch.Tensor, families=None, seed: int = 0, progress: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{family: {"shortcut model" | "clean model": {mass, rank, pointing}}}`` over all pairs.

    ``families``: names of the registry (default: all, :data:`EVIDENCE_FAMILIES`), or a dict
    name → family (any callable of a :class:`PairContext`)."""
    families = _resolve(EVIDENCE_FAMILIES if families is None else families)
    X, Y = exp.train.images, exp.train.labels
    labels = explained_labels(exp, test_idx)
    table: dict = {}
    models = {"shortcut model": exp.model, "clean model": exp.clean_model}
    # the class-mean gradient (a pass over the training set) only for the "centered" score
    need_mean = any(not isinstance(fn, MapFamily) or fn.score == "centered" for fn in families.values())
    for mname, model in models.items():
        means = {int(c): class_mean_gradient(model, X, Y, int(c), seed=seed) for c in labels.unique()} if need_mean else {}
        maps = {f: [] for f in families}
        for _, ctx in iter_pair_contexts(exp, test_idx, train_idx, model, labels, means, seed,
                                         progress=progress, desc=mname):
            for f, fn in families.items():
                maps[f].append(fn(ctx).detach().cpu())
        masks = exp.train.masks[train_idx.flatten()]
        for f in families:
            table.setdefault(f, {})[mname] = _metrics(torch.cat(maps[f]), masks)
    return table


def test_image_baselines(exp, test_idx: torch.Tensor) -> dict[str, dict[str, dict[str, float]]]:
    """Classical FA on the *test* images (saliency, Grad-CAM) against the test images' patch masks,
    in :func:`localisation_evidence`'s format and protocol: both models explain the shortcut
    model's prediction. It tells which test pixels matter, not which training images taught it."""
    xq, mq = exp.patched_test.images[test_idx], exp.patched_test.masks[test_idx]
    labels = predicted_labels(exp.model, xq)
    table: dict = {}
    for mname, model in {"shortcut model": exp.model, "clean model": exp.clean_model}.items():
        table.setdefault("test-image saliency (classical FA)", {})[mname] = _metrics(saliency(model, xq, labels), mq)
        table.setdefault("test-image Grad-CAM (classical FA)", {})[mname] = _metrics(grad_cam(model, xq, labels), mq)
    return table


def completeness_evidence(exp, test_idx: torch.Tensor, train_idx: torch.Tensor, steps: int = 16, seed: int = 0) -> dict:
    """Does the map add up to what it explains? Relative completeness gap per family, median and
    90th percentile over the pairs (shortcut model):

    - integrated gradients promise Σ map = S(x) − S(black) (up to the Riemann error for smooth S);
      for Grad-Cos through ReLU / max-pool networks the score jumps along the path, so the gap is large;
    - the exact decomposition promises Σ map = S(x); its gap is float rounding.
    """
    from ..attribution.methods import completeness_gap

    X, Y = exp.train.images, exp.train.labels
    model = exp.model
    labels = predicted_labels(model, exp.patched_test.images[test_idx])
    gaps: dict[str, list] = {}
    for q, ti in enumerate(test_idx.tolist()):
        tr = train_idx[q]
        for kind in ("cos", "dot"):
            v = score_vector(model, exp.patched_test.images[ti], kind, test_target=int(labels[q]))
            f = vector_score_fn(model, v, divides_by_train_norm(kind))
            name = "TFA-Cos" if kind == "cos" else "TFA-Dot"
            ig = attribute(f, X[tr], Y[tr], method="integrated_gradients", steps=steps)
            gaps.setdefault(f"{name} · integrated gradients ({steps} steps)", []).append(completeness_gap(f, X[tr], Y[tr], ig))
            d = decompose_score(model, X[tr], Y[tr], v, divides_by_train_norm(kind))
            s = vector_scores(model, X[tr], Y[tr], v, divides_by_train_norm(kind))[0]
            gaps.setdefault(f"{name} · decomposition", []).append((d.maps.sum((1, 2, 3)) - s).abs() / s.abs().clamp_min(1e-12))
        f = model_output_fn(model)
        ig = attribute(f, X[tr], Y[tr], method="integrated_gradients", steps=steps)
        gaps.setdefault(f"two-step · integrated gradients ({steps} steps)", []).append(completeness_gap(f, X[tr], Y[tr], ig))
    out = {}
    for k, v in gaps.items():
        g = torch.cat(v).double().cpu()
        out[k] = {"median gap": float(g.median()), "90th percentile gap": float(g.quantile(0.9))}
    return out


def specificity_evidence(exp2, n_test: int = 8, top_k: int = 4, families=None,
                         seed: int = 0, progress: bool = False, test_indices: torch.Tensor | None = None) -> dict:
    """Two-patch experiment: for test images flipped by patch A alone and by patch B alone, and their
    top-k training images carrying *both* patches, the mass each map puts on the matching and the
    other patch, and specificity = ½[(m_A − m_B | test A) + (m_B − m_A | test B)] (see :mod:`.specificity`).

    ``test_indices`` (indices into ``exp2.test``) overrides the choice of test images.

    Returns ``{"families": {family: {model: {"specificity", "matching mass", "other mass"}}},
    "n_test", "n_pairs", "reports"}``."""
    families = _resolve(SPECIFICITY_FAMILIES if families is None else families)
    cand = exp2.flipped_by_both() if test_indices is None else torch.as_tensor(test_indices)
    if len(cand) == 0:
        raise ValueError("no test image is flipped by both patches: the model did not learn both shortcuts")
    if test_indices is None:
        cand = cand[torch.randperm(len(cand), generator=torch.Generator().manual_seed(seed))[:n_test]]
    both = exp2.both_indices()
    A, B = exp2.patches
    X, Y = exp2.train.images, exp2.train.labels
    ma, mb = exp2.mask_a, exp2.mask_b
    models = {"shortcut model": exp2.model, "clean model": exp2.clean_model}
    xa_all = apply_patch(exp2.test.images[cand], A)
    xb_all = apply_patch(exp2.test.images[cand], B)
    # the training images: both-patch images most similar to *both* versions of the test image
    ca = grad_cos(exp2.model, X[both], Y[both], xa_all)
    cb = grad_cos(exp2.model, X[both], Y[both], xb_all)
    chosen = both[torch.minimum(ca, cb).topk(top_k, dim=1).indices]  # [Q, k]
    label = A.target_class
    out: dict = {}
    for mname, model in models.items():
        mean = class_mean_gradient(model, X, Y, label, seed=seed)
        acc = {f: {"specificity": [], "matching mass": [], "other mass": []} for f in families}
        for q in with_progress(range(len(cand)), mname, progress):
            tr = chosen[q]
            j = int(cand[q])
            for x_test, m_match, m_other in ((xa_all[q], ma, mb), (xb_all[q], mb, ma)):
                ctx = PairContext(model, X[tr], Y[tr], x_test, label, int(exp2.test.labels[j]),
                                  exp2.test.images[j], mean, pair_seed(seed, q))
                for f, fn in families.items():
                    r = reduce_map(fn(ctx).detach().cpu(), "positive", "sum")
                    k = len(tr)
                    match = relevance_mass_accuracy(r, m_match.expand(k, -1, -1))
                    other = relevance_mass_accuracy(r, m_other.expand(k, -1, -1))
                    acc[f]["specificity"].append((match - other) / 2)
                    acc[f]["matching mass"].append(match)
                    acc[f]["other mass"].append(other)
        for f in families:
            # specificity sums the A-test and B-test halves of each pair
            sp = torch.stack(acc[f]["specificity"]).reshape(len(cand), 2, -1).sum(1)
            match, other = float(torch.cat(acc[f]["matching mass"]).mean()), float(torch.cat(acc[f]["other mass"]).mean())
            out.setdefault(f, {})[mname] = {
                "specificity": float(sp.mean()), "matching mass": match, "other mass": other,
                "normalised specificity": normalised_specificity(match, other),
            }
    return {"families": out, "n_test": len(cand), "n_pairs": int(chosen.numel()), "reports": exp2.reports}


def aggregate_seeds(runs: list) -> object:
    """Mean and sample standard deviation of every numeric leaf over runs with the same structure:
    ``{"mean": m, "sd": s, "n": n, "values": [...]}`` at each leaf; a leaf that is ``None`` (undefined)
    in any run is ``None``."""
    first = runs[0]
    if any(r is None for r in runs):  # undefined in some run (e.g. a 0/0 ratio): undefined over the runs
        return None
    if isinstance(first, dict):
        return {k: aggregate_seeds([r[k] for r in runs]) for k in first if all(isinstance(r, dict) and k in r for r in runs)}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        vals = [float(r) for r in runs]
        m = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else float("nan")
        return {"mean": m, "sd": sd, "n": len(vals), "values": vals}
    return first


def seed_runs(runs: dict) -> dict:
    """The per-seed entries of a stored configuration (``{seed: result}``, seeds as digit strings),
    without bookkeeping keys, in seed order."""
    return {s: runs[s] for s in sorted((s for s in runs if str(s).isdigit()), key=int)}


def localisation_over_seeds(runs: dict) -> dict:
    """Per family, over the seeds of one configuration's stored ``evidence`` runs
    (``{seed: {"localisation": ...}}``): the :func:`aggregate_seeds` leaves of both models' metrics
    plus ``"gain"``, the aggregate of the per-seed mass gain (shortcut − clean model)."""
    loc = [runs[s]["localisation"] for s in sorted(runs, key=int)]
    out = aggregate_seeds(loc)
    for fam in out:
        out[fam]["gain"] = aggregate_seeds([r[fam]["shortcut model"]["mass"] - r[fam]["clean model"]["mass"] for r in loc])
    return out


def format_mean_sd(leaf: dict, digits: int = 2, signed: bool = False, small: bool = False) -> str:
    """``"0.40 ± 0.03"`` from an :func:`aggregate_seeds` leaf; with ``small``, values that would
    round to zero are written in scientific notation (``"8.2e-06 ± 1.1e-06"``)."""
    if small and leaf["mean"] != 0 and abs(leaf["mean"]) < 0.5 * 10 ** -digits:
        sd = "" if leaf["n"] < 2 or math.isnan(leaf["sd"]) else f" ± {leaf['sd']:.1e}"
        return f"{leaf['mean']:.1e}{sd}"
    fmt = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    if leaf["n"] < 2 or math.isnan(leaf["sd"]):
        return fmt.format(leaf["mean"])
    return f"{fmt.format(leaf['mean'])} ± {leaf['sd']:.{digits}f}"


def load_results(path=None) -> dict:
    """The stored evidence over seeds, ``docs/results.json`` of the repository (written by
    ``benchmarks/results.py``, merged with any ``docs/results.*.json`` that parallel runs wrote),
    as a dict ``{section: {configuration: {seed: result}}}``."""
    import json
    from pathlib import Path

    path = Path(path) if path is not None else Path(__file__).resolve().parents[2] / "docs" / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python benchmarks/results.py` from the repository root to create it")
    db = json.loads(path.read_text())
    for extra in sorted(path.parent.glob(path.stem + ".*.json")):
        db = merge_results(db, json.loads(extra.read_text()))
    return db


def merge_results(a: dict, b: dict) -> dict:
    """Deep merge of ``b`` into a copy of ``a`` (``b`` wins on leaves): how result files written by
    parallel runs combine."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge_results(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
