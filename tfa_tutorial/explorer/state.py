"""State and logic of the interactive explorer of harmful training regions.

Plain Python, no display code: :mod:`tfa_tutorial.explorer.view` is a thin ipywidgets view on top,
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
  integrated gradients (black baseline, :data:`IG_STEPS` steps) of the same score; or the exact additive
  decomposition of the score over the image's positions (:func:`tfa_tutorial.decompose_score`,
  receptive-field mapping; its map sums to the shown score); or the **two-step
  occlusion** map (:func:`tfa_tutorial.two_step_baseline` with ``method="occlusion"``, the
  registry's window and stride, fill 0): the drop of the training image's *own* label's logit when a window
  is occluded. It ignores the test image (cached by training index only); the ranking is what
  connects it to the test image. The default (:data:`DEFAULT_MAP_METHOD`) is the course's
  recommended map, :func:`tfa_tutorial.evaluation.verdict.recommended_family`: the menu entry with the
  largest model-specific gain over its clean-model control in docs/results.json. n and σ apply to
  ``"gradient"`` only. Maps are cached by everything they depend on (method included), so changing the
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

import dataclasses
import math
import numbers
from collections import OrderedDict
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from ..attribution.gradients import ParamSelection
from ..attribution.index import GradientIndex
from ..attribution.reduction import CHANNEL_REDUCTIONS, SIGNS
from ..core.validation import (
    check_flags,
    check_int,
    check_model_ready,
    check_real,
    check_unit_images,
    is_whole_number,
    num_classes,
)
from .index_store import GradientIndexStore
from .maps import MapComputation
from .neural import NeuralView
from .results import ExplorerResult
from .settings import (
    DEFAULT_MAP_METHOD,
    LABEL_MODES,
    MAP_METHODS,
    MAX_NOISE,
    MAX_SAMPLES,
    SCORES,
    ExplorerSettings,
    ProgressFn,
)
from .test_lists import TestLists

#: the explorer's public names: the state, its settings and options, its result types.
__all__ = ["ExplorerState"]


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


class ExplorerState(GradientIndexStore, MapComputation, NeuralView, TestLists):
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
        """The explorer on a :class:`~tfa_tutorial.training.experiment.ShortcutExperiment`: its shortcut
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


_is_int = is_whole_number  # Python, NumPy and 0-d tensor integers; not bool


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
