"""Markdown tables of the stored evidence over seeds (notebooks 04 and 08 render them with
``IPython.display.Markdown``; every number comes from ``docs/results.json``).

    loc = localisation_over_seeds(load_results()["evidence"]["tutorial"])
    Markdown(seed_table_markdown(loc, KEY_FAMILIES))
"""
from __future__ import annotations

from .evidence import aggregate_seeds, format_mean_sd

__all__ = ["seed_table_markdown", "specificity_over_seeds", "specificity_table_markdown", "completeness_over_seeds",
           "completeness_table_markdown", "gain_spread", "robustness_table_markdown", "diff_spread",
           "outside_stored_range"]


def seed_table_markdown(loc: dict, families) -> str:
    """One row per family of :func:`~tfa_tutorial.evaluation.evidence.localisation_over_seeds`'s
    ``loc``: mass with the shortcut and the clean model, the gain (shortcut − clean) and the rank,
    each as mean ± sd over the seeds. Families missing from ``loc`` are skipped."""
    lines = ["| map family | mass | mass, clean model | gain | rank |", "|---|---:|---:|---:|---:|"]
    for fam in families:
        if fam not in loc:
            continue
        a = loc[fam]
        lines.append(f"| {fam} | {format_mean_sd(a['shortcut model']['mass'])} | {format_mean_sd(a['clean model']['mass'])} "
                     f"| {format_mean_sd(a['gain'], signed=True)} | {format_mean_sd(a['shortcut model']['rank'])} |")
    return "\n".join(lines)


def gain_spread(loc: dict, family: str) -> float:
    """The sample standard deviation over seeds of ``family``'s gain (0 for a single seed): the
    yardstick the notebooks' claims measure differences with."""
    sd = loc[family]["gain"]["sd"]
    return 0.0 if sd != sd else float(sd)  # NaN (one seed) → 0


def diff_spread(loc: dict, a: str, b: str) -> float:
    """The sd over seeds of the difference of two families' gains, taken as independent:
    √(sd_a² + sd_b²) (:func:`gain_spread`); the notebooks call a difference "clear" above twice this."""
    return (gain_spread(loc, a) ** 2 + gain_spread(loc, b) ** 2) ** 0.5


def outside_stored_range(loc: dict, gains: dict, n_sd: float = 2.0) -> dict[str, float]:
    """The families of ``gains`` (``{family: this run's gain}``) whose gain lies outside the stored
    seeds' range widened by ``n_sd`` standard deviations (:func:`localisation_over_seeds`'s ``loc``):
    ``{family: gain}``, empty when this run measures what the stored evidence measures."""
    out = {}
    for f, g in gains.items():
        vals, sd = loc[f]["gain"]["values"], gain_spread(loc, f)
        if not min(vals) - n_sd * sd <= g <= max(vals) + n_sd * sd:
            out[f] = g
    return out


def specificity_over_seeds(runs: dict) -> dict:
    """Per family, the :func:`~tfa_tutorial.evaluation.evidence.aggregate_seeds` leaves of the stored
    two-patch runs ``{seed: {"families": {family: {model: {"specificity", "matching mass",
    "other mass"}}}}}``."""
    return aggregate_seeds([runs[s]["families"] for s in sorted(runs, key=int)])


def specificity_table_markdown(spec: dict, families) -> str:
    """One row per family of :func:`specificity_over_seeds`: specificity with the shortcut and the
    clean model, and the shortcut model's mass on the matching and on the other patch."""
    lines = ["| map family | specificity | specificity, clean model | mass on the matching patch | mass on the other patch |",
             "|---|---:|---:|---:|---:|"]
    for fam in families:
        if fam not in spec:
            continue
        sm, cm = spec[fam]["shortcut model"], spec[fam]["clean model"]
        lines.append(f"| {fam} | {format_mean_sd(sm['specificity'], signed=True)} | {format_mean_sd(cm['specificity'], signed=True)} "
                     f"| {format_mean_sd(sm['matching mass'])} | {format_mean_sd(sm['other mass'])} |")
    return "\n".join(lines)


def completeness_over_seeds(runs: dict) -> dict:
    """Per family, the aggregate over seeds of the stored completeness gaps
    ``{seed: {family: {"median gap", "90th percentile gap"}}}``."""
    return aggregate_seeds([runs[s] for s in sorted(runs, key=int)])


def completeness_table_markdown(comp: dict) -> str:
    """One row per family of :func:`completeness_over_seeds`: the relative gap |Σ map − promised
    sum| / |promised sum|, median and 90th percentile over the pairs, mean ± sd over the seeds."""
    lines = ["| map family | median gap | 90th percentile gap |", "|---|---:|---:|"]
    for fam, row in comp.items():
        lines.append(f"| {fam} | {format_mean_sd(row['median gap'], small=True)} "
                     f"| {format_mean_sd(row['90th percentile gap'], small=True)} |")
    return "\n".join(lines)


def robustness_table_markdown(rows: list[dict], compact: bool = False) -> str:
    """One row per (objection, configuration) of
    :func:`tfa_tutorial.evaluation.verdict.robustness_rows`: the paper's map's gain, the best
    test-dependent and the best two-step map with their gains (mean ± sd over the seeds) and the
    two-patch specificity of the test-dependent map — shortcut model (clean model; normalised
    (m_match − m_other)/(m_match + m_other)), "—" where it was not measured. ``compact`` leaves out
    the float64-pairs bookkeeping column."""
    head = ["objection", "configuration", "seeds", "pairs per seed",
            "paper's map: gain", "best test-dependent map", "gain", "best two-step map", "gain",
            "specificity of the test-dependent map"] + ([] if compact else ["float64 pairs"])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        sp = r["specificity"]
        spec = "—" if sp is None else (
            f"{format_mean_sd(sp['shortcut'], signed=True)} ({format_mean_sd(sp['clean'], signed=True)}; "
            f"{'n/a' if sp['normalised'] is None else format_mean_sd(sp['normalised'], signed=True)})")
        paper = "—" if r["paper gain"] is None else format_mean_sd(r["paper gain"], signed=True)
        cells = [r["label"].replace("|", "\\|"), r["config"], ", ".join(r["seeds"]), ", ".join(map(str, r["pairs"]))] + [
            paper, r["best tfa"], format_mean_sd(r["tfa gain"], signed=True), r["best two"],
            format_mean_sd(r["two gain"], signed=True), spec] + (
            [] if compact else ["" if r["float64 pairs"] is None else str(r["float64 pairs"])])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
