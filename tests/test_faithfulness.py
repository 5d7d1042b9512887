"""Insertion/deletion faithfulness curves against an explicit torch.optim.SGD step computed
independently (copy the model, mask the pixels by brute-force sorting, step, re-measure)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from tiny_models import make_data, make_model

from tfa_tutorial.evaluation.faithfulness import faithfulness_curves


def sgd_delta(model, x_tr, y_tr, x_te, y_te, keep, lr, fill=0.0):
    """ΔL_test after one torch.optim.SGD step on the training images with only ``keep`` pixels."""
    x = torch.where(keep[:, None], x_tr, torch.full_like(x_tr, fill))
    m = copy.deepcopy(model)
    m.eval()  # BatchNorm with running statistics, as in the scores
    with torch.no_grad():
        before = F.cross_entropy(m(x_te), y_te)
    opt = torch.optim.SGD(m.parameters(), lr=lr)
    opt.zero_grad()
    F.cross_entropy(m(x), y_tr).backward()
    opt.step()
    with torch.no_grad():
        return float(F.cross_entropy(m(x_te), y_te) - before)


def top_k_by_sorting(maps, k):
    keep = torch.zeros(maps.shape, dtype=torch.bool)
    for b in range(len(maps)):
        order = torch.argsort(maps[b].flatten(), descending=True)
        keep[b].view(-1)[order[:k]] = True
    return keep


@pytest.fixture
def setup():
    model = make_model("batch", seed=0)
    x_tr, y_tr = make_data(n=5, seed=1)
    x_te, y_te = make_data(n=3, seed=2)
    maps = torch.randn(5, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return model, x_tr, y_tr, x_te, y_te, maps


def test_curves_match_an_explicit_sgd_step(setup):
    model, x_tr, y_tr, x_te, y_te, maps = setup
    ks, lr = (3, 10, 40), 0.5
    out = faithfulness_curves(model, x_tr, y_tr, x_te, y_te, maps, ks=ks, lr=lr, n_random=2)
    assert out["k"].tolist() == list(ks)
    with torch.no_grad():
        assert out["base_loss"] == pytest.approx(float(F.cross_entropy(model(x_te), y_te)), rel=1e-9)
    for i, k in enumerate(ks):
        keep = top_k_by_sorting(maps, k)
        assert float(out["insertion"]["map"][i]) == pytest.approx(sgd_delta(model, x_tr, y_tr, x_te, y_te, keep, lr), rel=1e-6, abs=1e-10)
        assert float(out["deletion"]["map"][i]) == pytest.approx(sgd_delta(model, x_tr, y_tr, x_te, y_te, ~keep, lr), rel=1e-6, abs=1e-10)
    torch.testing.assert_close(out["insertion_advantage"], out["insertion"]["random"] - out["insertion"]["map"])
    torch.testing.assert_close(out["deletion_advantage"], out["deletion"]["map"] - out["deletion"]["random"])
    # k = all pixels: insertion keeps the whole image, deletion removes it; the two ends agree with the step
    full = faithfulness_curves(model, x_tr, y_tr, x_te, y_te, maps, ks=(64,), lr=lr, n_random=1)
    everything = torch.ones(5, 8, 8, dtype=torch.bool)
    assert float(full["insertion"]["map"][0]) == pytest.approx(sgd_delta(model, x_tr, y_tr, x_te, y_te, everything, lr), rel=1e-6)
    assert float(full["insertion"]["random"][0]) == pytest.approx(float(full["insertion"]["map"][0]), rel=1e-9)
    assert float(full["deletion"]["map"][0]) == pytest.approx(sgd_delta(model, x_tr, y_tr, x_te, y_te, ~everything, lr), rel=1e-6)


def test_unreduced_maps_use_their_positive_part_and_dicts_share_the_control(setup):
    model, x_tr, y_tr, x_te, y_te, maps = setup
    signed = maps[:, None].clone()
    reduced = maps.clamp_min(0)
    k = int((reduced > 0).flatten(1).sum(1).min())  # no ties among the kept pixels
    out = faithfulness_curves(model, x_tr, y_tr, x_te, y_te, {"signed": signed, "other": -signed}, ks=(k,), lr=0.3)
    keep = top_k_by_sorting(reduced, k)
    assert float(out["signed"]["insertion"]["map"][0]) == pytest.approx(sgd_delta(model, x_tr, y_tr, x_te, y_te, keep, 0.3), rel=1e-6)
    keep_neg = top_k_by_sorting((-maps).clamp_min(0), k)
    assert float(out["other"]["insertion"]["map"][0]) == pytest.approx(sgd_delta(model, x_tr, y_tr, x_te, y_te, keep_neg, 0.3), rel=1e-6)
    assert torch.equal(out["signed"]["insertion"]["random"], out["other"]["insertion"]["random"]), "one shared control"


def test_faithfulness_rejects_bad_input(setup):
    model, x_tr, y_tr, x_te, y_te, maps = setup
    with pytest.raises(ValueError, match="every k"):
        faithfulness_curves(model, x_tr, y_tr, x_te, y_te, maps, ks=(0,))
    with pytest.raises(ValueError, match="every k"):
        faithfulness_curves(model, x_tr, y_tr, x_te, y_te, maps, ks=(65,))
    with pytest.raises(ValueError, match="empty"):
        faithfulness_curves(model, x_tr, y_tr, x_te, y_te, {}, ks=(3,))
    with pytest.raises(ValueError, match="ks is empty"):
        faithfulness_curves(model, x_tr, y_tr, x_te, y_te, maps, ks=())
    with pytest.raises(ValueError, match="maps must be"):
        faithfulness_curves(model, x_tr, y_tr, x_te, y_te, maps[:, :4], ks=(3,))
    with pytest.raises(ValueError, match="maps must be"):
        faithfulness_curves(model, x_tr, y_tr, x_te, y_te, maps[:, None, :4], ks=(3,))
