"""Checkers of the exercises for notebook 03 (per-sample gradients); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

import torch

from ..attribution.gradients import per_sample_grads
from ..attribution.scores import grad_cos, grad_cos_and_dot
from ..data.patches import PatchedDataset
from .base import Checker, CheckResult, _as_float, _as_int, _close

__all__ = ["Checks03"]


class Checks03(Checker):
    """Exercises of notebook 03 · per-sample gradients."""

    def ex03_per_sample_grad(self, g, model, x: torch.Tensor, y) -> CheckResult:
        """One example's gradient ∇_θ ℓ by hand (flattened in ``model.parameters()`` order), against
        :func:`per_sample_grads` (``torch.func``)."""
        name = "ex03_per_sample_grad"
        if (unanswered := self._unanswered(name, g)) is not None:
            return unanswered
        ref = per_sample_grads(model, x[None], torch.as_tensor(y).reshape(1))[0].detach()
        if not isinstance(g, torch.Tensor):
            return self._done(name, False, f"expected a tensor, got {type(g).__name__}")
        g = g.detach().to(ref.dtype).flatten()
        if g.numel() != ref.numel():
            return self._done(name, False, f"the gradient needs one entry per parameter ({ref.numel()}), got {g.numel()}: "
                                           "flatten every parameter's gradient and concatenate them")
        scale = ref.abs().max().clamp_min(1e-30)
        if ((g - ref).abs().max() / scale) < 1e-4:
            return self._done(name, True, "correct: equal to the vmap(grad(...)) result")
        if ((g + ref).abs().max() / scale) < 1e-4:
            return self._done(name, False, "the sign is flipped: differentiate the loss ℓ, not −ℓ or the log-probability")
        if torch.allclose(g.sort().values, ref.sort().values, rtol=1e-4, atol=1e-8 * float(scale)):
            return self._done(name, False, "right numbers, wrong order: concatenate in model.parameters() order")
        return self._done(name, False, "compute F.cross_entropy(model(x[None]), y[None]) with the model in eval mode, "
                                       "then torch.autograd.grad w.r.t. list(model.parameters())")

    def ex03_cos_vs_dot(self, shares, model, train: PatchedDataset, x_test: torch.Tensor, k: int = 20) -> CheckResult:
        """``{"cos": ..., "dot": ...}``: the share of patched images among the top-k training images
        of each score for one test image (predicted label)."""
        name = "ex03_cos_vs_dot"
        if (unanswered := self._unanswered(name, shares)) is not None:
            return unanswered
        if not isinstance(shares, dict) or set(shares) != {"cos", "dot"}:
            return self._done(name, False, 'answer with a dict {"cos": share, "dot": share}')
        cos, dot = grad_cos_and_dot(model, train.images, train.labels, x_test[None])
        ref = {n: float(train.patched[s[0].topk(k).indices].float().mean()) for n, s in (("cos", cos), ("dot", dot))}
        got = {n: _as_float(v) for n, v in shares.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            better = "Grad-Cos" if ref["cos"] > ref["dot"] else "Grad-Dot"
            return self._done(name, True, f"correct: {better} puts more patched images on top — did you predict it?")
        if _close(got["cos"], ref["dot"]) and _close(got["dot"], ref["cos"]):
            return self._done(name, False, "the two shares are swapped")
        low = {n: float(train.patched[s[0].topk(k, largest=False).indices].float().mean()) for n, s in (("cos", cos), ("dot", dot))}
        if all(_close(got[n], low[n]) for n in ref):
            return self._done(name, False, "you took the lowest scores (opponents); proponents have the highest")
        wrong = [n for n in ref if not _close(got[n], ref[n])]
        return self._done(name, False, f"the {' and '.join(wrong)} share is off: top-{k} indices by the score's largest values, "
                                       "then the mean of train.patched at those indices")

    def ex03_best_flipped(self, index, model, x_train: torch.Tensor, y_train, candidates: torch.Tensor, test_images: torch.Tensor) -> CheckResult:
        """Among the patched test images ``test_images[candidates]``, the one (an index into
        ``test_images``) with the largest Grad-Cos to the training image ``x_train``."""
        name = "ex03_best_flipped"
        if (unanswered := self._unanswered(name, index)) is not None:
            return unanswered
        candidates = torch.as_tensor(candidates)
        s = grad_cos(model, x_train[None], torch.as_tensor(y_train).reshape(1), test_images[candidates])[:, 0]
        ref = int(candidates[s.argmax()])
        i = _as_int(index)
        if i == ref:
            return self._done(name, True, f"correct: Grad-Cos {float(s.max()):+.2f} — the test image this training image supports most")
        if i is not None and i == int(s.argmax()):
            return self._done(name, False, "that is the position in the candidate list; answer with the index into the test set")
        if i is not None and i == int(candidates[s.argmin()]):
            return self._done(name, False, "that is the lowest score; the task asks for the largest")
        return self._done(name, False, "score the training image against all candidate test images with T.grad_cos "
                                       "(scores have shape [Q, 1]) and take the candidate with the largest score")
