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


def test_notebooks_exercises_benchmarks_and_scripts_use_only_the_public_api_through_T():
    used = set()
    paths = (sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")) + sorted((ROOT / "exercises").rglob("[0-9][0-9]_*.py"))
             + sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "scripts").glob("*.py")))
    for path in paths:
        used |= set(re.findall(r"(?<![\w.])T\.([A-Za-z_]\w*)", path.read_text()))
    private = sorted(n for n in used if n not in T.__all__)
    assert not private, f"T.<name> used for names outside tfa_tutorial.__all__: {private}"


def test_internals_are_not_exported():
    for name in ("atomic_save", "cache_dir", "auto_chunk_size", "unit_rows", "select_params"):
        assert not hasattr(T, name), name
