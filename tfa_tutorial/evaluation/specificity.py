"""The two-patch experiment: does a training-feature map depend on the *test* image?

Training images of the target class carry patch A (a white square, top-left), patch B (a
checkerboard, bottom-right), both, or neither. Test images of other classes get only A or only B
and flip to the target class. For a training image that carries **both** patches, a map that
explains *this* test prediction should put its mass on the patch the test image carries and move
when the test image changes; the two-step baseline (FA of the training image's own label) cannot,
because it never sees the test image.

    specificity(i, j) = ½ [ (m_A − m_B)(M(x_i | x_j^A)) + (m_B − m_A)(M(x_i | x_j^B)) ]

with m_A, m_B the relevance mass on patch A / B. It is 0 by construction for any map that ignores
the test image, +1 for a map that moves entirely onto the test image's patch.

The two patches differ in *pattern* as well as position on purpose: conv weight gradients sum over
positions, so two identical squares in different corners give nearly the same parameter gradient
and no gradient-based score could tell them apart (a property of Grad-Cos, not of any map).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.mode import fast_mode
from ..data.datasets import ImageDataset
from ..data.patches import (
    PRESETS,
    PatchedDataset,
    PatchSpec,
    apply_patch,
    checkerboard,
    patch_mask,
)
from ..training.experiment import (
    course_data,
    experiment_settings,
    flipped_indices,
    train_course_model,
)
from ..training.train import shortcut_report

__all__ = ["TWO_PATCHES", "TwoPatchExperiment", "two_patch_data", "two_patch_experiment", "normalised_specificity"]

#: patch A: white 10×10 square at the top-left; patch B: 10×10 checkerboard (2-px cells) at the bottom-right.
TWO_PATCHES = (
    PatchSpec(size=10, value=1.0, location=(0, 0), target_class=0),
    PatchSpec(pattern=checkerboard(10, cell=2), location=(18, 18), target_class=0),
)


def two_patch_data(
    dataset: ImageDataset, patches=TWO_PATCHES, target_class: int = 0,
    fractions: tuple[float, float, float] = (0.3, 0.3, 0.3), seed: int = 0,
) -> tuple[PatchedDataset, torch.Tensor, torch.Tensor]:
    """Paste A only / B only / both on ``fractions`` of the target class's images (the rest keep
    none). Returns ``(data, has_a [N], has_b [N])``; ``data.patched`` = has_a | has_b and
    ``data.masks`` ``[N, H, W]`` the union of both masks where present."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) > 1:
        raise ValueError(f"fractions (A only, B only, both) must be 3 non-negative numbers summing to ≤ 1, got {fractions}")
    a, b = patches
    target = (dataset.labels == target_class).nonzero().flatten()
    order = target[torch.randperm(len(target), generator=torch.Generator().manual_seed(seed))]
    n = [round(f * len(target)) for f in fractions]
    only_a, only_b, both = order[:n[0]], order[n[0]:n[0] + n[1]], order[n[0] + n[1]:n[0] + n[1] + n[2]]
    has_a = torch.zeros(len(dataset), dtype=torch.bool)
    has_b = torch.zeros(len(dataset), dtype=torch.bool)
    has_a[torch.cat([only_a, both])] = True
    has_b[torch.cat([only_b, both])] = True
    images = dataset.images.clone()
    images[has_a] = apply_patch(images[has_a], a) if has_a.any() else images[has_a]
    images[has_b] = apply_patch(images[has_b], b) if has_b.any() else images[has_b]
    ma, mb = patch_mask(a, dataset.image_shape), patch_mask(b, dataset.image_shape)
    if (ma & mb).any():
        raise ValueError("the two patches overlap: specificity needs disjoint masks")
    masks = (has_a[:, None, None] & ma) | (has_b[:, None, None] & mb)
    data = PatchedDataset(images, dataset.labels.clone(), dataset.classes, f"{dataset.name}+two_patches",
                          patched=has_a | has_b, masks=masks, spec=a)
    return data, has_a, has_b


def normalised_specificity(matching_mass: float, other_mass: float) -> float | None:
    """(m_match − m_other) / (m_match + m_other) of a map's mean relevance masses on the matching
    and the other patch: in [−1, 1] whatever share of the map lies on the patches, so a map that
    puts little mass on either is still comparable. ``None`` when both masses are 0 (the map has
    no positive mass on either patch: undefined, reported as such, never as 0). Negative or
    non-finite masses raise ValueError."""
    import math

    m, o = float(matching_mass), float(other_mass)
    if not (math.isfinite(m) and math.isfinite(o)) or m < 0 or o < 0:
        raise ValueError(f"masses must be finite and ≥ 0, got matching {m!r}, other {o!r}")
    if m + o == 0:
        return None
    return (m - o) / (m + o)


@dataclass
class TwoPatchExperiment:
    """Data and models of the two-patch experiment (see :func:`two_patch_experiment`)."""

    patches: tuple[PatchSpec, PatchSpec]
    train: PatchedDataset
    has_a: torch.Tensor
    has_b: torch.Tensor
    test: ImageDataset
    model: nn.Module
    clean_model: nn.Module
    settings: dict
    seed: int
    reports: dict = field(default_factory=dict)

    @property
    def mask_a(self) -> torch.Tensor:
        """``[H, W]`` bool mask of patch A."""
        return patch_mask(self.patches[0], self.train.image_shape)

    @property
    def mask_b(self) -> torch.Tensor:
        return patch_mask(self.patches[1], self.train.image_shape)

    def both_indices(self) -> torch.Tensor:
        """Training images that carry both patches."""
        return (self.has_a & self.has_b).nonzero().flatten()

    def flipped_by_both(self, model: nn.Module | None = None) -> torch.Tensor:
        """Other-class test images classified correctly when clean that flip to the target class
        with patch A alone *and* with patch B alone."""
        return flipped_indices(model or self.model, self.test, [apply_patch(self.test.images, p) for p in self.patches],
                               self.patches[0].target_class)


def two_patch_experiment(
    seed: int = 0, fast: bool | None = None, fractions=(0.3, 0.3, 0.3), patches=TWO_PATCHES,
    progress: bool = False,
) -> TwoPatchExperiment:
    """Train (or load from cache) a SmallCNN on Fashion-MNIST with the two patches on the target
    class, and the same model without patches; report each patch's flip rate."""
    settings = experiment_settings(fast_mode() if fast is None else fast)
    train, test = course_data(settings, seed)
    data, has_a, has_b = two_patch_data(train, patches, patches[0].target_class, fractions, seed)
    config = {"data": "fashion_mnist", **settings, "two_patches": [p.to_dict() for p in patches], "fractions": list(fractions)}
    model = train_course_model("two_patch", data, config, settings, seed, progress)
    # the same config as shortcut_experiment's clean model, so the cached model is shared
    clean_config = {"data": "fashion_mnist", **settings, "spec": PRESETS["tutorial"]}
    clean = train_course_model("clean", train, clean_config, settings, seed, progress)
    exp = TwoPatchExperiment(tuple(patches), data, has_a, has_b, test, model, clean, settings, seed)
    for name, p in zip("AB", patches):
        exp.reports[f"patch {name}"] = shortcut_report(model, test, p)
        exp.reports[f"patch {name}, clean model"] = shortcut_report(clean, test, p)
    return exp
