"""The public API is ``tfa_tutorial.__all__``: curated, documented, and what the notebooks use."""
from __future__ import annotations

import re
from pathlib import Path

import tfa_tutorial as T

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_exists_and_is_documented():
    assert len(T.__all__) == len(set(T.__all__))
    assert 40 <= len(T.__all__) <= 70, len(T.__all__)
    for name in T.__all__:
        obj = getattr(T, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"tfa_tutorial.{name} has no docstring"


def test_the_course_steps_are_covered():
    for name in ("shortcut_experiment", "inject_patch", "train_model", "per_sample_grads", "grad_cos", "tfa_maps",
                 "relevance_mass_accuracy", "recommended_family", "ExplorerState", "flag_harmful", "class_contributions"):
        assert name in T.__all__, name


COURSE_FILES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")) + sorted((ROOT / "exercises").rglob("[0-9][0-9]_*.py"))
IMPORT = re.compile(r"^\s*from (tfa_tutorial(?:\.\w+)*) import \(?([^)]*?)\)?\s*$", re.M | re.S)


def _imports(text: str):
    """``(module, [names])`` of every ``from tfa_tutorial... import`` statement (parenthesised too)."""
    import ast

    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfa_tutorial"):
            yield node.module, [a.name for a in node.names]


def test_notebooks_and_exercises_use_one_import_style():
    """Course files import names: the public API from ``tfa_tutorial``, anything deeper from its module
    (``tfa_tutorial.<step>.<module>``) — never ``import tfa_tutorial as T`` or ``T.<name>``, and never a
    public name through its module."""
    assert COURSE_FILES
    for path in COURSE_FILES:
        text = path.read_text()
        assert not re.search(r"^\s*import tfa_tutorial\b", text, re.M), f"{path.name}: use from-imports"
        assert not re.search(r"(?<![\w.])T\.[A-Za-z_]", text), f"{path.name}: T.<name> left"
        for module, names in _imports(text):
            if module == "tfa_tutorial":
                extra = [n for n in names if n not in T.__all__ and n != "__version__"]
                assert not extra, f"{path.name}: {extra} are not public; import them from their module"
            else:
                assert module.count(".") in (1, 2), f"{path.name}: {module}"
                public = [n for n in names if n in T.__all__]
                assert not public, f"{path.name}: import the public {public} from tfa_tutorial, not {module}"


def test_benchmarks_and_scripts_use_only_the_public_api_through_T():
    used = set()
    for path in sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "scripts").glob("*.py")):
        used |= set(re.findall(r"(?<![\w.])T\.([A-Za-z_]\w*)", path.read_text()))
    private = sorted(n for n in used if n not in T.__all__)
    assert not private, f"T.<name> used for names outside tfa_tutorial.__all__: {private}"


def test_internals_are_not_exported():
    for name in ("atomic_save", "cache_dir", "auto_chunk_size", "unit_rows", "select_params"):
        assert not hasattr(T, name), name
