"""The committed notebooks: paired with their scripts, clean, and executed.

(a) every ``notebooks/*.ipynb`` has its jupytext ``py:percent`` script and both hold the same
    cells (compared cell by cell through jupytext, so header versions do not matter);
(b) hygiene: kernelspec ``python3``, no widget-state bloat, no absolute paths or personal data in
    outputs, a "What you will learn" opening, a "What we showed" close that uses ``Claims``;
(c) each notebook was executed top to bottom: execution counts 1, 2, 3, ... and no errors.

These tests read files only; nbval (``make test``) runs the notebooks.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SCRIPTS = sorted(p for p in NOTEBOOK_DIR.glob("*.py") if re.match(r"\d\d_", p.name))

# widget state kept in the notebook's metadata (JupyterLab "save widget state", nbclient)
MAX_WIDGET_STATE_BYTES = 2_000
# outputs must not leak where the notebook was run, or who ran it
FORBIDDEN_IN_OUTPUTS = [
    (re.compile(r"/root\b"), "/root"),
    (re.compile(r"/home/"), "/home/"),
    (re.compile(r"/Users/"), "/Users/"),
    (re.compile(r"/work/"), "/work/"),
    (re.compile(r"/tmp/"), "/tmp/"),
    (re.compile(r"[A-Za-z]:\\\\Users\\\\"), "C:\\Users\\"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "an e-mail address"),
]


def nb_id(path: Path) -> str:
    return path.stem


def text_of_outputs(cell) -> str:
    """Every textual part of a code cell's outputs (images are skipped)."""
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
        for mime, value in out.get("data", {}).items():
            if mime.startswith("image/"):
                continue
            parts.append(value if isinstance(value, str) else json.dumps(value))
        if out.get("output_type") == "error":
            parts.append(out.get("ename", "") + ": " + out.get("evalue", ""))
            parts.extend(out.get("traceback", []))
    return "\n".join(parts)


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


# ------------------------------------------------------------------------------ (a) pairing


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=nb_id)
def test_notebook_has_paired_script(ipynb):
    assert ipynb.with_suffix(".py").is_file(), f"{ipynb.name}: no paired script {ipynb.stem}.py (jupytext py:percent)"


@pytest.mark.parametrize("script", SCRIPTS, ids=nb_id)
def test_script_has_paired_notebook(script):
    assert script.with_suffix(".ipynb").is_file(), (
        f"{script.name}: no {script.stem}.ipynb; run scripts/run_notebooks.py {script.with_suffix('.ipynb')}")


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=nb_id)
def test_notebook_and_script_have_the_same_cells(ipynb):
    script = ipynb.with_suffix(".py")
    if not script.is_file():
        pytest.skip("no script (reported by test_notebook_has_paired_script)")
    from_ipynb = [(c.cell_type, c.source.strip()) for c in jupytext.read(ipynb).cells]
    from_py = [(c.cell_type, c.source.strip()) for c in jupytext.read(script, fmt="py:percent").cells]
    if from_ipynb == from_py:
        return
    for k, (a, b) in enumerate(zip(from_ipynb, from_py)):
        if a != b:
            if a[0] != b[0]:
                what = f"a {a[0]} cell in the notebook, a {b[0]} cell in the script"
            else:
                la, lb = a[1].splitlines(), b[1].splitlines()
                n = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
                what = (f"line {n + 1}: {la[n] if n < len(la) else '<end>'!r} (notebook) vs "
                        f"{lb[n] if n < len(lb) else '<end>'!r} (script)")
            pytest.fail(f"{ipynb.name}: cell {k} differs from {script.name}, {what}; "
                        "sync with scripts/run_notebooks.py")
    pytest.fail(f"{ipynb.name}: {len(from_ipynb)} cells but {script.name} has {len(from_py)}; "
                "sync with scripts/run_notebooks.py")


# ------------------------------------------------------------------------------ (b) hygiene


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=nb_id)
def test_kernelspec_is_python3(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    name = nb.metadata.get("kernelspec", {}).get("name")
    assert name == "python3", f"{ipynb.name}: kernelspec name {name!r}; nbval and Binder expect 'python3'"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=nb_id)
def test_no_widget_state_bloat(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    size = len(json.dumps(nb.metadata.get("widgets", {})))
    assert size <= MAX_WIDGET_STATE_BYTES, (
        f"{ipynb.name}: metadata.widgets holds {size} bytes of widget state; strip it (scripts/run_notebooks.py does)")


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=nb_id)
def test_no_absolute_paths_or_personal_data_in_outputs(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    problems = []
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = text_of_outputs(cell)
        for pattern, what in FORBIDDEN_IN_OUTPUTS:
            m = pattern.search(text)
            if m:
                problems.append(f"cell {k}: {what} in {text[max(0, m.start() - 30):m.end() + 30]!r}")
    assert not problems, f"{ipynb.name}: outputs leak local details:\n" + "\n".join(problems)


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=nb_id)
def test_opens_with_what_you_will_learn(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    assert nb.cells, f"{ipynb.name} is empty"
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{ipynb.name}: the first cell must be markdown"
    assert "what you will learn" in first.source.lower(), f"{ipynb.name}: the first cell must say 'What you will learn'"
    assert re.search(r"run time", first.source, flags=re.I), f"{ipynb.name}: the first cell must give the expected run time"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=nb_id)
def test_closes_with_checked_claims(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    headings = [k for k, c in enumerate(nb.cells)
                if c.cell_type == "markdown" and re.search(r"^#+\s*what we showed", c.source, flags=re.I | re.M)]
    assert headings, f"{ipynb.name}: no 'What we showed' section"
    after = [c for c in nb.cells[headings[-1]:] if c.cell_type == "code"]
    claims_cells = [c for c in after if "Claims(" in c.source and ".summary()" in c.source]
    assert claims_cells, f"{ipynb.name}: the 'What we showed' section must check its claims with Claims() ... summary()"
    assert all("NBVAL_CHECK_OUTPUT" in c.source for c in claims_cells), (
        f"{ipynb.name}: the claims cell must carry '# NBVAL_CHECK_OUTPUT' so nbval compares it")


# ------------------------------------------------------------------------------ (c) executed


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=nb_id)
def test_executed_in_order_without_errors(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{ipynb.name}: execution counts {counts}; execute it top to bottom in a fresh kernel "
        "(scripts/run_notebooks.py)")
    errors = [(k, o.get("ename"), o.get("evalue")) for k, c in enumerate(nb.cells)
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{ipynb.name}: error outputs {errors}"
