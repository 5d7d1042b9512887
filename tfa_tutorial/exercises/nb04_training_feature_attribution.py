"""Checkers of the exercises for notebook 04 (training feature attribution); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attribution.reduction import reduce_map
from ..attribution.scores import grad_cos
from ..evaluation.metrics import relevance_mass_accuracy
from .base import Checker, CheckResult, _as_bool, _as_float, _close

__all__ = ["Checks04"]


class Checks04(Checker):
    """Exercises of notebook 04 · training feature attribution."""

    def ex04_mass_by_hand(self, mass, maps: torch.Tensor, masks: torch.Tensor) -> CheckResult:
        """Relevance mass accuracy of reduced maps ``[B, H, W]`` by hand, against
        :func:`relevance_mass_accuracy`."""
        name = "ex04_mass_by_hand"
        if (unanswered := self._unanswered(name, mass)) is not None:
            return unanswered
        ref = relevance_mass_accuracy(maps, masks)
        try:
            got = torch.as_tensor(mass).detach().double().flatten()
        except (TypeError, ValueError, RuntimeError):
            return self._done(name, False, "answer with a tensor of one value per map")
        if got.numel() != ref.numel():
            return self._done(name, False, f"one value per map: expected {ref.numel()} values, got {got.numel()}")
        if torch.allclose(got, ref, rtol=1e-4, atol=1e-8):
            return self._done(name, True, "correct: the positive mass inside the mask over the total positive mass")
        m = maps.double().flatten(1)
        k = masks.bool().flatten(1)
        variants = {
            "absolute": (m.abs() * k).sum(1) / m.abs().sum(1),
            "signed": (m * k).sum(1) / m.sum(1),
            "unnormalised": (m.clamp_min(0) * k).sum(1),
            "mean": (m.clamp_min(0) * k).sum(1) / k.sum(1) / m.clamp_min(0).mean(1),
        }
        hints = {
            "absolute": "you used |m|; the metric keeps only the positive part max(m, 0)",
            "signed": "negative values must not cancel positive ones: clamp the map at 0 first",
            "unnormalised": "divide the mass inside the mask by the total positive mass of the map",
            "mean": "use sums, not means, inside the mask and over the whole map",
        }
        for key, v in variants.items():
            if torch.allclose(got, v, rtol=1e-4, atol=1e-8):
                return self._done(name, False, hints[key])
        return self._done(name, False, "per map: sum of max(m, 0) inside the mask, divided by the sum of max(m, 0) over all pixels")

    def ex04_input_as_map(self, mass, beats_chance, images: torch.Tensor, masks: torch.Tensor, chance: float) -> CheckResult:
        """The input-as-map control: mean relevance mass of the images themselves on their patch,
        and whether it beats chance (the patch area)."""
        name = "ex04_input_as_map"
        if (unanswered := self._unanswered(name, (mass, beats_chance))) is not None:
            return unanswered
        ref = float(relevance_mass_accuracy(reduce_map(images, "positive"), masks).mean())
        a = _as_float(mass)
        if a is None or not _close(a, ref):
            if a is not None and _close(a, float(masks.float().mean())):
                return self._done(name, False, "that is the patch area (chance); use the images themselves as maps")
            return self._done(name, False, "reduce the images with T.reduce_map(images, 'positive'), score them with "
                                           "T.relevance_mass_accuracy against the masks, and take the mean")
        if _as_bool(beats_chance) is None or _as_bool(beats_chance) != (ref > chance):
            return self._done(name, False, "the mass is right; beats_chance must be the bool mass > chance")
        return self._done(name, True, "correct: the bright patch alone carries this much mass — any value attribution "
                                      "that multiplies by the input inherits it (compare the table in notebook 04)")

    def ex04_closed_form(self, s, model, x_i, y_i, x_j, y_j) -> CheckResult:
        """Grad-Cos of softmax regression by hand, S = cos(δ_i, δ_j)·cos(x̃_i, x̃_j), against autograd
        (:func:`grad_cos`)."""
        name = "ex04_closed_form"
        if (unanswered := self._unanswered(name, s)) is not None:
            return unanswered
        ref = float(grad_cos(model, x_i[None], torch.tensor([int(y_i)]), x_j[None], torch.tensor([int(y_j)]))[0, 0])
        a = _as_float(s)
        if a is None:
            return self._done(name, False, "the answer must be one number")
        if _close(a, ref, rtol=1e-6, atol=1e-9):
            return self._done(name, True, "correct: error similarity × input similarity equals autograd's Grad-Cos")
        if _close(a, -ref, rtol=1e-6, atol=1e-9):
            return self._done(name, False, "the sign is flipped: δ = p − e_y for both examples")
        W = model.linear.weight.detach()
        b = model.linear.bias.detach() if model.linear.bias is not None else torch.zeros(W.shape[0], dtype=W.dtype)

        def parts(x, y):
            xf = x.flatten().to(W.dtype)
            p = torch.softmax(W @ xf + b, 0)
            return p, p - F.one_hot(torch.tensor(int(y)), W.shape[0]).to(W.dtype), xf

        pi, di, xi = parts(x_i, y_i)
        pj, dj, xj = parts(x_j, y_j)
        cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))  # noqa: E731
        if _close(a, cos(di, dj) * cos(xi, xj), rtol=1e-6, atol=1e-9):
            return self._done(name, False, "almost: x̃ = [vec(x); 1] includes a constant 1 for the bias")
        if _close(a, cos(pi, pj) * cos(torch.cat([xi, xi.new_ones(1)]), torch.cat([xj, xj.new_ones(1)])), rtol=1e-6, atol=1e-9):
            return self._done(name, False, "use the errors δ = p − e_y, not the probabilities p")
        return self._done(name, False, "compute p = softmax(W x + b), δ = p − e_y and x̃ = [vec(x); 1] for both examples, "
                                       "then cos(δ_i, δ_j) · cos(x̃_i, x̃_j)")
