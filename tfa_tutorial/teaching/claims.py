"""Checked claims: each "what we showed" sentence of a notebook is a condition on measured numbers.

    claims = Claims()
    claims.check("the shortcut is learned", flip_rate > 0.5, f"flip rate {flip_rate:.2f}")
    claims.summary()

Each check prints ✓ or ✗ with the measured value. With ``strict=True`` (or the environment
variable ``TFA_STRICT=1``, set by the test suite) a failed claim raises ``ClaimFailed`` at
``summary()``, so nbval fails the notebook instead of publishing a false sentence.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["Claims", "ClaimFailed", "strict_mode"]


class ClaimFailed(AssertionError):
    """A notebook claim did not hold on the measured numbers."""


def strict_mode() -> bool:
    """True when ``TFA_STRICT`` is set to 1/true/yes."""
    return os.environ.get("TFA_STRICT", "").strip().lower() in ("1", "true", "yes")


@dataclass
class Claims:
    strict: bool | None = None
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, claim: str, holds, evidence: str = "") -> bool:
        """Record and print one claim; ``holds`` is any truthy value (a bool, a 0-d tensor)."""
        ok = bool(holds)
        self.results.append((claim, ok, evidence))
        print(f"{'✓' if ok else '✗'} {claim}" + (f"  [{evidence}]" if evidence else ""))
        return ok

    @property
    def failed(self) -> list[str]:
        return [c for c, ok, _ in self.results if not ok]

    def summary(self) -> None:
        """Print the tally; raise ``ClaimFailed`` in strict mode if any claim failed."""
        n_ok = sum(ok for _, ok, _ in self.results)
        print(f"{n_ok}/{len(self.results)} claims hold")
        strict = strict_mode() if self.strict is None else self.strict
        if strict and self.failed:
            raise ClaimFailed("claims that did not hold: " + "; ".join(self.failed))
