"""Two-patch data and the specificity measure: planted answers (a map that ignores the test image
scores exactly 0; a map that copies the test image's patch scores exactly 1)."""
import pytest
import torch
from tiny_models import make_model

from tfa_tutorial.data.datasets import ImageDataset
from tfa_tutorial.data.patches import PatchSpec, checkerboard, patch_mask
from tfa_tutorial.evaluation.evidence import specificity_evidence
from tfa_tutorial.evaluation.specificity import TwoPatchExperiment, two_patch_data

A = PatchSpec(size=3, value=1.0, location=(0, 0), target_class=0)
B = PatchSpec(pattern=checkerboard(3), location=(5, 5), target_class=0)


def dataset(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.5
    y = torch.arange(n) % 4
    return ImageDataset(x, y, tuple("abcd"), "toy")


def test_two_patch_data_counts_masks_and_pixels():
    d = dataset()
    data, has_a, has_b = two_patch_data(d, (A, B), 0, (0.2, 0.2, 0.4), seed=1)
    target = d.labels == 0  # 10 images
    assert int((has_a & ~has_b).sum()) == 2 and int((has_b & ~has_a).sum()) == 2 and int((has_a & has_b).sum()) == 4
    assert not (has_a | has_b)[~target].any()
    ma, mb = patch_mask(A, (1, 8, 8)), patch_mask(B, (1, 8, 8))
    assert torch.equal(data.masks, (has_a[:, None, None] & ma) | (has_b[:, None, None] & mb))
    changed = (data.images != d.images).squeeze(1)
    assert not changed[~(has_a | has_b)].any()
    assert not (changed & ~data.masks).any()  # only patch pixels change
    assert torch.all(data.images[has_a][:, 0][:, ma] == 1.0)
    assert torch.equal(data.images[has_b][:, 0, 5:8, 5:8], checkerboard(3).expand(int(has_b.sum()), 3, 3))


def test_bad_fractions_and_overlap():
    d = dataset()
    with pytest.raises(ValueError, match="fractions"):
        two_patch_data(d, (A, B), 0, (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="overlap"):
        two_patch_data(d, (A, A.replace(location=(1, 1))), 0)


def _exp():
    d = dataset()
    data, has_a, has_b = two_patch_data(d, (A, B), 0, (0.2, 0.2, 0.4), seed=1)
    m = make_model("batch", dtype=torch.float32)
    test = dataset(12, seed=3)
    return TwoPatchExperiment((A, B), data, has_a, has_b, test, m, m, {}, 0)


def test_specificity_is_zero_for_test_independent_and_one_for_oracle_maps():
    exp2 = _exp()
    fams = {
        "ignores the test image": lambda ctx: ctx.x_train.clone(),
        "oracle: the test image's own patch": lambda ctx: (ctx.x_test - ctx.x_counterfactual).abs().expand_as(ctx.x_train).clone(),
        "anti-oracle": lambda ctx: (ctx.x_train * ((ctx.x_test - ctx.x_counterfactual).abs() == 0)).clone(),
    }
    r = specificity_evidence(exp2, top_k=2, families=fams, test_indices=torch.tensor([1, 2, 3]))
    s = r["families"]
    assert s["ignores the test image"]["shortcut model"]["specificity"] == pytest.approx(0.0, abs=1e-12)
    assert s["oracle: the test image's own patch"]["shortcut model"]["specificity"] == pytest.approx(1.0)
    assert s["oracle: the test image's own patch"]["shortcut model"]["other mass"] == pytest.approx(0.0)
    assert s["anti-oracle"]["shortcut model"]["specificity"] < 0
    assert r["n_test"] == 3 and r["n_pairs"] == 6
