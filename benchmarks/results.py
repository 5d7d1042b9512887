"""Regenerate docs/results.md: the tutorial's measured evidence, over seeds, with controls.

Sections (each cached per configuration and seed in docs/results.json, so a run can be resumed
and a section re-run alone):

- ``shortcut``     clean accuracy and flip rate of the shortcut and clean models;
- ``evidence``     shortcut-detection AUPRC of every score kind (Grad-Cos, Grad-Dot, de-confounded),
                   and the localisation table: every map family (TFA-Cos / TFA-Dot / centered /
                   contrast / counterfactual × gradient-SmoothGrad, gradient × input, integrated
                   gradients, occlusion, exact decomposition; two-step baseline; input and random
                   controls) on the shortcut model and on the clean model;
- ``specificity``  the two-patch test-specificity experiment (tfa_tutorial.evaluation.specificity);
- ``faithfulness`` the one-step insertion / deletion test, TFA vs two-step (tfa_tutorial.evaluation.faithfulness);
- ``fix``          remove / repair the flagged training data, retrain, re-measure (tfa_tutorial.fixing.retrain);
- ``prevalence``   flip rate against the fraction of patched target-class images (tutorial patch);
- ``robustness``   the objections to the evidence, one variant at a time (tfa_tutorial.evaluation.robustness.VARIANTS:
                   logit gradients, parameter subsets, SmoothGrad settings, random patched pairs, global max
                   pool, ResNet-9, the full setting; ``--variants`` picks some), each with the two-patch
                   specificity of its test-dependent families where it has any; stored per configuration,
                   seed and variant, so a run resumes where it stopped.

Configurations: ``tutorial`` (white 12×12 square on half the T-shirts) and ``quanda_mnist``
(quanda's MNIST-style preset: the same square on 95% of them), on Fashion-MNIST with SmallCNN;
``two_patch`` for the specificity section.

Usage (from the repository root; fast settings = 12k training images, 3 epochs):

    .venv/bin/python benchmarks/results.py                              # everything, seeds 0 1 2
    .venv/bin/python benchmarks/results.py --sections evidence --seeds 0 1 2
    .venv/bin/python benchmarks/results.py --report-only                # rewrite the markdown from the JSON
    .venv/bin/python benchmarks/results.py --sections robustness --variants "logit gradients" --seeds 0 1 2

One (configuration, seed) of ``evidence`` took 2–7 minutes on 2 cores, 18 minutes when the cores
were shared with other jobs; the whole script takes about an hour (models are cached by
tfa_tutorial.training.train.train_or_load).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tfa_tutorial.attribution.families import (  # noqa: E402
    FAITHFULNESS_FAMILIES,
    KEY_FAMILIES,
    family_group,
)
from tfa_tutorial.core.cache import atomic_save  # noqa: E402
from tfa_tutorial.evaluation.evidence import (  # noqa: E402
    EVIDENCE_FAMILIES,
    aggregate_seeds,
    format_mean_sd,
    load_results,
    localisation_evidence,
    localisation_over_seeds,
    merge_results,
    retrieval_evidence,
    specificity_evidence,
)
from tfa_tutorial.evaluation.pairs import select_pairs  # noqa: E402
from tfa_tutorial.training.experiment import experiment_settings, shortcut_experiment  # noqa: E402

SECTIONS = ("shortcut", "evidence", "completeness", "specificity", "faithfulness", "fix", "prevalence", "robustness")
CONFIGS = ("tutorial", "quanda_mnist")
JSON_PATH = ROOT / "docs" / "results.json"
MD_PATH = ROOT / "docs" / "results.md"
COMMAND = ".venv/bin/python benchmarks/results.py"


def _load(path: Path = None) -> dict:
    """The stored results: ``path``, or ``docs/results.json`` merged with any ``docs/results.*.json``
    (written by runs started with ``--db``, e.g. sections run in parallel); empty when none exist."""
    if path is not None:
        return json.loads(path.read_text()) if path.is_file() else {}
    return load_results(JSON_PATH) if JSON_PATH.is_file() else {}


def _store(db: dict, section: str, config: str, seed: int, value) -> None:
    db.setdefault(section, {}).setdefault(config, {})[str(seed)] = value
    path = db.get("_path") or str(JSON_PATH)
    on_disk = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    atomic_save(merge_results(on_disk, {k: v for k, v in db.items() if k != "_path"}), path)


def _have(db, section, config, seed) -> bool:
    return str(seed) in db.get(section, {}).get(config, {})


def _have_variant(db, config, seed, variant) -> bool:
    return variant in db.get("robustness", {}).get(config, {}).get(str(seed), {})


def _store_variant(db, config, seed, variant, value) -> None:
    """Store one (configuration, seed, variant) of the robustness section, keeping the others."""
    runs = dict(db.get("robustness", {}).get(config, {}).get(str(seed), {}))
    runs[variant] = value
    _store(db, "robustness", config, seed, runs)


def run_robustness(db, config, seed, args) -> None:
    """The variants of ``args.variants`` for one configuration and seed (the full setting only for
    ``args.full_seeds``), then their two-patch specificity (stored under ``two_patch``)."""
    from tfa_tutorial.evaluation.robustness import (
        VARIANTS,
        run_variant,
        run_variant_specificity,
    )

    for variant in args.variants:
        if variant == "full setting" and seed not in args.full_seeds:
            continue
        if not _have_variant(db, config, seed, variant):
            t0 = time.time()
            res = run_variant(variant, config, seed, n_test=args.n_test, top_k=args.top_k)
            res["seconds"] = time.time() - t0
            _store_variant(db, config, seed, variant, res)
            print(f"[robustness {variant} · {config} seed {seed}] {res['seconds']:.0f} s", flush=True)
        if VARIANTS[variant].get("specificity") and not args.skip_specificity and not _have_variant(db, "two_patch", seed, variant):
            t0 = time.time()
            res = run_variant_specificity(variant, seed, n_test=args.n_test, top_k=args.top_k)
            res["seconds"] = time.time() - t0
            _store_variant(db, "two_patch", seed, variant, res)
            print(f"[robustness {variant} · two_patch seed {seed}] {res['seconds']:.0f} s", flush=True)


# ---------------------------------------------------------------- sections


def run_shortcut_and_evidence(db, config, seed, args, sections):
    exp = shortcut_experiment(config, seed=seed, progress=False)
    if "shortcut" in sections and not _have(db, "shortcut", config, seed):
        _store(db, "shortcut", config, seed, {"shortcut model": exp.report, "clean model": exp.clean_report})
    if "evidence" in sections and not _have(db, "evidence", config, seed):
        t0 = time.time()
        test_idx, train_idx, _ = select_pairs(exp, n_test=args.n_test, top_k=args.top_k, seed=seed)
        retrieval = retrieval_evidence(exp, test_idx, seed=seed)
        loc = localisation_evidence(exp, test_idx, train_idx, seed=seed, progress=True)
        chance = float(exp.train.masks[train_idx.flatten()].float().mean())
        _store(db, "evidence", config, seed, {
            "retrieval": retrieval, "localisation": loc, "chance": chance,
            "n_test": len(test_idx), "n_pairs": int(train_idx.numel()), "seconds": time.time() - t0,
        })
    if "completeness" in sections and not _have(db, "completeness", config, seed):
        from tfa_tutorial.evaluation.evidence import completeness_evidence

        test_idx, train_idx, _ = select_pairs(exp, n_test=args.n_test, top_k=args.top_k, seed=seed)
        _store(db, "completeness", config, seed, completeness_evidence(exp, test_idx, train_idx, seed=seed))
    return exp


def run_specificity(db, seed, args):
    if _have(db, "specificity", "two_patch", seed):
        return
    from tfa_tutorial.evaluation.specificity import two_patch_experiment

    t0 = time.time()
    exp2 = two_patch_experiment(seed=seed)
    res = specificity_evidence(exp2, n_test=args.n_test, top_k=args.top_k, seed=seed, progress=True)
    res["seconds"] = time.time() - t0
    _store(db, "specificity", "two_patch", seed, res)


def run_optional(db, section, config, seed, exp, args):
    """Sections built on other modules (faithfulness, fix, prevalence); skipped with a note when
    the module is not there."""
    if _have(db, section, config, seed):
        return
    if section == "prevalence":
        from tfa_tutorial.data.datasets import load_fashion_mnist, subsample
        from tfa_tutorial.data.patches import PRESETS
        from tfa_tutorial.training.models import SmallCNN
        from tfa_tutorial.training.train import prevalence_sweep

        s = experiment_settings()
        train = subsample(load_fashion_mnist("train"), s["n_train"], seed=seed)
        test = subsample(load_fashion_mnist("test"), s["n_test"], seed=seed)
        rows = prevalence_sweep(train, test, PRESETS[config], args.prevalences, lambda: SmallCNN(1, 10),
                                epochs=s["epochs"], seed=seed, progress=False, cache_name="prevalence")
        _store(db, section, config, seed, {f"{r['prevalence']:.2f}": r for r in rows})
        return
    fn = faithfulness_section if section == "faithfulness" else fix_section
    _store(db, section, config, seed, fn(exp, seed=seed))


def fix_section(exp, seed: int = 0, top_k: int = 150, n_test: int = 20, fraction: float = 0.2) -> dict:
    """Notebook 06's protocol: flag the Grad-Cos proponents of 20 shortcut-flipped test images,
    then remove / repair / random-remove / oracle-remove, retrain, re-measure."""
    from tfa_tutorial.fixing.flagging import flag_harmful
    from tfa_tutorial.fixing.retrain import fix_and_retrain

    flags = flag_harmful(exp, n_test=n_test, top_k=top_k, seed=seed)
    runs = {
        "none (shortcut model)": fix_and_retrain(exp, "none", flags, seed=seed),
        "remove flagged": fix_and_retrain(exp, "remove", flags, seed=seed),
        "remove as many random": fix_and_retrain(exp, "random_remove", flags, seed=seed),
        "remove as many random, same class": fix_and_retrain(exp, "random_remove", flags, seed=seed, pool="same_class"),
        "repair flagged (TFA SmoothGrad × input)": fix_and_retrain(exp, "repair", flags, seed=seed, map_method="TFA-Cos · gradient × input",
                                                                   fraction=fraction),
        "repair flagged (two-step SmoothGrad × input)": fix_and_retrain(exp, "repair", flags, seed=seed, map_method="two-step · gradient × input",
                                                                        fraction=fraction),
        "oracle: remove all patched": fix_and_retrain(exp, "oracle_remove", flags, seed=seed),
        "oracle: repair all patched (= clean model)": fix_and_retrain(exp, "oracle_repair", flags, seed=seed),
    }
    out = {"flag precision": flags["precision"], "flag recall": flags["recall"], "flagged": flags["n_flagged"],
           "precision of random flags": flags["chance_precision"], "flipped test images flagged from": n_test,
           "proponents flagged per test image": top_k, "repair fraction": fraction}
    for name, r in runs.items():
        row = {"changed images": r["n_changed"], "clean accuracy": r["clean_accuracy"], "flip rate": r["flip_rate"]}
        if "patch_coverage" in r:
            row["repair mask covers patch"] = r["patch_coverage"]
        out[name] = row
    return out


def faithfulness_section(exp, seed: int = 0, q_n: int = 8, per: int = 3, lr: float = 1e-5) -> dict:
    """Notebook 06's one-step insertion / deletion test: ΔL of the test images' loss after one SGD
    step on the training images restricted to (insertion) or deprived of (deletion) their top-k map
    pixels, against k random pixels; an advantage > 0 means the map beats random in that direction
    (tfa_tutorial.evaluation.faithfulness)."""
    from tfa_tutorial.evaluation.faithfulness import faithfulness_curves, family_maps
    from tfa_tutorial.fixing.flagging import flag_harmful

    model = exp.model
    flags = flag_harmful(exp, n_test=q_n, top_k=per, seed=seed)
    xq, yq = flags["test_inputs"][:q_n], flags["test_targets"][:q_n]
    top = flags["scores"][:q_n].topk(per, dim=1).indices
    X, Y = exp.train.images, exp.train.labels
    xs, ys = X[top.flatten()], Y[top.flatten()]

    # the maps: the registry's FAITHFULNESS_FAMILIES (tfa_tutorial.attribution.families)
    maps = family_maps(model, X[top], Y[top], xq, yq, seed=seed)
    ks = (16, 48, 144, 256)
    curves = faithfulness_curves(model, xs, ys, xq, yq, maps, ks=ks, lr=lr, seed=seed)
    out = {}
    for name, c in curves.items():
        row = {}
        for mode in ("insertion", "deletion"):
            adv = c[f"{mode}_advantage"]
            for k, a in zip(ks, adv):
                row[f"{mode} k={k}"] = float(a)
        out[name] = row
    out["base test loss"] = float(next(iter(curves.values()))["base_loss"])
    return out


# ---------------------------------------------------------------- markdown


def _agg(db, section, config):
    runs = db.get(section, {}).get(config, {})
    if not runs:
        return None, []
    seeds = sorted(runs, key=int)
    return aggregate_seeds([runs[s] for s in seeds]), seeds


def md_shortcut(db) -> list[str]:
    out = ["## 1. The shortcut is learned", "",
           "Clean test accuracy, and the flip rate: the fraction of other-class test images predicted as the "
           "target class once the patch is pasted on (mean ± sd over seeds).", "",
           "| configuration | model | clean accuracy | flip rate | flip rate (strict) | seeds |", "|---|---|---|---|---|---|"]
    for config in CONFIGS:
        agg, seeds = _agg(db, "shortcut", config)
        if agg is None:
            continue
        for m in ("shortcut model", "clean model"):
            r = agg[m]
            out.append(f"| {config} | {m} | {format_mean_sd(r['clean_acc'], 3)} | {format_mean_sd(r['flip_rate'])} | "
                       f"{format_mean_sd(r['flip_rate_strict'])} | {', '.join(seeds)} |")
    return out + [""]


def md_evidence(db) -> list[str]:
    out = []
    for config in CONFIGS:
        agg, seeds = _agg(db, "evidence", config)
        if agg is None:
            continue
        runs = db["evidence"][config]
        n_pairs = runs[seeds[0]]["n_pairs"]
        n_test = runs[seeds[0]]["n_test"]
        out += [f"## 2. Retrieval and localisation — `{config}`", "",
                f"Seeds {', '.join(seeds)}; per seed {n_test} flipped test images × their top-"
                f"{n_pairs // max(n_test, 1)} patched training images by Grad-Cos ({n_pairs} pairs).", "",
                "**Shortcut-detection AUPRC** (quanda's metric: do the scores rank the patched training images "
                "first?)", "", "| score | AUPRC |", "|---|---|"]
        for k, v in agg["retrieval"].items():
            out.append(f"| {k} | {format_mean_sd(v)} |")
        chance = agg["chance"]["mean"]
        out += ["", f"**Localisation on the patch** (chance = patch area = {chance:.3f}). Mass = share of the map's "
                "positive part on the patch; rank = share of the top-|patch| pixels on it; pointing = the maximum "
                "is on it (a constant map counts as a miss; tied maxima count by the share of them on it). *Gain* = shortcut model − clean model (same pairs, same explained label): what the map "
                "shows about *this* model rather than about bright squares.", "",
                "| map family | mass | mass, clean model | gain | rank | rank, clean | pointing | pointing, clean |",
                "|---|---|---|---|---|---|---|---|"]
        loc = localisation_over_seeds(runs)
        order = [f for f in EVIDENCE_FAMILIES if f in loc] + [f for f in loc if f not in EVIDENCE_FAMILIES]
        for fam in order:
            row = loc[fam]
            s, c, gain = row["shortcut model"], row["clean model"], row["gain"]
            out.append(f"| {fam} | {format_mean_sd(s['mass'])} | {format_mean_sd(c['mass'])} | "
                       f"{format_mean_sd(gain, signed=True)} | {format_mean_sd(s['rank'])} | {format_mean_sd(c['rank'])} | "
                       f"{format_mean_sd(s['pointing'])} | {format_mean_sd(c['pointing'])} |")
        out += ["", "TFA-Dot · decomposition and TFA-Cos · decomposition differ only by a positive factor per pair "
                "(‖g_j‖·‖g_i‖), so their pixel metrics are equal; they are both listed because their *scores* rank "
                "training images differently (the AUPRC table).", "", *md_best(loc), ""]
    return out


def best_by_gain(loc: dict, groups) -> tuple[str, float]:
    """The family of ``groups`` with the largest mean gain, from :func:`localisation_over_seeds`."""
    gains = {f: row["gain"]["mean"] for f, row in loc.items() if family_group(f) in groups}
    best = max(gains, key=gains.get)
    return best, gains[best]


def md_best(loc: dict) -> list[str]:
    tfa, g_tfa = best_by_gain(loc, ("TFA-Cos", "TFA-Dot", "centered", "contrast"))
    cf, g_cf = best_by_gain(loc, ("counterfactual",))
    two, g_two = best_by_gain(loc, ("two-step",))
    g_paper = loc["TFA-Cos · gradient, SmoothGrad (paper)"]["gain"]["mean"]
    verdict = "beats" if g_tfa > g_two else "does not beat"
    return [f"Largest mean gain in mass: TFA without a counterfactual — *{tfa}* {g_tfa:+.2f}; with the counterfactual "
            f"test image — *{cf}* {g_cf:+.2f}; two-step baseline — *{two}* {g_two:+.2f}; the paper's map {g_paper:+.2f}. "
            f"The best TFA variant **{verdict}** the best two-step baseline on model-specific gain."]


def md_specificity(db) -> list[str]:
    agg, seeds = _agg(db, "specificity", "two_patch")
    if agg is None:
        return []
    run0 = db["specificity"]["two_patch"][seeds[0]]
    out = ["## 3. Test-specificity: does the map follow the test image?", "",
           "Training T-shirts carry patch A (white 10×10 square, top-left), patch B (10×10 checkerboard, bottom-right), "
           "both (30% each), or neither (10%). Other-class test images flipped by A alone *and* by B alone are explained "
           "once with A and once with B, against training images that carry both patches. Specificity = ½[(mass on A − "
           "mass on B | test has A) + (mass on B − mass on A | test has B)]: 0 for any map that ignores the test image "
           "(the two-step baseline, by construction), +1 if the map moves entirely onto the test image's patch.", "",
           f"Seeds {', '.join(seeds)}; per seed {run0['n_test']} test images × {run0['n_pairs'] // max(run0['n_test'], 1)} "
           "both-patch training images, each explained twice.", ""]
    reps = agg["reports"]
    out += ["| patch | flip rate, shortcut model | flip rate, clean model |", "|---|---|---|"]
    for p in ("A", "B"):
        out.append(f"| {p} | {format_mean_sd(reps[f'patch {p}']['flip_rate'])} | {format_mean_sd(reps[f'patch {p}, clean model']['flip_rate'])} |")
    out += ["Normalised specificity = (m_match − m_other) / (m_match + m_other) of the mean masses, per seed: in [−1, 1] "
            "whatever share of the map lies on the patches, so near-chance maps are comparable (n/a where a map has no "
            "positive mass on either patch).", "",
            "| map family | specificity | specificity, clean model | normalised | normalised, clean model | "
            "mass on the matching patch | mass on the other patch |", "|---|---|---|---|---|---|---|"]
    fams = agg["families"]
    runs = db["specificity"]["two_patch"]
    for fam in [f for f in EVIDENCE_FAMILIES if f in fams]:
        row = fams[fam]
        s, c = row["shortcut model"], row["clean model"]
        norm = [_normalised(runs, seeds, fam, m) for m in ("shortcut model", "clean model")]  # stored per seed
        out.append(f"| {fam} | {format_mean_sd(s['specificity'], signed=True)} | {format_mean_sd(c['specificity'], signed=True)} | "
                   f"{norm[0]} | {norm[1]} | {format_mean_sd(s['matching mass'])} | {format_mean_sd(s['other mass'])} |")
    return out + [""]


def _normalised(runs, seeds, fam, model) -> str:
    """The stored normalised specificity over the seeds ("n/a" where a seed has it undefined)."""
    vals = [runs[s]["families"][fam][model]["normalised specificity"] for s in seeds]
    return "n/a" if any(v is None for v in vals) else format_mean_sd(aggregate_seeds(vals), signed=True)


def md_prevalence(db) -> list[str]:
    out = []
    for config in CONFIGS:
        agg, seeds = _agg(db, "prevalence", config)
        if agg is None:
            continue
        out += [f"## 4. Prevalence sweep — `{config}` patch", "",
                f"Fraction of target-class training images with the patch vs the shortcut it teaches; seeds {', '.join(seeds)}. "
                "p = 0 is the clean model and p = 0.95 the `quanda_mnist` preset (section 1).", "",
                "| prevalence | patched images | clean accuracy | flip rate | flip rate (strict) |", "|---|---|---|---|---|"]
        for p, r in agg.items():
            out.append(f"| {p} | {r['n_patched']['mean']:.0f} | {format_mean_sd(r['clean_acc'], 3)} | "
                       f"{format_mean_sd(r['flip_rate'])} | {format_mean_sd(r['flip_rate_strict'])} |")
        out.append("")
    return out


def _col_key(c: str):
    """Order columns like "insertion k=16" numerically within their prefix."""
    head, _, k = c.partition(" k=")
    return (head, int(k) if k.isdigit() else -1, c)


FIX_ROWS = ["none (shortcut model)", "remove flagged", "remove as many random", "remove as many random, same class",
            "repair flagged (TFA SmoothGrad × input)", "repair flagged (two-step SmoothGrad × input)",
            "oracle: remove all patched", "oracle: repair all patched (= clean model)"]
FAITH_ROWS = list(FAITHFULNESS_FAMILIES)  # the map-family registry's selection (tfa_tutorial.attribution.families)


def _fmt(leaf: dict, scale: float = 1.0) -> str:
    if all(float(v).is_integer() for v in leaf["values"]) and scale == 1.0:
        return f"{leaf['mean']:.0f}" if leaf["sd"] == 0 or leaf["n"] < 2 else f"{leaf['mean']:.0f} ± {leaf['sd']:.0f}"
    scaled = {**leaf, "mean": leaf["mean"] * scale, "sd": leaf["sd"] * scale}
    return format_mean_sd(scaled, small=scale == 1.0, signed=scale != 1.0)


def md_generic(db, section, title, intro: str = "", row_order=(), scale: float = 1.0) -> list[str]:
    """Sections whose per-seed result is {row: {column: number}} plus flat numbers."""
    out = []
    for config in CONFIGS:
        agg, seeds = _agg(db, section, config)
        if agg is None:
            continue
        out += [f"## {title} — `{config}`", "", (intro + " " if intro else "") + f"Seeds {', '.join(seeds)}.", ""]
        rows = {k: v for k, v in agg.items() if isinstance(v, dict) and "mean" not in v}
        if rows:
            names = [r for r in row_order if r in rows] + sorted(r for r in rows if r not in row_order)
            cols = sorted({c for v in rows.values() for c in v}, key=_col_key)
            out += ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
            for r in names:
                vals = rows[r]
                out.append(f"| {r} | " + " | ".join(_fmt(vals[c], scale) if isinstance(vals.get(c), dict) and "mean" in vals[c]
                                                 else "" for c in cols) + " |")
        flat = {k: v for k, v in agg.items() if isinstance(v, dict) and "mean" in v}
        for k, v in flat.items():
            out.append(f"- {k}: {_fmt(v)}")
        out.append("")
    return out


def md_summary(db) -> list[str]:
    """The rows that decide the story, both configurations side by side (also pasted into the README)."""
    cols = [c for c in CONFIGS if db.get("evidence", {}).get(c)]
    if not cols:
        return []
    head = " | ".join(f"mass `{c}` | gain `{c}` | rank `{c}`" for c in cols)
    out = ["## Summary", "", "Mass on the patch (shortcut model), gain over the clean-model control, and rank accuracy; "
           "mean ± sd over seeds " + ", ".join(sorted(db["evidence"][cols[0]], key=int)) + ". Chance = 0.18.", "",
           f"| map family | {head} |", "|---" * (1 + 3 * len(cols)) + "|"]
    locs = {c: localisation_over_seeds(db["evidence"][c]) for c in cols}
    for fam in KEY_FAMILIES:
        cells = []
        for c in cols:
            a = locs[c][fam]
            cells.append(f"{format_mean_sd(a['shortcut model']['mass'])} | {format_mean_sd(a['gain'], signed=True)} | "
                         f"{format_mean_sd(a['shortcut model']['rank'])}")
        out.append(f"| {fam} | " + " | ".join(cells) + " |")
    spec = db.get("specificity", {}).get("two_patch")
    if spec:
        seeds = sorted(spec, key=int)
        agg = aggregate_seeds([spec[x]["families"] for x in seeds])
        out += ["", "Test-specificity (two-patch experiment, seeds " + ", ".join(seeds) + "; 0 = ignores the test image):", "",
                "| map family | specificity | clean model |", "|---|---|---|"]
        for fam in [f for f in EVIDENCE_FAMILIES if f in agg]:
            row = agg[fam]
            out.append(f"| {fam} | {format_mean_sd(row['shortcut model']['specificity'], signed=True)} | "
                       f"{format_mean_sd(row['clean model']['specificity'], signed=True)} |")
    return out + [""]


CIFAR = """## CIFAR-10 with quanda's preset (GPU)

The paper's setting — ResNet-9 on CIFAR-10 with quanda's yellow 15×15 square at (10, 10) on 75% of
class 0 — is not run here: CIFAR-10 cannot be downloaded on this machine, and ResNet-9 (6.6M
parameters) needs a GPU for the per-sample gradients of 50k images. With CIFAR-10 in
`$TFA_DATA_DIR/cifar-10-batches-py`, the same library calls run it:

```python
from tfa_tutorial import PRESETS, ResNet9, load_cifar10, inject_patch, patch_all, train_model
train, test = load_cifar10("train"), load_cifar10("test")
patched = inject_patch(train, PRESETS["quanda_cifar10"])
model, _ = train_model(ResNet9(), patched, epochs=10, device="cuda")
```

and `tfa_tutorial.evaluation.evidence.localisation_evidence` on the resulting experiment. Cost: not measured
(no GPU here). It scales as one per-sample gradient (a forward and a backward of one image) per
training image for Grad-Cos retrieval — with P = 6.6M parameters instead of SmallCNN's 61k, about
100× more work per example than the 1,800 examples/s we measured for SmallCNN on 2 CPU cores —
plus, for the TFA maps, one double backward per (pair × SmoothGrad sample or path step); the exact
decomposition needs none.
"""


def write_markdown(db) -> None:
    db = _load()  # everything stored so far, from every results*.json
    s = experiment_settings(fast=db.get("_meta", {}).get("fast", True))
    meta = db.get("_meta", {})
    lines = [
        "# Results: which training-feature map finds the shortcut?", "",
        "Generated by `" + COMMAND + "` (`--report-only` rewrites this page from `docs/results.json`). "
        f"Fashion-MNIST, SmallCNN (61k parameters), {s['n_train']} training / {s['n_test']} test images, "
        f"{s['epochs']} epochs (the tutorial's fast setting); every number is a mean ± sample standard deviation "
        "over the seeds listed (a seed fixes the data subset, the patched images, the initialisation and the batch order).",
        "", f"Machine: {meta.get('machine', '?')}; torch {meta.get('torch', '?')}; last run {meta.get('date', '?')}. "
        "The stored numbers were computed by several runs of this script in parallel, one per group of sections "
        "(`--sections ... --db docs/results.NAME.json`), then merged into `docs/results.json`; the command above "
        "with no arguments recomputes everything in one process (about an hour on 2 quiet cores; models are cached).", "",
    ]
    from robustness_report import md_robustness

    lines += md_summary(db) + md_shortcut(db) + md_evidence(db) + md_specificity(db) + md_robustness(db, CONFIGS)
    lines += md_generic(db, "completeness", "Completeness: does each map add up to what it explains?",
                        "Relative gap |Σ map − what it explains| / |what it explains| over the pairs of section 2 "
                        "(shortcut model): integrated gradients explain S(x) − S(black image), the decomposition S(x).")
    lines += md_generic(db, "faithfulness", "Faithfulness: the one-step insertion / deletion test",
                        "One SGD step (lr 1e-5) on the top-3 Grad-Cos proponents of 8 flipped test images, restricted to "
                        "(insertion) or deprived of (deletion) their top-k map pixels; the entry is the map's advantage "
                        "over k random pixels in the change of the test loss, ×10³ (positive = the map beats random; "
                        "see tfa_tutorial.evaluation.faithfulness). The base test loss is given below the table.",
                        FAITH_ROWS, scale=1e3)
    lines += md_generic(db, "fix", "From diagnosis to fix: retrain after removing or repairing flagged data",
                        "Notebook 06's protocol: the union of the top-150 Grad-Cos proponents of 20 shortcut-flipped test "
                        "images is flagged; each strategy changes the training set and a fresh SmallCNN is trained with the "
                        "same seed and settings.", FIX_ROWS)
    lines += md_prevalence(db) + [CIFAR]
    atomic_save("\n".join(lines) + "\n", MD_PATH)
    print(f"wrote {MD_PATH}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--n-test", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=4)
    ap.add_argument("--prevalences", nargs="+", type=float, default=[0.05, 0.1, 0.25, 0.5],
                    help="prevalence sweep points for the tutorial patch (p = 0 is the clean model and p = 0.95 the "
                         "quanda_mnist preset, both in the shortcut section)")
    from tfa_tutorial.evaluation.robustness import VARIANTS

    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                    help="robustness section: the variants to run (default: all)")
    ap.add_argument("--full-seeds", nargs="+", type=int, default=[0],
                    help="robustness section: the seeds of the full-setting variant (60k images, 6 epochs)")
    ap.add_argument("--skip-specificity", action="store_true",
                    help="robustness section: skip the two-patch specificity of the variants")
    ap.add_argument("--rerun", action="store_true", help="recompute the chosen sections even if stored")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--db", type=Path, default=None,
                    help="store into this JSON instead (docs/results.NAME.json is merged into the report)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TFA_FAST", "1")
    db = _load(args.db) if args.db else _load()
    if args.db:
        db["_path"] = str(args.db)
    if args.rerun:
        for sec in args.sections:
            for cfg in list(db.get(sec, {})):
                for seed in args.seeds:
                    if sec == "robustness":  # only the chosen variants
                        for v in args.variants:
                            db[sec][cfg].get(str(seed), {}).pop(v, None)
                    else:
                        db[sec][cfg].pop(str(seed), None)
    if not args.report_only:
        db["_meta"] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "torch": torch.__version__,
                       "date": time.strftime("%Y-%m-%d"), "fast": True}
        for seed in args.seeds:
            for config in args.configs:
                need = [s for s in ("shortcut", "evidence", "completeness", "faithfulness", "fix") if s in args.sections]
                if need:
                    t0 = time.time()
                    exp = run_shortcut_and_evidence(db, config, seed, args, args.sections)
                    for sec in ("faithfulness", "fix"):
                        if sec in args.sections:
                            run_optional(db, sec, config, seed, exp, args)
                    print(f"[{config} seed {seed}] {time.time() - t0:.0f} s", flush=True)
                if "prevalence" in args.sections and config == "tutorial":
                    run_optional(db, "prevalence", config, seed, None, args)
            if "robustness" in args.sections:
                for config in args.configs:
                    run_robustness(db, config, seed, args)
            if "specificity" in args.sections:
                t0 = time.time()
                run_specificity(db, seed, args)
                print(f"[two_patch seed {seed}] {time.time() - t0:.0f} s", flush=True)
            write_markdown(db)
    write_markdown(db)


if __name__ == "__main__":
    main()
