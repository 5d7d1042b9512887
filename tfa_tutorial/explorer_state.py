"""State and logic of the interactive explorer of harmful training regions.

Plain Python, no display code: :mod:`tfa_tutorial.explorer` is a thin ipywidgets view on top,
and tests drive this class without a browser.

    state = ExplorerState.from_experiment(exp)         # the shortcut experiment, patched test set
    r = state.set(test_index=int(state.flipped[0]))    # a test image the patch flips
    r.test.pred_name, [p.patched for p in r.proponents]
    r = state.set(sign="absolute")                     # display only: no map is recomputed
    d = state.detail(r.proponents[0].index)            # raw, SmoothGrad and two-step maps

What is computed, and when:

- the **gradient index** (:class:`~tfa_tutorial.GradientIndex`) of the training set, once (lazily,
  at the first result, or by :meth:`ExplorerState.build_index`); exact when N·P floats fit in
  ``index_budget`` bytes, else CountSketch-projected; then the best candidates of each list are
  re-scored exactly (``rerank``), so the shown ranking and scores are exact up to the candidates'
  recall. ``index_cache=True`` keeps it on disk, keyed by a hash of the model weights and the data;
- per test image and explained label: the Grad-Cos / Grad-Dot scores against every training
  image (one index query), the top-k proponents (highest scores) and opponents (lowest);
- per shown training image: its TFA map by the chosen ``method`` (:data:`MAP_METHODS`): the
  paper's gradient of the score with respect to the training image, smoothed by SmoothGrad over
  ``n_samples`` noisy copies (σ = ``noise`` × the image's value range, noise seeded by the
  training index so a map never depends on which other images are shown); gradient × input or
  integrated gradients (black baseline, 16 steps) of the same score; or the exact additive
  decomposition of the score over the image's positions (:func:`tfa_tutorial.decompose_score`,
  receptive-field mapping; its map sums to the shown score); or, the default, the **two-step
  occlusion** map (:func:`tfa_tutorial.two_step_baseline` with ``method="occlusion"``, 4×4
  windows, stride 2, fill 0): the drop of the training image's *own* label's logit when a window
  is occluded. It ignores the test image (cached by training index only); the ranking is what
  connects it to the test image. It is the default because over seeds it localised the planted
  patch best and most consistently, with a clean-model control near zero, while every TFA map
  gained little over its clean-model control (docs/results.md). n and σ apply to ``"gradient"``
  only. Maps are cached by everything they depend on (method included), so changing the
  sign/channel reduction, the opacity or the selection never recomputes one.

Signs: every method's map is shown as computed, never multiplied by sign(score). Red (positive)
means "raises the score": for the gradient, brightening the pixel raises it; for the value
attributions and the decomposition, the pixel's share adds to it. For the two-step occlusion map
red means "occluding this region lowers the training image's own-label logit" instead. So a proponent's red regions
support it, and an opponent (negative score) owes its negative score to its blue regions.

Bad choices (an index out of range, k larger than the training set, an unknown option) are a
``message`` on the result of :meth:`ExplorerState.set`, which then keeps the previous settings;
:meth:`ExplorerState.update` is the strict variant that raises ``ValueError``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import numbers
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from .attribution_methods import attribute
from .baselines import two_step_baseline
from .cache import atomic_torch_save, cache_dir
from .decomposition import decompose_score
from .evidence import recommended_family
from .families import EXPLORER_FAMILIES, family
from .gradients import ParamSelection, select_params
from .index import GradientIndex, RandomProjection
from .neural_features import activation_maps, class_contributions, find_feature_layer, neural_activations
from .reduction import CHANNEL_REDUCTIONS, SIGNS, reduce_map
from .score_vectors import score_vector
from .scores import gradient_scores
from .tfa import tda_score_fn
from .training import predict
from .validation import (
    check_finite, check_flags, check_index, check_int, check_model_ready, check_real, check_unit_images, is_whole_number,
    num_classes,
)

__all__ = [
    "SCORES",
    "MAP_METHODS",
    "METHOD_FAMILIES",
    "DEFAULT_MAP_METHOD",
    "TEST_INDEPENDENT_METHODS",
    "TWO_STEP_OCCLUSION",
    "SMOOTHGRAD_METHODS",
    "LABEL_MODES",
    "TEST_LISTS",
    "SLOW_SETTINGS",
    "DISPLAY_SETTINGS",
    "ExplorerSettings",
    "TestInfo",
    "TrainItem",
    "Detail",
    "ExplorerResult",
    "ExplorerState",
    "NeuronView",
    "NeuralFeaturesView",
]

SCORES = {"cos": "Grad-Cos", "dot": "Grad-Dot"}
# how a shown training image's map is computed (key -> label): the registry's explorer menu
# (tfa_tutorial.families.EXPLORER_FAMILIES), keyed by method ("two_step_<method>" for the two-step
# baseline) since the score is the explorer's own setting; measurements: docs/results.md
METHOD_FAMILIES = {(f.method if f.score else f"two_step_{f.method}"): f for f in map(family, EXPLORER_FAMILIES)}
MAP_METHODS = {k: (f.method_label if f.score else f.name) for k, f in METHOD_FAMILIES.items()}

def _default_map_method() -> str:
    """The explorer's default: the course's recommended map (:func:`tfa_tutorial.evidence.recommended_family`,
    the largest model-specific gain in docs/results.json), or the menu's first entry, with a
    warning, when the stored results are missing."""
    try:
        name = recommended_family()
    except FileNotFoundError as err:
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


@dataclass
class TestInfo:
    """The chosen test image and the model's view of it."""

    test_set: str
    index: int
    image: torch.Tensor  # [C, H, W]
    label: int
    pred: int
    probs: torch.Tensor  # [K]
    target: int  # the label whose loss gradient is explained
    label_mode: str
    flipped: bool | None  # in the caller's list of shortcut-flipped test images (None: no list)
    classes: tuple[str, ...]

    @property
    def label_name(self) -> str:
        return self.classes[self.label]

    @property
    def pred_name(self) -> str:
        return self.classes[self.pred]

    @property
    def target_name(self) -> str:
        return self.classes[self.target]

    @property
    def correct(self) -> bool:
        return self.pred == self.label

    def top_classes(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most probable classes as ``(name, probability)``."""
        p, i = self.probs.topk(min(n, len(self.probs)))
        return [(self.classes[int(c)], float(v)) for v, c in zip(p, i)]


@dataclass
class TrainItem:
    """One ranked training image with its TFA map."""

    rank: int  # 1 = strongest
    kind: str  # "proponent" or "opponent"
    index: int
    label: int
    label_name: str
    patched: bool | None
    score: float
    image: torch.Tensor  # [C, H, W]
    mask: torch.Tensor | None  # [H, W] bool, the patch (ground truth), or None
    map: torch.Tensor | None  # [C, H, W] signed TFA map ([1, H, W] by "decomposition"; None: ranking only)
    shown: torch.Tensor | None  # [H, W] after the display reduction
    index_score: float | None = None  # the index's (possibly projected) estimate of ``score``


@dataclass
class Detail:
    """One training image, large: raw TFA, the explorer's TFA map and the two-step baseline."""

    index: int
    label: int
    label_name: str
    patched: bool | None
    score: float
    image: torch.Tensor
    mask: torch.Tensor | None
    raw: torch.Tensor  # [H, W] reduced, the paper's raw gradient map (n_samples = 0)
    smooth: torch.Tensor  # [H, W] reduced, the explorer's map: its method (with n and σ for "gradient")
    two_step: torch.Tensor  # [H, W] reduced, SmoothGrad of the image's own logit, same n and σ
    n_samples: int
    noise: float
    method: str = "gradient"  # the method of ``smooth``


@dataclass
class ExplorerResult:
    """What the view shows for one set of settings. ``message`` is non-empty when a choice was
    refused (the result then shows the previous, still valid settings) or a computation failed."""

    settings: ExplorerSettings
    test: TestInfo | None = None
    proponents: list[TrainItem] = field(default_factory=list)
    opponents: list[TrainItem] = field(default_factory=list)
    detail: Detail | None = None
    message: str = ""
    timings: dict = field(default_factory=dict)
    index_info: str = ""

    @property
    def ok(self) -> bool:
        return not self.message


@dataclass
class NeuronView:
    """One penultimate neuron ("neural feature") behind a test prediction (Salient-ImageNet view)."""

    neuron: int
    contribution: float  # W[target, c] · h_c(x_test): its share of the explained logit
    activation: float  # h_c(x_test)
    map: torch.Tensor  # [H, W] its activation map on the test image, in [0, 1]
    top_indices: list[int]  # its top-activating training images (over the whole training set)
    top_images: torch.Tensor  # [m, C, H, W]
    top_maps: torch.Tensor  # [m, H, W] its activation maps on them, in [0, 1]
    top_patched: list[bool] | None  # ground-truth patch flags of those training images
    top_masks: torch.Tensor | None  # [m, H, W] bool patch masks


@dataclass
class NeuralFeaturesView:
    """The neurons that drive the explained logit of the selected test image: the global
    counterpart of the TFA view (:meth:`ExplorerState.neural_features`)."""

    test: TestInfo
    target: int
    logit: float
    bias: float
    neurons: list[NeuronView]


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


class ExplorerState:
    """Model, data, gradient index, settings and cached results of the explorer.

    Args:
        model: the classifier (eval mode).
        train_images, train_labels: ``[N, C, H, W]`` and ``[N]``.
        test_images: ``[M, C, H, W]``, or a dict of named versions of the same M test images
            (e.g. ``{"patched": ..., "clean": ...}``) that share ``test_labels`` ``[M]``.
        classes: class names (default ``"0"``, ``"1"``, ...).
        train_patched, train_masks: optional ``[N]`` bool and ``[N, H, W]`` bool ground truth.
        flipped: optional indices of shortcut-flipped test images (the list ``flipped``).
        index: a prebuilt :class:`~tfa_tutorial.GradientIndex` of exactly these training images.
        projection: ``"auto"`` (exact when it fits in ``index_budget`` bytes, else CountSketch),
            ``None`` (exact), ``"countsketch"`` or ``"gaussian"``; ``dim``: the projected size.
        index_cache: ``True`` (the package cache folder), a folder, or None/False (no disk cache).
        max_k: largest k the explorer computes maps for (each shown image costs one SmoothGrad).
        rerank: with a projected index, the best ``rerank`` × k candidates of each list (at least
            k + 16) are re-scored exactly and re-ranked (0: show the index's estimates).
        num_threads: torch CPU threads while the explorer computes (restored afterwards; None:
            leave torch's setting). The default 1 is the steady choice on shared CPUs: on 2
            contended cores we measured 0.7 s per test image with 1 thread and 0.5–28 s with 2.
        settings: initial values of :class:`ExplorerSettings` fields.
    """

    def __init__(
        self,
        model: nn.Module,
        train_images: torch.Tensor,
        train_labels: torch.Tensor,
        test_images: torch.Tensor | Mapping[str, torch.Tensor],
        test_labels: torch.Tensor,
        *,
        classes=None,
        train_patched: torch.Tensor | None = None,
        train_masks: torch.Tensor | None = None,
        flipped=None,
        index: GradientIndex | None = None,
        params: ParamSelection = None,
        projection: str | None = "auto",
        dim: int = 2048,
        index_budget: float = 256e6,
        index_cache: bool | str | Path | None = None,
        seed: int = 0,
        max_k: int = 32,
        rerank: int = 4,
        num_threads: int | None = 1,
        **settings,
    ):
        check_model_ready(model)
        self.model = model
        self.params = params
        self.seed = check_int(seed, "seed", None)
        self.max_k = check_int(max_k, "max_k")
        self.rerank = check_int(rerank, "rerank", 0)
        self.num_threads = None if num_threads is None else check_int(num_threads, "num_threads")
        dim, index_budget = check_int(dim, "dim"), check_real(index_budget, "index_budget", 0, strict_minimum=True)
        if not isinstance(train_images, torch.Tensor) or train_images.ndim != 4:
            raise ValueError(f"train_images must be a tensor [N, C, H, W], got {getattr(train_images, 'shape', type(train_images))}")
        n = len(train_images)
        if n == 0:
            raise ValueError("the training set is empty: nothing to explore")
        train_labels = torch.as_tensor(train_labels).long()
        if train_labels.shape != (n,):
            raise ValueError(f"train_labels must have shape [{n}], got {tuple(train_labels.shape)}")
        check_unit_images(train_images, "train_images")
        self.train_images, self.train_labels = train_images, train_labels
        self.train_patched = None if train_patched is None else check_flags(train_patched, "train_patched")
        self.train_masks = None if train_masks is None else check_flags(train_masks, "train_masks")
        if self.train_patched is not None and self.train_patched.shape != (n,):
            raise ValueError(f"train_patched must have shape [{n}], got {tuple(self.train_patched.shape)}")
        if self.train_masks is not None and self.train_masks.shape != (n,) + tuple(train_images.shape[2:]):
            raise ValueError(f"train_masks must have shape [{n}, H, W], got {tuple(self.train_masks.shape)}")

        if isinstance(test_images, torch.Tensor):
            test_images = {"test": test_images}
        if not isinstance(test_images, Mapping) or not test_images:
            raise ValueError("test_images must be a tensor [M, C, H, W] or a non-empty dict of them")
        test_labels = torch.as_tensor(test_labels).long()
        self.test_sets: dict[str, torch.Tensor] = {}
        for name, imgs in test_images.items():
            if not isinstance(imgs, torch.Tensor) or imgs.ndim != 4 or imgs.shape[1:] != train_images.shape[1:]:
                raise ValueError(
                    f"test set {name!r} must be a tensor [M, {', '.join(map(str, train_images.shape[1:]))}], "
                    f"got {tuple(getattr(imgs, 'shape', ()))}"
                )
            if len(imgs) != len(test_labels) or len(imgs) == 0:
                raise ValueError(f"test set {name!r} has {len(imgs)} images but there are {len(test_labels)} test labels")
            check_unit_images(imgs, f"test set {name!r}")
            self.test_sets[str(name)] = imgs
        self.test_labels = test_labels

        k_out = num_classes(model, train_images[0].to(next(model.parameters())))
        self.classes = tuple(str(c) for c in classes) if classes is not None else tuple(str(i) for i in range(k_out))
        if len(self.classes) < k_out:
            raise ValueError(f"the model has {k_out} outputs but only {len(self.classes)} class names were given")
        for what, lab in (("train_labels", train_labels), ("test_labels", test_labels)):
            lo, hi = int(lab.min()), int(lab.max())
            if lo < 0 or hi >= k_out:
                raise ValueError(f"{what} must be class indices in [0, {k_out}) for this model with {k_out} outputs, "
                                 f"found range [{lo}, {hi}]")
        self._flipped = None if flipped is None else sorted({int(i) for i in torch.as_tensor(flipped).flatten().tolist()})

        self.projection, self.dim, self.index_budget = projection, int(dim), float(index_budget)
        self.index_cache = index_cache
        self._index = index
        if index is not None and len(index) != n:
            raise ValueError(f"the index holds {len(index)} training examples, the training set {n}")
        self.index_info = ""

        self.on_progress: ProgressFn | None = None
        self.stats = {"index_builds": 0, "index_loads": 0, "queries": 0, "maps": 0, "two_step": 0, "exact": 0, "results": 0}
        self._preds: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._scores = _LRU(64)
        self._score_fns = _LRU(4)
        self._vectors = _LRU(4)  # test vectors v of the decomposition
        self._maps = _LRU(4096)
        self._two_step = _LRU(512)
        self._exact = _LRU(64)
        self._neural: dict = {}  # feature layer and training activations, on first use
        self.last_result: ExplorerResult | None = None

        # the decomposition needs the score over all parameters: with a subset, it cannot be the default
        default = "gradient" if params is not None and DEFAULT_MAP_METHOD == "decomposition" else DEFAULT_MAP_METHOD
        self.settings = ExplorerSettings(test_set=next(iter(self.test_sets)), method=default)
        if settings:
            self.settings = self._validated(settings)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_experiment(
        cls,
        exp,
        test_sets=("patched", "clean"),
        model: nn.Module | None = None,
        index_cache: bool | str | Path | None = True,
        **kwargs,
    ) -> "ExplorerState":
        """The explorer on a :class:`~tfa_tutorial.experiment.ShortcutExperiment`: its shortcut
        model (or ``model``), its training set with patch flags and masks, and the test images in
        the named versions (``"patched"``: the patch on every test image, ``"clean"``). Starts on
        the first shortcut-flipped test image."""
        available = {"patched": exp.patched_test.images, "clean": exp.test.images}
        if isinstance(test_sets, str):
            test_sets = (test_sets,)
        unknown = [s for s in test_sets if s not in available]
        if unknown or not test_sets:
            raise ValueError(f"test_sets must be chosen from {tuple(available)}, got {tuple(test_sets)}")
        model = model or exp.model
        flipped = exp.flipped_test_indices(model)
        if len(flipped) and "test_index" not in kwargs:
            kwargs["test_index"] = int(flipped[0])
        return cls(
            model, exp.train.images, exp.train.labels, {s: available[s] for s in test_sets}, exp.test.labels,
            classes=exp.classes, train_patched=exp.train.patched, train_masks=exp.train.masks, flipped=flipped,
            index_cache=index_cache, seed=exp.seed, **kwargs,
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def n_train(self) -> int:
        return len(self.train_images)

    @property
    def n_test(self) -> int:
        return len(self.test_labels)

    # ------------------------------------------------------------------ the gradient index
    @property
    def index(self) -> GradientIndex:
        """The gradient index of the training set (built on first use)."""
        if self._index is None:
            self.build_index()
        return self._index

    def _index_projection(self) -> str | None:
        if self.projection != "auto":
            return self.projection
        n_params = sum(t.numel() for t in select_params(self.model, self.params).values())
        return None if self.n_train * n_params * 4 <= self.index_budget else "countsketch"

    def _index_cache_path(self, projection) -> Path | None:
        if not self.index_cache:
            return None
        folder = cache_dir("explorer", create=False) if self.index_cache is True else Path(self.index_cache)
        h = hashlib.sha256()
        for name, t in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        h.update(self.train_images.detach().cpu().float().contiguous().numpy().tobytes())
        h.update(self.train_labels.cpu().numpy().tobytes())
        h.update(repr((projection, self.dim, self.seed, self.params, type(self.model).__name__)).encode())
        return Path(folder) / f"index-{h.hexdigest()[:16]}.pt"

    @contextlib.contextmanager
    def _threads(self):
        """Run with ``num_threads`` torch CPU threads, then restore the previous setting."""
        if self.num_threads is None or self.device.type != "cpu":
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(int(self.num_threads))
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def build_index(self, progress: ProgressFn | None = None) -> GradientIndex:
        """Build the gradient index (or load it from the disk cache) and return it."""
        with self._threads():
            return self._build_index(progress)

    def _build_index(self, progress: ProgressFn | None = None) -> GradientIndex:
        progress = progress or self.on_progress or (lambda f, t: None)
        projection = self._index_projection()
        path = self._index_cache_path(projection)
        if path is not None and path.is_file():
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
                vectors, norms, meta = payload["vectors"], payload["norms"], payload["meta"]
                width = self._expected_width(projection)
                if vectors.ndim != 2 or vectors.shape != (self.n_train, width) or norms.shape != (self.n_train,):
                    raise ValueError("cached index has the wrong size")
                check_finite(vectors, "cached index")
                check_finite(norms, "cached index norms")
                proj = None if meta["projection"] is None else RandomProjection(
                    meta["projection"], int(meta["in_dim"]), int(meta["dim"]), int(meta["seed"]))
                device = self.device
                self._index = GradientIndex(
                    self.model, self.params, proj, vectors.to(device), norms.to(device),
                    self.train_images.to(next(self.model.parameters()).dtype), self.train_labels, int(meta["chunk_size"]),
                )
                self.stats["index_loads"] += 1
                self.index_info = self._describe_index(from_cache=True)
                progress(1.0, "gradient index loaded from cache")
                return self._index
            except Exception:  # a damaged or stale cache file: rebuild and overwrite it
                pass
        n = self.n_train
        step = max(1, min(n, 1024))
        vectors, norms, part = [], [], None
        progress(0.0, f"building the gradient index of {n} training images")
        for start in range(0, n, step):
            s = slice(start, start + step)
            part = GradientIndex.build(
                self.model, self.train_images[s], self.train_labels[s], params=self.params,
                projection=projection, dim=self.dim, seed=self.seed,
            )
            vectors.append(part.vectors)
            norms.append(part.norms)
            progress(min(1.0, (start + step) / n), f"gradient index: {min(n, start + step)}/{n} training images")
        self._index = GradientIndex(
            self.model, part.params, part.projection, torch.cat(vectors), torch.cat(norms),
            self.train_images.to(next(self.model.parameters()).dtype), self.train_labels, part.chunk_size,
        )
        self.stats["index_builds"] += 1
        if path is not None:
            proj = part.projection
            meta = {
                "projection": None if proj is None else proj.kind,
                "in_dim": 0 if proj is None else proj.in_dim,
                "dim": self._index.dim,
                "seed": self.seed,
                "chunk_size": part.chunk_size,
            }
            try:
                atomic_torch_save({"vectors": self._index.vectors.cpu(), "norms": self._index.norms.cpu(), "meta": meta}, path)
            except OSError:
                pass  # a read-only cache is not an error; the index just is not kept
        self.index_info = self._describe_index(from_cache=False)
        return self._index

    def _expected_width(self, projection) -> int:
        """Columns of the index: P (exact) or the projected dimension."""
        if projection is None:
            return sum(t.numel() for t in select_params(self.model, self.params).values())
        return self.dim

    def _describe_index(self, from_cache: bool) -> str:
        idx = self._index
        kind = "exact" if idx.projection is None else (
            f"{idx.projection.kind} projection to d={idx.dim}"
            + (f"; the best {self.rerank}×k candidates per list are re-scored exactly" if self.rerank else " (scores are estimates)"))
        return f"gradient index of {len(idx)} training images, {kind}" + (", loaded from cache" if from_cache else "")

    # ------------------------------------------------------------------ settings
    def _validated(self, changes: Mapping) -> ExplorerSettings:
        """The current settings with ``changes`` applied, or ValueError naming every problem."""
        names = {f.name for f in dataclasses.fields(ExplorerSettings)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; the settings are {sorted(names)}")
        s = dataclasses.replace(self.settings, **changes)
        problems = []
        if s.test_set not in self.test_sets:
            problems.append(f"unknown test set {s.test_set!r}: choose one of {list(self.test_sets)}")
        m = self.n_test
        if not _is_int(s.test_index) or not 0 <= s.test_index < m:
            problems.append(f"test index {s.test_index!r} is out of range: there are {m} test images (0–{m - 1})")
        n = self.n_train
        if not _is_int(s.k) or s.k < 1:
            problems.append(f"k must be a whole number ≥ 1, got {s.k!r}")
        elif s.k > n:
            problems.append(f"k = {s.k} is larger than the training set ({n} images)")
        elif s.k > self.max_k:
            problems.append(f"k = {s.k} is more than the explorer shows (at most {self.max_k} per list)")
        if s.score not in SCORES:
            problems.append(f"unknown score {s.score!r}: choose one of {list(SCORES)}")
        if s.label not in LABEL_MODES:
            problems.append(f"unknown test label mode {s.label!r}: choose one of {list(LABEL_MODES)}")
        if not isinstance(s.method, str) or s.method not in MAP_METHODS:
            problems.append(f"unknown map method {s.method!r}: choose one of {list(MAP_METHODS)}")
        elif s.method == "decomposition" and self.params is not None:
            problems.append("map method 'decomposition' needs the score over all trainable parameters "
                            f"(the explorer was built with params={self.params!r})")
        if not _is_int(s.n_samples) or not 0 <= s.n_samples <= MAX_SAMPLES:
            problems.append(f"SmoothGrad n must be a whole number in [0, {MAX_SAMPLES}], got {s.n_samples!r}")
        if not _is_real(s.noise) or not 0 <= s.noise <= MAX_NOISE:
            problems.append(f"SmoothGrad σ must be a number in [0, {MAX_NOISE}] (a fraction of the value range), got {s.noise!r}")
        if s.sign not in SIGNS:
            problems.append(f"unknown sign {s.sign!r}: choose one of {list(SIGNS)}")
        if s.channels not in CHANNEL_REDUCTIONS:
            problems.append(f"unknown channel reduction {s.channels!r}: choose one of {list(CHANNEL_REDUCTIONS)}")
        if not _is_real(s.opacity) or not 0 <= s.opacity <= 1:
            problems.append(f"opacity must be in [0, 1], got {s.opacity!r}")
        if s.selected is not None and (not _is_int(s.selected) or not 0 <= s.selected < n):
            problems.append(f"training index {s.selected!r} is out of range: there are {n} training images (0–{n - 1})")
        if problems:
            raise ValueError("; ".join(problems))
        return dataclasses.replace(
            s, test_index=int(s.test_index), k=int(s.k), n_samples=int(s.n_samples), noise=float(s.noise),
            opacity=float(s.opacity), selected=None if s.selected is None else int(s.selected),
        )

    def update(self, **changes) -> ExplorerResult:
        """Strict: apply ``changes`` and return the new result; raises ValueError on a bad choice."""
        self.settings = self._validated(changes)
        return self.result()

    def set(self, **changes) -> ExplorerResult:
        """Apply ``changes`` and return the result. Never raises for a bad choice or a failed
        computation: the result then carries a ``message`` and the previous settings stay."""
        try:
            new = self._validated(changes)
        except (ValueError, TypeError) as err:
            return self._with_message(f"Not applied: {err}.")
        old = self.settings
        self.settings = new
        try:
            return self.result()
        except Exception as err:  # noqa: BLE001 — the UI shows it instead of a traceback
            self.settings = old
            return self._with_message(f"Could not compute ({type(err).__name__}): {err}")

    def _with_message(self, message: str) -> ExplorerResult:
        try:
            base = self.last_result if self.last_result is not None and self.last_result.settings == self.settings else self.result()
        except Exception:  # noqa: BLE001
            base = ExplorerResult(self.settings)
        return dataclasses.replace(base, message=message)

    def select_test(self, index: int, test_set: str | None = None) -> ExplorerResult:
        """Show test image ``index`` (of ``test_set``, default the current one)."""
        changes = {"test_index": index, "selected": None}
        if test_set is not None:
            changes["test_set"] = test_set
        return self.set(**changes)

    def select_train(self, index: int | None) -> ExplorerResult:
        """Show training image ``index`` large in the detail pane (None closes it)."""
        return self.set(selected=index)

    # ------------------------------------------------------------------ test-image lists
    def predictions(self, test_set: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted labels ``[M]``, probabilities ``[M, K]``) on a test set (cached)."""
        name = test_set or self.settings.test_set
        if name not in self.test_sets:
            raise ValueError(f"unknown test set {name!r}: choose one of {list(self.test_sets)}")
        if name not in self._preds:
            self._preds[name] = predict(self.model, self.test_sets[name].to(next(self.model.parameters()).dtype))
        return self._preds[name]

    @property
    def flipped(self) -> list[int]:
        """Shortcut-flipped test images (as given by the caller; empty when none were given)."""
        return list(self._flipped or [])

    @property
    def misclassified(self) -> list[int]:
        """Test images of the current test set that the model gets wrong."""
        pred, _ = self.predictions()
        return torch.nonzero(pred != self.test_labels).flatten().tolist()

    @property
    def correct(self) -> list[int]:
        """Test images of the current test set that the model gets right."""
        pred, _ = self.predictions()
        return torch.nonzero(pred == self.test_labels).flatten().tolist()

    def test_list(self, name: str) -> list[int]:
        """One of :data:`TEST_LISTS` by name."""
        if name not in TEST_LISTS:
            raise ValueError(f"unknown list {name!r}: choose one of {list(TEST_LISTS)}")
        return getattr(self, name)

    def describe_test(self, index: int, test_set: str | None = None) -> str:
        """``"#12 Trouser → T-shirt/top"``: a one-line label for pick lists."""
        index = check_index(index, self.n_test, "test index", "test images")
        pred, _ = self.predictions(test_set)
        true, p = self.classes[int(self.test_labels[index])], self.classes[int(pred[index])]
        return f"#{index} {true}" + (f" → {p}" if p != true else " ✓")

    # ------------------------------------------------------------------ computation
    def _test_info(self, s: ExplorerSettings) -> TestInfo:
        pred, probs = self.predictions(s.test_set)
        j = s.test_index
        label, p = int(self.test_labels[j]), int(pred[j])
        return TestInfo(
            s.test_set, j, self.test_sets[s.test_set][j], label, p, probs[j], p if s.label == "predicted" else label,
            s.label, None if self._flipped is None else j in set(self._flipped), self.classes,
        )

    def _score_key(self, s: ExplorerSettings, target: int) -> tuple:
        return (s.test_set, s.test_index, target, s.score)

    def scores(self, settings: ExplorerSettings | None = None) -> torch.Tensor:
        """Scores ``[N]`` of every training image for the current (or given) test image,
        explained label and score (from the gradient index; cached)."""
        s = settings or self.settings
        target = self._test_info(s).target
        return self._scores_for(s, target)

    def _scores_for(self, s: ExplorerSettings, target: int) -> torch.Tensor:
        def make():
            self.stats["queries"] += 1
            x = self.test_sets[s.test_set][s.test_index : s.test_index + 1].to(next(self.model.parameters()).dtype)
            return self.index.query(x, torch.tensor([target]), s.score)[0].detach().cpu()

        return self._scores.get_or(self._score_key(s, target), make)

    def _score_fn(self, s: ExplorerSettings, target: int):
        def make():
            x = self.test_sets[s.test_set][s.test_index].to(next(self.model.parameters()).dtype)
            return tda_score_fn(self.model, x, target, s.score, self.params)

        return self._score_fns.get_or(self._score_key(s, target), make)

    def _vector(self, s: ExplorerSettings, target: int) -> torch.Tensor:
        """The test vector v ``[P]`` of the decomposition: ĝ_j (Grad-Cos) or g_j (Grad-Dot)."""
        def make():
            x = self.test_sets[s.test_set][s.test_index].to(next(self.model.parameters()).dtype)
            return score_vector(self.model, x, s.score, test_target=target)

        return self._vectors.get_or(self._score_key(s, target), make)

    def _map_key(self, s: ExplorerSettings, target: int, i: int, n_samples: int, method: str) -> tuple:
        if method in TEST_INDEPENDENT_METHODS:  # same map whatever the test image, label and score
            return (method, i)
        if method not in SMOOTHGRAD_METHODS:
            return self._score_key(s, target) + (method, None, None, i)
        return self._score_key(s, target) + (method, n_samples, s.noise if n_samples else None, i)

    def tfa_map(self, i: int, settings: ExplorerSettings | None = None, n_samples: int | None = None,
                method: str | None = None) -> torch.Tensor:
        """Signed map ``[C, H, W]`` (``[1, H, W]`` by ``"decomposition"``) of training image
        ``i`` for the current (or given) test image, explained label and score, by ``method``
        (default: the setting; ``"two_step_occlusion"`` ignores the test image); for ``"gradient"`` with SmoothGrad ``n_samples`` (default: the
        setting) and σ = ``noise``, the noise seeded by ``seed + i``. Cached."""
        s = settings or self.settings
        n = s.n_samples if n_samples is None else int(n_samples)
        method = s.method if method is None else method
        if method not in MAP_METHODS:
            raise ValueError(f"unknown map method {method!r}: choose one of {list(MAP_METHODS)}")
        i = check_index(i, self.n_train)
        if n_samples is not None:
            n = check_int(n_samples, "n_samples (SmoothGrad n)", 0, MAX_SAMPLES)
        target = self._test_info(s).target
        return self._map_for(s, target, i, n, method)

    def _map_for(self, s: ExplorerSettings, target: int, i: int, n: int, method: str | None = None) -> torch.Tensor:
        method = s.method if method is None else method

        def make():
            self.stats["maps"] += 1
            dtype, device = next(self.model.parameters()).dtype, self.device
            x = self.train_images[i : i + 1].to(device=device, dtype=dtype)
            y = self.train_labels[i : i + 1].to(device)
            if method == "two_step_occlusion":
                m = two_step_baseline(self.model, x, y, method="occlusion", **TWO_STEP_OCCLUSION)
            elif method == "decomposition":
                m = decompose_score(self.model, x, y, self._vector(s, target), normalize_train=s.score == "cos",
                                    mapping="rf").maps
            elif method == "integrated_gradients":
                m = attribute(self._score_fn(s, target), x, y, method=method, baseline="black", steps=IG_STEPS,
                              chunk_size=32)
            elif method == "gradient_x_input":
                m = attribute(self._score_fn(s, target), x, y, method=method, n_samples=0, chunk_size=32)
            else:
                m = attribute(self._score_fn(s, target), x, y, method="gradient", n_samples=n, noise=s.noise,
                              chunk_size=32, seed=self.seed + i)
            return m[0].detach().cpu()

        return self._maps.get_or(self._map_key(s, target, i, n, method), make)

    def two_step_map(self, i: int, settings: ExplorerSettings | None = None) -> torch.Tensor:
        """The two-step baseline ``[C, H, W]`` for training image ``i``: SmoothGrad of its own
        label's logit with the explorer's n and σ (independent of the test image). Cached."""
        s = settings or self.settings
        i = check_index(i, self.n_train)
        key = (s.n_samples, s.noise if s.n_samples else None, i)

        def make():
            self.stats["two_step"] += 1
            dtype = next(self.model.parameters()).dtype
            m = two_step_baseline(self.model, self.train_images[i : i + 1].to(dtype), self.train_labels[i : i + 1],
                                  n_samples=s.n_samples, noise=s.noise, seed=self.seed + int(i))
            return m[0].detach().cpu()

        return self._two_step.get_or(key, make)

    def _item(self, s, kind, rank, i, score, m, index_score) -> TrainItem:
        label = int(self.train_labels[i])
        return TrainItem(
            rank, kind, i, label, self.classes[label],
            None if self.train_patched is None else bool(self.train_patched[i]), float(score),
            self.train_images[i], None if self.train_masks is None else self.train_masks[i],
            m, None if m is None else reduce_map(m, s.sign, s.channels), index_score,
        )

    def exact_scores(self, indices, settings: ExplorerSettings | None = None) -> torch.Tensor:
        """Exact scores ``[len(indices)]`` of these training images for the current (or given)
        test image, label and score (streamed with :func:`tfa_tutorial.gradient_scores`; cached)."""
        s = settings or self.settings
        indices = indices.tolist() if hasattr(indices, "tolist") and not is_whole_number(indices) else indices
        if is_whole_number(indices):
            raise ValueError(f"indices must be a list of training indices, got the single index {indices!r}: use [{indices!r}]")
        return self._exact_for(s, self._test_info(s).target, [check_index(i, self.n_train) for i in indices])

    def _exact_for(self, s: ExplorerSettings, target: int, indices: list[int]) -> torch.Tensor:
        known = self._exact.get_or(self._score_key(s, target), dict)
        missing = sorted({i for i in indices if i not in known})
        if missing:
            self.stats["exact"] += len(missing)
            dtype = next(self.model.parameters()).dtype
            x = self.test_sets[s.test_set][s.test_index : s.test_index + 1].to(dtype)
            sel = torch.tensor(missing)
            got = gradient_scores(self.model, self.train_images[sel].to(dtype), self.train_labels[sel], x,
                                  torch.tensor([target]), score=s.score, params=self.params)[0].detach().cpu()
            known.update(zip(missing, got.tolist()))
        return torch.tensor([known[i] for i in indices])

    def _ranking(self, s: ExplorerSettings, target: int, scores: torch.Tensor):
        """(proponent indices, opponent indices, {index: shown score}). With an exact index the
        index's scores are used; with a projected one, the ``rerank`` × k best candidates on each
        side are re-scored exactly and re-ranked, so the shown order and scores are exact."""
        k = min(s.k, self.n_train)
        if self.index.projection is None or not self.rerank:
            top, bottom = scores.topk(k).indices.tolist(), (-scores).topk(k).indices.tolist()
            return top, bottom, {i: float(scores[i]) for i in top + bottom}
        m = min(self.n_train, max(self.rerank * k, k + 16))
        cand_top, cand_bottom = scores.topk(m).indices.tolist(), (-scores).topk(m).indices.tolist()
        exact = dict(zip(cand_top + cand_bottom, self._exact_for(s, target, cand_top + cand_bottom).tolist()))
        top = sorted(cand_top, key=lambda i: -exact[i])[:k]
        bottom = sorted(cand_bottom, key=lambda i: exact[i])[:k]
        return top, bottom, exact

    def result(self, maps: bool = True, **overrides) -> ExplorerResult:
        """The result for the current settings (or for them with ``overrides``, without storing
        them). Raises ValueError on a bad override; computes only what is not cached.
        ``maps=False`` gives the ranking only (items without ``map``/``shown``), which is cheap."""
        s = self._validated(overrides) if overrides else self.settings
        with self._threads():
            return self._result(s, maps, store=not overrides and maps)

    def _result(self, s: ExplorerSettings, maps: bool, store: bool) -> ExplorerResult:
        progress = self.on_progress or (lambda f, t: None)
        t0 = time.perf_counter()
        before = dict(self.stats)
        if self._index is None:
            self._build_index(progress)
        test = self._test_info(s)
        scores = self._scores_for(s, test.target)
        t1 = time.perf_counter()
        top, bottom, shown = self._ranking(s, test.target, scores)
        todo = [("proponent", r, i) for r, i in enumerate(top, 1)] + [("opponent", r, i) for r, i in enumerate(bottom, 1)]
        items = {"proponent": [], "opponent": []}
        for done, (kind, rank, i) in enumerate(todo):
            m = self._map_for(s, test.target, i, s.n_samples) if maps else None
            items[kind].append(self._item(s, kind, rank, i, shown[i], m, float(scores[i])))
            if maps:
                progress((done + 1) / len(todo), f"TFA maps: {done + 1}/{len(todo)}")
        t2 = time.perf_counter()
        detail = self._detail(s, test.target, scores, s.selected) if s.selected is not None and maps else None
        t3 = time.perf_counter()
        self.stats["results"] += 1
        computed = {key: self.stats[key] - before[key] for key in ("queries", "exact", "maps", "two_step", "index_builds")}
        result = ExplorerResult(
            s, test, items["proponent"], items["opponent"], detail, "",
            {"scores_s": t1 - t0, "maps_s": t2 - t1, "detail_s": t3 - t2, "total_s": t3 - t0, "computed": computed},
            self.index_info,
        )
        if store:
            self.last_result = result
        return result

    def detail(self, i: int, **overrides) -> Detail:
        """Training image ``i`` large: raw TFA (the gradient, n = 0), the explorer's TFA map (its
        method; SmoothGrad n, σ for ``"gradient"``) and the two-step baseline, reduced for display. Raises ValueError if ``i`` is out of range."""
        s = self._validated({**overrides, "selected": i})
        with self._threads():
            test = self._test_info(s)
            if self._index is None:
                self._build_index()
            return self._detail(s, test.target, self._scores_for(s, test.target), s.selected)

    def _detail(self, s, target, scores, i) -> Detail:
        score = float(scores[i]) if self.index.projection is None else float(self._exact_for(s, target, [i])[0])
        raw = self._map_for(s, target, i, 0, "gradient")
        smooth = self._map_for(s, target, i, s.n_samples)
        two = self.two_step_map(i, s)
        label = int(self.train_labels[i])

        def red(m):
            return reduce_map(m, s.sign, s.channels)

        return Detail(
            i, label, self.classes[label], None if self.train_patched is None else bool(self.train_patched[i]),
            score, self.train_images[i], None if self.train_masks is None else self.train_masks[i],
            red(raw), red(smooth), red(two), s.n_samples, s.noise, s.method,
        )


    # ------------------------------------------------------------------ neural features
    def neural_features(self, test_index: int | None = None, k: int = 3, m: int = 4, **overrides) -> NeuralFeaturesView:
        """The ``k`` penultimate neurons with the largest contribution W[t, c] · h_c(x) to the
        explained logit t (the prediction, or the true label with ``label="true"``) of test image
        ``test_index`` (default: the current one), each with its activation map on the test image
        and its ``m`` top-activating training images with their maps (see
        :mod:`tfa_tutorial.neural_features`). The training activations are computed once."""
        if test_index is not None:
            overrides["test_index"] = test_index
        s = self._validated(overrides) if overrides else self.settings
        k, m = check_int(k, "k"), check_int(m, "m")
        with self._threads():
            dtype = next(self.model.parameters()).dtype
            if "layer" not in self._neural:
                layer = find_feature_layer(self.model, self.train_images[0].to(dtype))
                self._neural["layer"] = layer
                self._neural["h"] = neural_activations(self.model, self.train_images.to(dtype), layer)
            layer, h_train = self._neural["layer"], self._neural["h"]
            test = self._test_info(s)
            x = test.image[None].to(dtype)
            h = neural_activations(self.model, x, layer)
            contrib = class_contributions(self.model, x, test.target, layer, activations=h)[0]
            k = min(k, layer.num_features)
            order = contrib.topk(k).indices.tolist()
            test_maps = activation_maps(self.model, x, order, layer)[0]
            neurons = []
            for j, c in enumerate(order):
                top = h_train[:, c].topk(min(m, self.n_train)).indices
                maps = activation_maps(self.model, self.train_images[top].to(dtype), c, layer)
                neurons.append(NeuronView(
                    c, float(contrib[c]), float(h[0, c]), test_maps[j], top.tolist(), self.train_images[top], maps,
                    None if self.train_patched is None else self.train_patched[top].tolist(),
                    None if self.train_masks is None else self.train_masks[top],
                ))
            bias = layer.classifier.bias
            b = 0.0 if bias is None else float(bias.detach()[test.target])
            return NeuralFeaturesView(test, test.target, float(contrib.sum()) + b, b, neurons)


_is_int = is_whole_number  # Python, NumPy and 0-d tensor integers; not bool


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
