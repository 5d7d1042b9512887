"""The one registry of map families: every way this package turns a (training image, test image)
pair into a map, with one display name each.

A *family* is a score kind of :mod:`.score_vectors` (Grad-Cos, Grad-Dot, the de-confounded
"centered" and "contrast" scores, the "counterfactual" one that needs the unpatched test image)
attributed to the training image's pixels by one method (the paper's SmoothGrad gradient,
gradient × input, integrated gradients, occlusion, or the exact position decomposition of
:mod:`.decomposition`); or the two-step baseline (the same methods on the training image's *own*
label's logit); or a control (the input itself, a random map).

    fam = FAMILIES["TFA-Cos · gradient × input"]       # MapFamily(name, score, method, options, explained_label)
    maps = fam(PairContext(model, x_train, y_train, x_test, label))   # [k, C, H, W]

Score-based maps are multiplied by sign(S), so that positive means "supports the score" for
every training image. Adding a family is one line in :data:`FAMILIES`; the selections below
(the course's table, the two-patch experiment, the explorer's menu, the repair maps) name
families of it and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .baselines import model_output_fn, random_map
from .decomposition import decompose_score
from .methods import attribute
from .score_vectors import (
    divides_by_train_norm,
    score_vector,
    vector_score_fn,
    vector_scores,
)

__all__ = [
    "MapFamily", "PairContext", "FAMILIES", "COURSE_FAMILIES", "KEY_FAMILIES", "SPECIFICITY_FAMILIES", "EXPLORER_FAMILIES",
    "REPAIR_FAMILIES", "FAITHFULNESS_FAMILIES", "family", "family_group",
]


@dataclass
class PairContext:
    """Everything a family needs for one test image and its k training images.

    Attributes:
        x_train: ``[k, C, H, W]``; y_train: ``[k]``; x_test: ``[C, H, W]``.
        label: the explained label of the test image (``None``: the model's prediction).
        true_label: its true label (``"contrast"``); x_counterfactual: ``[C, H, W]`` the test
            image without the patch (``"counterfactual"``); class_mean: m_c ``[P]`` (``"centered"``).
        seed: seeds SmoothGrad noise and the random control.
    """

    model: nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    label: int | None = None
    true_label: int | None = None
    x_counterfactual: torch.Tensor | None = None
    class_mean: torch.Tensor | None = None
    seed: int = 0
    _vectors: dict = field(default_factory=dict)
    _signs: dict = field(default_factory=dict)

    def vector(self, kind: str) -> torch.Tensor:
        if kind not in self._vectors:
            self._vectors[kind] = score_vector(
                self.model, self.x_test, kind, test_target=self.label, true_target=self.true_label,
                counterfactual_input=self.x_counterfactual, class_mean=self.class_mean,
            )
        return self._vectors[kind]

    def sign(self, kind: str) -> torch.Tensor:
        """``[k]`` sign of S_v for each training image (+1 where S = 0)."""
        if kind not in self._signs:
            s = vector_scores(self.model, self.x_train, self.y_train, self.vector(kind), divides_by_train_norm(kind))[0]
            self._signs[kind] = torch.where(s < 0, -1.0, 1.0).to(self.x_train.dtype)
        return self._signs[kind]


@dataclass(frozen=True)
class MapFamily:
    """One way to map a training image.

    Attributes:
        name: the one display name, ``"<group> · <method>"`` (see :func:`family_group`).
        score: the score kind of :mod:`.score_vectors` that is attributed, or ``None`` for the
            two-step baseline and the controls.
        method: an attribution method of :func:`tfa_tutorial.attribute`, ``"decomposition"``,
            or for the controls ``"input"`` / ``"random"``.
        options: ``(name, value)`` pairs passed to the method (SmoothGrad n and σ, IG steps,
            occlusion window and stride, decomposition layers); :attr:`opts` as a dict.
        explained_label: ``"test"`` (the score against the explained test label), ``"own"``
            (the training image's own label: two-step) or ``None`` (controls).
    """

    name: str
    score: str | None
    method: str
    options: tuple = ()
    explained_label: str | None = "test"

    @property
    def opts(self) -> dict:
        return dict(self.options)

    @property
    def group(self) -> str:
        return family_group(self.name)

    @property
    def method_label(self) -> str:
        """The name without its group: ``"gradient × input"``."""
        return self.name.split(" · ", 1)[1]

    def __call__(self, ctx: PairContext) -> torch.Tensor:
        """Maps ``[k, C, H, W]`` (``[k, 1, H, W]`` for the decomposition) of ``ctx``'s training images."""
        x, y = ctx.x_train, ctx.y_train
        if self.method == "input":
            return x.clone()
        if self.method == "random":
            return random_map(x.shape, seed=ctx.seed, dtype=x.dtype)
        if self.score is None:
            return attribute(model_output_fn(ctx.model), x, y, method=self.method, seed=ctx.seed, **self.opts)
        v = ctx.vector(self.score)
        if self.method == "decomposition":
            maps = decompose_score(ctx.model, x, y, v, divides_by_train_norm(self.score), **self.opts).maps
        else:
            f = vector_score_fn(ctx.model, v, divides_by_train_norm(self.score))
            maps = attribute(f, x, y, method=self.method, seed=ctx.seed, **self.opts)
        return maps * ctx.sign(self.score).to(maps.device).view(-1, 1, 1, 1)


def family_group(name: str) -> str:
    """``"TFA-Cos"``, ``"TFA-Dot"``, ``"centered"``, ``"contrast"``, ``"counterfactual"``, ``"two-step"`` or ``"control"``."""
    return name.split(" · ")[0]


SG = (("n_samples", 16), ("noise", 0.15))
IG = (("steps", 16),)
OCC = (("window", 4), ("stride", 2))

_ALL = (
    MapFamily("TFA-Cos · gradient, SmoothGrad (paper)", "cos", "gradient", SG),
    MapFamily("TFA-Cos · gradient × input", "cos", "gradient_x_input", SG),
    MapFamily("TFA-Cos · integrated gradients", "cos", "integrated_gradients", IG),
    MapFamily("TFA-Cos · occlusion", "cos", "occlusion", OCC),
    MapFamily("TFA-Cos · decomposition", "cos", "decomposition"),
    MapFamily("TFA-Cos · decomposition, first block", "cos", "decomposition", (("layers", "features.0"),)),
    MapFamily("TFA-Dot · gradient, SmoothGrad", "dot", "gradient", SG),
    MapFamily("TFA-Dot · integrated gradients", "dot", "integrated_gradients", IG),
    MapFamily("TFA-Dot · decomposition", "dot", "decomposition"),
    MapFamily("centered · gradient × input", "centered", "gradient_x_input", SG),
    MapFamily("centered · integrated gradients", "centered", "integrated_gradients", IG),
    MapFamily("centered · decomposition", "centered", "decomposition"),
    MapFamily("contrast · gradient × input", "contrast", "gradient_x_input", SG),
    MapFamily("contrast · integrated gradients", "contrast", "integrated_gradients", IG),
    MapFamily("contrast · decomposition", "contrast", "decomposition"),
    MapFamily("counterfactual · integrated gradients", "counterfactual", "integrated_gradients", IG),
    MapFamily("counterfactual · decomposition", "counterfactual", "decomposition"),
    MapFamily("two-step · SmoothGrad", None, "gradient", SG, "own"),
    MapFamily("two-step · gradient × input", None, "gradient_x_input", SG, "own"),
    MapFamily("two-step · integrated gradients", None, "integrated_gradients", IG, "own"),
    MapFamily("two-step · occlusion", None, "occlusion", OCC, "own"),
    MapFamily("control · input as map", None, "input", (), None),
    MapFamily("control · random", None, "random", (), None),
)

#: name → :class:`MapFamily`: every map family of the package, in the order tables list them.
FAMILIES: dict[str, MapFamily] = {f.name: f for f in _ALL}
if len(FAMILIES) != len(_ALL):
    raise RuntimeError("two map families share a display name")

#: notebook 04's measured table (section 3): the paper's map, its value attributions, Grad-Dot,
#: the decomposition, the two-step baseline with the same methods, and the two controls.
COURSE_FAMILIES = (
    "TFA-Cos · gradient, SmoothGrad (paper)", "TFA-Cos · gradient × input", "TFA-Cos · integrated gradients",
    "TFA-Dot · gradient, SmoothGrad", "TFA-Cos · decomposition", "two-step · SmoothGrad", "two-step · gradient × input",
    "two-step · integrated gradients", "two-step · occlusion", "control · input as map", "control · random",
)

#: the rows that decide the story: docs/results.md's summary and notebook 04's evidence over seeds.
KEY_FAMILIES = (
    "TFA-Cos · gradient, SmoothGrad (paper)", "TFA-Cos · gradient × input", "TFA-Cos · integrated gradients",
    "TFA-Cos · decomposition", "TFA-Cos · decomposition, first block", "counterfactual · decomposition",
    "two-step · SmoothGrad", "two-step · gradient × input", "two-step · occlusion",
    "control · input as map", "control · random",
)

#: the test-dependent families (and the two-step baseline, zero by construction) for the two-patch experiment.
SPECIFICITY_FAMILIES = (
    "TFA-Cos · gradient, SmoothGrad (paper)", "TFA-Cos · gradient × input", "TFA-Cos · integrated gradients",
    "TFA-Cos · decomposition", "TFA-Cos · decomposition, first block", "TFA-Dot · decomposition",
    "centered · decomposition", "contrast · integrated gradients", "contrast · decomposition",
    "counterfactual · decomposition", "two-step · integrated gradients",
)

#: the explorer's map menu, default first. The explorer applies its own score setting (Grad-Cos or
#: Grad-Dot) to the score families, lets the user set SmoothGrad n and σ for the gradient, and shows
#: gradient × input without SmoothGrad (one double backward per tile keeps it interactive).
EXPLORER_FAMILIES = (
    "two-step · occlusion", "TFA-Cos · gradient, SmoothGrad (paper)", "TFA-Cos · gradient × input",
    "TFA-Cos · integrated gradients", "TFA-Cos · decomposition",
)

#: the maps that can choose the pixels to repair (:func:`tfa_tutorial.fixing.retrain.repair_maps`).
REPAIR_FAMILIES = (
    "TFA-Cos · integrated gradients", "TFA-Cos · gradient × input", "TFA-Cos · gradient, SmoothGrad (paper)",
    "two-step · integrated gradients", "two-step · gradient × input", "two-step · SmoothGrad",
    "two-step · occlusion", "control · input as map", "control · random",
)
"""Maps that may choose the pixels to repair in :func:`tfa_tutorial.fixing.repair.repair_maps`: TFA of the
Grad-Cos score for the flagged image's strongest test image (times sign(S)), the two-step maps of the
training image's own-label logit, and the two controls (the image itself — a brightness prior, not an
explanation — and a random map, chance)."""

#: the maps of the one-step insertion / deletion test (notebook 06 section 5, docs/results.md's
#: faithfulness section, :func:`tfa_tutorial.evaluation.faithfulness.family_maps`): the paper's map,
#: TFA gradient × input, the decomposition, the two-step baseline (× input and occlusion), the image itself.
FAITHFULNESS_FAMILIES = (
    "TFA-Cos · gradient, SmoothGrad (paper)", "TFA-Cos · gradient × input", "TFA-Cos · decomposition",
    "two-step · gradient × input", "two-step · occlusion", "control · input as map",
)

for _selection in (COURSE_FAMILIES, KEY_FAMILIES, SPECIFICITY_FAMILIES, EXPLORER_FAMILIES, REPAIR_FAMILIES,
                   FAITHFULNESS_FAMILIES):
    _unknown = [n for n in _selection if n not in FAMILIES]
    if _unknown:
        raise RuntimeError(f"selection names unknown map families: {_unknown}")


def family(name: str) -> MapFamily:
    """The family called ``name``; ValueError naming the choices otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown map family {name!r}: choose one of {list(FAMILIES)}")
    return FAMILIES[name]
