import copy

import pytest
import torch
import torch.nn.functional as F
from tiny_models import make_data, make_model

import tfa_tutorial as T
from tfa_tutorial.evaluation.metrics import average_precision


def brute_force_ap(scores, labels):
    """AP = mean over positives of precision at that positive's rank (valid without ties)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    hits, total = 0, 0.0
    for rank, i in enumerate(order, 1):
        if labels[i]:
            hits += 1
            total += hits / rank
    return total / sum(labels)


def test_average_precision_closed_forms():
    assert average_precision(torch.tensor([0.9, 0.8, 0.1]), torch.tensor([1, 1, 0])) == pytest.approx(1.0)
    assert average_precision(torch.tensor([0.9, 0.8, 0.1]), torch.tensor([0, 0, 1])) == pytest.approx(1 / 3)
    # positives at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision(torch.tensor([3.0, 2.0, 1.0, 0.0]), torch.tensor([1, 0, 1, 0])) == pytest.approx(5 / 6)
    # all tied: one threshold, precision = prevalence
    assert average_precision(torch.zeros(8), torch.tensor([1, 0, 0, 1, 0, 0, 0, 0])) == pytest.approx(0.25)


def test_average_precision_matches_brute_force_on_random_scores():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        s = torch.rand(30, generator=g)
        lab = torch.rand(30, generator=g) < 0.3
        lab[0] = True
        assert average_precision(s, lab) == pytest.approx(brute_force_ap(s.tolist(), lab.tolist()))


def test_shortcut_detection_auprc_is_mean_over_test_examples():
    patched = torch.tensor([1, 0, 0, 1], dtype=torch.bool)
    scores = torch.tensor([[4.0, 3, 2, 1], [1.0, 2, 3, 4]])
    a0 = average_precision(scores[0], patched)
    a1 = average_precision(scores[1], patched)
    assert T.shortcut_detection_auprc(scores, patched) == pytest.approx((a0 + a1) / 2)
    rnd = torch.rand(200, 1000, generator=torch.Generator().manual_seed(1))
    pt = torch.zeros(1000, dtype=torch.bool)
    pt[:100] = True
    assert T.shortcut_detection_auprc(rnd, pt) == pytest.approx(0.1, abs=0.01)  # chance = prevalence
    with pytest.raises(ValueError, match="no training example is patched"):
        T.shortcut_detection_auprc(scores, torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\[N\]"):
        T.shortcut_detection_auprc(scores, patched[:3])
    with pytest.raises(ValueError, match="empty"):
        T.shortcut_detection_auprc(scores[:0], patched)


def test_pixel_metrics_on_hand_made_maps():
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2, :2] = True  # 4 pixels
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0], m[0, 1, 1], m[0, 3, 3], m[0, 2, 2] = 3.0, 1.0, 2.0, -5.0
    assert T.relevance_mass_accuracy(m, mask).item() == pytest.approx(4 / 6)  # negatives ignored
    assert T.relevance_rank_accuracy(m, mask).item() == pytest.approx(2 / 4)  # top-4: 3,2,1,0-tie
    assert T.pointing_game(m, mask).item() == 1.0
    m[0, 3, 3] = 9.0
    assert T.pointing_game(m, mask).item() == 0.0
    assert T.relevance_mass_accuracy(-torch.ones(1, 4, 4), mask).item() == 0.0


def test_random_maps_score_chance():
    masks = torch.zeros(500, 10, 10, dtype=torch.bool)
    masks[:, :3, :3] = True
    maps = T.random_map((500, 10, 10), seed=0)
    assert T.relevance_mass_accuracy(maps, masks).mean().item() == pytest.approx(0.09, abs=0.01)
    assert T.relevance_rank_accuracy(maps, masks).mean().item() == pytest.approx(0.09, abs=0.01)
    assert T.pointing_game(maps, masks).mean().item() == pytest.approx(0.09, abs=0.04)


def test_pixel_metric_errors():
    with pytest.raises(ValueError, match="reduce_map"):
        T.relevance_mass_accuracy(torch.rand(2, 1, 4, 4), torch.ones(2, 1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="differ in shape"):
        T.pointing_game(torch.rand(2, 4, 4), torch.ones(2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one pixel"):
        T.relevance_rank_accuracy(torch.rand(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.bool))


@pytest.mark.parametrize("mode", ["insertion", "deletion"])
def test_one_step_test_equals_an_explicit_sgd_step(mode):
    m = make_model("group")
    xtr, ytr = make_data(3, seed=1)
    xte, yte = make_data(4, seed=2)
    maps = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3))
    k, lr = 10, 0.5
    res = T.one_step_test(m, xtr, ytr, maps, xte, yte, ks=[k], lr=lr, mode=mode, n_random=2)
    # reference: copy the model, mask by hand, torch.optim.SGD step
    keep = torch.zeros(3, 64, dtype=torch.bool)
    for b in range(3):
        keep[b, maps[b].flatten().argsort(descending=True)[:k]] = True
    keep = keep.view(3, 1, 8, 8)
    if mode == "deletion":
        keep = ~keep
    xm = torch.where(keep, xtr, torch.zeros_like(xtr))
    m2 = copy.deepcopy(m)
    before = F.cross_entropy(m2(xte), yte).item()
    opt = torch.optim.SGD(m2.parameters(), lr=lr)
    F.cross_entropy(m2(xm), ytr).backward()
    opt.step()
    after = F.cross_entropy(m2(xte), yte).item()
    assert res["map"][0].item() == pytest.approx(after - before, rel=1e-8, abs=1e-12)
    assert res["random"].shape == (1,) and torch.isfinite(res["random"]).all()


def test_one_step_test_bad_k():
    m = make_model("group")
    x, y = make_data(2)
    with pytest.raises(ValueError, match=r"every k must lie in \[1, 64\]"):
        T.one_step_test(m, x, y, torch.rand(2, 8, 8), x, y, ks=[65])
    with pytest.raises(ValueError, match="maps must be"):
        T.one_step_test(m, x, y, torch.rand(2, 1, 8, 8), x, y, ks=[3])
