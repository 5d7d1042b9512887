"""The "Robustness" section of docs/results.md, generated from docs/results.json
(``evidence``, ``specificity`` and ``robustness`` sections); imported by benchmarks/results.py.

Each row is one objection to the evidence of section 2, measured: the paper's map under the
variant, the best test-dependent map and the best two-step map of the variant's run (by mean
gain in mass over the seeds), and the test-specificity of that test-dependent map where the
two-patch experiment was run for it. The rule and the verdict live in ``tfa_tutorial.evaluation.verdict``; this file only writes markdown.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfa_tutorial.evaluation.evidence import family_group, format_mean_sd  # noqa: E402
from tfa_tutorial.evaluation.tables import robustness_table_markdown  # noqa: E402
from tfa_tutorial.evaluation.verdict import (  # noqa: E402
    RULE,
    robustness_verdict,
    seed_gains,
    verdict_sentence,
)

__all__ = ["md_robustness", "md_details", "conclusion"]


def md_robustness(db, configs) -> list[str]:
    verdict = robustness_verdict(db, configs)
    rows = verdict["rows"]
    if not rows:
        return []
    out = ["## Robustness: does the finding survive the obvious objections?", "",
           "Each row changes one thing in the protocol of section 2 (flipped test images × training images, both models "
           "explain the shortcut model's prediction; gain = mass on the patch, shortcut model − clean model; mean ± sd over "
           "the seeds listed). *Paper's map*: the SmoothGrad gradient of the row's score. *Best test-dependent*: the score "
           "map with the largest mean gain among the row's families (the counterfactual, which needs the unpatched test "
           "image, is left out). *Specificity*: the two-patch experiment of section 3 for that map — shortcut model "
           "(clean model; normalised (m_match − m_other)/(m_match + m_other)); — where it was not run. Float64 pairs: "
           "pairs recomputed in float64 because a loss fell below 1e-7 (float32 breakdown).", "",
           "Command: `.venv/bin/python benchmarks/results.py --sections robustness --n-test 4` (per seed, 4 flipped test "
           "images × their top 4 training images = 16 pairs; the full setting for seed 0 only, `--full-seeds 0`; one "
           "variant at a time with `--variants NAME`). The main-protocol and fair-measure rows read the `evidence` "
           "section (`--sections evidence`: 8 test images, 32 pairs per seed), so their two-step gain differs slightly "
           "from the variants' 16-pair runs. Rows with one seed have no sd.", "",
           "The specificity column comes from one experiment, the two-patch setting of section 3 (16 pairs per seed "
           "for the variants, `--sections robustness`; 32 for section 3, `--sections specificity`): it is not specific "
           "to a configuration, so both configurations of a row show the same value, and the main-protocol, fair-measure "
           "and random-pair rows show section 3's number for their map, not a re-measurement under the row's change. "
           "Where it was not measured (—) the rule cannot pass.", "",
           robustness_table_markdown(rows)]
    out += ["", *conclusion(verdict), ""]
    from tfa_tutorial.evaluation.robustness import VARIANTS

    stored = {(c, v) for c in configs for r in db.get("robustness", {}).get(c, {}).values() for v in r}
    missing = [f"{v} (`{c}`)" for v in VARIANTS for c in configs if (c, v) not in stored]
    if missing:
        out += ["Not measured in the stored results (no row above): " + ", ".join(missing) + ". "
                "`--sections robustness --variants NAME` computes them.", ""]
    return out + [*md_details(db, configs), ""]


def md_details(db, configs) -> list[str]:
    """Every family of every robustness run: gain in mass over the seeds, per configuration."""
    variants = []
    for config in configs:
        for runs in db.get("robustness", {}).get(config, {}).values():
            variants += [v for v in runs if v not in variants]
    if not variants:
        return []
    out = ["Every map of every variant run (gain in mass, shortcut − clean model; mean ± sd over the seeds in brackets):", "",
           "| variant | map family | " + " | ".join(f"gain `{c}`" for c in configs) + " |", "|---" * (2 + len(configs)) + "|"]
    for v in variants:
        cells = {}
        for config in configs:
            for key in ("localisation", "localisation, weighted by S"):
                runs = {s: r[v][key] for s, r in db.get("robustness", {}).get(config, {}).items() if key in r.get(v, {})}
                for f, g in seed_gains(runs, "mass").items():
                    name = f if key == "localisation" else f"{f} (weighted by S⁺)"
                    cells.setdefault(name, {})[config] = f"{format_mean_sd(g, signed=True)} [{', '.join(sorted(runs, key=int))}]"
        for f in sorted(cells, key=lambda n: (family_group(n) in ("two-step", "control"), n)):
            out.append(f"| {v} | {f} | " + " | ".join(cells[f].get(c, "") for c in configs) + " |")
    return out


def conclusion(v: dict) -> list[str]:
    """The plain statement (:func:`tfa_tutorial.evaluation.verdict.verdict_sentence`), the rule, and
    the objections with the numbers each rests on (``v``: :func:`~tfa_tutorial.evaluation.verdict.robustness_verdict`)."""
    lines = [f"**Conclusion.** {verdict_sentence(v)} (Rule: {RULE}.)", ""]
    lines += [("Every row without a specificity measurement loses on gain, so the missing measurements cannot change "
               "the verdict." if not v["unmeasured beats"] else
               "Rows that beat the two-step map on gain but have no specificity measurement (measure it before trusting "
               "the verdict): " + "; ".join(f"{r['label']} ({r['config']})" for r in v["unmeasured beats"]) + "."), ""]
    if v["winner"] is None:
        lines += ["The objections measured, none of which changed the result:", ""]
    for r in v["rows"]:
        lines.append(f"- {r['label']} ({r['config']}, seeds {', '.join(r['seeds'])}): paper's map "
                     f"{'—' if r['paper gain'] is None else format(r['paper gain']['mean'], '+.2f')}, best test-dependent "
                     f"*{r['best tfa']}* {r['tfa gain']['mean']:+.2f} vs best two-step *{r['best two']}* "
                     f"{r['two gain']['mean']:+.2f}"
                     + ("" if r["specificity"] is None else
                        f"; specificity {r['specificity']['shortcut']['mean']:+.2f} (clean {r['specificity']['clean']['mean']:+.2f})") + ".")
    if v["beats on gain"]:
        lines += ["", "Rows where a test-dependent map has the larger mean gain but fails the specificity rule: "
                  + "; ".join(f"{r['label']} ({r['config']})" for r in v["beats on gain"] if r is not v["winner"]) + "."]
    return lines
