"""benchmarks/results.py: the markdown report is built from stored per-seed results (means ± sd
computed correctly, families in the library's order, parallel result files merged)."""
import json
from pathlib import Path

import pytest
from benchmark_modules import load_benchmark

from tfa_tutorial.attribution.families import SPECIFICITY_FAMILIES
from tfa_tutorial.evaluation.evidence import EVIDENCE_FAMILIES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def results(tmp_path, monkeypatch):
    mod = load_benchmark("results", "results_script")
    monkeypatch.setattr(mod, "JSON_PATH", tmp_path / "results.json")
    monkeypatch.setattr(mod, "MD_PATH", tmp_path / "results.md")
    return mod


def _evidence(shift):
    fam = {f: {"shortcut model": {"mass": 0.3 + shift, "rank": 0.2, "pointing": 0.5},
               "clean model": {"mass": 0.2, "rank": 0.1, "pointing": 0.1}} for f in EVIDENCE_FAMILIES}
    return {"retrieval": {"Grad-Cos": 0.8 + shift}, "localisation": fam, "chance": 0.18, "n_test": 2, "n_pairs": 4}


def test_report_means_sds_and_merge(results, tmp_path):
    report = {"clean_acc": 0.85, "flip_rate": 0.6, "flip_rate_strict": 0.55}
    db = {"shortcut": {"tutorial": {"0": {"shortcut model": report, "clean model": report}}},
          "evidence": {"tutorial": {"0": _evidence(0.0), "1": _evidence(0.2)}}}
    (tmp_path / "results.json").write_text(json.dumps(db))
    # a parallel run's file is merged into the report
    (tmp_path / "results.extra.json").write_text(json.dumps(
        {"completeness": {"tutorial": {"0": {"TFA-Cos · decomposition": {"median gap": 1e-6}}}}}))
    results.write_markdown({})
    md = (tmp_path / "results.md").read_text()
    # mass 0.3 and 0.5 → mean 0.40, sd 0.14; gain 0.1 and 0.3 → +0.20 ± 0.14
    assert "| TFA-Cos · gradient, SmoothGrad (paper) | 0.40 ± 0.14 | 0.20 ± 0.00 | +0.20 ± 0.14 |" in md
    assert "| Grad-Cos | 0.90 ± 0.14 |" in md
    assert "1.0e-06" in md
    section2 = md[md.index("## 2. Retrieval"):]
    rows = [line.split(" | ")[0][2:] for line in section2.splitlines() if line.startswith("| ") and " · " in line]
    assert rows[: len(EVIDENCE_FAMILIES)] == list(EVIDENCE_FAMILIES)


def test_store_merges_with_what_is_on_disk(results, tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"fix": {"tutorial": {"0": {"a": 1}}}}))
    results._store({}, "evidence", "tutorial", 0, {"b": 2})
    on_disk = json.loads(path.read_text())
    assert on_disk["fix"]["tutorial"]["0"] == {"a": 1} and on_disk["evidence"]["tutorial"]["0"] == {"b": 2}


def _spec_db(shortcut):
    """A synthetic two-patch database over seeds 0 and 1: every family of SPECIFICITY_FAMILIES with clean-model
    specificity 0.00 / 0.02 and the shortcut model's per-seed specificity ``shortcut.get(family, (0.01, 0.02))``."""
    runs = {}
    for k, seed in enumerate(("0", "1")):
        fams = {f: {"shortcut model": {"specificity": shortcut.get(f, (0.01, 0.02))[k], "matching mass": 0.4, "other mass": 0.3,
                                       "normalised specificity": 1 / 7},
                    "clean model": {"specificity": 0.02 * k, "matching mass": 0.3, "other mass": 0.3,
                                    "normalised specificity": 0.0}}
                for f in SPECIFICITY_FAMILIES}
        runs[seed] = {"reports": {"patch A": {"flip_rate": 0.6 + 0.1 * k}, "patch B": {"flip_rate": 0.4}}, "families": fams}
    return {"specificity": {"two_patch": runs}}


def test_readme_specificity_reading_follows_the_numbers():
    """The README's reading of the two-patch table is computed: a map is named clearly specific exactly when
    its per-seed difference to the clean model is above 0.05 and 2 sd; counterfactual maps are never named."""
    mod = load_benchmark("readme_results")
    gxi, ig, cf = "TFA-Cos · gradient × input", "TFA-Cos · integrated gradients", "counterfactual · decomposition"
    clear = "Maps whose specificity is clearly above their clean-model control (by more than 0.05 and 2 sd): "
    none = "No discovery map is clearly more specific than its clean-model control"
    # gradient × input: differences 0.40, 0.40 (clear); integrated gradients: 0.00, 0.60 (mean 0.30 < 2 sd 0.42);
    # the counterfactual map: clear, but excluded from the reading
    text = mod.readme_specificity_fix_markdown(_spec_db({gxi: (0.40, 0.42), ig: (0.0, 0.62), cf: (0.5, 0.52)}))
    assert "Flip rates: A 0.65 ± 0.07, B 0.40 ± 0.00." in text
    assert f"| {gxi} | +0.41 ± 0.01 | +0.01 ± 0.01 | 0.40 ± 0.00 / 0.30 ± 0.00 |" in text
    assert clear + f"{gxi} +0.41 ± 0.01 against +0.01 ± 0.01." in text  # gxi alone: the sentence ends after it
    assert none not in text and "The paper's map does not move" in text
    # nothing clearly above: the most specific discovery map is named instead (integrated gradients, mean 0.31)
    text = mod.readme_specificity_fix_markdown(_spec_db({gxi: (0.04, 0.06), ig: (0.0, 0.62), cf: (0.5, 0.52)}))
    assert clear not in text
    assert f"{none}; the most specific, {ig}, reaches +0.31 ± 0.44 against +0.01 ± 0.01." in text
    assert "Acting on it" not in text  # no stored fix results, no fix paragraph
