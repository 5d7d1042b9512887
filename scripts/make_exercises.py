#!/usr/bin/env python
"""Write the students' exercise scripts from the teachers' solution scripts.

    python scripts/make_exercises.py            # exercises/solutions/NN_topic.py -> exercises/NN_topic.py
    python scripts/make_exercises.py --check    # exit 1 if a student script is out of date

The solution script (jupytext ``py:percent``) is the single source. In it, each answer sits
between ``# BEGIN SOLUTION`` and ``# END SOLUTION``; lines in that block starting with ``#> ``
are what the student sees instead (a task line with ``...`` to fill in). The student script gets:

- the ``#>`` lines in place of the block (same indentation), so the cell runs and its checker
  prints "not answered yet";
- right after that cell, a markdown cell with the solution folded away:
  ``<details><summary>Solution</summary> ... </details>``;
- no lines marked for teachers (markdown lines starting with ``# [teacher]``).

Then execute the student notebooks with ``scripts/run_notebooks.py exercises/NN_topic.ipynb``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXERCISE_DIR = ROOT / "exercises"
SOLUTION_DIR = EXERCISE_DIR / "solutions"
BEGIN, END, STUDENT, TEACHER = "# BEGIN SOLUTION", "# END SOLUTION", "#> ", "# [teacher]"


def details_cell(solution: list[str]) -> list[str]:
    """A py:percent markdown cell holding ``solution`` (code lines) folded in <details>."""
    body = ["<details><summary>Solution</summary>", "", "```python", *solution, "```", "", "</details>"]
    return ["", "# %% [markdown]"] + [("# " + ln).rstrip() for ln in body]


def student_version(text: str) -> str:
    """The student's script for a solution script's text (see the module docstring)."""
    out: list[str] = []
    pending: list[list[str]] = []  # solutions of the current cell, emitted after it
    block: list[str] | None = None
    indent = 0

    def flush():
        # the details cells go after the cell's last non-blank line
        trailing = []
        while out and not out[-1].strip():
            trailing.append(out.pop())
        for sol in pending:
            out.extend(details_cell(sol))
        pending.clear()
        out.extend(trailing)

    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if line.startswith("# %%") and block is None:
            flush()
        if stripped == BEGIN:
            if block is not None:
                raise ValueError(f"line {n}: nested {BEGIN}")
            block, indent = [], len(line) - len(line.lstrip())
            continue
        if stripped == END:
            if block is None:
                raise ValueError(f"line {n}: {END} without {BEGIN}")
            code = [ln[indent:] if ln.strip() else "" for ln in block if not ln.strip().startswith(STUDENT.strip())]
            while code and not code[-1]:
                code.pop()
            if not any(ln.strip().startswith(STUDENT.strip()) for ln in block):
                raise ValueError(f"line {n}: a solution block needs at least one '{STUDENT}' line for the student")
            out.extend(" " * indent + ln.strip()[len(STUDENT):] for ln in block if ln.strip().startswith(STUDENT.strip()))
            pending.append(code)
            block = None
            continue
        if block is not None:
            block.append(line)
            continue
        if stripped.startswith(TEACHER):
            if out and out[-1] == "#":  # the blank markdown line before a teacher's note
                out.pop()
            continue
        out.append(line)
    if block is not None:
        raise ValueError(f"{BEGIN} without {END}")
    flush()
    return "\n".join(out) + "\n"


def pairs() -> list[tuple[Path, Path]]:
    """``(solution script, student script)`` for every ``exercises/solutions/NN_*.py``."""
    return [(p, EXERCISE_DIR / p.name) for p in sorted(SOLUTION_DIR.glob("[0-9][0-9]_*.py"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report student scripts that are out of date")
    args = parser.parse_args(argv)
    stale = []
    for solution, student in pairs():
        text = student_version(solution.read_text(encoding="utf-8"))
        if student.is_file() and student.read_text(encoding="utf-8") == text:
            continue
        stale.append(student)
        if not args.check:
            student.write_text(text, encoding="utf-8")
            print(f"wrote {student.relative_to(ROOT)}")
    if args.check and stale:
        print("out of date (run scripts/make_exercises.py): " + ", ".join(str(p.relative_to(ROOT)) for p in stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
