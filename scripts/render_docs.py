#!/usr/bin/env python
"""Regenerate the generated blocks of the docs from their single sources.

    python scripts/render_docs.py            # rewrite the blocks
    python scripts/render_docs.py --check    # exit 1 if a block is out of date

- README.md, ``run-times``: the stored notebook run times (``tfa_tutorial/teaching/run_times.json``);
- README.md, ``evidence``: retrieval and localisation numbers from ``docs/results.json``
  (``benchmarks/readme_results.py``);
- README.md, ``shortcut-seeds`` and ``specificity-fix``: the shortcut over seeds, the prevalence sweep,
  the two-patch specificity and the data fix, from ``docs/results.json`` (``benchmarks/readme_results.py``);
- README.md, ``robustness``: the robustness verdict, from ``docs/results.json``
  (``tfa_tutorial/evaluation/verdict.py`` via ``benchmarks/readme_results.py``);
- README.md, ``package-layout``: the package tree, from each subpackage's docstring (its module list);
- docs/teachers_guide.md, ``course-plan``: reading estimates of the executed notebooks and the
  stored run times (``tfa_tutorial/teaching/course_plan.py``);
- docs/teachers_guide.md, ``discussion-prompts`` and ``student-questions``: every number from the
  stored evidence, ``docs/results.json`` (``tfa_tutorial/teaching/guide.py``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tfa_tutorial.evaluation.evidence import load_results  # noqa: E402
sys.path.insert(0, str(ROOT / "benchmarks"))

from readme_results import (  # noqa: E402
    readme_evidence_markdown,
    readme_robustness_markdown,
    readme_shortcut_markdown,
    readme_specificity_fix_markdown,
)

from tfa_tutorial.teaching.course_plan import course_plan_markdown  # noqa: E402
from tfa_tutorial.evaluation.verdict import robustness_verdict  # noqa: E402
from tfa_tutorial.teaching.guide import (  # noqa: E402
    discussion_prompts_markdown,
    guide_numbers,
    student_questions_markdown,
)
from tfa_tutorial.teaching.run_times import run_times_markdown, with_generated_block  # noqa: E402

SUBPACKAGES = ("core", "data", "training", "attribution", "evaluation", "fixing", "explorer", "teaching", "exercises")


def package_layout_markdown() -> str:
    """The package as a tree, one line per module, read from the subpackages' docstrings
    (``- ``module``  what it does`` lines; the exercises list their checker modules)."""
    import ast
    import re

    pkg = ROOT / "tfa_tutorial"
    lines = ["```", "tfa_tutorial/"]
    for sub in SUBPACKAGES:
        doc = ast.get_docstring(ast.parse((pkg / sub / "__init__.py").read_text())) or ""
        title = doc.strip().splitlines()[0].rstrip(".")
        lines.append(f"├── {sub + '/':<17} {title}")
        entries = re.findall(r"^- ``(\w+)``\s+(.+)$", doc, re.M)
        for name, what in entries:
            lines.append(f"│   ├── {name + '.py':<20} {what}")
    lines.append("```")
    return "\n".join(lines)


def blocks() -> list[tuple[Path, str, str]]:
    """``(file, block name, content)`` of every generated block; the stored results are read, and
    the robustness verdict computed, once."""
    db = load_results()
    verdict = robustness_verdict(db)
    numbers = guide_numbers(db)
    return [
        (ROOT / "README.md", "run-times", run_times_markdown("fast")),
        (ROOT / "README.md", "package-layout", package_layout_markdown()),
        (ROOT / "README.md", "shortcut-seeds", readme_shortcut_markdown(db)),
        (ROOT / "README.md", "evidence", readme_evidence_markdown(db)),
        (ROOT / "README.md", "robustness", readme_robustness_markdown(db, verdict)),
        (ROOT / "README.md", "specificity-fix", readme_specificity_fix_markdown(db)),
        (ROOT / "docs" / "teachers_guide.md", "course-plan", course_plan_markdown(ROOT / "notebooks")),
        (ROOT / "docs" / "teachers_guide.md", "discussion-prompts", discussion_prompts_markdown(db, numbers=numbers)),
        (ROOT / "docs" / "teachers_guide.md", "student-questions", student_questions_markdown(db, numbers=numbers)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report blocks that are out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, name, content in blocks():
        text = path.read_text()
        new = with_generated_block(text, name, content)
        if new != text:
            stale.append(f"{path.relative_to(ROOT)} ({name})")
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print("out of date (run python scripts/render_docs.py): " + ", ".join(stale))
        return 1
    print(("rewrote: " + ", ".join(stale)) if stale else "all generated blocks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
