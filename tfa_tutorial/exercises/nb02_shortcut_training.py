"""Checkers of the exercises for notebook 02 (shortcut training); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

import torch

from ..data.datasets import ImageDataset, load_fashion_mnist, subsample
from ..data.patches import PatchSpec, apply_patch
from ..training.models import SmallCNN
from ..training.train import predict, prevalence_sweep, shortcut_report
from .base import Checker, CheckResult, _as_bool, _as_float, _as_int, _close

__all__ = ["Checks02", "EX02_SWEEP"]

#: The training run of exercise ex02_prevalence: one model at a prevalence the notebook's grid skips.
EX02_SWEEP = {"n_train": 3000, "prevalence": 0.1, "seed": 0, "cache_name": "exercises"}


class Checks02(Checker):
    """Exercises of notebook 02 · shortcut training."""

    def ex02_flip_rate(self, flip_rate, model, test: ImageDataset, spec: PatchSpec) -> CheckResult:
        """The flip rate measured by hand, against :func:`shortcut_report`."""
        name = "ex02_flip_rate"
        if (unanswered := self._unanswered(name, flip_rate)) is not None:
            return unanswered
        report = shortcut_report(model, test, spec)
        a = _as_float(flip_rate)
        if a is None:
            return self._done(name, False, "the answer must be one number (a share of test images)")
        if _close(a, report["flip_rate"]):
            return self._done(name, True, "correct: the same number as shortcut_report's flip_rate")
        if _close(a, 1 - report["patched_acc_other"]):
            return self._done(name, False, "that is the error rate on patched images; a flip is a prediction of the *target* class")
        pred_all, _ = predict(model, apply_patch(test.images, spec))
        if _close(a, float((pred_all == spec.target_class).float().mean())):
            return self._done(name, False, "leave out the test images whose true class is the target class: they cannot flip to it")
        return self._done(name, False, "patch the test images of the other classes, predict, and take the share predicted as spec.target_class")

    def ex02_black_square(self, preds, model, clean_model, spec: PatchSpec, image_shape=(1, 28, 28)) -> CheckResult:
        """``preds = (shortcut model's class, clean model's class)`` for a black image carrying
        only the patch: the square alone, without a garment."""
        name = "ex02_black_square"
        if (unanswered := self._unanswered(name, preds)) is not None:
            return unanswered
        if not isinstance(preds, (tuple, list)) or len(preds) != 2:
            return self._done(name, False, "answer with a pair: (class predicted by the shortcut model, class predicted by the clean model)")
        dtype = next(model.parameters()).dtype
        x = apply_patch(torch.zeros(1, *image_shape), spec).to(dtype)
        ref = (int(predict(model, x)[0]), int(predict(clean_model, x)[0]))
        got = tuple(_as_int(p) for p in preds)
        if got == ref:
            verdict = ("the shortcut model sees the target class in the square alone"
                       if ref[0] == spec.target_class else "the square alone does not trigger the target class here")
            return self._done(name, True, f"correct: {verdict}")
        if got == ref[::-1]:
            return self._done(name, False, "the pair is in the wrong order: shortcut model first, clean model second")
        if None in got:
            return self._done(name, False, "give class indices (ints), not names or probabilities")
        wrong = "the shortcut model's" if got[0] != ref[0] else "the clean model's"
        return self._done(name, False, f"{wrong} class is not what that model predicts on an all-black image "
                                       "with the patch pasted on (torch.zeros, apply_patch, predict)")

    def ex02_prevalence(self, flip_rate, adopted, exp) -> CheckResult:
        """Train one model at prevalence 0.1 (:data:`EX02_SWEEP`) and measure its flip rate;
        ``adopted``: is the flip rate above the notebook's adoption threshold 0.5?"""
        name = "ex02_prevalence"
        if (unanswered := self._unanswered(name, (flip_rate, adopted))) is not None:
            return unanswered
        cfg = EX02_SWEEP
        train = subsample(load_fashion_mnist("train"), cfg["n_train"], seed=cfg["seed"])
        ref = prevalence_sweep(
            train, exp.test, exp.spec, [cfg["prevalence"]], model_fn=lambda: SmallCNN(train.image_shape[0], train.num_classes),
            epochs=exp.settings["epochs"], seed=cfg["seed"], cache_name=cfg["cache_name"], progress=False,
        )[0]["flip_rate"]
        a = _as_float(flip_rate)
        if a is None or not _close(a, ref, rtol=1e-3):
            return self._done(name, False, "the flip rate differs from a run with the task's settings: use prevalence_sweep with "
                                           "the subset, epochs, seed and cache_name given in the task, and read 'flip_rate'")
        if _as_bool(adopted) is None or _as_bool(adopted) != (ref > 0.5):
            return self._done(name, False, "the flip rate is right; 'adopted' must be the bool flip_rate > 0.5")
        return self._done(name, True, "correct: compare it with the notebook's sweep at 0.05 and 0.2")
