"""Which training-feature map finds the shortcut? Every method × every score, with controls (issue 8).

A *family* is one way to turn a (training image, test image) pair into a map: a score kind of
:mod:`.score_vectors` (Grad-Cos, Grad-Dot, de-confounded "centered", "contrast", and the
"counterfactual" that needs the unpatched test image) attributed by one method (the paper's
SmoothGrad gradient, gradient × input, integrated gradients, occlusion, or the exact position
decomposition of :mod:`.decomposition`), or the two-step baseline (FA of the training image's own
logit, same methods), or a control (the input itself, random).

Protocol (as :mod:`.evaluation`, notes/tfa-experiment-1..3): flipped test images × their top-k
patched training images by Grad-Cos; **both** models explain the *same* label, the shortcut model's
prediction (the target class), so the clean-model control is like-for-like; score-based maps are
multiplied by sign(S) so that positive means "supports the score"; mass / rank / pointing on the
positive part against the patch mask. The model-specific gain is shortcut minus clean.
:func:`specificity_evidence` runs the two-patch test-specificity experiment of
:mod:`.specificity`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .attribution_methods import attribute
from .baselines import model_output_fn, random_map
from .decomposition import decompose_score
from .metrics import pointing_game, relevance_mass_accuracy, relevance_rank_accuracy, shortcut_detection_auprc
from .patches import apply_patch
from .reduction import reduce_map
from .score_vectors import class_mean_gradient, normalizes_train, score_vector, vector_score_fn, vector_scores
from .scores import grad_cos

__all__ = [
    "PairContext", "EVIDENCE_FAMILIES", "SPECIFICITY_FAMILIES", "family_group", "retrieval_evidence",
    "localisation_evidence", "specificity_evidence", "completeness_evidence", "aggregate_seeds", "format_mean_sd",
    "localisation_over_seeds", "load_results",
]


@dataclass
class PairContext:
    """Everything a family needs for one test image and its k training images.

    Attributes:
        x_train: ``[k, C, H, W]``; y_train: ``[k]``; x_test: ``[C, H, W]``.
        label: the explained label of the test image (the shortcut model's prediction).
        true_label: its true label (``"contrast"``); x_counterfactual: ``[C, H, W]`` the test
            image without the patch (``"counterfactual"``); class_mean: m_c ``[P]`` (``"centered"``).
    """

    model: nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    label: int
    true_label: int | None = None
    x_counterfactual: torch.Tensor | None = None
    class_mean: torch.Tensor | None = None
    seed: int = 0
    _vectors: dict = field(default_factory=dict)
    _signs: dict = field(default_factory=dict)

    def vector(self, kind: str) -> torch.Tensor:
        if kind not in self._vectors:
            self._vectors[kind] = score_vector(
                self.model, self.x_test, kind, test_target=self.label, true_target=self.true_label,
                counterfactual_input=self.x_counterfactual, class_mean=self.class_mean,
            )
        return self._vectors[kind]

    def sign(self, kind: str) -> torch.Tensor:
        """``[k]`` sign of S_v for each training image (+1 where S = 0)."""
        if kind not in self._signs:
            s = vector_scores(self.model, self.x_train, self.y_train, self.vector(kind), normalizes_train(kind))[0]
            self._signs[kind] = torch.where(s < 0, -1.0, 1.0).to(self.x_train.dtype)
        return self._signs[kind]


Family = Callable[[PairContext], torch.Tensor]


def _score_family(kind: str, method: str, **opts) -> Family:
    def fn(ctx: PairContext) -> torch.Tensor:
        v = ctx.vector(kind)
        if method == "decomposition":
            maps = decompose_score(ctx.model, ctx.x_train, ctx.y_train, v, normalizes_train(kind), **opts).maps
        else:
            f = vector_score_fn(ctx.model, v, normalizes_train(kind))
            maps = attribute(f, ctx.x_train, ctx.y_train, method=method, seed=ctx.seed, **opts)
        return maps * ctx.sign(kind).view(-1, 1, 1, 1)

    return fn


def _two_step(method: str, **opts) -> Family:
    def fn(ctx: PairContext) -> torch.Tensor:
        return attribute(model_output_fn(ctx.model), ctx.x_train, ctx.y_train, method=method, seed=ctx.seed, **opts)

    return fn


SG = {"n_samples": 16, "noise": 0.15}
IG = {"steps": 16}
OCC = {"window": 4, "stride": 2}

#: name → family; names start with their group (see :func:`family_group`).
EVIDENCE_FAMILIES: dict[str, Family] = {
    "TFA-Cos · gradient, SmoothGrad (paper)": _score_family("cos", "gradient", **SG),
    "TFA-Cos · gradient × input": _score_family("cos", "gradient_x_input", **SG),
    "TFA-Cos · integrated gradients": _score_family("cos", "integrated_gradients", **IG),
    "TFA-Cos · occlusion": _score_family("cos", "occlusion", **OCC),
    "TFA-Cos · decomposition": _score_family("cos", "decomposition"),
    "TFA-Cos · decomposition, first block": _score_family("cos", "decomposition", layers="features.0"),
    "TFA-Dot · gradient, SmoothGrad": _score_family("dot", "gradient", **SG),
    "TFA-Dot · integrated gradients": _score_family("dot", "integrated_gradients", **IG),
    "TFA-Dot · decomposition": _score_family("dot", "decomposition"),
    "centered · gradient × input": _score_family("centered", "gradient_x_input", **SG),
    "centered · integrated gradients": _score_family("centered", "integrated_gradients", **IG),
    "centered · decomposition": _score_family("centered", "decomposition"),
    "contrast · gradient × input": _score_family("contrast", "gradient_x_input", **SG),
    "contrast · integrated gradients": _score_family("contrast", "integrated_gradients", **IG),
    "contrast · decomposition": _score_family("contrast", "decomposition"),
    "counterfactual · integrated gradients": _score_family("counterfactual", "integrated_gradients", **IG),
    "counterfactual · decomposition": _score_family("counterfactual", "decomposition"),
    "two-step · SmoothGrad": _two_step("gradient", **SG),
    "two-step · gradient × input": _two_step("gradient_x_input", **SG),
    "two-step · integrated gradients": _two_step("integrated_gradients", **IG),
    "two-step · occlusion": _two_step("occlusion", **OCC),
    "control · input as map": lambda ctx: ctx.x_train.clone(),
    "control · random": lambda ctx: random_map(ctx.x_train.shape, seed=ctx.seed, dtype=ctx.x_train.dtype),
}

#: the test-dependent families (and the two-step baseline, zero by construction) for the two-patch experiment.
SPECIFICITY_FAMILIES: dict[str, Family] = {k: EVIDENCE_FAMILIES[k] for k in [
    "TFA-Cos · gradient, SmoothGrad (paper)", "TFA-Cos · gradient × input", "TFA-Cos · integrated gradients",
    "TFA-Cos · decomposition", "TFA-Cos · decomposition, first block", "TFA-Dot · decomposition",
    "centered · decomposition", "contrast · integrated gradients", "contrast · decomposition",
    "counterfactual · decomposition", "two-step · integrated gradients",
]}


def family_group(name: str) -> str:
    """``"TFA-Cos"``, ``"TFA-Dot"``, ``"centered"``, ``"contrast"``, ``"counterfactual"``, ``"two-step"`` or ``"control"``."""
    return name.split(" · ")[0]


def _metrics(maps: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
    r = reduce_map(maps, "positive", "sum")
    return {
        "mass": float(relevance_mass_accuracy(r, masks).mean()),
        "rank": float(relevance_rank_accuracy(r, masks).mean()),
        "pointing": float(pointing_game(r, masks).mean()),
    }


def _pred(model, x):
    with torch.no_grad():
        return model(x.to(next(model.parameters()).device)).argmax(1).cpu()


def retrieval_evidence(exp, test_idx: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """quanda's shortcut-detection AUPRC of each score kind (and label-only / random controls) for
    the patched test images ``test_idx`` against the training images' ``patched`` flags."""
    model, X, Y = exp.model, exp.train.images, exp.train.labels
    xq = exp.patched_test.images[test_idx]
    pred = _pred(model, xq)
    true = exp.patched_test.labels[test_idx]
    means = {int(c): class_mean_gradient(model, X, Y, int(c), seed=seed) for c in pred.unique()}
    vecs = {k: [] for k in ("cos", "dot", "centered", "contrast")}
    for q in range(len(xq)):
        for k in vecs:
            vecs[k].append(score_vector(model, xq[q], k, test_target=pred[q], true_target=true[q], class_mean=means[int(pred[q])]))
    flags = exp.train.patched
    kinds = ("cos", "centered", "contrast", "dot")
    allv = torch.stack([v for k in kinds for v in vecs[k]])
    scores = vector_scores(model, X, Y, allv, [k != "dot" for k in kinds for _ in vecs[k]]).cpu()
    s_norm, s_dot = scores[:3 * len(xq)], scores[3 * len(xq):]
    Q = len(xq)
    out = {
        "Grad-Cos": shortcut_detection_auprc(s_norm[:Q], flags),
        "Grad-Dot": shortcut_detection_auprc(s_dot, flags),
        "centered Grad-Cos": shortcut_detection_auprc(s_norm[Q:2 * Q], flags),
        "contrast (predicted − true label)": shortcut_detection_auprc(s_norm[2 * Q:], flags),
        "label only": shortcut_detection_auprc((Y[None, :] == pred[:, None]).double(), flags),
        "random": shortcut_detection_auprc(torch.rand(Q, len(Y), generator=torch.Generator().manual_seed(seed)), flags),
        "prevalence (chance)": float(flags.float().mean()),
    }
    return out


def localisation_evidence(
    exp, test_idx: torch.Tensor, train_idx: torch.Tensor, families: dict[str, Family] | None = None,
    seed: int = 0, progress: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """``{family: {"shortcut model" | "clean model": {mass, rank, pointing}}}`` over all pairs."""
    families = EVIDENCE_FAMILIES if families is None else families
    X, Y = exp.train.images, exp.train.labels
    labels = _pred(exp.model, exp.patched_test.images[test_idx])
    table: dict = {}
    models = {"shortcut model": exp.model, "clean model": exp.clean_model}
    from tqdm.auto import tqdm

    for mname, model in models.items():
        means = {int(c): class_mean_gradient(model, X, Y, int(c), seed=seed) for c in labels.unique()}
        maps = {f: [] for f in families}
        for q, ti in enumerate(tqdm(test_idx.tolist(), desc=mname, disable=not progress, leave=False)):
            tr = train_idx[q]
            ctx = PairContext(model, X[tr], Y[tr], exp.patched_test.images[ti], int(labels[q]),
                              int(exp.patched_test.labels[ti]), exp.test.images[ti], means[int(labels[q])], seed + q)
            for f, fn in families.items():
                maps[f].append(fn(ctx).detach().cpu())
        masks = exp.train.masks[train_idx.flatten()]
        for f in families:
            table.setdefault(f, {})[mname] = _metrics(torch.cat(maps[f]), masks)
    return table


def completeness_evidence(exp, test_idx: torch.Tensor, train_idx: torch.Tensor, steps: int = 16, seed: int = 0) -> dict:
    """Does the map add up to what it explains? Relative completeness gap per family, median and
    90th percentile over the pairs (shortcut model):

    - integrated gradients promise Σ map = S(x) − S(black) (up to the Riemann error for smooth S);
      for Grad-Cos through ReLU / max-pool networks the score jumps along the path, so the gap is large;
    - the exact decomposition promises Σ map = S(x); its gap is float rounding.
    """
    from .attribution_methods import completeness_gap

    X, Y = exp.train.images, exp.train.labels
    model = exp.model
    labels = _pred(model, exp.patched_test.images[test_idx])
    gaps: dict[str, list] = {}
    for q, ti in enumerate(test_idx.tolist()):
        tr = train_idx[q]
        for kind in ("cos", "dot"):
            v = score_vector(model, exp.patched_test.images[ti], kind, test_target=int(labels[q]))
            f = vector_score_fn(model, v, normalizes_train(kind))
            name = "TFA-Cos" if kind == "cos" else "TFA-Dot"
            ig = attribute(f, X[tr], Y[tr], method="integrated_gradients", steps=steps)
            gaps.setdefault(f"{name} · integrated gradients ({steps} steps)", []).append(completeness_gap(f, X[tr], Y[tr], ig))
            d = decompose_score(model, X[tr], Y[tr], v, normalizes_train(kind))
            s = vector_scores(model, X[tr], Y[tr], v, normalizes_train(kind))[0]
            gaps.setdefault(f"{name} · decomposition", []).append((d.maps.sum((1, 2, 3)) - s).abs() / s.abs().clamp_min(1e-12))
        f = model_output_fn(model)
        ig = attribute(f, X[tr], Y[tr], method="integrated_gradients", steps=steps)
        gaps.setdefault(f"two-step · integrated gradients ({steps} steps)", []).append(completeness_gap(f, X[tr], Y[tr], ig))
    out = {}
    for k, v in gaps.items():
        g = torch.cat(v).double().cpu()
        out[k] = {"median gap": float(g.median()), "90th percentile gap": float(g.quantile(0.9))}
    return out


def specificity_evidence(exp2, n_test: int = 8, top_k: int = 4, families: dict[str, Family] | None = None,
                         seed: int = 0, progress: bool = False, test_indices: torch.Tensor | None = None) -> dict:
    """Two-patch experiment: for test images flipped by patch A alone and by patch B alone, and their
    top-k training images carrying *both* patches, the mass each map puts on the matching and the
    other patch, and specificity = ½[(m_A − m_B | test A) + (m_B − m_A | test B)] (see :mod:`.specificity`).

    ``test_indices`` (indices into ``exp2.test``) overrides the choice of test images.

    Returns ``{"families": {family: {model: {"specificity", "matching mass", "other mass"}}},
    "n_test", "n_pairs", "reports"}``."""
    families = SPECIFICITY_FAMILIES if families is None else families
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
    from tqdm.auto import tqdm

    for mname, model in models.items():
        mean = class_mean_gradient(model, X, Y, label, seed=seed)
        acc = {f: {"specificity": [], "matching mass": [], "other mass": []} for f in families}
        for q in tqdm(range(len(cand)), desc=mname, disable=not progress, leave=False):
            tr = chosen[q]
            j = int(cand[q])
            for x_test, m_match, m_other in ((xa_all[q], ma, mb), (xb_all[q], mb, ma)):
                ctx = PairContext(model, X[tr], Y[tr], x_test, label, int(exp2.test.labels[j]),
                                  exp2.test.images[j], mean, seed + q)
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
            out.setdefault(f, {})[mname] = {
                "specificity": float(sp.mean()),
                "matching mass": float(torch.cat(acc[f]["matching mass"]).mean()),
                "other mass": float(torch.cat(acc[f]["other mass"]).mean()),
            }
    return {"families": out, "n_test": len(cand), "n_pairs": int(chosen.numel()), "reports": exp2.reports}


def aggregate_seeds(runs: list) -> object:
    """Mean and sample standard deviation of every numeric leaf over runs with the same structure:
    ``{"mean": m, "sd": s, "n": n, "values": [...]}`` at each leaf."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: aggregate_seeds([r[k] for r in runs]) for k in first if all(isinstance(r, dict) and k in r for r in runs)}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        vals = [float(r) for r in runs]
        m = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else float("nan")
        return {"mean": m, "sd": sd, "n": len(vals), "values": vals}
    return first


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

    path = Path(path) if path is not None else Path(__file__).resolve().parents[1] / "docs" / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python benchmarks/results.py` from the repository root to create it")
    db = json.loads(path.read_text())
    for extra in sorted(path.parent.glob(path.stem + ".*.json")):
        db = _merge(db, json.loads(extra.read_text()))
    return db


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
