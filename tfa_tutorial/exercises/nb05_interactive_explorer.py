"""Checkers of the exercises for notebook 05 (interactive explorer); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

import torch

from ..attribution.reduction import reduce_map
from ..attribution.scores import grad_cos
from ..data.datasets import ImageDataset
from ..evaluation.metrics import relevance_mass_accuracy
from .base import Checker, CheckResult, _as_bool, _as_float, _as_int, _close

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


def _quadrant(m: torch.Tensor) -> str:
    """Quadrant of the largest value of a ``[H, W]`` map (rows count from the top)."""
    h, w = m.shape
    r, c = divmod(int(m.flatten().argmax()), w)
    return QUADRANTS[2 * int(r >= h / 2) + int(c >= w / 2)]


def _positive(maps: torch.Tensor) -> torch.Tensor:
    """``[k, H, W]`` positive part, channels summed, of maps ``[k, C, H, W]`` or ``[k, H, W]``."""
    maps = torch.as_tensor(maps).detach().float().cpu()
    return reduce_map(maps, "positive") if maps.ndim == 4 else maps.clamp_min(0)

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

    def ex05_read_map(self, answer, m, mask) -> CheckResult:
        """Reading a rendered map: ``{"quadrant": one of QUADRANTS, "above_chance": bool}`` — where
        the map's largest positive value lies, and whether its positive part puts more mass inside
        the patch ``mask`` ``[H, W]`` than the patch's share of the image (chance). ``m``: the map
        ``[C, H, W]`` or ``[H, W]``; checked against the measured mass (relevance mass accuracy)."""
        name = "ex05_read_map"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"quadrant", "above_chance"}:
            return self._done(name, False, 'answer with a dict {"quadrant": ..., "above_chance": ...}')
        if answer["quadrant"] not in QUADRANTS:
            return self._done(name, False, f"the quadrant is one of {QUADRANTS}")
        above = _as_bool(answer["above_chance"])
        if above is None:
            return self._done(name, False, "above_chance is True or False")
        pos = _positive(torch.as_tensor(m)[None])[0]
        mask = torch.as_tensor(mask).bool().cpu()
        ref_q = _quadrant(pos)
        ref_above = float(relevance_mass_accuracy(pos[None], mask[None])[0]) > float(mask.float().mean())
        if answer["quadrant"] != ref_q:
            return self._done(name, False, "the quadrant is not where the map is largest: find the strongest red (the top "
                                           "end of the colour bar), and count rows from the top of the image")
        if above != ref_above:
            return self._done(name, False, "judge the share of all the red that lies inside the green box, and compare it with "
                                           "the box's share of the image (printed above), not with half of the map")
        return self._done(name, True, "correct: that is where the evidence lies, as the measured mass on the patch says")

    def ex05_state_api(self, index, state, candidates) -> CheckResult:
        """With the explorer's state: among the test images ``candidates`` (patched test set), the
        one whose top-k **opponents of the true label** (the harmful training images; k = the state's
        setting) carry the most patched training images; the first such candidate on a tie."""
        name = "ex05_state_api"
        if (unanswered := self._unanswered(name, index)) is not None:
            return unanswered
        candidates = [int(q) for q in candidates]
        i = _as_int(index)
        if i not in candidates:
            return self._done(name, False, "answer with one of the candidate test indices")

        def count(side, **kw):
            return {q: sum(bool(it.patched) for it in getattr(state.result(test_index=q, maps=False, **kw), side))
                    for q in candidates}

        harm = count("opponents", label="true")
        ref = max(candidates, key=harm.get)
        if harm[i] == harm[ref] and i == ref:
            return self._done(name, True, f"correct: {harm[ref]} of its top-{state.settings.k} opponents of the true label "
                                          "carry the patch")
        if harm[i] == harm[ref]:
            return self._done(name, False, "a tie: several candidates have as many; take the first of them in the list")
        pro = count("proponents")
        if i == max(candidates, key=pro.get):
            return self._done(name, False, "that counts the proponents of the prediction; harmful images are the opponents "
                                           "of the true label: ask state.result for label='true'")
        return self._done(name, False, "for each candidate, ask state.result(test_index=..., label='true', maps=False) and "
                                       "count the opponents whose .patched is True")

    def ex05_design_control(self, control, model, x_train, y_train, masks, maps) -> CheckResult:
        """A control for the map ``maps`` ``[k, C, H, W]`` (or ``[k, H, W]``) of the training images
        ``x_train`` ``[k, C, H, W]`` (labels ``y_train``, patch ``masks`` ``[k, H, W]``) on the
        shortcut ``model``: ``control(x_train, y_train)`` returns maps of the same images that a
        shortcut-free explanation would give (e.g. the clean model's map, a random map, the input
        itself). It behaves as a control when it has one map per image, is reproducible (same
        result twice), is not all zero, and **does not depend on the shortcut model** (perturbing
        the shortcut model's weights leaves it unchanged). Prints the map's gain against it."""
        name = "ex05_design_control"
        if (unanswered := self._unanswered(name, control)) is not None:
            return unanswered
        if not callable(control):
            return self._done(name, False, "control is a function (x, y) -> maps; define it with def")
        try:
            first = control(x_train, y_train)
        except Exception as err:  # noqa: BLE001  (the student's code)
            return self._done(name, False, f"calling control(x, y) failed: {type(err).__name__}: {err}")
        if not is_tensor_like(first):
            return self._done(name, False, "control(x, y) must return a tensor of maps (did the function return?)")
        c1 = _positive(first)
        k, h, w = len(x_train), x_train.shape[-2], x_train.shape[-1]
        if c1.shape != (k, h, w):
            return self._done(name, False, f"one map per training image: [k, C, H, W] or [k, H, W] with k = {k} and the "
                                           "image's height and width")
        if not torch.equal(c1, _positive(control(x_train, y_train))):
            return self._done(name, False, "calling control twice gives different maps: seed any random numbers")
        if float(c1.sum()) == 0:
            return self._done(name, False, "its positive part is zero everywhere: there is nothing to compare with")
        saved = {n: p.detach().clone() for n, p in model.state_dict().items()}
        try:
            with torch.no_grad():
                g = torch.Generator().manual_seed(0)
                for p in model.parameters():
                    p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) * (0.5 * float(p.std()) + 1e-3))
            c2 = _positive(control(x_train, y_train))
        finally:
            model.load_state_dict(saved)
        if not torch.allclose(c1, c2):
            return self._done(name, False, "your control changes when the shortcut model changes: it still measures the "
                                           "shortcut model; a control must not depend on it")
        masks = torch.as_tensor(masks).bool().cpu()
        own = float(relevance_mass_accuracy(_positive(maps), masks).mean())
        ctl = float(relevance_mass_accuracy(c1, masks).mean())
        return self._done(name, True, f"a valid control: mass on the patch {ctl:.2f} against the map's {own:.2f}, so the "
                                      f"map's gain over this control is {own - ctl:+.2f}")


def is_tensor_like(x) -> bool:
    """A tensor or something ``torch.as_tensor`` turns into a floating tensor with a shape."""
    try:
        return torch.as_tensor(x).ndim >= 2
    except (TypeError, ValueError, RuntimeError):
        return False
