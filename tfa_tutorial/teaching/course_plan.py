"""The course as a teacher plans it: which notebooks form the 90-minute core, what is done before
and after class, and how long each notebook takes to read and to run.

Reading time is an **estimate computed from the executed notebook** (so it follows every edit):
markdown words (of markdown cells and of markdown rendered by code cells) at :data:`WORDS_PER_MINUTE`, plus :data:`SECONDS_PER_CODE_LINE` per line of code
(skimmed, not studied) and :data:`MINUTES_PER_FIGURE` per figure. Running time is the measured
fast-mode wall time stored in ``run_times.json`` (see :mod:`tfa_tutorial.teaching.run_times`); a student
reads while a notebook runs, so only the reading time is budgeted. The teacher's guide renders
:func:`course_plan_markdown` between its ``course-plan`` markers (``scripts/render_docs.py``).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .run_times import format_seconds, load_run_times

__all__ = ["COURSE", "WORDS_PER_MINUTE", "SECONDS_PER_CODE_LINE", "MINUTES_PER_FIGURE", "reading_estimate",
           "course_plan_markdown", "course_line"]

WORDS_PER_MINUTE = 150  # technical prose with formulas
SECONDS_PER_CODE_LINE = 2
MINUTES_PER_FIGURE = 1.0
NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: (notebook stem, when it is done). The core path is "before class" + "in class".
COURSE: tuple[tuple[str, str], ...] = (
    ("00_start_here", "before class"),
    ("01_patch_injection", "before class"),
    ("02_shortcut_training", "in class"),
    ("03_per_sample_gradients_and_gradcos", "in class"),
    ("04_training_feature_attribution", "in class"),
    ("05_interactive_explorer", "in class"),
    ("06_from_diagnosis_to_fix", "after class (optional)"),
    ("07_neural_features", "after class (optional)"),
    ("08_evidence_deep_dive", "after class (optional)"),
)
CLASS_MINUTES = 90


def reading_estimate(ipynb: str | Path) -> dict:
    """``{"words", "code_lines", "figures", "minutes"}`` of an executed notebook (formula above)."""
    nb = json.loads(Path(ipynb).read_text())
    words = code = figures = 0
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            words += len(re.findall(r"\w+", text))
        elif cell["cell_type"] == "code":
            code += len([ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")])
            figures += sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
            # prose rendered from variables (IPython.display.Markdown) is read like a markdown cell
            words += sum(len(re.findall(r"\w+", "".join(out["data"]["text/markdown"])))
                         for out in cell.get("outputs", []) if "text/markdown" in out.get("data", {}))
    minutes = words / WORDS_PER_MINUTE + code * SECONDS_PER_CODE_LINE / 60 + figures * MINUTES_PER_FIGURE
    return {"words": words, "code_lines": code, "figures": figures, "minutes": minutes}


def course_line(stem: str, notebook_dir: str | Path = NOTEBOOK_DIR) -> str:
    """One line for a notebook's header: when it is done, whether it is on the core path or
    optional, and its reading estimate (from its last executed version); ``""`` for a notebook
    that is not in :data:`COURSE`."""
    when = dict(COURSE).get(stem)
    if when is None:
        return ""
    kind = "" if "optional" in when else " (core 90-minute path)"
    path = Path(notebook_dir) / f"{stem}.ipynb"
    est = f"; reading estimate {reading_estimate(path)['minutes']:.0f} min" if path.is_file() else ""
    return f"Place in the course: {when}{kind}{est} — the course plan is in docs/teachers_guide.md."


def course_plan_markdown(notebook_dir: str | Path = NOTEBOOK_DIR) -> str:
    """The plan table (per notebook: when, reading estimate, measured fast-mode run times) and the
    time budget of the class."""
    times = load_run_times()["fast"]["notebooks"]
    rows = ["| notebook | when | reading (min, estimate) | words · code lines · figures | "
            "run time, fast mode (empty / warm cache) |", "|---|---|---:|---|---|"]
    budget: dict[str, float] = {}
    for stem, when in COURSE:
        est = reading_estimate(Path(notebook_dir) / f"{stem}.ipynb")
        budget[when] = budget.get(when, 0.0) + est["minutes"]
        run = times.get(stem, {})
        run_text = " / ".join(format_seconds(run[c]["wall_s"]) if c in run else "–" for c in ("empty", "warm"))
        rows.append(f"| `{stem}` | {when} | {est['minutes']:.0f} | {est['words']} · {est['code_lines']} · "
                    f"{est['figures']} | {run_text} |")
    in_class = budget.get("in class", 0.0)
    rows += ["", f"Reading estimate: {budget.get('before class', 0):.0f} min before class, {in_class:.0f} min in "
             f"class (leaving {CLASS_MINUTES - in_class:.0f} of {CLASS_MINUTES} min for discussion), "
             f"{budget.get('after class (optional)', 0):.0f} min after class. Formula: words / {WORDS_PER_MINUTE} "
             f"per min + {SECONDS_PER_CODE_LINE} s per code line + {MINUTES_PER_FIGURE:g} min per figure "
             "(`tfa_tutorial/teaching/course_plan.py`)."]
    return "\n".join(rows)
