"""Numbers that the README and the teacher's guide quote over seeds ("mean ± sd") must be numbers
that docs/results.json holds: when the evidence is recomputed, a stale quote fails here."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tfa_tutorial.evaluation.evidence import (
    aggregate_seeds,
    format_mean_sd,
    load_results,
    localisation_over_seeds,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "docs/teachers_guide.md"]
MEAN_SD = re.compile(r"[+\-−]?\d+\.\d+(?:e-?\d+)? ± \d+\.\d+(?:e-?\d+)?")


def _leaves(tree, out: list) -> list:
    if isinstance(tree, dict):
        if {"mean", "sd", "n", "values"} <= set(tree):
            out.append(tree)
        else:
            for v in tree.values():
                _leaves(v, out)
    return out


def stored_aggregates(db: dict) -> set[str]:
    """Every aggregate over seeds in ``db``, written as the docs write them (2–4 digits, signed
    or not, small values in scientific notation)."""
    leaves: list = []
    for section, configs in db.items():
        if section.startswith("_") or not isinstance(configs, dict):
            continue
        for runs in configs.values():
            seeds = sorted((s for s in runs if str(s).isdigit()), key=int) if isinstance(runs, dict) else []
            if len(seeds) < 2:
                continue
            _leaves(aggregate_seeds([runs[s] for s in seeds]), leaves)
            if section == "evidence":
                _leaves(localisation_over_seeds({s: runs[s] for s in seeds}), leaves)
    return {format_mean_sd(leaf, digits=d, signed=sg, small=sm)
            for leaf in leaves for d in (2, 3, 4) for sg in (False, True) for sm in (False, True)}


@pytest.fixture(scope="module")
def known() -> set[str]:
    return stored_aggregates(load_results())


@pytest.mark.parametrize("doc", DOCS)
def test_quoted_mean_sd_values_are_stored_results(doc, known):
    text = (ROOT / doc).read_text()
    unknown = unknown_quotes(text, known)
    assert not unknown, (f"{doc} quotes {len(unknown)} mean ± sd value(s) that docs/results.json does not hold "
                         f"(stale after a rerun of benchmarks/results.py?): {unknown[:10]}")


def unknown_quotes(text: str, known: set[str]) -> list[str]:
    return [q for q in MEAN_SD.findall(text) if q.replace("−", "-") not in known]


def test_the_check_can_fail(known):
    """A stored value passes; the same value with its mean shifted by one hundredth, or a made-up
    value, is caught."""
    some = sorted(q for q in known if re.fullmatch(r"0\.\d\d ± 0\.\d\d", q))
    assert some, "no two-digit aggregate in docs/results.json"
    assert unknown_quotes(f"we measured {some[0]} here", known) == []
    shifted = [f"{float(q.split(' ± ')[0]) + 0.01:.2f} ± {q.split(' ± ')[1]}" for q in some]
    assert any(unknown_quotes(s, known) for s in shifted)
    assert unknown_quotes("flip rate 9.99 ± 9.99", known) == ["9.99 ± 9.99"]


GUIDE_BLOCKS = ("discussion-prompts", "student-questions")


def _guide_renderers():
    from tfa_tutorial.teaching.guide import discussion_prompts_markdown, student_questions_markdown

    return dict(zip(GUIDE_BLOCKS, (discussion_prompts_markdown, student_questions_markdown)))


@pytest.mark.parametrize("name", GUIDE_BLOCKS)
def test_guide_blocks_are_rendered_from_results(name):
    """The teacher's guide's prompts and student questions hold exactly the numbers that
    docs/results.json gives today (scripts/render_docs.py writes them)."""
    from tfa_tutorial.teaching.run_times import with_generated_block

    text = (ROOT / "docs" / "teachers_guide.md").read_text()
    assert with_generated_block(text, name, _guide_renderers()[name](load_results())) == text, (
        f"docs/teachers_guide.md ({name}) differs from docs/results.json: run python scripts/render_docs.py")


def test_guide_block_check_can_fail():
    """A changed stored result changes the rendered block, so the test above would fail."""
    import copy

    db = load_results()
    changed = copy.deepcopy(db)
    for runs in changed["shortcut"]["tutorial"].values():
        if isinstance(runs, dict) and "shortcut model" in runs:
            runs["shortcut model"]["flip_rate"] += 0.2
    for name, render in _guide_renderers().items():
        assert render(changed) != render(db), name


def test_notebook_05_names_the_default_map_the_code_chooses():
    """05 explains the explorer's default map in prose; the default is chosen from the stored evidence
    (``recommended_family``), so the prose must follow it when the evidence changes."""
    from tfa_tutorial.explorer.settings import DEFAULT_MAP_METHOD

    prose_name = {"two_step_occlusion": "two-step occlusion", "two_step_smoothgrad": "two-step SmoothGrad",
                  "decomposition": "exact decomposition", "gradient_x_input": "gradient × input",
                  "integrated_gradients": "integrated gradients", "gradient": "SmoothGrad gradient"}
    text = (ROOT / "notebooks" / "05_interactive_explorer.py").read_text()
    assert DEFAULT_MAP_METHOD in prose_name, f"add the prose name of {DEFAULT_MAP_METHOD!r} here"
    assert f"explorer's default, **{prose_name[DEFAULT_MAP_METHOD]}**" in text, (
        f"notebook 05 must describe the default map {DEFAULT_MAP_METHOD!r} (chosen from docs/results.json)")
    readme = (ROOT / "README.md").read_text()
    assert f"The default map is **{prose_name[DEFAULT_MAP_METHOD]}**" in readme, (
        f"README's explorer section must describe the default map {DEFAULT_MAP_METHOD!r}")


TYPED_RESULT = re.compile(r"[-+]?\d+\.\d+\s*±\s*\d+\.\d+|(?:in this run|this run gives|we measured)[^.\n]*?\d\.\d")


def typed_results(markdown: str) -> list[str]:
    """Measured numbers typed into notebook prose: a mean ± sd, or a number said to be this run's."""
    return TYPED_RESULT.findall(markdown)


@pytest.mark.parametrize("script", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")), ids=lambda p: p.stem)
def test_notebook_prose_types_no_measured_numbers(script):
    """A notebook's markdown never types a measured result: such numbers are printed or rendered with
    ``display(Markdown(...))`` from the run's variables, so prose cannot contradict the outputs."""
    prose = "\n".join(ln for ln in script.read_text().splitlines() if ln.startswith("#"))
    assert not typed_results(prose), f"{script.name}: typed results {typed_results(prose)}; render them from variables"


def test_typed_result_check_can_fail():
    assert typed_results("# the gain is +0.38 ± 0.10 here") and typed_results("# in this run about 1.4× chance")
    assert not typed_results("# σ = 0.15 of the range; chance is the patch area")
