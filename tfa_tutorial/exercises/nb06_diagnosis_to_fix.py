"""Checkers of the exercises for notebook 06 (from diagnosis to fix); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

import torch

from ..attribution.scores import grad_cos
from ..data.patches import PatchedDataset
from ..evaluation.metrics import one_step_test
from ..fixing.repair import mask_overlap
from .base import Checker, CheckResult, _as_bool, _as_float, _close

__all__ = ["Checks06"]


class Checks06(Checker):
    """Exercises of notebook 06 · from diagnosis to fix."""

    def ex06_flag_precision(self, answer, model, train: PatchedDataset, test_images: torch.Tensor, top_k: int = 20) -> CheckResult:
        """``{"precision": ..., "chance": ...}``: flag the union of the ``top_k`` Grad-Cos proponents
        (predicted label) of ``test_images`` ``[Q, C, H, W]`` in ``train``; precision = share of the
        flagged images that carry the patch; chance = the patched share of ``train`` (random flags)."""
        name = "ex06_flag_precision"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"precision", "chance"}:
            return self._done(name, False, 'answer with a dict {"precision": share, "chance": share}')
        s = grad_cos(model, train.images, train.labels, test_images).cpu()  # [Q, N]
        patched = train.patched
        flagged = s.topk(top_k, dim=1).indices.flatten().unique()
        ref = {"precision": float(patched[flagged].float().mean()), "chance": float(patched.float().mean())}
        got = {n: _as_float(v) for n, v in answer.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            lift = ref["precision"] / ref["chance"] if ref["chance"] > 0 else float("inf")
            return self._done(name, True, f"correct: the flags are {lift:.1f}× as rich in patched images as random flags")
        if _close(got["precision"], ref["chance"]) and _close(got["chance"], ref["precision"]):
            return self._done(name, False, "the two numbers are swapped")
        hints = []
        if not _close(got["precision"], ref["precision"]):
            opp = s.topk(top_k, dim=1, largest=False).indices.flatten().unique()
            if _close(got["precision"], float(patched[opp].float().mean())):
                hints.append("you flagged the lowest scores (opponents); proponents of the prediction have the highest")
            elif patched.any() and _close(got["precision"], float(patched[flagged].sum()) / int(patched.sum())):
                hints.append("that is the recall (share of the patched images that were flagged); precision divides by "
                             "the number of flagged images")
            elif _close(got["precision"], float(patched[s.topk(top_k, dim=1).indices.flatten()].float().mean())):
                hints.append("count each flagged image once: take the union (unique indices) of the top-k lists")
            else:
                hints.append("precision: the top-k indices of each row of T.grad_cos(...) ([Q, N]), their union, then the "
                             "mean of train.patched at those indices")
        if not _close(got["chance"], ref["chance"]):
            tgt = train.labels == train.spec.target_class
            if tgt.any() and _close(got["chance"], float(patched[tgt].float().mean())):
                hints.append("chance is the patched share of the whole training set (random flags come from every class), "
                             "not of the target class")
            else:
                hints.append("chance: the share of all training images that carry the patch")
        return self._done(name, False, "; ".join(hints))

    def ex06_repair_coverage(self, answer, repair: torch.Tensor, truth: torch.Tensor) -> CheckResult:
        """``{"coverage": ..., "iou": ...}`` of repair masks ``[F, H, W]`` against the true patch masks
        ``[F, H, W]`` by hand, against :func:`~tfa_tutorial.fixing.retrain.mask_overlap` (only images that
        carry the patch count)."""
        name = "ex06_repair_coverage"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"coverage", "iou"}:
            return self._done(name, False, 'answer with a dict {"coverage": share, "iou": mean IoU}')
        ref = mask_overlap(repair, truth)
        got = {n: _as_float(v) for n, v in answer.items()}
        if all(_close(got[n], ref[n]) for n in ("coverage", "iou")):
            return self._done(name, True, f"correct: the same as mask_overlap over the {ref['n']} flagged images that carry "
                                          "the patch; compare with the random map's coverage printed below")
        if _close(got["coverage"], ref["iou"]) and _close(got["iou"], ref["coverage"]):
            return self._done(name, False, "the two numbers are swapped")
        r, t = torch.as_tensor(repair).bool().flatten(1), torch.as_tensor(truth).bool().flatten(1)
        has = t.any(1)
        inter, union = (r & t).sum(1).double(), (r | t).sum(1).double()
        hints = []
        if not _close(got["coverage"], ref["coverage"]):
            if _close(got["coverage"], ref["precision"]):
                hints.append("coverage divides the hit patch pixels by all *patch* pixels, not by all repaired pixels")
            elif has.any() and _close(got["coverage"], float((inter[has] / t[has].sum(1)).mean())):
                hints.append("coverage pools the pixels: total hit patch pixels / total patch pixels")
            else:
                hints.append("coverage: the number of pixels in both masks divided by the number of patch pixels, "
                             "over the images that carry the patch")
        if not _close(got["iou"], ref["iou"]):
            if _close(got["iou"], float((inter / union.clamp_min(1)).mean())):
                hints.append("leave out the images without a patch: their IoU is 0 whatever the repair does")
            elif _close(got["iou"], float(inter[has].sum() / union[has].sum())):
                hints.append("IoU is the mean of the per-image |R ∩ P| / |R ∪ P|, not one ratio of pooled sums")
            else:
                hints.append("IoU per image: |R ∩ P| / |R ∪ P| (& and | on bool masks), then the mean over the images "
                             "that carry the patch")
        return self._done(name, False, "; ".join(hints))

    def ex06_insertion(self, delta, beats_random, model, x_train: torch.Tensor, y_train, maps: torch.Tensor,
                       x_test: torch.Tensor, y_test, k: int, lr: float = 1e-5, n_random: int = 5, seed: int = 0) -> CheckResult:
        """The one-step insertion test by hand: keep the top-``k`` pixels of each training image by
        ``maps`` ``[B, H, W]`` (the rest 0), one SGD step on the mean training loss, and
        ΔL = L_test(θ') − L_test(θ); ``beats_random``: is ΔL lower than with k random pixels? Against
        :func:`~tfa_tutorial.evaluation.metrics.one_step_test`."""
        name = "ex06_insertion"
        if (unanswered := self._unanswered(name, (delta, beats_random))) is not None:
            return unanswered
        args = (model, x_train, torch.as_tensor(y_train), maps, x_test, torch.as_tensor(y_test), [int(k)])
        ref = one_step_test(*args, lr=lr, mode="insertion", n_random=n_random, seed=seed)
        d_map, d_rand = float(ref["map"][0]), float(ref["random"][0])
        a = _as_float(delta)
        if a is None:
            return self._done(name, False, "delta must be one number: the change of the mean test loss")

        def near(v):  # float32 losses: ΔL = L' − L loses digits to cancellation
            return _close(a, v, rtol=2e-3, atol=2e-6)

        if not near(d_map):
            if near(-d_map):
                return self._done(name, False, "the sign is flipped: ΔL = loss after the step − loss before (negative = the "
                                               "step helped the test image)")
            if near(float(one_step_test(*args, lr=lr, mode="deletion", n_random=1, seed=seed)["map"][0])):
                return self._done(name, False, "you removed the top-k pixels (deletion); insertion *keeps* only them and "
                                               "sets the rest to 0")
            if near(float(one_step_test(*args[:3], -torch.as_tensor(maps), *args[4:], lr=lr, mode="insertion", n_random=1,
                                        seed=seed)["map"][0])):
                return self._done(name, False, "you kept the k *lowest* map values; keep the k highest of each map")
            return self._done(name, False, "per training image keep the k largest map pixels (topk on the flattened map), "
                                           "set the others to 0, take one step θ − lr·∇ of the *mean* training loss on a "
                                           "copy of the model (eval mode), and compare the mean test loss (given labels) "
                                           "after and before")
        if _as_bool(beats_random) is None or _as_bool(beats_random) != (d_map < d_rand):
            return self._done(name, False, "ΔL is right; beats_random must be the bool: is the map's ΔL lower (more "
                                           "negative) than the random pixels' ΔL?")
        verdict = "lowers the test loss more than" if d_map < d_rand else "does not beat"
        return self._done(name, True, f"correct: with k = {int(k)} the map {verdict} random pixels")
