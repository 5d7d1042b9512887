"""The audit fixes of the evidence protocol: the pointing game on constant maps and ties, noise
seeds independent across experiment seeds, normalised specificity, and the fair measures."""
import itertools

import pytest
import torch
from test_evidence import _tiny_exp

import tfa_tutorial as T
from tfa_tutorial.attribution.families import pair_seed
from tfa_tutorial.evaluation.evidence import (
    aggregate_seeds,
    dilate_masks,
    localisation_evidence,
)
from tfa_tutorial.evaluation.specificity import normalised_specificity


def _mask():
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True  # contains pixel (0, 0)
    return mask


def test_all_zero_map_is_a_miss_not_a_hit_on_pixel_0_0():
    assert T.pointing_game(torch.zeros(1, 4, 4), _mask()).item() == 0.0
    assert T.pointing_game(torch.full((1, 4, 4), 0.3), _mask()).item() == 0.0


def test_pointing_ties_score_the_share_inside_the_mask():
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0] = m[0, 3, 3] = 2.0  # one maximum in, one out
    assert T.pointing_game(m, _mask()).item() == 0.5
    m[0, 1, 1] = 2.0  # two in, one out
    assert T.pointing_game(m, _mask()).item() == pytest.approx(2 / 3)


def test_pointing_matches_a_loop_on_maps_with_a_unique_maximum():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(50, 6, 6, generator=g, dtype=torch.float64)
    masks = torch.rand(50, 6, 6, generator=g) < 0.3
    masks[:, 0, 0] = True
    expected = [float(masks[b].flatten()[int(maps[b].flatten().argmax())]) for b in range(50)]
    assert T.pointing_game(maps, masks).tolist() == expected


def test_pair_seeds_are_distinct_across_experiment_seeds():
    seeds = [pair_seed(s, q) for s, q in itertools.product(range(10), range(64))]
    assert len(set(seeds)) == len(seeds)  # seed + q would collide: (0, 1) and (1, 0)
    assert pair_seed(0, 1) != pair_seed(1, 0)
    assert pair_seed(3, 5) == pair_seed(3, 5) and 0 <= pair_seed(3, 5) < 2**63
    torch.Generator().manual_seed(pair_seed(2, 7))  # a valid torch seed
    with pytest.raises(TypeError):
        pair_seed(0.5, 1)


def test_localisation_passes_independent_noise_seeds():
    exp = _tiny_exp()
    seen = {}

    def recorder(ctx):
        seen.setdefault(run, []).append(ctx.seed)
        return ctx.x_train.clone()

    for run in (0, 1):
        localisation_evidence(exp, torch.tensor([0, 1]), exp.train.patched_indices[:2].repeat(2, 1),
                              families={"rec": recorder}, seed=run)
    assert seen[0] == [pair_seed(0, 0), pair_seed(0, 1)] * 2  # both models, same noise per pair
    assert not set(seen[0]) & set(seen[1])


def test_one_step_maps_and_smoothgrad_grid_draw_noise_as_the_protocol_does(monkeypatch):
    """The faithfulness maps and notebook 04's SmoothGrad grid seed test image q with pair_seed(seed, q)
    too, so two experiment seeds never share noise there either."""
    from tfa_tutorial.evaluation import sensitivity
    from tfa_tutorial.evaluation.faithfulness import family_maps

    exp = _tiny_exp()
    top = torch.arange(4).reshape(2, 2)
    X, Y = exp.train.images, exp.train.labels
    for seed in (0, 1):
        maps = family_maps(exp.model, X[top], Y[top], exp.patched_test.images[:2], torch.tensor([0, 0]),
                           names=("control · random",), seed=seed)["control · random"]
        expected = torch.cat([T.random_map(X[top[q]].shape, seed=pair_seed(seed, q)) for q in range(2)])
        torch.testing.assert_close(maps, expected)
    seen = []

    def fake_tfa_maps(model, x, y, x_test, n_samples, noise, seed):
        seen.append(seed)
        return torch.ones_like(x)

    monkeypatch.setattr(sensitivity, "tfa_maps", fake_tfa_maps)
    patched = exp.train.patched_indices[[0, 1, 2, 0]].reshape(2, 2)  # the grid scores mass on the patch
    sensitivity.smoothgrad_grid(exp, torch.tensor([0, 1]), patched, n_samples=(2,), noise=(0.1,), seed=3)
    assert seen == [pair_seed(3, 0), pair_seed(3, 1)]


def test_normalised_specificity():
    assert normalised_specificity(0.3, 0.1) == pytest.approx(0.5)
    assert normalised_specificity(0.02, 0.02) == 0.0
    assert normalised_specificity(0.0, 0.05) == -1.0
    assert normalised_specificity(0.0, 0.0) is None  # undefined, never 0
    for bad in ((float("nan"), 0.1), (-0.1, 0.2), (0.1, float("inf"))):
        with pytest.raises(ValueError):
            normalised_specificity(*bad)
    assert aggregate_seeds([{"a": 0.2}, {"a": None}])["a"] is None


def test_dilated_masks_and_fair_measures():
    m = torch.zeros(1, 5, 5, dtype=torch.bool)
    m[0, 2, 2] = True
    wide = dilate_masks(m)
    expected = torch.zeros(1, 5, 5, dtype=torch.bool)
    expected[0, 1:4, 1:4] = True
    assert torch.equal(wide, expected)
    corner = torch.zeros(1, 5, 5, dtype=torch.bool)
    corner[0, 0, 0] = True
    assert int(dilate_masks(corner).sum()) == 4
    with pytest.raises(ValueError):
        dilate_masks(m.float())
    # an edge response just outside the patch: missed by the mask, found by the dilated mask;
    # a negative response on the patch: missed by the positive part, found by |map|
    from tfa_tutorial.evaluation.evidence import _metrics
    maps = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    maps[0, 0, 1, 2] = 1.0
    maps[0, 0, 2, 2] = -3.0
    r = _metrics(maps, m)
    assert r["mass"] == 0.0 and r["mass, dilated mask"] == 1.0
    assert r["mass |map|"] == pytest.approx(0.75) and r["mass |map|, dilated mask"] == 1.0
    assert r["chance, dilated mask"] == pytest.approx(9 / 25)
