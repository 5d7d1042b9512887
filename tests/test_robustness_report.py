"""The robustness verdict (tfa_tutorial.evaluation.verdict) and its markdown (benchmarks/robustness_report.py)
are computed from the stored per-seed results (gains per seed, best maps, the specificity rule), both ways."""

import pytest
from benchmark_modules import load_benchmark

from tfa_tutorial.evaluation.verdict import (
    clearly_above,
    robustness_rows,
    robustness_verdict,
    verdict_sentence,
)


@pytest.fixture
def report():
    return load_benchmark("robustness_report")


def _loc(masses):
    """{family: (shortcut mass, clean mass)} → stored localisation."""
    return {f: {"shortcut model": {"mass": s}, "clean model": {"mass": c}} for f, (s, c) in masses.items()}


def _db(logit_gain_shift, spec_shortcut):
    rob = {}
    for seed, jitter in (("0", 0.0), ("1", 0.02)):
        rob[seed] = {"logit gradients": {
            "localisation": _loc({"TFA-Logit · gradient, SmoothGrad": (0.2 + jitter, 0.15),
                                  "TFA-Logit · gradient × input": (0.3 + logit_gain_shift + jitter, 0.2),
                                  "two-step · occlusion": (0.5, 0.1), "two-step · SmoothGrad": (0.3, 0.2),
                                  "control · random": (0.18, 0.18)}),
            "float64 pairs": {"shortcut model": 1, "clean model": 0}, "n_pairs": 16}}
    spec = {s: {"logit gradients": {"families": {"TFA-Logit · gradient × input": {
        "shortcut model": {"specificity": spec_shortcut + d, "matching mass": 0.3, "other mass": 0.1,
                           "normalised specificity": 0.5},
        "clean model": {"specificity": 0.01, "matching mass": 0.2, "other mass": 0.2,
                        "normalised specificity": 0.0}}}}} for s, d in (("0", 0.0), ("1", 0.01))}
    return {"robustness": {"tutorial": rob, "two_patch": spec}}


def test_rows_hold_per_seed_gains_and_the_best_maps(report):
    rows = robustness_rows(_db(0.0, 0.02), ["tutorial"])
    (r,) = rows
    assert r["best tfa"] == "TFA-Logit · gradient × input" and r["best two"] == "two-step · occlusion"
    assert r["tfa gain"]["values"] == pytest.approx([0.1, 0.12]) and r["two gain"]["mean"] == pytest.approx(0.4)
    assert r["paper gain"]["mean"] == pytest.approx(0.06)
    assert r["float64 pairs"] == 2 and r["seeds"] == ["0", "1"]
    md = "\n".join(report.md_robustness(_db(0.0, 0.02), ["tutorial"]))
    assert "| logit gradients ∇θ z_y | tutorial | 0, 1 | 16 | +0.06 ± 0.01 | TFA-Logit · gradient × input | +0.11 ± 0.01 |" in md
    assert "+0.50 ± 0.00" in md  # normalised specificity (0.3 − 0.1) / (0.3 + 0.1)
    assert "The two-step baseline stays the recommended map" in md and "+0.11 vs best two-step" in md


def test_conclusion_recommends_a_map_only_when_both_conditions_hold(report):
    # beats the two-step baseline (gain 0.5 > 0.4) and specificity clearly above the clean control
    md = "\n".join(report.md_robustness(_db(0.4, 0.30), ["tutorial"]))
    assert "it is the recommended map" in md and "*TFA-Logit · gradient × input*" in md
    # beats it on gain, but specificity is not clearly above the clean model's: no recommendation
    md = "\n".join(report.md_robustness(_db(0.4, 0.03), ["tutorial"]))
    assert "it is the recommended map" not in md and "fails the specificity rule" in md
    # clearly specific, but loses on gain
    md = "\n".join(report.md_robustness(_db(0.0, 0.30), ["tutorial"]))
    assert "it is the recommended map" not in md


def test_verdict_names_a_winner_only_when_both_halves_of_the_rule_hold():
    v = robustness_verdict(_db(0.4, 0.30), ["tutorial"])
    assert v["winner"]["best tfa"] == "TFA-Logit · gradient × input"
    assert "it is the recommended map" in verdict_sentence(v)
    v = robustness_verdict(_db(0.4, 0.03), ["tutorial"])  # beats on gain, not specific
    assert v["winner"] is None and len(v["beats on gain"]) == 1
    s = verdict_sentence(v)
    assert "stays the recommended map" in s and "+0.51 against *two-step · occlusion* +0.40" in s
    assert "never gains more than" not in s  # the paper's own map (loss-gradient Grad-Cos) was not measured here


def test_clearly_above_needs_two_seeds_a_margin_and_two_sd():
    assert clearly_above({"mean": 0.2, "sd": 0.01, "n": 2})
    assert not clearly_above({"mean": 0.2, "sd": float("nan"), "n": 1})  # one seed is not evidence
    assert not clearly_above({"mean": 0.04, "sd": 0.0, "n": 3})  # below the margin
    assert not clearly_above({"mean": 0.2, "sd": 0.11, "n": 3})  # within 2 sd
    assert not clearly_above(None)


def test_recommended_family_follows_the_verdict():
    from tfa_tutorial.evaluation.verdict import recommended_family

    menu = ["TFA-Logit · gradient × input", "two-step · occlusion"]
    assert recommended_family(_db(0.4, 0.30), candidates=menu) == "TFA-Logit · gradient × input"
    with pytest.raises(ValueError, match="no 'evidence' section"):  # no winner: falls through to the evidence
        recommended_family(_db(0.4, 0.03), candidates=menu)


def test_verdict_names_test_specific_maps_that_lose_on_gain():
    v = robustness_verdict(_db(0.0, 0.30), ["tutorial"])  # clearly specific, but gains less than two-step
    assert v["winner"] is None and [r["best tfa"] for r in v["specific"]] == ["TFA-Logit · gradient × input"]
    s = verdict_sentence(v)
    assert "Some test-dependent maps do follow the test image" in s and "+0.30 against +0.01" in s
    assert not robustness_verdict(_db(0.0, 0.03), ["tutorial"])["specific"]  # within the margin: not named


def test_short_verdict_counts_without_naming():
    s = verdict_sentence(robustness_verdict(_db(0.0, 0.30), ["tutorial"]), short=True)
    assert "1 test-dependent map does follow the test image" in s and "TFA-Logit" not in s
    assert "stays the recommended map" in s and "never gains more than" not in s


def test_paper_map_max_reads_only_the_papers_own_map():
    from tfa_tutorial.evaluation.verdict import PAPER, paper_map_max

    leaf = lambda m: {"mean": m, "sd": 0.0, "n": 2, "values": [m, m]}  # noqa: E731
    rows = [{"paper": PAPER, "paper gain": leaf(0.04)}, {"paper": "TFA-Logit · gradient, SmoothGrad", "paper gain": leaf(0.16)},
            {"paper": PAPER, "paper gain": leaf(0.14)}, {"paper": PAPER, "paper gain": None}]
    assert paper_map_max(rows) == 0.14 and paper_map_max(rows[1:2]) is None
