"""The helpers behind notebooks 04 and 08: the own-gradient split of the exact decomposition, the
evidence tables over seeds, and the SmoothGrad grid."""
from __future__ import annotations

import math

import pytest
import torch
from tiny_models import loop_grads, make_data, make_model

from tfa_tutorial.attribution.decomposition import decompose_score
from tfa_tutorial.attribution.families import pair_seed
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


def test_smoothgrad_grid_cells_match_a_direct_loop():
    from types import SimpleNamespace

    from tfa_tutorial.evaluation.sensitivity import smoothgrad_grid

    model = make_model("group", dtype=torch.float32)
    x, y = make_data(6, dtype=torch.float32)
    masks = torch.zeros(6, 8, 8, dtype=torch.bool)
    masks[:, :3, :3] = True
    exp = SimpleNamespace(model=model, train=SimpleNamespace(images=x, labels=y, masks=masks),
                          patched_test=SimpleNamespace(images=make_data(3, seed=5, dtype=torch.float32)[0]))
    test_idx, train_idx = torch.tensor([0, 1, 2]), torch.tensor([[0, 1], [2, 3], [4, 5]])
    grid = smoothgrad_grid(exp, test_idx, train_idx, n_samples=(2, 4), noise=(0.1,), n_pairs=2)
    assert grid.shape == (2, 1)
    assert ((grid >= 0) & (grid <= 1)).all()
    # every cell against a direct computation: SmoothGrad (noise seed pair_seed(0, q), the protocol's) of Grad-Cos by
    # per-example double backward, the predicted label, and mass = Σ_patch max(m, 0) / Σ max(m, 0)
    for a, n in enumerate((2, 4)):
        masses = []
        for q in range(2):
            t = train_idx[q]
            masses += _loop_smoothgrad_masses(model, x[t], y[t], exp.patched_test.images[test_idx[q]], masks[t], n, 0.1, seed=pair_seed(0, q))
        assert float(grid[a, 0]) == pytest.approx(sum(masses) / len(masses), abs=1e-5)


def _loop_smoothgrad_masses(model, x, y, xq, masks, n, sigma, seed):
    """Per training image, the patch mass of the SmoothGrad gradient (n noisy copies, σ × the image's range)
    of cos(∇θ loss(x_i), ∇θ loss(x_q, predicted label)), one autograd double backward per noisy copy."""
    with torch.no_grad():
        label = model(xq[None]).argmax(1)
    g_test = loop_grads(model, xq[None], label)[0]
    g_test = g_test / g_test.norm()
    eps = torch.randn((n,) + tuple(x.shape), generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    ps = list(model.parameters())
    out = []
    for i in range(len(x)):
        acc = torch.zeros_like(x[i])
        for s in range(n):
            xi = (x[i] + sigma * (x[i].max() - x[i].min()) * eps[s, i])[None].requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(model(xi), y[i : i + 1])
            g = torch.cat([gp.reshape(-1) for gp in torch.autograd.grad(loss, ps, create_graph=True)])
            acc += torch.autograd.grad(g @ g_test / g.norm(), xi)[0][0]
        pos = (acc / n).sum(0).clamp_min(0)
        out.append(float((pos * masks[i]).sum() / pos.sum()))
    return out
