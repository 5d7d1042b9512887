"""Checkers of the exercises for notebook 00 (start here); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

from ..data.datasets import ImageDataset
from ..data.patches import PRESETS, PatchSpec, inject_patch, patch_mask
from .base import Checker, CheckResult, _as_float, _as_int, _close

__all__ = ["Checks00"]


class Checks00(Checker):
    """Exercises of notebook 00 · start here."""

    def ex00_patch_area(self, area, spec: PatchSpec | None = None, image_shape=(1, 28, 28)) -> CheckResult:
        """The fraction of an image's pixels that the patch covers: the chance level of the
        relevance-mass metric used in notebook 04."""
        name = "ex00_patch_area"
        if (unanswered := self._unanswered(name, area)) is not None:
            return unanswered
        spec = spec or PRESETS["tutorial"]
        ref = float(patch_mask(spec, image_shape).float().mean())
        a = _as_float(area)
        if a is None:
            return self._done(name, False, "the answer must be one number (a fraction)")
        if _close(a, ref):
            return self._done(name, True, "correct: a map that spreads its mass at random puts this share on the patch")
        if a > 1:
            return self._done(name, False, "a fraction lies in [0, 1]: divide the patch's pixel count by the image's")
        if _close(a, spec.height * spec.width / (image_shape[1] + image_shape[2])):
            return self._done(name, False, "the image has H × W pixels, not H + W")
        return self._done(name, False, "count the patch's pixels (height × width) and divide by the image's H × W pixels")

    def ex00_n_patched(self, n_patched, dataset: ImageDataset, spec: PatchSpec | None = None) -> CheckResult:
        """How many training images carry the patch, predicted from the preset's prevalence."""
        name = "ex00_n_patched"
        if (unanswered := self._unanswered(name, n_patched)) is not None:
            return unanswered
        spec = spec or PRESETS["tutorial"]
        ref = int(inject_patch(dataset, spec).patched.sum())
        n = _as_int(n_patched)
        if n is None:
            return self._done(name, False, "the answer must be a whole number of images")
        if n == ref:
            return self._done(name, True, "correct: inject_patch patched exactly that many images")
        if n == round(spec.prevalence * len(dataset)):
            return self._done(name, False, "the prevalence is a share of the target class's images, not of the whole training set")
        if n == int((dataset.labels == spec.target_class).sum()):
            return self._done(name, False, "not every image of the target class gets the patch: only a share (the prevalence)")
        return self._done(name, False, "count the training images of spec.target_class and multiply by spec.prevalence")
