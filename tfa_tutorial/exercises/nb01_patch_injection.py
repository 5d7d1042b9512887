"""Checkers of the exercises for notebook 01 (patch injection); see :mod:`tfa_tutorial.exercises`."""
from __future__ import annotations

import torch

from ..data.datasets import ImageDataset
from ..data.patches import PatchedDataset
from .base import Checker, CheckResult, _as_int, _close

__all__ = ["Checks01", "EX01_PATCH"]

#: The patch that exercise ex01_custom_patch asks for: a 5×5 white square in the bottom-right
#: corner, on 30% of the Sneakers (class 7).
EX01_PATCH = {"size": (5, 5), "value": 1.0, "location": (23, 23), "target_class": 7, "prevalence": 0.3}


class Checks01(Checker):
    """Exercises of notebook 01 · patch injection."""

    def ex01_custom_patch(self, patched, source: ImageDataset) -> CheckResult:
        """A 5×5 white square in the bottom-right corner on 30% of the Sneakers (:data:`EX01_PATCH`),
        checked pixel by pixel with plain tensor operations."""
        name = "ex01_custom_patch"
        if (unanswered := self._unanswered(name, patched)) is not None:
            return unanswered
        if not isinstance(patched, PatchedDataset):
            return self._done(name, False, f"expected the PatchedDataset that inject_patch returns, got {type(patched).__name__}")
        if len(patched) != len(source) or not torch.equal(patched.labels, source.labels):
            return self._done(name, False, "inject the patch into the given source data set (same images, same order)")
        want = EX01_PATCH
        s = patched.spec
        if tuple(s.size) != want["size"]:
            return self._done(name, False, "check the patch size: the task asks for a small square (see the task text)")
        if s.location != want["location"]:
            r, c = s.location
            h, w = s.size
            if r + h != 28 or c + w != 28:
                return self._done(name, False, "the square must touch the bottom-right corner: location + size must equal 28 in both directions")
            return self._done(name, False, "check the location (row, col) of the top-left pixel")
        if s.target_class != want["target_class"]:
            return self._done(name, False, f"the target class must be Sneaker: look up its index in source.classes ({s.target_class} is {source.classes[s.target_class]!r})")
        if not _close(float(s.prevalence), want["prevalence"]):
            return self._done(name, False, "check the prevalence: the share of Sneakers that get the patch")
        # independent check of the result, pixel by pixel
        n_target = int((source.labels == want["target_class"]).sum())
        flags = patched.patched
        if int(flags.sum()) != round(want["prevalence"] * n_target) or not bool((source.labels[flags] == want["target_class"]).all()):
            return self._done(name, False, "the patched images must be a share of the Sneakers only")
        rows, cols = slice(23, 28), slice(23, 28)
        box = torch.zeros(28, 28, dtype=torch.bool)
        box[rows, cols] = True
        if not torch.equal(patched.masks, flags[:, None, None] & box[None]):
            return self._done(name, False, "the masks do not mark exactly the patch pixels of the patched images")
        if not bool((patched.images[flags][:, :, rows, cols] == 1.0).all()):
            return self._done(name, False, "the patch pixels must be white (value 1.0)")
        outside = ~(flags[:, None, None, None] & box[None, None])
        if not torch.equal(patched.images[outside], source.images[outside]):
            return self._done(name, False, "pixels outside the patch (and unpatched images) must stay as in the source")
        return self._done(name, True, f"correct: {int(flags.sum())} Sneakers carry the square, everything else is untouched")

    def ex01_changed_pixels(self, n_changed, source: ImageDataset, patched: PatchedDataset) -> CheckResult:
        """How many pixel values the patch actually changed (fewer than n_patched × area when some
        patch pixels were white already)."""
        name = "ex01_changed_pixels"
        if (unanswered := self._unanswered(name, n_changed)) is not None:
            return unanswered
        ref = int((patched.images != source.images).sum())
        n = _as_int(n_changed)
        if n is None:
            return self._done(name, False, "the answer must be a whole number of pixel values")
        if n == ref:
            bound = int(patched.patched.sum()) * int(patched.masks[patched.patched][0].sum()) if patched.patched.any() else 0
            why = (" — fewer than n_patched × patch area: some patch pixels were already white"
                   if ref < bound else " — every patch pixel changed")
            return self._done(name, True, "correct" + why)
        if patched.patched.any() and n == int(patched.patched.sum()) * int(patched.masks[patched.patched][0].sum()):
            return self._done(name, False, "that is the prediction n_patched × patch area, an upper bound; now measure: "
                                           "compare patched.images with source.images element-wise and count the differences")
        if n == int(patched.patched.sum()):
            return self._done(name, False, "count changed pixel values, not changed images")
        return self._done(name, False, "count the elements where patched.images differs from source.images (the whole data set)")
