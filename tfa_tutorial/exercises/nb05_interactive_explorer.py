"""Checkers of the exercises for notebook 05 (interactive explorer); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

import torch

from ..attribution.scores import grad_cos
from ..data.datasets import ImageDataset
from .base import Checker, CheckResult, _as_float, _as_int, _close

__all__ = ["Checks05"]


class Checks05(Checker):
    """Exercises of notebook 05 · interactive explorer."""

    def ex05_label_choice(self, shares, model, train: ImageDataset, x_test: torch.Tensor, y_true, target_class: int, k: int = 10) -> CheckResult:
        """``{"predicted": ..., "true": ...}``: share of the top-k Grad-Cos proponents whose label is
        ``target_class`` when the test loss uses the predicted label vs the true label."""
        name = "ex05_label_choice"
        if (unanswered := self._unanswered(name, shares)) is not None:
            return unanswered
        if not isinstance(shares, dict) or set(shares) != {"predicted", "true"}:
            return self._done(name, False, 'answer with a dict {"predicted": share, "true": share}')
        ref = {}
        for key, yt in (("predicted", None), ("true", torch.tensor([int(y_true)]))):
            s = grad_cos(model, train.images, train.labels, x_test[None], yt)[0]
            ref[key] = float((train.labels[s.topk(k).indices] == target_class).float().mean())
        got = {n: _as_float(v) for n, v in shares.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            return self._done(name, True, "correct: the explained label decides which training images count as support")
        if _close(got["predicted"], ref["true"]) and _close(got["true"], ref["predicted"]):
            return self._done(name, False, "the two shares are swapped")
        return self._done(name, False, "call T.grad_cos twice: test_targets=None (predicted label) and the true label "
                                       "as a [1] tensor; then the share of the top-k's training labels equal to the target class")

    def ex05_top_opponent(self, index, model, train: ImageDataset, x_test: torch.Tensor, y_true) -> CheckResult:
        """The most harmful training image for a misclassified test image, as an index into
        ``train``: the strongest opponent of the **true** label (lowest Grad-Cos when the test loss
        uses ``y_true``). A training step on it raises the loss of the right answer, i.e. pushes the
        model towards its error. (The strongest opponent of the *predicted* label does the opposite:
        it pushes away from the error.)"""
        name = "ex05_top_opponent"
        if (unanswered := self._unanswered(name, index)) is not None:
            return unanswered
        s = grad_cos(model, train.images, train.labels, x_test[None], torch.tensor([int(y_true)]))[0]
        ref = int(s.argmin())
        i = _as_int(index)
        if i == ref:
            return self._done(name, True, f"correct: Grad-Cos {float(s[ref]):+.2f} for the true label; a training step on "
                                          "it would raise the loss of the right answer")
        s_pred = grad_cos(model, train.images, train.labels, x_test[None])[0]
        if i == int(s_pred.argmin()):
            return self._done(name, False, "that is the strongest opponent of the predicted label: it pushes the model away "
                                           "from its error. Harmful means opposing the true label: pass it to T.grad_cos")
        if i == int(s.argmax()):
            return self._done(name, False, "that is the top proponent of the true label (highest score); an opponent has the "
                                           "lowest score")
        return self._done(name, False, "score the test image against the training images with T.grad_cos for the true "
                                       "label and take the index of the lowest (most negative) score")
