"""Checkers of the exercises for notebook 07 (neural features); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

import torch

from ..attribution import neural_features as NF
from .base import Checker, CheckResult, _as_float, _as_int, _close

__all__ = ["Checks07"]


class Checks07(Checker):
    """Exercises of notebook 07 · neural features."""

    def ex07_top_contributor(self, answer, model, x: torch.Tensor, target: int) -> CheckResult:
        """``{"contributions": [F], "neuron": int}``: W[target, c] · h_c(x) for every penultimate
        neuron c of one image ``x`` ``[C, H, W]`` by hand, and the neuron that contributes most,
        against :func:`~tfa_tutorial.attribution.neural_features.class_contributions`."""
        name = "ex07_top_contributor"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"contributions", "neuron"}:
            return self._done(name, False, 'answer with a dict {"contributions": tensor [F], "neuron": index}')
        layer = NF.find_feature_layer(model, x)
        h = NF.neural_activations(model, x[None], layer)[0].double()
        w = layer.weight[target].cpu().double()
        ref = NF.class_contributions(model, x[None], int(target), layer)[0].double()
        try:
            got = torch.as_tensor(answer["contributions"]).detach().cpu().double().flatten()
        except (TypeError, ValueError, RuntimeError):
            return self._done(name, False, "contributions must be a tensor with one value per neuron")
        if got.numel() != ref.numel():
            return self._done(name, False, f"one contribution per penultimate neuron: expected {ref.numel()} values, got "
                                           f"{got.numel()} (h is the pooled feature map, the classifier's input)")
        scale = float(ref.abs().max().clamp_min(1e-12))

        def same(v):
            return bool(((got - v).abs().max() / scale) < 1e-4)

        if not same(ref):
            if same(h):
                return self._done(name, False, "that is the activation h alone; multiply by the classifier weight W[target, c]")
            if same(w):
                return self._done(name, False, "that is the weight row alone; multiply by the image's activations h_c(x)")
            if same(ref.abs()):
                return self._done(name, False, "keep the sign: a negative contribution argues against the class")
            return self._done(name, False, "contributions = W[target] * h (element-wise), with h = NF.neural_activations("
                                           "model, x[None])[0] and W the final Linear's weight")
        n = _as_int(answer["neuron"])
        if n is None:
            return self._done(name, False, "the contributions are right; neuron must be one index")
        if n == int(ref.argmax()):
            share = float(ref.max() / ref.clamp_min(0).sum()) if float(ref.clamp_min(0).sum()) > 0 else float("nan")
            return self._done(name, True, f"correct: neuron {n} gives {share:.0%} of the positive evidence for the class")
        if n == int(h.argmax()):
            return self._done(name, False, "the contributions are right; that neuron has the largest *activation*, not the "
                                           "largest contribution")
        if n == int(ref.argmin()):
            return self._done(name, False, "the contributions are right; that is the most negative one — take the largest")
        return self._done(name, False, "the contributions are right; neuron = the index of their largest value")

    def ex07_spuriousness(self, answer, model, images: torch.Tensor, masks: torch.Tensor, neuron: int, m: int = 16) -> CheckResult:
        """``{"score": ..., "chance": ...}`` of one neuron by hand: over its ``m`` top-activating
        ``images``, the mean share of its (normalised) activation-map mass inside ``masks``
        ``[N, H, W]``, and the mean mask area over the same images; against
        :func:`~tfa_tutorial.attribution.neural_features.spuriousness`."""
        name = "ex07_spuriousness"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"score", "chance"}:
            return self._done(name, False, 'answer with a dict {"score": share, "chance": share}')
        sp = NF.spuriousness(model, images, masks, m=m, neurons=[int(neuron)])
        ref = {"score": float(sp["score"][0]), "chance": float(sp["chance"][0])}
        got = {n: _as_float(v) for n, v in answer.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            return self._done(name, True, f"correct: {ref['score'] / ref['chance']:.2f}× chance" if ref["chance"] > 0
                              else "correct")
        if _close(got["score"], ref["chance"]) and _close(got["chance"], ref["score"]):
            return self._done(name, False, "the two numbers are swapped")
        top = sp["top"][0]
        mk = torch.as_tensor(masks).float()[top]
        hints = []
        if not _close(got["score"], ref["score"]):
            raw = NF.activation_maps(model, images[top], int(neuron), normalize=False)
            norm = NF.activation_maps(model, images[top], int(neuron))
            if _close(got["score"], float(((raw * mk).sum((1, 2)) / raw.sum((1, 2))).mean())):
                hints.append("use the normalised maps (NF.activation_maps with its default normalize=True)")
            elif _close(got["score"], float((norm * mk).sum() / norm.sum())):
                hints.append("score each image (mass inside / total mass of its map), then take the mean over the images")
            else:
                hints.append("score: for each of the neuron's m top-activating images (NF.top_activating), the map's mass "
                             "inside the mask over its total mass; then the mean")
        if not _close(got["chance"], ref["chance"]):
            has = mk.flatten(1).any(1)
            if has.any() and _close(got["chance"], float(mk[has].mean())):
                hints.append("chance is the mean mask area over *all* m top images: an image without the patch has an "
                             "empty mask and adds 0")
            else:
                hints.append("chance: the mean of the masks of the same m top images (the share of pixels inside)")
        return self._done(name, False, "; ".join(hints))

    def ex07_random_mask_control(self, rates, model, images: torch.Tensor, labels, masks: torch.Tensor, target: int,
                                 sigma: float = 0.5, seed: int = 0, random_seed: int = 1) -> CheckResult:
        """``{"spurious": ..., "random": ...}``: the share of ``images`` predicted as ``target`` after
        Gaussian noise x + σ ε ⊙ m (one draw, ``seed``) inside ``masks`` ``[N, H, W]``, and inside the
        equal-mass random control ``NF.random_mask_like(masks, random_seed)``; against
        :func:`~tfa_tutorial.attribution.neural_features.mask_sensitivity`."""
        name = "ex07_random_mask_control"
        if (unanswered := self._unanswered(name, rates)) is not None:
            return unanswered
        if not isinstance(rates, dict) or set(rates) != {"spurious", "random"}:
            return self._done(name, False, 'answer with a dict {"spurious": flip rate, "random": flip rate}')
        control = NF.random_mask_like(masks, seed=random_seed)
        res = NF.mask_sensitivity(model, images, labels, {"spurious": masks, "random": control}, sigma=sigma, repeats=1,
                                  seed=seed, target=int(target))
        ref = {n: res[n]["target_rate"] for n in ("spurious", "random")}
        got = {n: _as_float(v) for n, v in rates.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            base = res["none"]["target_rate"]
            cut_s, cut_r = base - ref["spurious"], base - ref["random"]
            more = "more" if cut_s > cut_r else "not more"
            return self._done(name, True, f"correct: noise on the neuron's mask cuts the flip rate {more} than the same "
                                          "mask moved at random")
        if _close(got["spurious"], ref["random"]) and _close(got["random"], ref["spurious"]):
            return self._done(name, False, "the two rates are swapped")
        if all(_close(got[n], res[n]["acc"]) for n in ref):
            return self._done(name, False, "that is the accuracy; the flip rate is the share predicted as the target class")
        if any(_close(got[n], res["none"]["target_rate"]) for n in ref) and not any(
                _close(ref[n], res["none"]["target_rate"]) for n in ref):
            return self._done(name, False, "one rate equals the flip rate without noise: add the noise with NF.noise_in_mask "
                                           "before predicting")
        wrong = [n for n in ref if not _close(got[n], ref[n])]
        return self._done(name, False, f"the {' and '.join(wrong)} rate is off: use NF.noise_in_mask(images, mask, sigma, "
                                       "seed=seed) with the task's σ and seed (the random mask from NF.random_mask_like(masks, "
                                       "seed=random_seed)), T.predict, and the share equal to the target class")
