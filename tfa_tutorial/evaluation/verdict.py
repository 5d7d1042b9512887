"""The robustness verdict: does any objection to the evidence change which map we recommend?

Each *objection* changes one thing in the localisation protocol (the score, the model, the pairs,
the measure, the setting; :data:`tfa_tutorial.evaluation.robustness.VARIANTS`). For each objection
and configuration, from the stored per-seed results (``docs/results.json``):

- the paper's map under the objection (the SmoothGrad gradient of the row's score),
- the best *test-dependent* map: the score map with the largest mean gain, where
  gain = mass on the patch (shortcut model) − mass on the patch (clean model), same pairs;
- the best *two-step* map (rank by the score, then attribute the training image's own label);
- the two-patch specificity of that test-dependent map, where it was measured.

**The rule.** A test-dependent map replaces the two-step baseline as the recommended map only if,
under some objection, it beats the best two-step map on mean gain *and* its specificity exceeds its
clean-model control by more than :data:`CLEAR_MARGIN` and by more than twice the seed-to-seed sd of
that difference (with at least two seeds). :func:`robustness_verdict` applies it;
:func:`recommended_family` follows it; the notebooks, the README
and ``docs/results.md`` read their sentences from here.
"""
from __future__ import annotations

import math

from ..attribution.families import EXPLORER_FAMILIES, PARAM_SUBSETS
from .evidence import (
    aggregate_seeds,
    family_group,
    load_results,
    localisation_over_seeds,
    seed_runs,
)

#: the paper's map as we reconstruct it (the SmoothGrad gradient of Grad-Cos w.r.t. the training image).
PAPER = "TFA-Cos · gradient, SmoothGrad (paper)"
#: specificity is "clearly above" its clean control when the per-seed difference has mean > this and > 2 sd.
CLEAR_MARGIN = 0.05
#: the first row: the main protocol itself, the reference every objection changes one thing of.
MAIN = "none: the main protocol"
RULE = (f"a test-dependent map must beat the best two-step map on mean gain *and* have a specificity above its "
        f"clean-model control by more than {CLEAR_MARGIN} and by more than twice the seed-to-seed sd of the difference")


def _is_tfa(name: str) -> bool:
    """The test-dependent score maps that can discover a shortcut (the counterfactual needs the unpatched test image)."""
    return family_group(name) not in ("two-step", "control", "counterfactual")


def objections() -> list[tuple]:
    """``(label, source, variant, result key, metric, paper family, test-dependent filter)`` for each
    objection, in the order the course lists them; ``source`` is ``"evidence"`` (the fair measures,
    computed on the main protocol's runs) or ``"robustness"`` (a variant run), and the result key
    names the stored localisation table the row reads."""
    ev, rob, loc = "evidence", "robustness", "localisation"
    rows = [(MAIN, ev, None, loc, "mass", PAPER, _is_tfa),
            ("fair measure: |map|", ev, None, loc, "mass |map|", PAPER, _is_tfa),
            ("fair measure: mask dilated by 1 px", ev, None, loc, "mass, dilated mask", PAPER, _is_tfa),
            ("fair measure: |map|, dilated mask", ev, None, loc, "mass |map|, dilated mask", PAPER, _is_tfa),
            ("logit gradients ∇θ z_y", rob, "logit gradients", loc, "mass", "TFA-Logit · gradient, SmoothGrad",
             lambda n: n.startswith("TFA-Logit"))]
    for s in PARAM_SUBSETS:
        rows.append((f"Grad-Cos over {s} only", rob, "parameter subsets", loc, "mass",
                     f"TFA-Cos, {s} · gradient, SmoothGrad", lambda n, s=s: n.startswith(f"TFA-Cos, {s} ·")))
    rows += [("SmoothGrad n ∈ {16, 50}, σ ∈ {0.1, 0.2}", rob, "SmoothGrad settings", loc, "mass", PAPER,
              lambda n: "SmoothGrad n=" in n or n == PAPER),
             ("random patched training images", rob, "random patched pairs", loc, "mass", PAPER, _is_tfa),
             ("random patched, weighted by S⁺", rob, "random patched pairs", "localisation, weighted by S", "mass",
              PAPER, _is_tfa),
             ("SmallCNN with global max pool", rob, "SmallCNN, global max pool", loc, "mass", PAPER, _is_tfa),
             ("ResNet-9, width 8", rob, "ResNet9, width 8", loc, "mass", PAPER, _is_tfa),
             ("full setting (60k images, 6 epochs)", rob, "full setting", loc, "mass", PAPER, _is_tfa)]
    return rows


def _runs(db, source, config, variant, key):
    """Per seed: ``{family: {model: {metric: value}}}``."""
    if source == "evidence":
        return {s: r["localisation"] for s, r in seed_runs(db.get("evidence", {}).get(config, {})).items()}
    return {s: r[variant][key] for s, r in seed_runs(db.get("robustness", {}).get(config, {})).items() if variant in r}


def seed_gains(runs: dict, metric: str = "mass") -> dict:
    """``{family: aggregate of the per-seed gain}`` (shortcut − clean model) for the families with
    ``metric`` defined in every seed of ``runs`` (``{seed: {family: {model: {metric: value}}}}``)."""
    seeds = sorted(runs, key=int)
    fams = set.intersection(*(set(runs[s]) for s in seeds)) if seeds else set()
    out = {}
    for f in fams:
        vals = []
        for s in seeds:
            a, b = runs[s][f]["shortcut model"].get(metric), runs[s][f]["clean model"].get(metric)
            if a is None or b is None:
                break
            vals.append(a - b)
        else:
            out[f] = aggregate_seeds(vals)
    return out


def family_specificity(runs: dict, family: str) -> dict | None:
    """A map family's two-patch specificity over the stored seeds ``runs`` (``{seed: {"families": ...}}``,
    the seeds where ``family`` was measured): ``{"shortcut", "clean", "normalised", "difference"}``
    as :func:`~tfa_tutorial.evaluation.evidence.aggregate_seeds` leaves — specificity with the
    shortcut and the clean model, the stored normalised specificity (None if undefined in a seed) and
    the per-seed difference shortcut − clean that the rule reads; None if it was never measured."""
    rows = [r["families"][family] for r in seed_runs(runs).values() if family in r.get("families", {})]
    if not rows:
        return None
    norm = [r["shortcut model"]["normalised specificity"] for r in rows]
    return {"shortcut": aggregate_seeds([r["shortcut model"]["specificity"] for r in rows]),
            "clean": aggregate_seeds([r["clean model"]["specificity"] for r in rows]),
            "normalised": None if any(n is None for n in norm) else aggregate_seeds(norm),
            "difference": aggregate_seeds([r["shortcut model"]["specificity"] - r["clean model"]["specificity"]
                                           for r in rows])}


def _specificity(db, variant, family):
    """The row's specificity: the variant's own two-patch run, else (for variants of the tutorial's
    own model and setting) the specificity section's experiment."""
    from .robustness import VARIANTS

    own = {s: r[variant] for s, r in db.get("robustness", {}).get("two_patch", {}).items() if variant in r}
    spec = family_specificity(own, family)
    other_model = variant in VARIANTS and ("model" in VARIANTS[variant] or VARIANTS[variant].get("fast") is False)
    if spec is None and not other_model:
        spec = family_specificity(db.get("specificity", {}).get("two_patch", {}), family)
    return spec


def clearly_above(diff: dict | None) -> bool:
    """The specificity half of the rule, on the aggregate of the per-seed (shortcut − clean) difference."""
    if diff is None or diff["n"] < 2:
        return False
    sd = 0.0 if math.isnan(diff["sd"]) else diff["sd"]
    return diff["mean"] > CLEAR_MARGIN and diff["mean"] > 2 * sd


def robustness_rows(db: dict, configs=("tutorial", "quanda_mnist")) -> list[dict]:
    """One dict per (objection, configuration) with the stored numbers; objections without data are left out."""
    out = []
    for label, source, variant, key, metric, paper, is_tfa in objections():
        for config in configs:
            runs = _runs(db, source, config, variant, key)
            if not runs:
                continue
            gains = seed_gains(runs, metric)
            tfa = {f: g for f, g in gains.items() if is_tfa(f)}
            two = {f: g for f, g in gains.items() if family_group(f) == "two-step"}
            if not tfa or not two:
                continue
            best_tfa = max(tfa, key=lambda f: tfa[f]["mean"])
            best_two = max(two, key=lambda f: two[f]["mean"])
            stored = db.get(source, {}).get(config, {})
            pairs = sorted({(stored[s] if source == "evidence" else stored[s][variant])["n_pairs"] for s in runs})
            f64 = None
            if source == "robustness":
                f64 = sum(sum(r[variant]["float64 pairs"].values()) for r in db["robustness"][config].values() if variant in r)
            out.append({"label": label, "config": config, "seeds": sorted(runs, key=int), "paper": paper,
                        "paper gain": gains.get(paper), "best tfa": best_tfa, "tfa gain": tfa[best_tfa],
                        "best two": best_two, "two gain": two[best_two], "float64 pairs": f64, "pairs": pairs,
                        "specificity": _specificity(db, variant, best_tfa), "variant": variant})
    return out


def robustness_verdict(db: dict | None = None, configs=("tutorial", "quanda_mnist")) -> dict:
    """The rule applied to every stored objection.

    Returns ``{"rows": robustness_rows(...), "winner": row or None, "beats on gain": [rows],
    "specific": [rows]}``: ``winner`` is the row whose test-dependent map passes both halves of the
    rule (the largest margin over the two-step map if several do); ``beats on gain`` the rows that pass
    the first half; ``specific`` one row per map family that passes the second (test-specificity);
    ``unmeasured beats`` the rows that pass the first half but whose specificity was not measured
    (the rule cannot pass there until it is).
    ``db`` defaults to the stored results (:func:`tfa_tutorial.evaluation.evidence.load_results`)."""
    db = load_results() if db is None else db
    rows = robustness_rows(db, configs)
    beat = [r for r in rows if r["tfa gain"]["mean"] > r["two gain"]["mean"]]
    winners = [r for r in beat if r["specificity"] is not None and clearly_above(r["specificity"]["difference"])]
    winner = max(winners, key=lambda r: r["tfa gain"]["mean"] - r["two gain"]["mean"]) if winners else None
    specific = {}
    for r in rows:  # the maps that pass the specificity half, once per map family
        if r["specificity"] is not None and clearly_above(r["specificity"]["difference"]):
            specific.setdefault(r["best tfa"], r)
    return {"rows": rows, "winner": winner, "beats on gain": beat, "specific": list(specific.values()),
            "unmeasured beats": [r for r in beat if r["specificity"] is None]}


def paper_map_max(rows: list[dict]) -> float | None:
    """The largest mean gain of the paper's map itself (:data:`PAPER`) over the rows that measured it
    (rows of another score show that score's SmoothGrad gradient instead)."""
    vals = [r["paper gain"]["mean"] for r in rows if r["paper"] == PAPER and r["paper gain"] is not None]
    return max(vals) if vals else None


def verdict_sentence(verdict: dict, short: bool = False) -> str:
    """The verdict in plain sentences (markdown), with the numbers it rests on; ``short`` leaves out
    the closest row and names of the test-specific maps (for a reader who has not met the objections)."""
    rows, w = verdict["rows"], verdict["winner"]
    if not rows:
        return "No objection has been measured yet: run `benchmarks/results.py --sections robustness`."
    if w is not None:
        return (f"Under *{w['label']}* ({w['config']}), *{w['best tfa']}* beats the best two-step map "
                f"(gain {w['tfa gain']['mean']:+.2f} vs {w['two gain']['mean']:+.2f}) with specificity "
                f"{w['specificity']['shortcut']['mean']:+.2f} against {w['specificity']['clean']['mean']:+.2f} on the clean model: "
                "it is the recommended map.")
    spec = verdict.get("specific", [])
    pm = paper_map_max(rows)
    paper = "" if pm is None else f"; the paper's map never gains more than {pm:+.2f}"
    if short:
        specific = ("" if not spec else
                    f" {len(spec)} test-dependent map{'s do' if len(spec) > 1 else ' does'} follow the test image (clearly "
                    "test-specific), which the two-step baseline cannot, but each gains less than the two-step map.")
        objs = len({r["label"] for r in rows if r["label"] != MAIN})
        return (f"Under {objs} objections (another measure, score, SmoothGrad setting, pair selection, model, longer "
                f"training), with {len({r['config'] for r in rows})} patch settings, no test-dependent map beats the best "
                f"two-step map on model-specific gain while being clearly test-specific{paper}.{specific} "
                "The two-step baseline stays the recommended map.")
    specific = ("" if not spec else
                " Some test-dependent maps do follow the test image, which the two-step baseline cannot: their "
                "specificity is clearly above their clean-model control (" + "; ".join(
                    f"{r['best tfa']}, {r['specificity']['shortcut']['mean']:+.2f} against {r['specificity']['clean']['mean']:+.2f}"
                    for r in spec) + "), but each gains less than the two-step map.")
    best = max(rows, key=lambda r: r["tfa gain"]["mean"] - r["two gain"]["mean"])
    objs = len({r["label"] for r in rows if r["label"] != MAIN})
    return (f"Under the main protocol and {objs} objections to it, on {len({r['config'] for r in rows})} "
            f"configurations ({len(rows)} rows), no "
            f"test-dependent map beats the best two-step map on model-specific gain while being clearly test-specific. "
            f"The closest row is *{best['label']}* ({best['config']}): *{best['best tfa']}* "
            f"{best['tfa gain']['mean']:+.2f} against *{best['best two']}* {best['two gain']['mean']:+.2f}{paper}.{specific} "
            "The two-step baseline stays the recommended map.")


def paper_map_lift(rows: list[dict]) -> dict:
    """Which objection helps the paper's map most: per objection label, the paper's map's gain minus
    its gain under the main protocol (same configuration), averaged over the configurations where
    both were measured. Returns ``{"label": ..., "lift": mean lift, "rows": the objection's rows,
    "main": {config: main-protocol gain}}``, or ``{}`` when nothing can be compared."""
    main = {r["config"]: r["paper gain"]["mean"] for r in rows if r["label"] == MAIN and r["paper gain"] is not None}
    lifts: dict[str, list[float]] = {}
    for r in rows:
        if r["label"] != MAIN and r["paper gain"] is not None and r["config"] in main:
            lifts.setdefault(r["label"], []).append(r["paper gain"]["mean"] - main[r["config"]])
    if not lifts:
        return {}
    best = max(lifts, key=lambda k: sum(lifts[k]) / len(lifts[k]))
    return {"label": best, "lift": sum(lifts[best]) / len(lifts[best]), "main": main,
            "rows": [r for r in rows if r["label"] == best and r["config"] in main]}


def variant_specificities(db: dict) -> list[dict]:
    """The two-patch specificity (:func:`family_specificity`) of every robustness variant's map family
    that was run (``db["robustness"]["two_patch"]``), most specific first, each with its ``variant``
    and ``family``."""
    runs = db.get("robustness", {}).get("two_patch", {})
    pairs = {(v, f) for r in runs.values() for v, res in r.items() for f in res.get("families", {})}
    out = [{"variant": v, "family": f, **family_specificity({s: r[v] for s, r in runs.items() if v in r}, f)}
           for v, f in pairs]
    return sorted(out, key=lambda r: -r["shortcut"]["mean"])


def recommended_family(db: dict | None = None, candidates=None, verdict: dict | None = None) -> str:
    """The map the course recommends, chosen from the stored evidence (``docs/results.json`` by
    default, :func:`~tfa_tutorial.evaluation.evidence.load_results`).

    The robustness verdict comes first: if a test-dependent map passes the rule under some objection
    (:func:`robustness_verdict`; pass ``verdict`` if it is already computed) and is a candidate, it is
    the recommended map. Otherwise, among ``candidates`` (default: the explorer's menu,
    :data:`tfa_tutorial.attribution.families.EXPLORER_FAMILIES`, so the explorer can show it), the
    family with the largest model-specific gain (shortcut − clean mass), averaged over the seeds of
    each stored configuration and then over the configurations of ``db["evidence"]``. When the
    evidence is recomputed, the recommendation — and every notebook, the explorer and the README
    that read it — follows."""
    db = load_results() if db is None else db
    candidates = list(EXPLORER_FAMILIES if candidates is None else candidates)
    winner = (robustness_verdict(db) if verdict is None else verdict)["winner"]
    if winner is not None and winner["best tfa"] in candidates:
        return winner["best tfa"]
    configs = db.get("evidence", {})
    if not configs:
        raise ValueError("the results hold no 'evidence' section: run benchmarks/results.py")
    gains: dict[str, list[float]] = {}
    for runs in configs.values():
        agg = localisation_over_seeds(seed_runs(runs))
        for name in candidates:
            if name in agg:
                gains.setdefault(name, []).append(agg[name]["gain"]["mean"])
    scored = {n: sum(g) / len(g) for n, g in gains.items() if len(g) == len(configs)}
    if not scored:
        raise ValueError(f"no candidate family was measured in every configuration: {candidates}")
    return max(scored, key=scored.get)
