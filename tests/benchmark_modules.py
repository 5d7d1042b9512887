"""Load a script of ``benchmarks/`` as a module for the tests (not a test module): the scripts are
not a package, and some import each other by name, so ``benchmarks/`` goes on ``sys.path`` first."""
import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str, module_name: str | None = None):
    """A fresh module object of ``benchmarks/<name>.py`` (registered as ``module_name``, default ``name``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(module_name or name, BENCHMARKS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
