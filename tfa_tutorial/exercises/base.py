"""What every exercise checker shares: answer parsing, the verdict types and the bookkeeping."""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

__all__ = ["CheckResult", "Tally", "Checker", "is_answered"]


def is_answered(answer: Any) -> bool:
    """False when ``answer`` is ``...`` or a tuple/list/dict holding ``...`` (the task's placeholder)."""
    if answer is Ellipsis:
        return False
    if isinstance(answer, dict):
        return all(is_answered(v) for v in answer.values())
    if isinstance(answer, (tuple, list)):
        return all(is_answered(v) for v in answer)
    return True


def _as_float(x) -> float | None:
    try:
        return float(torch.as_tensor(x).detach().double().reshape(()))
    except (TypeError, ValueError, RuntimeError):
        return None


def _close(a: float, b: float, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    return a is not None and math.isfinite(a) and abs(a - b) <= atol + rtol * abs(b)


def _as_int(x) -> int | None:
    v = _as_float(x)
    return int(round(v)) if v is not None and abs(v - round(v)) < 1e-9 else None


def _as_bool(x) -> bool | None:
    """A Python, NumPy or one-element torch bool as ``bool``; ``None`` for anything else."""
    if isinstance(x, bool):
        return x
    if type(x).__name__ == "bool_":  # numpy.bool_
        return bool(x)
    if isinstance(x, torch.Tensor) and x.dtype == torch.bool and x.numel() == 1:
        return bool(x)
    return None


class CheckResult:
    """A checker's verdict: truthy when solved. It displays nothing in a notebook (the checker has
    already printed ✓ or ✗), so a task cell ends with the printed line, not an ``Out[ ]: False``."""

    __slots__ = ("ok",)

    def __init__(self, ok: bool) -> None:
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other) -> bool:
        return bool(self) == bool(other) if isinstance(other, (bool, CheckResult)) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.ok)

    def __repr__(self) -> str:
        return f"CheckResult(ok={self.ok})"

    def _ipython_display_(self) -> None:
        pass


class Tally(NamedTuple):
    """``(solved, total)`` from :meth:`Checks.summary`; displays nothing (the summary is printed)."""

    solved: int
    total: int

    def _ipython_display_(self) -> None:
        pass


class Checker:
    """Bookkeeping shared by the per-notebook checker classes; :class:`tfa_tutorial.exercises.Checks`
    combines them (use its instance :data:`tfa_tutorial.exercises.check`).

    Each ``exNN_topic`` method prints one line starting with ✓ or ✗ and returns a
    :class:`CheckResult` (truthy when solved); results
    are kept in :attr:`results` (latest attempt per exercise) for :meth:`summary`.
    """

    def __init__(self) -> None:
        self.results: dict[str, bool] = {}

    # ------------------------------------------------------------------ bookkeeping

    @classmethod
    def names(cls, notebook: str | None = None) -> list[str]:
        """Exercise names, in course order; only those of notebook ``"NN"`` when given."""
        names = [n for klass in reversed(cls.__mro__) for n in vars(klass)
                 if n.startswith("ex") and n[2:4].isdigit() and callable(getattr(cls, n))]
        names.sort(key=lambda n: n[2:4])  # by notebook; definition order within one
        return [n for n in names if notebook is None or n.startswith(f"ex{notebook}_")]

    def _done(self, name: str, ok: bool, message: str) -> CheckResult:
        self.results[name] = ok
        print(f"{'✓' if ok else '✗'} {name}: {message}")
        return CheckResult(ok)

    def _unanswered(self, name: str, answer) -> CheckResult | None:
        if is_answered(answer):
            return None
        return self._done(name, False, "not answered yet: replace the ... in the cell above with your code")

    def summary(self) -> Tally:
        """Print, for every notebook touched in this session, which exercises are solved.
        Returns ``(solved, total)``."""
        notebooks = sorted({n[2:4] for n in self.results})
        names = [n for nb in notebooks for n in self.names(nb)]
        solved = [n for n in names if self.results.get(n)]
        print(f"{len(solved)}/{len(names)} exercises solved")
        for n in names:
            state = "✓ solved" if self.results.get(n) else ("✗ not yet" if n in self.results else "– not attempted")
            print(f"  {n}: {state}")
        return Tally(len(solved), len(names))
