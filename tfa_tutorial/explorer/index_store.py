"""The explorer's gradient index and its disk cache (a mixin of
:class:`~tfa_tutorial.explorer.state.ExplorerState`)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from ..attribution.gradients import select_params
from ..attribution.index import GradientIndex
from ..core.cache import cache_dir
from ..core.hashing import digest
from .settings import ProgressFn

__all__ = ["GradientIndexStore"]


class GradientIndexStore:
    """The explorer's gradient index of the training set: built lazily, optionally kept in the disk
    cache keyed by a hash of the model weights and the data, checked and rebuilt when stale. A mixin
    of :class:`~tfa_tutorial.explorer.state.ExplorerState`, whose attributes it reads."""

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
        state = [part for name, t in sorted(self.model.state_dict().items()) for part in (name, t)]
        key = digest(*state, self.train_images.float(), self.train_labels,
                     (projection, self.dim, self.seed, self.params, type(self.model).__name__))
        return Path(folder) / f"index-{key}.pt"

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
                index = GradientIndex.load(path, self.model, self.train_images.to(next(self.model.parameters()).dtype),
                                           self.train_labels, self.params)
                if index.dim != self._expected_width(projection):
                    raise ValueError("cached index has the wrong width")
                self._index = index
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
            try:
                self._index.save(path)
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
