"""Small helpers the notebooks' claims rest on: the spread of a gain difference, the stored-range
check of this run's gains, and the per-row map correlation."""
import math

import pytest
import torch

from tfa_tutorial.attribution.own_gradient import map_correlation
from tfa_tutorial.evaluation.evidence import aggregate_seeds
from tfa_tutorial.evaluation.tables import diff_spread, outside_stored_range


def _loc(**gains):
    return {f: {"gain": aggregate_seeds(vals)} for f, vals in gains.items()}


def test_diff_spread_is_the_root_sum_of_squares_of_the_seed_sds():
    loc = _loc(a=[0.1, 0.3], b=[0.0, 0.0, 0.6], c=[0.2])
    sd_a, sd_b = math.sqrt(0.02), math.sqrt(0.12)  # sample sds by hand
    assert diff_spread(loc, "a", "b") == pytest.approx(math.hypot(sd_a, sd_b))
    assert diff_spread(loc, "a", "c") == pytest.approx(sd_a)  # one seed: no spread


def test_outside_stored_range_widens_the_seed_range_by_n_sd():
    loc = _loc(a=[0.1, 0.3], c=[0.2])
    sd_a = math.sqrt(0.02)
    inside, outside = 0.3 + 1.9 * sd_a, 0.3 + 2.1 * sd_a
    assert outside_stored_range(loc, {"a": inside, "c": 0.2}) == {}
    assert outside_stored_range(loc, {"a": outside, "c": 0.21}) == {"a": outside, "c": 0.21}  # one seed: exact
    assert outside_stored_range(loc, {"a": outside}, n_sd=3.0) == {}


def test_map_correlation_matches_numpy_and_rejects_mismatched_shapes():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 1, 4, 4, generator=g), torch.randn(3, 1, 4, 4, generator=g)
    b[1] = 2 * a[1] + 1  # perfectly correlated
    import numpy as np

    expected = [np.corrcoef(a[i].flatten().numpy(), b[i].flatten().numpy())[0, 1] for i in range(3)]
    torch.testing.assert_close(map_correlation(a, b), torch.tensor(expected, dtype=torch.float64))
    assert map_correlation(a, b)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        map_correlation(a, b[:, :, :2])
