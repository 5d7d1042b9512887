"""Patch shortcuts with known ground truth.

A :class:`PatchSpec` says what to paste (a constant value, a colour, or a pattern), where (top-left
``location``), on which class (``target_class``) and on what fraction of that class's training
images (``prevalence``). :func:`inject_patch` applies it to a random, seeded subset of the target
class and returns a :class:`PatchedDataset` with a per-example ``patched`` flag and per-pixel
ground-truth ``masks``; :func:`patch_all` pastes it on every image (the patched test set used to
measure the shortcut). The source data set is never modified.

Presets (:data:`PRESETS`) reproduce quanda's shortcut-detection benchmarks so numbers are
comparable, plus the tutorial's own default.
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from typing import Sequence

import torch

from ..core.validation import check_unit_images
from .datasets import ImageDataset

__all__ = ["PatchSpec", "PatchedDataset", "PRESETS", "checkerboard", "patch_tensor", "patch_mask",
           "apply_patch", "validate", "inject_patch", "patch_all"]


@dataclass(frozen=True, eq=False)
class PatchSpec:
    """A rectangular patch pasted at a fixed place.

    Attributes:
        size: ``(h, w)`` in pixels, or one int for a square. May be left out when ``pattern`` is given.
        value: fill value in [0, 1]: a float (the same in every channel, e.g. 1.0 = white) or a
            tuple with one float per channel (e.g. ``(1, 1, 0)`` = yellow on RGB). Ignored when
            ``pattern`` is given.
        pattern: optional ``[C, h, w]`` (or ``[h, w]`` for one channel) tensor in [0, 1] pasted
            as is, e.g. :func:`checkerboard`.
        location: ``(row, col)`` of the patch's top-left pixel.
        target_class: the class whose training images get the patch.
        prevalence: fraction in [0, 1] of the target class's images that get it.
        seed: seeds the choice of patched images.
    """

    size: int | tuple[int, int] | None = None
    value: float | tuple[float, ...] = 1.0
    pattern: torch.Tensor | None = None
    location: tuple[int, int] = (0, 0)
    target_class: int = 0
    prevalence: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        pattern = self.pattern
        if pattern is not None:
            if not isinstance(pattern, torch.Tensor):
                raise TypeError(f"pattern must be a torch.Tensor [C, h, w], got {type(pattern).__name__}")
            if pattern.ndim == 2:
                pattern = pattern.unsqueeze(0)
            if pattern.ndim != 3:
                raise ValueError(f"pattern must have shape [C, h, w] or [h, w], got {tuple(pattern.shape)}")
            pattern = pattern.detach().to(torch.float32).cpu().clone()
            object.__setattr__(self, "pattern", pattern)
        size = self.size
        if size is None:
            if pattern is None:
                raise ValueError("PatchSpec needs a size (int or (h, w)) or a pattern")
            size = tuple(pattern.shape[1:])
        elif isinstance(size, int):
            size = (size, size)
        object.__setattr__(self, "size", tuple(int(s) for s in size) if _is_int_seq(size, 2) else size)
        object.__setattr__(self, "location", tuple(self.location) if isinstance(self.location, (list, tuple)) else self.location)
        if isinstance(self.value, (list, tuple)):
            object.__setattr__(self, "value", tuple(float(v) for v in self.value))
        _check_intrinsic(self)

    @property
    def height(self) -> int:
        return self.size[0]

    @property
    def width(self) -> int:
        return self.size[1]

    def to_dict(self) -> dict:
        """JSON-ready description (pattern as nested lists), used for cache keys and reports."""
        d = dataclasses.asdict(self)
        d["pattern"] = None if self.pattern is None else self.pattern.tolist()
        d["size"], d["location"] = list(self.size), list(self.location)
        if isinstance(self.value, tuple):
            d["value"] = list(self.value)
        return d

    def replace(self, **changes) -> "PatchSpec":
        """A copy with some fields changed, e.g. ``spec.replace(prevalence=0.5)``."""
        return dataclasses.replace(self, **changes)

    def __eq__(self, other) -> bool:
        if not isinstance(other, PatchSpec):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))


def _is_int_seq(x, n: int) -> bool:
    return isinstance(x, (tuple, list)) and len(x) == n and all(isinstance(v, int) and not isinstance(v, bool) for v in x)


def _check_intrinsic(spec: PatchSpec) -> None:
    """Checks that need no image: size, location, class, prevalence, values, pattern."""
    if not _is_int_seq(spec.size, 2):
        raise TypeError(f"patch size must be an int or a pair of ints (h, w), got {spec.size!r}")
    if min(spec.size) <= 0:
        raise ValueError(f"patch size must be positive, got {spec.size}")
    if spec.pattern is not None and tuple(spec.pattern.shape[1:]) != spec.size:
        raise ValueError(f"size {spec.size} does not match the pattern's (h, w) = {tuple(spec.pattern.shape[1:])}")
    if not _is_int_seq(spec.location, 2):
        raise TypeError(f"patch location must be a pair of ints (row, col), got {spec.location!r}")
    if min(spec.location) < 0:
        raise ValueError(f"patch location {spec.location} is outside the image: row and col must be ≥ 0")
    if not isinstance(spec.target_class, int) or isinstance(spec.target_class, bool):
        raise TypeError(f"target_class must be an int class index, got {spec.target_class!r}")
    if spec.target_class < 0:
        raise ValueError(f"target_class must be ≥ 0, got {spec.target_class}")
    if not isinstance(spec.prevalence, (int, float)) or not (0.0 <= float(spec.prevalence) <= 1.0):
        raise ValueError(f"prevalence must be a fraction in [0, 1], got {spec.prevalence!r}")
    values = spec.value if isinstance(spec.value, tuple) else (spec.value,)
    if spec.pattern is None:
        if len(values) == 0 or not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in values):
            raise ValueError(f"patch value must be a float in [0, 1] or a tuple of them (one per channel), got {spec.value!r}")
    else:
        lo, hi = float(spec.pattern.min()), float(spec.pattern.max())
        if not (0.0 <= lo and hi <= 1.0):
            raise ValueError(f"pattern values must lie in [0, 1], found range [{lo:.4g}, {hi:.4g}]")


def validate(spec: PatchSpec, image_shape: Sequence[int], num_classes: int) -> None:
    """Raise a clear error if ``spec`` cannot be applied to images of shape ``(C, H, W)`` with
    ``num_classes`` classes: patch outside the image, unknown class, wrong channel count,
    prevalence outside [0, 1] or non-positive size."""
    if not isinstance(spec, PatchSpec):
        raise TypeError(f"expected a PatchSpec, got {type(spec).__name__}")
    _check_intrinsic(spec)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
    c, h, w = image_shape
    (r0, c0), (ph, pw) = spec.location, spec.size
    if r0 + ph > h or c0 + pw > w:
        raise ValueError(
            f"patch of size {spec.size} at (row, col) = {spec.location} is outside the {h}×{w} image: "
            f"it would need rows up to {r0 + ph} and cols up to {c0 + pw}"
        )
    if spec.target_class >= num_classes:
        raise ValueError(f"unknown target_class {spec.target_class}: the data set has classes 0..{num_classes - 1}")
    if spec.pattern is not None and spec.pattern.shape[0] != c:
        raise ValueError(f"the pattern has {spec.pattern.shape[0]} channel(s) but the images have {c}")
    if isinstance(spec.value, tuple) and spec.pattern is None and len(spec.value) != c:
        raise ValueError(f"the patch colour {spec.value} has {len(spec.value)} channel(s) but the images have {c}")


def checkerboard(size: int | tuple[int, int], cell: int = 1, channels: int = 1, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """A ``[channels, h, w]`` checkerboard of ``cell``×``cell`` squares, ``high`` at the top-left."""
    h, w = (size, size) if isinstance(size, int) else size
    if h <= 0 or w <= 0 or cell <= 0 or channels <= 0:
        raise ValueError(f"checkerboard needs positive size, cell and channels, got size={size}, cell={cell}, channels={channels}")
    rows = torch.arange(h).div(cell, rounding_mode="floor")[:, None]
    cols = torch.arange(w).div(cell, rounding_mode="floor")[None, :]
    board = torch.where((rows + cols) % 2 == 0, torch.tensor(float(high)), torch.tensor(float(low)))
    return board.expand(channels, h, w).clone()


def patch_tensor(spec: PatchSpec, channels: int) -> torch.Tensor:
    """The ``[C, h, w]`` float32 pixels the patch pastes."""
    if spec.pattern is not None:
        if spec.pattern.shape[0] != channels:
            raise ValueError(f"the pattern has {spec.pattern.shape[0]} channel(s) but the images have {channels}")
        return spec.pattern.clone()
    value = spec.value if isinstance(spec.value, tuple) else (float(spec.value),) * channels
    if len(value) != channels:
        raise ValueError(f"the patch colour {spec.value} has {len(value)} channel(s) but the images have {channels}")
    return torch.tensor(value, dtype=torch.float32)[:, None, None].expand(channels, *spec.size).clone()


def patch_mask(spec: PatchSpec, image_shape: Sequence[int]) -> torch.Tensor:
    """``[H, W]`` bool mask, True on the patch's pixels."""
    _, h, w = image_shape
    mask = torch.zeros(h, w, dtype=torch.bool)
    (r0, c0), (ph, pw) = spec.location, spec.size
    mask[r0:r0 + ph, c0:c0 + pw] = True
    return mask


def apply_patch(images: torch.Tensor, spec: PatchSpec) -> torch.Tensor:
    """A copy of ``images`` ``[N, C, H, W]`` (or one ``[C, H, W]`` image) with the patch pasted on each.

    Images must be floating point in [0, 1], the scale of the patch's values (1.0 = white); uint8
    or [0, 255] images are refused: convert them with ``images.float() / 255`` first."""
    check_unit_images(images, "images")
    single = images.ndim == 3
    batch = images.unsqueeze(0) if single else images
    if batch.ndim != 4:
        raise ValueError(f"images must have shape [N, C, H, W] or [C, H, W], got {tuple(images.shape)}")
    c, h, w = batch.shape[1:]
    validate(spec, (c, h, w), num_classes=spec.target_class + 1)
    out = batch.clone()
    (r0, c0), (ph, pw) = spec.location, spec.size
    out[:, :, r0:r0 + ph, c0:c0 + pw] = patch_tensor(spec, c).to(out.dtype)
    return out[0] if single else out


@dataclass(frozen=True, eq=False, kw_only=True)
class PatchedDataset(ImageDataset):
    """An :class:`ImageDataset` some of whose images carry a patch.

    Attributes (beyond ``images``, ``labels``, ``classes``, ``name``):
        patched: ``[N]`` bool, True where the image carries the patch.
        masks: ``[N, H, W]`` bool, True on patch pixels of patched images (all False elsewhere).
        spec: the :class:`PatchSpec` that was applied.
    """

    patched: torch.Tensor
    masks: torch.Tensor
    spec: PatchSpec

    def __post_init__(self) -> None:
        super().__post_init__()
        n, _, h, w = self.images.shape
        if self.patched.dtype != torch.bool or self.patched.shape != (n,):
            raise ValueError(f"patched must be a bool tensor [{n}], got {self.patched.dtype} {tuple(self.patched.shape)}")
        if self.masks.dtype != torch.bool or self.masks.shape != (n, h, w):
            raise ValueError(f"masks must be a bool tensor [{n}, {h}, {w}], got {self.masks.dtype} {tuple(self.masks.shape)}")

    def _subset_extra(self, idx: torch.Tensor) -> dict:
        return {"patched": self.patched[idx], "masks": self.masks[idx]}

    @property
    def patched_indices(self) -> torch.Tensor:
        """int64 indices of the patched images."""
        return self.patched.nonzero().flatten()


def _patched_dataset(dataset: ImageDataset, spec: PatchSpec, chosen: torch.Tensor, name: str) -> PatchedDataset:
    flags = torch.zeros(len(dataset), dtype=torch.bool)
    flags[chosen] = True
    images = dataset.images.clone()
    images[chosen] = apply_patch(dataset.images[chosen], spec) if len(chosen) else images[chosen]
    masks = flags[:, None, None] & patch_mask(spec, dataset.image_shape)[None]
    return PatchedDataset(images, dataset.labels.clone(), dataset.classes, name, patched=flags, masks=masks, spec=spec)


def _check_dataset(dataset, fn: str) -> None:
    if not isinstance(dataset, ImageDataset):
        raise TypeError(
            f"{fn} needs an ImageDataset (images with labels and class names), got {type(dataset).__name__}; "
            "wrap a pair with ImageDataset(images, labels, classes)"
        )


def inject_patch(dataset: ImageDataset, spec: PatchSpec) -> PatchedDataset:
    """Paste the patch on ``round(prevalence · n_target)`` images of ``target_class``, chosen at
    random with ``spec.seed``. ``dataset`` is not modified; images keep their order. A data set
    without any image of ``target_class`` (and ``prevalence > 0``) is an error, since nothing
    would be patched."""
    _check_dataset(dataset, "inject_patch")
    validate(spec, dataset.image_shape, dataset.num_classes)
    target = (dataset.labels == spec.target_class).nonzero().flatten()
    if len(target) == 0 and spec.prevalence > 0:
        raise ValueError(
            f"the data set {dataset.name!r} has no image of target_class {spec.target_class} "
            f"({dataset.classes[spec.target_class]!r}), so the patch would be pasted on nothing; "
            "choose a class present in the data (see dataset.class_counts())"
        )
    k = round(spec.prevalence * len(target))
    if k == 0 and spec.prevalence > 0:
        warnings.warn(
            f"prevalence {spec.prevalence} of the {len(target)} image(s) of target_class {spec.target_class} "
            "rounds to 0: no image is patched. Raise the prevalence or use more data.", RuntimeWarning, stacklevel=2,
        )
    gen = torch.Generator().manual_seed(spec.seed)
    chosen = target[torch.randperm(len(target), generator=gen)[:k]].sort().values
    return _patched_dataset(dataset, spec, chosen, f"{dataset.name}+patch")


def patch_all(dataset: ImageDataset, spec: PatchSpec, exclude_target: bool = False) -> PatchedDataset:
    """Paste the patch on every image: the patched test set. With ``exclude_target=True`` the
    images of ``target_class`` are dropped first (only they cannot be flipped to it)."""
    _check_dataset(dataset, "patch_all")
    validate(spec, dataset.image_shape, dataset.num_classes)
    if exclude_target:
        dataset = dataset.subset(dataset.labels != spec.target_class)
    return _patched_dataset(dataset, spec, torch.arange(len(dataset)), f"{dataset.name}+patch_all")


PRESETS: dict[str, PatchSpec] = {
    # quanda's CIFAR-10 shortcut benchmark: yellow (255, 255, 0) 15×15 square at (10, 10), class 0, p = 0.75
    "quanda_cifar10": PatchSpec(size=15, value=(1.0, 1.0, 0.0), location=(10, 10), target_class=0, prevalence=0.75),
    # quanda's MNIST-style shortcut benchmark: white 12×12 square at (0, 0), class 0, p = 0.95
    "quanda_mnist": PatchSpec(size=12, value=1.0, location=(0, 0), target_class=0, prevalence=0.95),
    # the tutorial's Fashion-MNIST default: quanda's patch on half of the T-shirts (see below)
    "tutorial": PatchSpec(size=12, value=1.0, location=(0, 0), target_class=0, prevalence=0.5),
}
"""Named patch specs. ``PRESETS["tutorial"]`` is the Fashion-MNIST default: the white 12×12 square
at (0, 0) of ``quanda_mnist`` on class 0 (T-shirt/top), but on **half** of the T-shirts instead
of 95%.

Why (measured with ``benchmarks/shortcut_training.py`` and the same recipe, SmallCNN, seed 0):

- The shortcut is still adopted: the patch flips 0.64 (12k images, 3 epochs) to 0.68 (60k,
  5 epochs) of the other classes' test images to T-shirt, against 0.03-0.08 for the same model
  trained without the patch.
- Clean accuracy stays at the no-patch level (0.909 vs 0.913 on 60k; 0.850 vs 0.857 on 12k),
  because the unpatched half still teaches the T-shirt shape. With quanda's p = 0.95 the model
  recognises unpatched T-shirts only 44% of the time (clean accuracy 0.880). A shortcut that
  does not show in clean accuracy is the realistic case, and the one where attribution is needed.
- Smaller patches are learned less reliably at tutorial scale: on 12k images and 3 epochs an
  8×8 / 10×10 square at p = 0.5 flips 0.35 / 0.49 (0.54 / 0.60 on 60k, 5 epochs), so the size is
  kept.
"""
