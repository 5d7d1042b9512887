"""Measured notebook run times live in one file; the README, notebook 00 and every notebook's
header read them from there."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tfa_tutorial.teaching import run_times as rt
from tfa_tutorial.teaching.course_plan import (
    COURSE,
    course_plan_markdown,
    reading_estimate,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_STEMS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_generated_doc_blocks_are_up_to_date():
    """README's run-time table and the teacher's guide's course plan equal what their sources
    render to (python scripts/render_docs.py rewrites them)."""
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "render_docs.py"), "--check"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_course_plan_covers_every_notebook_and_fits_the_class():
    assert [stem for stem, _ in COURSE] == NOTEBOOK_STEMS
    plan = course_plan_markdown()
    in_class = sum(reading_estimate(ROOT / "notebooks" / f"{s}.ipynb")["minutes"] for s, w in COURSE if w == "in class")
    assert in_class <= 90, f"the in-class notebooks need {in_class:.0f} min of reading"
    assert f"{in_class:.0f} min in class" in plan


def test_reading_estimate_formula(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(" ".join(["word"] * 300)),
                nbformat.v4.new_code_cell("a = 1\n# a comment\nb = 2\n\nc = 3")]
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    est = reading_estimate(path)
    assert (est["words"], est["code_lines"], est["figures"]) == (300, 3, 1)
    assert est["minutes"] == pytest.approx(300 / 150 + 3 * 2 / 60 + 1)


def test_every_notebook_has_fast_mode_times_and_prints_its_header():
    stored = rt.load_run_times()["fast"]["notebooks"]
    for stem in NOTEBOOK_STEMS:
        assert {"empty", "warm"} <= set(stored.get(stem, {})), f"{stem}: no fast-mode times stored"
        script = (ROOT / "notebooks" / f"{stem}.py").read_text()
        assert f'\nnotebook_header("{stem}")' in script, f"{stem}: the header cell is missing"
        # the header comes before any other code cell
        first_code = script.split("\n# %%\n", 1)[1]
        assert "notebook_header" in first_code.split("# %%", 1)[0], stem


def test_no_notebook_types_its_run_time_by_hand():
    for stem in NOTEBOOK_STEMS:
        text = (ROOT / "notebooks" / f"{stem}.py").read_text()
        assert not re.search(r"\*\*Run time\*\*:|\*\*Run time:\*\* (about|in fast)", text), stem


@pytest.mark.parametrize("cuda", [False, True])
def test_header_names_the_mode_and_its_time(monkeypatch, tmp_path, capsys, cuda):
    monkeypatch.delenv("TFA_FAST", raising=False)
    monkeypatch.setenv("TFA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert rt.notebook_header("02_shortcut_training") is None  # nothing to echo as Out[...]
    text = capsys.readouterr().out
    assert text.strip() == rt.header_text("02_shortcut_training").strip()
    row = rt.load_run_times()["fast"]["notebooks"]["02_shortcut_training"]
    if cuda:
        assert text.startswith("Mode: full setting") and "the full setting: not measured" in text
    else:
        assert text.startswith("Mode: fast")
        assert rt.format_seconds(row["empty"]["wall_s"]) in text and rt.format_seconds(row["warm"]["wall_s"]) in text


def test_record_round_trip_and_errors(tmp_path):
    path = tmp_path / "times.json"
    rec = {"date": "2026-01-01", "machine": "m", "load": "l", "command": "c"}
    rt.record_run_time("00_x", "fast", "empty", 4.6, 3.2, 1000.4, rec, path=path)
    rt.record_run_time("00_x", "fast", "warm", 2.2, 2.0, 900, rec, path=path)
    data = json.loads(path.read_text())
    assert data["fast"]["notebooks"]["00_x"] == {"empty": {"wall_s": 5, "cpu_s": 3, "peak_mb": 1000},
                                                 "warm": {"wall_s": 2, "cpu_s": 2, "peak_mb": 900}}
    table = rt.run_times_markdown("fast", path=path)
    assert "| `00_x` | 5 | 3 | 2 | 2 | 1000 |" in table and "2026-01-01" in table
    with pytest.raises(ValueError, match="mode must be one of"):
        rt.record_run_time("00_x", "medium", "empty", 1, 1, 1, rec, path=path)


def test_generated_block_needs_its_markers():
    with pytest.raises(ValueError, match="run-times:begin"):
        rt.with_generated_block("no markers here", "run-times", "x")
    text = "a\n<!-- t:begin -->\nold\n<!-- t:end -->\nb"
    assert rt.with_generated_block(text, "t", "new") == "a\n<!-- t:begin -->\nnew\n<!-- t:end -->\nb"


def test_reading_estimate_counts_rendered_markdown(tmp_path):
    """Prose rendered from variables (IPython.display.Markdown) is read, so it is counted."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("display(Markdown(text))")]
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": " ".join(["word"] * 150),
                                                                        "text/plain": "<IPython.core.display.Markdown object>"})]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert reading_estimate(path)["words"] == 150


def test_header_names_the_place_in_the_course():
    from tfa_tutorial.teaching.course_plan import course_line

    for stem, when in COURSE:
        line = course_line(stem)
        assert line in rt.header_text(stem)
        assert when in line and ("optional" in line) == ("optional" in when)
        assert re.search(r"reading estimate \d+ min", line), line
    assert course_line("99_not_a_notebook") == ""
