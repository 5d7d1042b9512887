"""The explorer's settings: the map menu (read from the family registry), the default map, the
option limits and :class:`ExplorerSettings`."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Callable

from ..attribution.families import EXPLORER_FAMILIES, family
from ..evaluation.verdict import recommended_family

__all__ = [
    "SCORES",
    "MAP_METHODS",
    "METHOD_FAMILIES",
    "DEFAULT_MAP_METHOD",
    "TEST_INDEPENDENT_METHODS",
    "TWO_STEP_OCCLUSION",
    "SMOOTHGRAD_METHODS",
    "IG_STEPS",
    "LABEL_MODES",
    "TEST_LISTS",
    "SLOW_SETTINGS",
    "DISPLAY_SETTINGS",
    "MAX_SAMPLES",
    "MAX_NOISE",
    "ProgressFn",
    "ExplorerSettings",
]


SCORES = {"cos": "Grad-Cos", "dot": "Grad-Dot"}
# how a shown training image's map is computed (key -> label): the registry's explorer menu
# (tfa_tutorial.attribution.families.EXPLORER_FAMILIES), keyed by method ("two_step_<method>" for the two-step
# baseline) since the score is the explorer's own setting; measurements: docs/results.md
METHOD_FAMILIES = {(f.method if f.score else f"two_step_{f.method}"): f for f in map(family, EXPLORER_FAMILIES)}
MAP_METHODS = {k: (f.method_label if f.score else f.name) for k, f in METHOD_FAMILIES.items()}

def _default_map_method() -> str:
    """The explorer's default: the course's recommended map (:func:`tfa_tutorial.evaluation.verdict.recommended_family`,
    the largest model-specific gain in docs/results.json), or the menu's first entry, with a
    warning, when the stored results are missing or incomplete."""
    try:
        name = recommended_family()
    except (FileNotFoundError, KeyError, ValueError) as err:  # missing, partial or empty stored results
        warnings.warn(f"{err}; the explorer defaults to the first map of its menu", RuntimeWarning, stacklevel=2)
        name = EXPLORER_FAMILIES[0]
    return next(k for k, f in METHOD_FAMILIES.items() if f.name == name)


DEFAULT_MAP_METHOD = _default_map_method()
# maps that do not depend on the test image (cached by training index only)
TEST_INDEPENDENT_METHODS = tuple(k for k, f in METHOD_FAMILIES.items() if f.explained_label != "test")
TWO_STEP_OCCLUSION = METHOD_FAMILIES["two_step_occlusion"].opts  # options of the two-step occlusion map (fill 0)
SMOOTHGRAD_METHODS = ("gradient",)  # the methods that SmoothGrad n and σ apply to
IG_STEPS = METHOD_FAMILIES["integrated_gradients"].opts["steps"]
LABEL_MODES = ("predicted", "true")
TEST_LISTS = ("flipped", "misclassified", "correct")
# settings whose change needs new scores or maps (the view recomputes them on release / on Compute)
SLOW_SETTINGS = ("test_set", "test_index", "k", "score", "label", "method", "n_samples", "noise")
# settings that only change how cached results are shown (and the selected training image)
DISPLAY_SETTINGS = ("sign", "channels", "opacity", "selected")
MAX_SAMPLES = 256
MAX_NOISE = 2.0

ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class ExplorerSettings:
    """Everything the explorer's view depends on.

    Attributes:
        test_set: name of the test set (e.g. ``"patched"`` or ``"clean"``).
        test_index: index of the test image in it.
        k: number of proponents and of opponents shown.
        score: ``"cos"`` (Grad-Cos) or ``"dot"`` (Grad-Dot), for the ranking and the TFA maps.
        label: which test label is explained: ``"predicted"`` (the prediction) or ``"true"`` (the error).
        method: how the maps are computed, one of :data:`MAP_METHODS` (default
            :data:`DEFAULT_MAP_METHOD`, two-step occlusion, which needs no parameter selection;
            were the default the decomposition, an explorer built with a parameter subset
            ``params`` would start on ``"gradient"``, as the decomposition needs all).
        n_samples: SmoothGrad samples n (0 = the raw gradient); ``method="gradient"`` only.
        noise: SmoothGrad σ as a fraction of each training image's value range; ``"gradient"`` only.
        sign, channels: display reduction (:func:`tfa_tutorial.reduce_map`).
        opacity: overlay opacity in [0, 1].
        selected: the training index shown large in the detail pane, or None.
    """

    test_set: str
    test_index: int = 0
    k: int = 5
    score: str = "cos"
    label: str = "predicted"
    method: str = DEFAULT_MAP_METHOD
    n_samples: int = METHOD_FAMILIES["gradient"].opts["n_samples"]
    noise: float = METHOD_FAMILIES["gradient"].opts["noise"]
    sign: str = "signed"
    channels: str = "sum"
    opacity: float = 0.7
    selected: int | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)
