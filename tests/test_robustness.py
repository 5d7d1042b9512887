"""The robustness machinery: float32 breakdown detection and the float64 fallback, random
patched pairs, and S-weighted summaries, against direct computations."""
import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from test_evidence import _tiny_exp

from tfa_tutorial.attribution.families import FAMILIES
from tfa_tutorial.evaluation.robustness import (
    LOSS_FLOOR,
    VARIANTS,
    float32_breakdown,
    pair_metrics,
    random_patched_pairs,
    summarise_pairs,
)


def _overconfident(exp, shift=19.0):
    """Class 0 gets a huge logit: its examples' loss falls below the float32 floor."""
    with torch.no_grad():
        exp.model.classifier.bias[0] += shift
    return exp


def test_breakdown_flags_losses_below_the_floor_computed_in_float64():
    exp = _overconfident(_tiny_exp())
    x, y = exp.train.images, exp.train.labels
    flags = float32_breakdown(exp.model, x, y)
    with torch.no_grad():
        loss64 = F.cross_entropy(exp.model(x).double(), y, reduction="none")
        loss32 = F.cross_entropy(exp.model(x), y, reduction="none")
    assert torch.equal(flags, loss64 < LOSS_FLOOR)
    assert flags.any() and not flags.all()
    assert (loss32[flags] < LOSS_FLOOR).all()  # in float32 these losses are 0 or rounding noise
    assert not float32_breakdown(exp.model.double(), x.double(), y).any()  # float64: no breakdown
    with pytest.raises(ValueError, match="float32 or float64"):
        float32_breakdown(exp.model.half(), x.half(), y)


def test_pair_metrics_counts_and_recomputes_touched_pairs_in_float64():
    exp = _overconfident(_tiny_exp())  # the shortcut model breaks down, the clean model does not
    test_idx = torch.tensor([0, 1, 2])
    p = exp.train.patched_indices
    train_idx = torch.stack([p[[0, 1]], p[[1, 2]], p[[2, 0]]])
    fams = ("control · input as map", "TFA-Cos · gradient × input", "counterfactual · decomposition")
    with torch.no_grad():
        xq = exp.patched_test.images[test_idx]
        logits = exp.model(xq).double()
        test_bad = F.cross_entropy(logits, logits.argmax(1), reduction="none") < LOSS_FLOOR
        train_bad = float32_breakdown(exp.model, exp.train.images[train_idx.flatten()],
                                      exp.train.labels[train_idx.flatten()]).view(3, 2)
    expected = int((train_bad | test_bad[:, None]).sum())
    assert expected > 0
    per = pair_metrics(exp, test_idx, train_idx, fams, seed=0)
    assert per["float64 pairs"] == {"shortcut model": expected, "clean model": 0}
    # the touched pairs are the float64 computation: the same as running everything in float64
    exp64 = copy.copy(exp)
    exp64.model, exp64.clean_model = copy.deepcopy(exp.model).double(), copy.deepcopy(exp.clean_model).double()
    exp64.train = SimpleNamespace(images=exp.train.images.double(), labels=exp.train.labels, masks=exp.train.masks)
    exp64.patched_test = SimpleNamespace(images=exp.patched_test.images.double(), labels=exp.patched_test.labels)
    exp64.test = SimpleNamespace(images=exp.test.images.double())
    per64 = pair_metrics(exp64, test_idx, train_idx, fams, seed=0)
    assert per64["float64 pairs"] == {"shortcut model": 0, "clean model": 0}
    for metric in ("mass", "mass |map|"):
        for f in fams[1:]:
            assert per["metrics"][f]["shortcut model"][metric] == pytest.approx(per64["metrics"][f]["shortcut model"][metric], abs=1e-9)
    masses = torch.tensor(per["metrics"]["control · input as map"]["shortcut model"]["mass"], dtype=torch.float64)
    x = exp.train.images[train_idx.flatten()]
    m = exp.train.masks[train_idx.flatten()]
    direct = (x[:, 0] * m).flatten(1).sum(1) / x[:, 0].flatten(1).sum(1)
    torch.testing.assert_close(masses, direct.double())
    with pytest.raises(ValueError, match="float64_fallback"):
        pair_metrics(exp, test_idx, train_idx, fams, float64_fallback=False)


def test_random_patched_pairs():
    exp = _tiny_exp()
    idx = random_patched_pairs(exp, torch.tensor([0, 1, 2]), 3, seed=4)
    assert idx.shape == (3, 3) and exp.train.patched[idx].all()
    assert all(len(set(r.tolist())) == 3 for r in idx)
    assert torch.equal(idx, random_patched_pairs(exp, torch.tensor([0, 1, 2]), 3, seed=4))
    with pytest.raises(ValueError, match="patched training images"):
        random_patched_pairs(exp, torch.tensor([0]), 1000)


def test_weighted_summary_is_the_s_plus_weighted_mean():
    per = {"metrics": {"f": {"shortcut model": {"mass": [0.2, 0.6, 1.0]}, "clean model": {"mass": [0.5, 0.5, 0.5]}}},
           "scores": {"shortcut model": [0.5, -0.3, 0.25], "clean model": [0.0, -1.0, 0.0]}}
    assert summarise_pairs(per)["f"]["shortcut model"]["mass"] == pytest.approx(0.6)
    w = summarise_pairs(per, weighted=True)["f"]
    assert w["shortcut model"]["mass"] == pytest.approx((0.5 * 0.2 + 0.25 * 1.0) / 0.75)
    assert w["clean model"]["mass"] is None  # no positive weight: undefined, not 0


def test_variants_name_registry_families():
    for v in VARIANTS.values():
        assert all(f in FAMILIES for f in v["families"])
