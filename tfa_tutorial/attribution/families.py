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

from ..training.models import ResNet9, SmallCNN
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
    "REPAIR_FAMILIES", "FAITHFULNESS_FAMILIES", "ROBUSTNESS_FAMILIES", "ROBUSTNESS_COMPARISON", "ROBUSTNESS_KEY_TFA", "MODEL_OPTIONS",
    "PARAM_SUBSETS", "family", "family_group", "pair_seed", "param_subset",
]


def pair_seed(seed: int, q: int) -> int:
    """The noise seed of test image ``q`` in an experiment with ``seed``: a hash of both, so no two
    (seed, q) share SmoothGrad noise or a random control (``seed + q`` would: (0, 1) and (1, 0)).
    A non-negative int below 2**63."""
    import hashlib

    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seed, q)):
        raise TypeError(f"seed and q must be ints, got {seed!r}, {q!r}")
    digest = hashlib.sha256(f"tfa-pair-seed:{seed}:{q}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


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

    def vector(self, kind: str, gradient: tuple = ()) -> torch.Tensor:
        """The test vector of score ``kind`` with the gradient options ``gradient`` (a family's
        :attr:`MapFamily.gradient`: objective, parameter subset)."""
        key = (kind, gradient)
        if key not in self._vectors:
            self._vectors[key] = score_vector(
                self.model, self.x_test, kind, test_target=self.label, true_target=self.true_label,
                counterfactual_input=self.x_counterfactual, class_mean=self.class_mean,
                **gradient_kwargs(self.model, gradient),
            )
        return self._vectors[key]

    def scores(self, kind: str, gradient: tuple = ()) -> torch.Tensor:
        """``[k]`` S_v of each training image."""
        key = (kind, gradient)
        if key not in self._signs:
            self._signs[key] = vector_scores(self.model, self.x_train, self.y_train, self.vector(kind, gradient),
                                             divides_by_train_norm(kind), **gradient_kwargs(self.model, gradient))[0]
        return self._signs[key]

    def sign(self, kind: str, gradient: tuple = ()) -> torch.Tensor:
        """``[k]`` sign of S_v for each training image (+1 where S = 0)."""
        return torch.where(self.scores(kind, gradient) < 0, -1.0, 1.0).to(self.x_train.dtype)


#: parameter subsets a score can be restricted to (:func:`param_subset`).
PARAM_SUBSETS = ("conv layers", "first block", "classifier")


def param_subset(model: nn.Module, subset: str) -> list[str]:
    """Parameter names (module prefixes for :func:`tfa_tutorial.attribution.gradients.select_params`) of
    ``subset``: ``"conv layers"`` every ``nn.Conv2d``, ``"first block"`` the first module of
    ``model.features`` (conv + norm), ``"classifier"`` ``model.classifier``."""
    if subset == "conv layers":
        names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    elif subset == "first block":
        names = ["features.0"] if hasattr(model, "features") else []
    elif subset == "classifier":
        names = ["classifier"] if hasattr(model, "classifier") else []
    else:
        raise ValueError(f"unknown parameter subset {subset!r}: choose one of {PARAM_SUBSETS}")
    if not names:
        raise ValueError(f"{type(model).__name__} has no {subset!r} (needs .features / .classifier / Conv2d layers)")
    return names


def gradient_kwargs(model: nn.Module, gradient: tuple) -> dict:
    """``{"objective": ..., "params": [...]}`` for the score functions from a family's gradient
    options ``(("objective", "logit"), ("subset", "conv layers"))``."""
    opts = dict(gradient)
    unknown = set(opts) - {"objective", "subset"}
    if unknown:
        raise ValueError(f"unknown gradient options {sorted(unknown)}: use 'objective' and 'subset'")
    out = {}
    if "objective" in opts:
        out["objective"] = opts["objective"]
    if "subset" in opts:
        out["params"] = param_subset(model, opts["subset"])
    return out


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
        gradient: ``(name, value)`` options of the score's gradients: ``("objective", "logit")``
            for logit gradients ∇_θ z_y instead of loss gradients, ``("subset", s)`` for the score
            over a parameter subset s of :data:`PARAM_SUBSETS`; ``()`` = loss gradients, all parameters.
    """

    name: str
    score: str | None
    method: str
    options: tuple = ()
    explained_label: str | None = "test"
    gradient: tuple = ()

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
        v = ctx.vector(self.score, self.gradient)
        if self.method == "decomposition":
            if self.gradient:
                raise ValueError(f"{self.name}: the decomposition is implemented for loss gradients of all parameters")
            maps = decompose_score(ctx.model, x, y, v, divides_by_train_norm(self.score), **self.opts).maps
        else:
            f = vector_score_fn(ctx.model, v, divides_by_train_norm(self.score), **gradient_kwargs(ctx.model, self.gradient))
            maps = attribute(f, x, y, method=self.method, seed=ctx.seed, **self.opts)
        return maps * ctx.sign(self.score, self.gradient).to(maps.device).view(-1, 1, 1, 1)


def family_group(name: str) -> str:
    """``"TFA-Cos"``, ``"TFA-Dot"``, ``"centered"``, ``"contrast"``, ``"counterfactual"``, ``"two-step"`` or ``"control"``."""
    return name.split(" · ")[0]


SG = (("n_samples", 16), ("noise", 0.15))
IG = (("steps", 16),)
OCC = (("window", 4), ("stride", 2))
LOGIT = (("objective", "logit"),)
#: the SmoothGrad settings of the robustness check of the paper's map (σ as a fraction of the input range).
SMOOTHGRAD_N, SMOOTHGRAD_SIGMA = (16, 50), (0.1, 0.2)

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
    # robustness variants (docs/results.md, "Robustness"): logit gradients, parameter subsets, SmoothGrad settings
    MapFamily("TFA-Logit · gradient, SmoothGrad", "cos", "gradient", SG, gradient=LOGIT),
    MapFamily("TFA-Logit · gradient × input", "cos", "gradient_x_input", SG, gradient=LOGIT),
    MapFamily("TFA-Logit · integrated gradients", "cos", "integrated_gradients", IG, gradient=LOGIT),
    MapFamily("TFA-Logit · occlusion", "cos", "occlusion", OCC, gradient=LOGIT),
    *(MapFamily(f"TFA-Cos, {s} · {label}", "cos", method, SG, gradient=(("subset", s),))
      for s in PARAM_SUBSETS for method, label in (("gradient", "gradient, SmoothGrad"), ("gradient_x_input", "gradient × input"))),
    *(MapFamily(f"TFA-Cos · gradient, SmoothGrad n={n} σ={sigma}", "cos", "gradient", (("n_samples", n), ("noise", sigma)))
      for n in SMOOTHGRAD_N for sigma in SMOOTHGRAD_SIGMA),
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


#: the families of the robustness check only (docs/results.md, "Robustness"); the evidence tables run the others.
ROBUSTNESS_FAMILIES = tuple(f.name for f in _ALL if f.gradient or f.name.startswith("TFA-Cos · gradient, SmoothGrad n="))

#: the rows every robustness variant measures next to its own families: the paper's map, the two-step
#: baseline with three methods, the random control (:data:`tfa_tutorial.evaluation.robustness.VARIANTS`).
ROBUSTNESS_COMPARISON = ("TFA-Cos · gradient, SmoothGrad (paper)", "two-step · SmoothGrad", "two-step · gradient × input",
                         "two-step · occlusion", "control · random")
#: the test-dependent maps with the largest gains in the evidence tables, re-measured by the model,
#: pair and training variants.
ROBUSTNESS_KEY_TFA = ("TFA-Cos · gradient × input", "TFA-Cos · integrated gradients", "TFA-Cos · decomposition",
                      "TFA-Cos · decomposition, first block", "counterfactual · decomposition")

#: the models of the robustness check (:func:`tfa_tutorial.evaluation.robustness.variant_experiment`):
#: name → ``build(in_channels, num_classes)``. "SmallCNN" is the tutorial's model (global average
#: pool); the paper's ResNet family pools with max; ResNet-9 at width 8 (about 100k parameters)
#: trains on 2 CPU cores at about SmallCNN's cost.
MODEL_OPTIONS = {
    "SmallCNN": lambda c, k: SmallCNN(c, k),
    "SmallCNN, global max pool": lambda c, k: SmallCNN(c, k, pool="max"),
    "ResNet9, width 8": lambda c, k: ResNet9(c, k, width=8),
}

for _selection in (COURSE_FAMILIES, KEY_FAMILIES, SPECIFICITY_FAMILIES, EXPLORER_FAMILIES, REPAIR_FAMILIES,
                   FAITHFULNESS_FAMILIES, ROBUSTNESS_FAMILIES, ROBUSTNESS_COMPARISON, ROBUSTNESS_KEY_TFA):
    _unknown = [n for n in _selection if n not in FAMILIES]
    if _unknown:
        raise RuntimeError(f"selection names unknown map families: {_unknown}")


def family(name: str) -> MapFamily:
    """The family called ``name``; ValueError naming the choices otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown map family {name!r}: choose one of {list(FAMILIES)}")
    return FAMILIES[name]
