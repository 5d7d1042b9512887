"""A reusable gradient index over a training set: build once, query many test examples.

The index stores, per training example, the (optionally randomly projected) gradient
``R g(z_i) ∈ R^d`` and its exact norm ‖g(z_i)‖. Without projection (``projection=None``) the
scores are exact and the store is ``N × P`` floats; with a projection it is ``N × d``:

- ``"countsketch"``: R has one ±1 per column, at a hashed row (Charikar et al.; Clarkson–Woodruff),
  applied with ``index_add_`` in O(P) per example — no matrix is stored.
- ``"gaussian"``: R = N(0, 1/d) entries (Johnson–Lindenstrauss), generated block by block from
  the seed, so the P × d matrix never sits in memory at once.

Both are unbiased for inner products: E⟨Rg_i, Rg_j⟩ = ⟨g_i, g_j⟩. Cosines are estimated as
⟨Rg_i, Rg_j⟩ / (‖Rg_i‖ ‖Rg_j‖), which stays in [−1, 1]. Use :meth:`GradientIndex.error_report`
to measure the approximation against exact scores on your own model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..core.cache import atomic_torch_save
from ..core.streaming import chunks, with_progress
from ..core.validation import check_finite, check_inputs_targets, check_int, check_model_ready
from .gradients import ParamSelection, auto_chunk_size, per_sample_grads, select_params
from .scores import gradient_scores, resolve_test_targets, unit_rows

__all__ = ["RandomProjection", "GradientIndex"]


@dataclass
class RandomProjection:
    """A seeded random linear map R: R^P → R^d (``kind`` is ``"countsketch"`` or ``"gaussian"``)."""

    kind: str
    in_dim: int
    out_dim: int
    seed: int = 0
    block: int = 8192

    def __post_init__(self):
        if self.kind not in ("countsketch", "gaussian"):
            raise ValueError(f"projection must be None, 'countsketch' or 'gaussian', got {self.kind!r}")
        if not (1 <= self.out_dim):
            raise ValueError(f"projection dim must be ≥ 1, got {self.out_dim}")
        if self.kind == "countsketch":
            gen = torch.Generator().manual_seed(self.seed)
            self._rows = torch.randint(0, self.out_dim, (self.in_dim,), generator=gen)
            self._signs = torch.randint(0, 2, (self.in_dim,), generator=gen).float() * 2 - 1

    def __call__(self, g: torch.Tensor) -> torch.Tensor:
        """Project ``[B, P]`` → ``[B, d]``."""
        if g.shape[1] != self.in_dim:
            raise ValueError(f"expected gradients with {self.in_dim} entries, got {g.shape[1]}")
        out = torch.zeros(g.shape[0], self.out_dim, dtype=g.dtype, device=g.device)
        if self.kind == "countsketch":
            signs = self._signs.to(device=g.device, dtype=g.dtype)
            return out.index_add_(1, self._rows.to(g.device), g * signs)
        for b, start in enumerate(range(0, self.in_dim, self.block)):
            stop = min(start + self.block, self.in_dim)
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + b)
            r = torch.randn(stop - start, self.out_dim, generator=gen).to(device=g.device, dtype=g.dtype)
            out += g[:, start:stop] @ r
        return out / math.sqrt(self.out_dim)


class GradientIndex:
    """Per-sample gradients of a training set, stored for fast Grad-Cos / Grad-Dot queries.

    Example::

        index = GradientIndex.build(model, train_x, train_y, projection="countsketch", dim=4096)
        scores = index.query(test_x)              # [Q, N] Grad-Cos against predicted labels
        report = index.error_report(test_x[:8])   # projected vs exact, on these queries

    Attributes:
        vectors: ``[N, d]`` stored gradients (projected if a projection is set).
        norms: ``[N]`` exact norms ‖g(z_i)‖ of the unprojected gradients.
    """

    def __init__(self, model, params, projection, vectors, norms, train_inputs, train_targets, chunk_size):
        self.model = model
        self.params = params
        self.projection = projection
        self.vectors = vectors
        self.norms = norms
        self.train_inputs = train_inputs
        self.train_targets = train_targets
        self.chunk_size = chunk_size

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @classmethod
    def build(
        cls,
        model: nn.Module,
        train_inputs: torch.Tensor,
        train_targets: torch.Tensor,
        params: ParamSelection = None,
        projection: str | None = None,
        dim: int = 4096,
        seed: int = 0,
        chunk_size: int | None = None,
        memory_budget: float = 256e6,
        progress: bool = False,
    ) -> "GradientIndex":
        """Compute and store the training gradients, chunk by chunk.

        Args:
            projection: ``None`` (exact, ``N × P`` floats), ``"countsketch"`` or ``"gaussian"``.
            dim: d, the projected dimension (ignored without projection).
        """
        if chunk_size is not None:
            chunk_size = check_int(chunk_size, "chunk_size")
        dim, seed = check_int(dim, "dim"), check_int(seed, "seed", None)
        check_model_ready(model)
        train_inputs, train_targets = check_inputs_targets(model, train_inputs, train_targets, "train_inputs")
        n_params = sum(t.numel() for t in select_params(model, params).values())
        proj = None if projection is None else RandomProjection(projection, n_params, dim, seed)
        if chunk_size is None:
            chunk_size = auto_chunk_size(model, train_inputs.shape[1:], n_params, memory_budget)
        vectors, norms = [], []
        for s in with_progress(chunks(len(train_inputs), chunk_size), "gradient index", progress):
            g = per_sample_grads(model, train_inputs[s], train_targets[s], params, chunk_size)
            norms.append(g.norm(dim=1))
            vectors.append(g if proj is None else proj(g))
        return cls(model, params, proj, torch.cat(vectors), torch.cat(norms), train_inputs, train_targets, chunk_size)

    def save(self, path) -> None:
        """Write the stored gradients ``[N, d]``, their norms ``[N]`` and how they were made (projection,
        seed, chunk size) to ``path``, atomically. The model and the training data are not saved:
        :meth:`load` takes them again."""
        proj = self.projection
        meta = {"projection": None if proj is None else proj.kind, "in_dim": 0 if proj is None else proj.in_dim,
                "dim": self.dim, "seed": 0 if proj is None else proj.seed, "chunk_size": self.chunk_size}
        atomic_torch_save({"vectors": self.vectors.cpu(), "norms": self.norms.cpu(), "meta": meta}, path)

    @classmethod
    def load(cls, path, model: nn.Module, train_inputs: torch.Tensor, train_targets: torch.Tensor,
             params: ParamSelection = None) -> "GradientIndex":
        """The index :meth:`save` wrote, for the same ``model`` and training set (read with
        ``weights_only=True``). Raises ValueError when the file does not fit the training set (rows,
        norms) or holds non-finite values, instead of answering queries from a stale index."""
        payload = torch.load(path, map_location="cpu", weights_only=True)
        vectors, norms, meta = payload["vectors"], payload["norms"], payload["meta"]
        n = len(train_inputs)
        if vectors.ndim != 2 or vectors.shape[0] != n or tuple(norms.shape) != (n,):
            raise ValueError(f"saved index holds {tuple(vectors.shape)} gradients and {tuple(norms.shape)} norms, "
                             f"not {n} training examples: rebuild it with GradientIndex.build")
        check_finite(vectors, "saved index")
        check_finite(norms, "saved index norms")
        proj = None if meta["projection"] is None else RandomProjection(
            meta["projection"], int(meta["in_dim"]), int(meta["dim"]), int(meta["seed"]))
        device = next(model.parameters()).device
        return cls(model, params, proj, vectors.to(device), norms.to(device), train_inputs, train_targets,
                   int(meta["chunk_size"]))

    def test_vectors(self, test_inputs: torch.Tensor, test_targets=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(stored-space vectors ``[Q, d]``, exact norms ``[Q]``) of the test gradients."""
        test_targets = resolve_test_targets(self.model, test_inputs, test_targets)
        g = per_sample_grads(self.model, test_inputs, test_targets, self.params, self.chunk_size)
        return (g if self.projection is None else self.projection(g)), g.norm(dim=1)

    def query(self, test_inputs: torch.Tensor, test_targets=None, score: str = "cos") -> torch.Tensor:
        """Scores ``[Q, N]``: Grad-Cos (``"cos"``) or Grad-Dot (``"dot"``); ``test_targets=None``
        explains the predicted labels."""
        if score not in ("cos", "dot"):
            raise ValueError(f"score must be 'cos' or 'dot', got {score!r}")
        v_test, _ = self.test_vectors(test_inputs, test_targets)
        if score == "dot":
            return v_test @ self.vectors.T
        return unit_rows(v_test) @ unit_rows(self.vectors).T

    def error_report(self, test_inputs: torch.Tensor, test_targets=None, score: str = "cos", k: int = 10) -> dict:
        """Compare :meth:`query` with exact streaming scores on these test examples.

        Returns a dict with ``max_abs_error``, ``mean_abs_error``, ``pearson`` (over all Q·N
        pairs) and ``topk_overlap`` (mean share of the exact top-k training examples that the
        index also ranks in its top-k, per test example).
        """
        k = check_int(k, "k")
        approx = self.query(test_inputs, test_targets, score)
        exact = gradient_scores(
            self.model, self.train_inputs, self.train_targets, test_inputs, test_targets, score=score,
            params=self.params, chunk_size=self.chunk_size,
        )
        diff = (approx - exact).abs()
        a, e = approx.flatten().double(), exact.flatten().double()
        pearson = torch.corrcoef(torch.stack([a, e]))[0, 1].item()
        k = min(k, exact.shape[1])
        top_e = exact.topk(k, dim=1).indices
        top_a = approx.topk(k, dim=1).indices
        overlap = torch.tensor(
            [len(set(r.tolist()) & set(q.tolist())) / k for r, q in zip(top_e, top_a)]
        ).mean().item()
        return {
            "projection": None if self.projection is None else self.projection.kind,
            "dim": self.dim,
            "max_abs_error": diff.max().item(),
            "mean_abs_error": diff.mean().item(),
            "pearson": pearson,
            f"top{k}_overlap": overlap,
            "topk_overlap": overlap,
        }
