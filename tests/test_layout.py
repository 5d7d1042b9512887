"""The package layout follows the course: one level of subpackages, small modules, each listed.

- every module lives in ``tfa_tutorial/<subpackage>/`` (no deeper level, nothing at the top but
  ``__init__.py``, the curated public API);
- every module has a docstring and at most :data:`MAX_LINES` lines;
- a subpackage's ``__init__.py`` is only a docstring that lists exactly its modules (the README's
  package tree is rendered from these lists, ``scripts/render_docs.py``);
- no module star-imports another (every name has one home).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "tfa_tutorial"
MAX_LINES = 400
MODULES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def test_one_level_of_subpackages():
    top = sorted(p.name for p in PKG.glob("*.py"))
    assert top == ["__init__.py"], f"modules belong in a subpackage: {top}"
    for p in MODULES:
        depth = len(p.relative_to(PKG).parts)
        assert depth <= 2, f"{p.relative_to(ROOT)} is more than one level deep"
    subs = [d for d in PKG.iterdir() if d.is_dir() and d.name != "__pycache__" and not d.name.endswith(".egg-info")]
    for d in subs:
        assert (d / "__init__.py").is_file(), f"{d.name}/ has no __init__.py"


def test_modules_are_small_and_documented():
    too_long = {str(p.relative_to(ROOT)): n for p in MODULES if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not too_long, f"modules over {MAX_LINES} lines (split them by job): {too_long}"
    undocumented = [str(p.relative_to(ROOT)) for p in MODULES if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not undocumented, undocumented


def test_each_subpackage_lists_exactly_its_modules():
    for init in sorted(PKG.glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        doc = ast.get_docstring(tree) or ""
        listed = re.findall(r"^- ``(\w+)``\s+\S", doc, re.M)
        present = sorted(p.stem for p in init.parent.glob("*.py") if p.name != "__init__.py")
        assert sorted(listed) == present, f"{init.parent.name}/__init__.py lists {sorted(listed)}, has {present}"
        if init.parent.name != "exercises":  # the exercises package also combines its checkers
            code = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
            assert not code, f"{init.parent.name}/__init__.py should hold only its docstring (import from the modules)"


def test_no_star_imports():
    hits = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in MODULES for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)]
    assert not hits, hits

