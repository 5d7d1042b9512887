"""The helpers behind notebooks 04 and 08: the own-gradient split of the exact decomposition, the
evidence tables over seeds, and the SmoothGrad grid."""
from __future__ import annotations

import math

import pytest
import torch
from tiny_models import make_data, make_model

from tfa_tutorial.attribution.decomposition import decompose_score
from tfa_tutorial.attribution.own_gradient import own_gradient_maps, specific_part
from tfa_tutorial.attribution.score_vectors import score_vector
from tfa_tutorial.attribution.scores import grad_cos
from tfa_tutorial.evaluation.evidence import localisation_over_seeds
from tfa_tutorial.evaluation.tables import (
    completeness_over_seeds,
    completeness_table_markdown,
    gain_spread,
    seed_table_markdown,
    specificity_over_seeds,
    specificity_table_markdown,
)


def test_own_gradient_maps_sum_to_one_and_split_the_decomposition():
    model = make_model("group")
    x, y = make_data(5)
    own = own_gradient_maps(model, x, y)
    assert own.shape == (5, 1, 8, 8)
    assert torch.allclose(own.sum((1, 2, 3)), torch.ones(5, dtype=own.dtype), atol=1e-8)
    xq = make_data(1, seed=7)[0][0]
    dec = decompose_score(model, x, y, score_vector(model, xq, "cos"))
    rest = specific_part(dec.maps, dec.scores, own)
    assert torch.allclose(rest.sum((1, 2, 3)), torch.zeros(5, dtype=rest.dtype), atol=1e-8)
    assert torch.allclose(dec.scores, grad_cos(model, x, y, xq[None])[0], atol=1e-8)
    # the same training image as the test image: nothing is test-specific
    dec_self = decompose_score(model, x[:1], y[:1], score_vector(model, x[0], "cos", test_target=int(y[0])))
    assert specific_part(dec_self.maps, dec_self.scores, own[:1]).abs().max() < 1e-8


def _loc(mass_s, mass_c):
    return {"localisation": {"A": {"shortcut model": {"mass": mass_s, "rank": 0.5, "pointing": 1.0},
                                   "clean model": {"mass": mass_c, "rank": 0.2, "pointing": 0.0}}}}


def test_seed_table_and_gain_spread():
    loc = localisation_over_seeds({"0": _loc(0.5, 0.1), "1": _loc(0.7, 0.1), "2": _loc(0.6, 0.2)})
    assert loc["A"]["gain"]["values"] == pytest.approx([0.4, 0.6, 0.4])
    assert gain_spread(loc, "A") == pytest.approx(math.sqrt(((0.4 - 1.4 / 3) ** 2 * 2 + (0.6 - 1.4 / 3) ** 2) / 2))
    text = seed_table_markdown(loc, ["A", "missing"])
    assert text.splitlines()[2].startswith("| A | 0.60 ± 0.10 | 0.13 ± 0.06 | +0.47 ± 0.12 | 0.50")
    assert "missing" not in text
    one = localisation_over_seeds({"0": _loc(0.5, 0.1)})
    assert gain_spread(one, "A") == 0.0


def test_specificity_and_completeness_tables():
    run = lambda s: {"families": {"F": {m: {"specificity": s, "matching mass": 0.3, "other mass": 0.3 - s}
                                         for m in ("shortcut model", "clean model")}}}
    spec = specificity_over_seeds({"1": run(0.1), "0": run(0.3)})
    assert spec["F"]["shortcut model"]["specificity"]["mean"] == pytest.approx(0.2)
    assert "| F | +0.20 ± 0.14 | +0.20 ± 0.14 | 0.30 ± 0.00 | 0.10 ± 0.14 |" in specificity_table_markdown(spec, ["F", "G"])
    comp = completeness_over_seeds({"0": {"D": {"median gap": 1e-5, "90th percentile gap": 2e-5}},
                                    "1": {"D": {"median gap": 3e-5, "90th percentile gap": 4e-5}}})
    assert "| D | 2.0e-05 ± 1.4e-05 | 3.0e-05 ± 1.4e-05 |" in completeness_table_markdown(comp)


def test_smoothgrad_grid_shape_and_range():
    from types import SimpleNamespace

    from tfa_tutorial.evaluation.sensitivity import smoothgrad_grid

    model = make_model("group", dtype=torch.float32)
    x, y = make_data(6, dtype=torch.float32)
    masks = torch.zeros(6, 8, 8, dtype=torch.bool)
    masks[:, :3, :3] = True
    exp = SimpleNamespace(model=model, train=SimpleNamespace(images=x, labels=y, masks=masks),
                          patched_test=SimpleNamespace(images=make_data(3, seed=5, dtype=torch.float32)[0]))
    grid = smoothgrad_grid(exp, torch.tensor([0, 1, 2]), torch.tensor([[0, 1], [2, 3], [4, 5]]),
                           n_samples=(2, 4), noise=(0.1,), n_pairs=2)
    assert grid.shape == (2, 1)
    assert ((grid >= 0) & (grid <= 1)).all()
