"""How the explorer computes what it shows: scores against the gradient index, exact re-scoring,
the ranking, each training image's map by the chosen method, and the results, all cached (a mixin
of :class:`~tfa_tutorial.explorer.state.ExplorerState`)."""
from __future__ import annotations

import time

import torch

from ..attribution.baselines import two_step_baseline
from ..attribution.decomposition import decompose_score
from ..attribution.methods import attribute
from ..attribution.reduction import reduce_map
from ..attribution.score_vectors import score_vector
from ..attribution.scores import gradient_scores
from ..attribution.tfa import tda_score_fn
from ..core.validation import check_index, check_int, is_whole_number
from .results import Detail, ExplorerResult, TestInfo, TrainItem
from .settings import (
    IG_STEPS,
    MAP_METHODS,
    MAX_SAMPLES,
    SMOOTHGRAD_METHODS,
    TEST_INDEPENDENT_METHODS,
    TWO_STEP_OCCLUSION,
    ExplorerSettings,
)

__all__ = ["MapComputation"]


class MapComputation:
    """Scores, rankings, maps and results of the explorer, cached by everything they depend on."""

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

    def training_map(self, i: int, settings: ExplorerSettings | None = None, n_samples: int | None = None,
                method: str | None = None) -> torch.Tensor:
        """Signed map ``[C, H, W]`` (``[1, H, W]`` by ``"decomposition"``) of training image ``i`` by
        ``method`` — whichever map the explorer shows, a TFA map or a baseline (default: the setting,
        i.e. the recommended map, which may not depend on the test image at all, as
        ``"two_step_occlusion"`` does not). TFA methods explain the current (or given) test image,
        label and score; for ``"gradient"`` SmoothGrad uses ``n_samples`` (default: the setting) and
        σ = ``noise``, the noise seeded by ``seed + i``. Cached."""
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
                m = decompose_score(self.model, x, y, self._vector(s, target), divide_by_train_norm=s.score == "cos",
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
