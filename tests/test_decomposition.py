"""The position decomposition of Grad-Dot / Grad-Cos is exact: checked against per-sample gradients
(float64), layer by layer, with closed-form receptive fields and locality on planted inputs."""
import pytest
import torch
from tiny_models import loop_grads, make_data, make_model
from torch import nn

import tfa_tutorial as T
from tfa_tutorial.attribution.decomposition import decompose_score, receptive_fields
from tfa_tutorial.attribution.score_vectors import score_vector
from tfa_tutorial.training.models import count_parameters


class PoolCNN(nn.Module):
    """conv → norm → ReLU → maxpool → conv → norm → ReLU → AdaptiveAvgPool → linear (like SmallCNN)."""

    def __init__(self, norm="batch", width=4, k=4):
        super().__init__()
        n = (lambda c: nn.BatchNorm2d(c)) if norm == "batch" else (lambda c: nn.GroupNorm(2, c))
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(1, width, 3, padding=1), n(width), nn.ReLU()), nn.MaxPool2d(2),
            nn.Sequential(nn.Conv2d(width, 2 * width, 3, padding=1), n(2 * width), nn.ReLU()),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * width, k)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def pool_model(norm="batch", seed=0):
    torch.manual_seed(seed)
    m = PoolCNN(norm).double()
    if norm == "batch":
        m.train()
        with torch.no_grad():
            for _ in range(3):
                m(torch.rand(16, 1, 8, 8, dtype=torch.float64))
    return m.eval()


@pytest.mark.parametrize("norm", ["batch", "group"])
@pytest.mark.parametrize("mapping", ["rf", "nearest"])
@pytest.mark.parametrize("builder", ["pool", "tiny"])
def test_sums_to_grad_dot_and_grad_cos(norm, mapping, builder):
    model = pool_model(norm) if builder == "pool" else make_model(norm)
    x, y = make_data(5)
    xq, yq = make_data(1, seed=7)
    G = loop_grads(model, x, y)
    gq = loop_grads(model, xq, yq)[0]
    dot = decompose_score(model, x, y, gq, divide_by_train_norm=False, mapping=mapping)
    torch.testing.assert_close(dot.scores, G @ gq, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dot.maps.sum((1, 2, 3)), G @ gq, rtol=1e-10, atol=1e-12)
    v = score_vector(model, xq[0], "cos", test_target=yq[0])
    cos = decompose_score(model, x, y, v, mapping=mapping)
    expect = (G @ gq) / (G.norm(dim=1) * gq.norm())
    torch.testing.assert_close(cos.scores, expect, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(cos.scores, T.grad_cos(model, x, y, xq, yq)[0], rtol=1e-9, atol=1e-12)
    shares = cos.layer_shares()
    torch.testing.assert_close(sum(shares.values()), torch.ones(5, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_each_layer_equals_its_parameters_part():
    model = pool_model()
    x, y = make_data(4)
    xq, yq = make_data(1, seed=3)
    gq = loop_grads(model, xq, yq)[0]
    for prefix in ["features.0.0", "features.0.1", "features.2", "classifier"]:
        d = decompose_score(model, x, y, gq, divide_by_train_norm=False, layers=prefix)
        names = [n for n, _ in model.named_parameters()]
        sel = [n for n in names if n.startswith(prefix + ".")]
        Gs = loop_grads(model, x, y, params=sel)
        idx = torch.cat([torch.arange(o, o + p.numel()) for (n, p), o in zip(model.named_parameters(), _offsets(model)) if n in sel])
        torch.testing.assert_close(d.scores, Gs @ gq[idx], rtol=1e-10, atol=1e-12)


def _offsets(model):
    o, out = 0, []
    for p in model.parameters():
        out.append(o)
        o += p.numel()
    return out


def test_first_layer_weight_term_is_local():
    """A conv weight contribution needs nonzero input in the 3×3 window: with a bias-free first
    conv and an image that is zero outside a block, conv-1's grid is zero away from the block."""
    torch.manual_seed(0)
    model = pool_model()
    model.features[0][0].bias = None
    x = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    x[:, :, 1:3, 1:3] = torch.rand(2, 1, 2, 2, dtype=torch.float64) * 0.5 + 0.5  # in [0.5, 1]
    y = torch.tensor([0, 1])
    gq = loop_grads(model, *make_data(1, seed=5))[0]
    d = decompose_score(model, x, y, gq, divide_by_train_norm=False, layers="features.0.0", mapping="nearest")
    grid = d.grids["features.0.0"]
    support = torch.zeros(8, 8, dtype=torch.bool)
    support[0:4, 0:4] = True  # the block dilated by the 3×3 kernel
    assert grid[:, ~support].abs().max() == 0
    assert grid[:, support].abs().max() > 0


def test_receptive_fields_of_small_cnn_match_closed_form():
    """Receptive-field arithmetic for SmallCNN: widths 3, 8, 18, 26 for the four conv blocks."""
    model = T.SmallCNN().eval()
    names = ["features.0.0", "features.2.0", "features.4.0", "features.5.0"]
    rf = receptive_fields(model, (1, 28, 28), names)
    for n, width in zip(names, [3, 8, 18, 26]):
        R = rf[n].reshape(-1, 28, 28)
        h = int(round(R.shape[0] ** 0.5))
        centre = R.reshape(h, h, 28, 28)[h // 2, h // 2]
        rows = centre.any(1).nonzero().flatten()
        cols = centre.any(0).nonzero().flatten()
        assert rows.max() - rows.min() + 1 == width and cols.max() - cols.min() + 1 == width


def test_mappings_preserve_the_sum_on_small_cnn_float32():
    torch.manual_seed(0)
    model = T.SmallCNN().eval()
    x = torch.rand(3, 1, 28, 28)
    y = torch.tensor([0, 1, 2])
    v = score_vector(model, torch.rand(1, 28, 28), "cos")
    a = decompose_score(model, x, y, v, mapping="rf")
    b = decompose_score(model, x, y, v, mapping="nearest")
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=1e-6)
    ref = (T.per_sample_grads(model, x, y) @ v) / T.per_sample_grads(model, x, y).norm(dim=1)
    torch.testing.assert_close(a.scores, ref, rtol=1e-4, atol=1e-5)
    assert set(a.block_maps({"b1": "features.0"})) == {"b1"}


def test_bad_input_is_rejected():
    model = pool_model()
    x, y = make_data(2)
    with pytest.raises(ValueError, match="shape"):
        decompose_score(model, x, y, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="mapping"):
        decompose_score(model, x, y, torch.zeros(count_parameters(model), dtype=torch.float64), mapping="bilinear")
    with pytest.raises(ValueError, match="match no"):
        decompose_score(model, x, y, torch.zeros(count_parameters(model), dtype=torch.float64), layers="nope")
    m2 = nn.Sequential(nn.Conv2d(1, 2, 3), nn.PReLU(), nn.Flatten(), nn.Linear(72, 2)).double().eval()
    with pytest.raises(NotImplementedError, match="PReLU"):
        decompose_score(m2, x, torch.tensor([0, 1]), torch.zeros(count_parameters(m2), dtype=torch.float64))
