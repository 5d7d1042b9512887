"""Patch specs, presets, injection (exact counts, masks, no mutation) and validation errors."""
from __future__ import annotations

import json

import pytest
import torch

from tfa_tutorial.data.datasets import ImageDataset
from tfa_tutorial.data.patches import (
    PRESETS,
    PatchedDataset,
    PatchSpec,
    apply_patch,
    checkerboard,
    inject_patch,
    patch_all,
    patch_mask,
    validate,
)


def _ds(n_per_class=(20, 30, 10), c=1, h=12, w=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate(n_per_class)])
    labels = labels[torch.randperm(len(labels), generator=g)]  # classes interleaved
    images = torch.rand(len(labels), c, h, w, generator=g) * 0.5  # never exactly 1.0
    return ImageDataset(images, labels, tuple(f"c{k}" for k in range(len(n_per_class))), "toy")


# ------------------------------------------------------------------ presets and specs


def test_quanda_presets():
    cifar = PRESETS["quanda_cifar10"]
    assert cifar.size == (15, 15) and cifar.value == (1.0, 1.0, 0.0) and cifar.location == (10, 10)
    assert cifar.target_class == 0 and cifar.prevalence == 0.75 and cifar.pattern is None
    mnist = PRESETS["quanda_mnist"]
    assert mnist.size == (12, 12) and mnist.value == 1.0 and mnist.location == (0, 0)
    assert mnist.target_class == 0 and mnist.prevalence == 0.95
    validate(cifar, (3, 32, 32), 10)
    validate(mnist, (1, 28, 28), 10)
    # the tutorial default is quanda's MNIST patch on half of the target class (see PRESETS' docs)
    assert PRESETS["tutorial"] == mnist.replace(prevalence=0.5)
    validate(PRESETS["tutorial"], (1, 28, 28), 10)


def test_cifar_preset_paints_yellow():
    ds = ImageDataset(torch.zeros(4, 3, 32, 32), torch.tensor([0, 0, 1, 2]), tuple("abc"), "rgb")
    out = patch_all(ds, PRESETS["quanda_cifar10"])
    assert out.images[:, :, 10:25, 10:25].amin(dim=(2, 3)).tolist() == [[1.0, 1.0, 0.0]] * 4
    assert out.images[:, 2].sum() == 0 and out.images[:, 0].sum() == 4 * 15 * 15
    assert out.masks.sum(dim=(1, 2)).tolist() == [225] * 4


def test_spec_normalises_and_round_trips():
    spec = PatchSpec(size=[3, 4], value=[1, 0, 0], location=[2, 1], target_class=1, prevalence=0.5, seed=7)
    assert spec.size == (3, 4) and spec.value == (1.0, 0.0, 0.0) and spec.location == (2, 1)
    d = spec.to_dict()
    json.dumps(d)
    assert PatchSpec(**{**d, "size": tuple(d["size"])}) == spec
    assert spec.replace(prevalence=0.25).prevalence == 0.25 and spec.prevalence == 0.5
    assert spec != spec.replace(seed=8) and hash(spec) == hash(spec.replace())
    board = PatchSpec(pattern=checkerboard(4))
    assert board.size == (4, 4) and board == PatchSpec(pattern=checkerboard(4))


def test_checkerboard():
    b = checkerboard((2, 4), cell=1)
    assert b.shape == (1, 2, 4) and b[0].tolist() == [[1, 0, 1, 0], [0, 1, 0, 1]]
    b2 = checkerboard(4, cell=2, channels=3, low=0.2, high=0.9)
    assert b2.shape == (3, 4, 4)
    expected = torch.tensor([[0.9, 0.9, 0.2, 0.2]] * 2 + [[0.2, 0.2, 0.9, 0.9]] * 2)
    assert torch.allclose(b2[1], expected) and torch.equal(b2[0], b2[2])


# ------------------------------------------------------------------ injection


@pytest.mark.parametrize("prevalence, expected", [(0.0, 0), (0.5, 10), (0.95, 19), (0.33, 7), (1.0, 20)])
def test_inject_exact_count_on_target_only(prevalence, expected):
    ds = _ds()
    out = inject_patch(ds, PatchSpec(size=3, prevalence=prevalence, target_class=0))
    assert isinstance(out, PatchedDataset) and len(out) == len(ds)
    assert int(out.patched.sum()) == expected == round(prevalence * 20)
    assert (out.labels[out.patched] == 0).all()
    assert torch.equal(out.labels, ds.labels)


def test_inject_masks_pixels_and_no_mutation():
    ds = _ds()
    before = ds.images.clone()
    spec = PatchSpec(size=(3, 2), value=1.0, location=(4, 5), target_class=1, prevalence=0.5, seed=1)
    out = inject_patch(ds, spec)
    assert torch.equal(ds.images, before)  # source untouched
    assert out.patched.sum() == 15 and out.masks.dtype == torch.bool and out.masks.shape == (60, 12, 10)
    box = torch.zeros(12, 10, dtype=torch.bool)
    box[4:7, 5:7] = True
    assert torch.equal(patch_mask(spec, (1, 12, 10)), box)
    for i in range(len(out)):
        if out.patched[i]:
            assert torch.equal(out.masks[i], box)
            assert (out.images[i, 0][box] == 1.0).all()
            assert torch.equal(out.images[i, 0][~box], before[i, 0][~box])
        else:
            assert not out.masks[i].any()
            assert torch.equal(out.images[i], before[i])
    assert torch.equal(out.patched_indices, out.patched.nonzero().flatten())


def test_inject_is_seeded():
    ds = _ds()
    a = inject_patch(ds, PatchSpec(size=2, prevalence=0.5, seed=0))
    b = inject_patch(ds, PatchSpec(size=2, prevalence=0.5, seed=0))
    c = inject_patch(ds, PatchSpec(size=2, prevalence=0.5, seed=1))
    assert torch.equal(a.patched, b.patched) and not torch.equal(a.patched, c.patched)


def test_pattern_and_colour_patches():
    rgb = _ds(c=3)
    pattern = torch.stack([checkerboard(4)[0], torch.zeros(4, 4), torch.full((4, 4), 0.5)])
    out = patch_all(rgb, PatchSpec(pattern=pattern, location=(1, 2)))
    assert torch.equal(out.images[:, :, 1:5, 2:6], pattern.expand(len(rgb), 3, 4, 4))
    red = patch_all(rgb, PatchSpec(size=2, value=(1.0, 0.0, 0.25), location=(10, 8)))
    assert red.images[0, :, 10:12, 8:10].flatten(1).tolist() == [[1.0] * 4, [0.0] * 4, [0.25] * 4]
    gray_on_rgb = patch_all(rgb, PatchSpec(size=1, value=0.75))
    assert gray_on_rgb.images[:, :, 0, 0].unique().tolist() == [0.75]


def test_patch_all_and_exclude_target():
    ds = _ds()
    spec = PatchSpec(size=2, target_class=2, prevalence=0.1)  # prevalence is ignored by patch_all
    every = patch_all(ds, spec)
    assert every.patched.all() and len(every) == 60 and every.masks[:, :2, :2].all()
    others = patch_all(ds, spec, exclude_target=True)
    assert len(others) == 50 and (others.labels != 2).all() and others.patched.all()


def test_patched_subset_keeps_flags_aligned():
    out = inject_patch(_ds(), PatchSpec(size=2, prevalence=0.5))
    idx = torch.cat([out.patched_indices[:3], (~out.patched).nonzero().flatten()[:2]])
    sub = out.subset(idx)
    assert isinstance(sub, PatchedDataset) and sub.spec == out.spec
    assert sub.patched.tolist() == [True] * 3 + [False] * 2
    assert sub.masks[:3].any(dim=(1, 2)).all() and not sub.masks[3:].any()


def test_apply_patch_single_image_and_copy():
    img = torch.zeros(1, 5, 5)
    out = apply_patch(img, PatchSpec(size=2, value=0.5, location=(3, 3)))
    assert img.sum() == 0 and out.shape == (1, 5, 5) and out.sum() == 2.0


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    "make, image_shape, match",
    [
        (lambda: PatchSpec(size=12, location=(20, 0)), (1, 28, 28), "outside the 28×28 image"),
        (lambda: PatchSpec(size=(4, 30)), (1, 28, 28), "outside"),
        (lambda: PatchSpec(size=4, location=(-1, 0)), (1, 28, 28), "outside the image"),
        (lambda: PatchSpec(size=4, prevalence=1.5), (1, 28, 28), r"prevalence.*\[0, 1\]"),
        (lambda: PatchSpec(size=4, prevalence=-0.1), (1, 28, 28), r"prevalence.*\[0, 1\]"),
        (lambda: PatchSpec(size=4, target_class=10), (1, 28, 28), "unknown target_class 10"),
        (lambda: PatchSpec(size=4, target_class=-1), (1, 28, 28), "target_class"),
        (lambda: PatchSpec(size=4, value=(1.0, 1.0, 0.0)), (1, 28, 28), "3 channel.*images have 1"),
        (lambda: PatchSpec(size=4, value=(1.0,)), (3, 32, 32), "1 channel.*images have 3"),
        (lambda: PatchSpec(pattern=checkerboard(4, channels=1)), (3, 32, 32), "pattern has 1 channel"),
        (lambda: PatchSpec(size=0), (1, 28, 28), "positive"),
        (lambda: PatchSpec(size=(3, -2)), (1, 28, 28), "positive"),
        (lambda: PatchSpec(size=2.5), (1, 28, 28), "int"),
        (lambda: PatchSpec(size=4, value=1.2), (1, 28, 28), r"value.*\[0, 1\]"),
        (lambda: PatchSpec(pattern=checkerboard(4, high=2.0)), (1, 28, 28), r"pattern values.*\[0, 1\]"),
        (lambda: PatchSpec(size=3, pattern=checkerboard(4)), (1, 28, 28), "does not match"),
        (lambda: PatchSpec(), (1, 28, 28), "needs a size"),
    ],
)
def test_invalid_specs_raise_clear_errors(make, image_shape, match):
    with pytest.raises((ValueError, TypeError), match=match):
        validate(make(), image_shape, num_classes=10)


def test_inject_validates_against_the_data():
    ds = _ds()  # 3 classes, 1×12×10
    with pytest.raises(ValueError, match="unknown target_class 3"):
        inject_patch(ds, PatchSpec(size=2, target_class=3))
    with pytest.raises(ValueError, match="outside"):
        inject_patch(ds, PatchSpec(size=11))
