"""Neural features (Salient-ImageNet style) on a tiny float64 model with a planted patch neuron.

The planted model (``PlantedNet``) has hand-set weights, so we know the answer:

- layer 1 (3×3 convs, ReLU): ch0 = ReLU(x − 0.7) (bright), ch1/ch2 = ReLU(±horizontal difference)
  (edges), ch3 = ReLU(x) (content);
- layer 2 (1×1 convs, ReLU), then a 2×2 average pool → the 6×6 feature map of 4 neurons:
  n0 = ReLU(ch0 − 2(ch1 + ch2)) "bright and flat" — fires only inside a white patch (the planted
  neuron); n1 = edges; n2 = content; n3 = content − edges;
- classifier: logit₁ = 400·h0 − 2.5, logit₀ = 0, so the model says class 1 iff the patch is there.

Background images are noise in [0, 0.5]; half carry a white 4×4 patch at (1, 1).
"""
import pytest
import torch
import torch.nn.functional as F
from tiny_models import make_model
from torch import nn

from tfa_tutorial.attribution import neural_features as NF
from tfa_tutorial.training.models import ResNet9, SmallCNN, SoftmaxRegression

H = 12
PATCH = (slice(1, 5), slice(1, 5))


class PlantedNet(nn.Module):
    def __init__(self):
        super().__init__()
        c1 = nn.Conv2d(1, 4, 3, padding=1)
        c2 = nn.Conv2d(4, 4, 1)
        with torch.no_grad():
            c1.weight.zero_()
            c1.bias.zero_()
            c1.weight[0, 0, 1, 1] = 1.0
            c1.bias[0] = -0.7
            c1.weight[1, 0, 1, 1], c1.weight[1, 0, 1, 2] = -1.0, 1.0
            c1.weight[2, 0, 1, 1], c1.weight[2, 0, 1, 2] = 1.0, -1.0
            c1.weight[3, 0, 1, 1] = 1.0
            c2.weight.zero_()
            c2.bias.zero_()
            w = c2.weight[:, :, 0, 0]
            w[0] = torch.tensor([1.0, -2.0, -2.0, 0.0])
            w[1] = torch.tensor([0.0, 1.0, 1.0, 0.0])
            w[2] = torch.tensor([0.0, 0.0, 0.0, 1.0])
            w[3] = torch.tensor([0.0, -1.0, -1.0, 1.0])
        self.features = nn.Sequential(c1, nn.ReLU(), c2, nn.ReLU(), nn.AvgPool2d(2))
        self.classifier = nn.Linear(4, 2)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [400.0, 0.0, 0.0, 0.0]]))
            self.classifier.bias.copy_(torch.tensor([0.0, -2.5]))

    def forward(self, x):
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def planted_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 0.5 * torch.rand(n, 1, H, H, generator=g, dtype=torch.float64)
    patched = torch.arange(n) % 2 == 1
    masks = torch.zeros(n, H, H, dtype=torch.bool)
    masks[patched, PATCH[0], PATCH[1]] = True
    x[patched, :, PATCH[0], PATCH[1]] = 1.0
    return x, patched.long(), masks


@pytest.fixture(scope="module")
def planted():
    model = PlantedNet().double().eval()
    x, y, masks = planted_data()
    return model, x, y, masks


def test_planted_model_uses_the_patch(planted):
    model, x, y, _ = planted
    assert (model(x).argmax(1) == y).all()


# ----------------------------------------------------------------------------- the feature layer


def test_find_feature_layer_smallcnn_and_tiny():
    m = SmallCNN().eval()
    layer = NF.find_feature_layer(m, torch.rand(1, 28, 28))
    assert layer.module is m.features and layer.name == "features"
    assert layer.pooling == "avg" and layer.map_size == (7, 7) and layer.classifier is m.classifier
    tiny = make_model()
    layer = NF.find_feature_layer(tiny, torch.rand(1, 8, 8, dtype=torch.float64))
    assert layer.module is tiny.features and layer.map_size == (4, 4)


def test_find_feature_layer_resnet9_max_pool():
    m = ResNet9(width=4).eval()
    layer = NF.find_feature_layer(m, torch.rand(3, 32, 32))
    assert layer.pooling == "max" and layer.module is m.features and layer.num_features == 32


class LinearThenSoftmax(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).mean(dim=(2, 3))).softmax(1)


class NoPooling(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


@pytest.mark.parametrize(
    "model, match",
    [
        (SoftmaxRegression(64, 3), "pools to the input"),
        (LinearThenSoftmax(), "not the model's output layer"),
        (NoPooling(), "pools to the input"),
    ],
)
def test_models_that_do_not_fit_get_a_clear_error(model, match):
    with pytest.raises(ValueError, match=match) as err:
        NF.find_feature_layer(model.eval(), torch.rand(1, 8, 8))
    assert "final nn.Linear" in str(err.value)


def test_train_mode_batchnorm_is_refused():
    with pytest.raises(ValueError, match="eval"):
        NF.find_feature_layer(SmallCNN().train(), torch.rand(1, 28, 28))


# ----------------------------------------------------------------------------- activations, maps, contributions


def test_activations_and_maps_match_a_manual_forward():
    model = make_model(seed=3)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    a = model.features(x)
    h, maps = NF.neural_activations(model, x, maps=True, batch_size=2)
    assert torch.allclose(h, a.mean(dim=(2, 3))) and torch.allclose(maps, a)
    raw = NF.activation_maps(model, x, [2, 5], normalize=False, batch_size=3)
    assert raw.shape == (5, 2, 8, 8)
    assert torch.allclose(raw, F.interpolate(a[:, [2, 5]], size=(8, 8), mode="bilinear", align_corners=False))
    soft = NF.activation_maps(model, x, 2)
    assert soft.shape == (5, 8, 8)
    for i in range(5):
        r = raw[i, 0]
        if r.max() > r.min():
            assert torch.allclose(soft[i], (r - r.min()) / (r.max() - r.min()))
            assert soft[i].min() == 0 and torch.isclose(soft[i].max(), torch.tensor(1.0, dtype=soft.dtype))


def test_constant_map_normalises_to_zero():
    assert (NF.minmax_maps(torch.full((2, 3, 3), 0.7)) == 0).all()


def test_contributions_sum_to_the_logit_minus_bias():
    model = make_model(seed=4)
    x = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    for k in range(4):
        c = NF.class_contributions(model, x, k)
        assert torch.allclose(c.sum(1), model(x)[:, k] - model.classifier.bias[k], atol=1e-12)
    with pytest.raises(ValueError, match="class index"):
        NF.class_contributions(model, x, 4)


def test_top_neurons_and_top_activating():
    c = torch.tensor([[1.0, 5.0, 0.0], [3.0, 1.0, 0.5]])
    idx, v = NF.top_neurons(c, 2)
    assert idx.tolist() == [1, 0] and torch.allclose(v, torch.tensor([3.0, 2.0]))
    h = torch.tensor([[0.1, 2.0], [0.9, 1.0], [0.5, 3.0]])
    assert NF.top_activating(h, 0, 2).tolist() == [1, 2]
    with pytest.raises(ValueError, match="neuron indices"):
        NF.top_activating(h, 2)


# ----------------------------------------------------------------------------- the planted neuron


def test_planted_neuron_is_ranked_first_without_labels(planted):
    model, x, _, masks = planted
    sp = NF.spuriousness(model, x, masks, m=16)
    assert int(sp["order"][0]) == 0
    assert sp["score"][0] > 0.5 and sp["ratio"][0] > 4  # most map mass on the patch (11% of the image); the 6×6 map blurs it
    assert sp["frac_masked"][0] == 1.0  # all its top images carry the patch
    assert torch.allclose(sp["chance"][0], torch.tensor(16 / H**2, dtype=sp["chance"].dtype))
    assert sp["ratio"][0] > 1.5 * sp["ratio"][1:].max()  # content neurons like the bright patch too, less so
    # brute force: the score of neuron 0 from its definition
    top = NF.neural_activations(model, x)[:, 0].topk(16).indices
    maps = NF.activation_maps(model, x[top], 0)
    brute = torch.stack([maps[i][masks[top[i]]].sum() / maps[i].sum() for i in range(16)]).mean()
    assert torch.isclose(sp["score"][0], brute)
    from tfa_tutorial.explorer.compare import spuriousness_ranking

    text = spuriousness_ranking(sp, "planted", n=2).splitlines()
    assert "top-16 images" in text[0] and len(text) == 3
    assert text[1].startswith("  neuron  0:") and f"score {sp['score'][0]:.3f}" in text[1] and "with the patch 100%" in text[1]


def test_planted_neuron_maps_cover_the_planted_region(planted):
    model, x, y, masks = planted
    maps = NF.activation_maps(model, x[y == 1], 0)
    m = masks[y == 1]
    inside = (maps * m).sum(dim=(1, 2)) / maps.sum(dim=(1, 2))
    assert inside.min() > 0.6  # 5× the patch area (16 of 144 px); bilinear upsampling of the 6×6 map spills the rest
    peak = maps.flatten(1).argmax(1)
    assert m.flatten(1).gather(1, peak[:, None]).all()  # every map peaks on the patch
    # the map is zero on clean images: the neuron sees nothing there
    assert NF.neural_activations(model, x[y == 0])[:, 0].abs().max() == 0


def test_spuriousness_with_one_mask_for_all_images(planted):
    model, x, _, masks = planted
    region = masks[1]
    sp = NF.spuriousness(model, x, region, m=8, neurons=[0, 1])
    assert sp["neurons"].tolist() == [0, 1] and int(sp["order"][0]) == 0
    with pytest.raises(ValueError, match="masks must have shape"):
        NF.spuriousness(model, x, masks[:3])


def test_ablation_effect_finds_the_planted_neuron(planted):
    model, x, _, _ = planted
    eff = NF.ablation_effect(model, x, target=1)
    assert eff["base"] == 0.5 and int(eff["order"][0]) == 0
    assert eff["drop"][0] == 0.5 and (eff["drop"][1:] == 0).all()


# ----------------------------------------------------------------------------- the sensitivity test


def test_noise_in_mask_touches_only_the_mask():
    x = torch.rand(3, 2, 5, 5)
    m = torch.zeros(3, 5, 5)
    m[:, 1:3, 2:4] = 0.5
    noisy = NF.noise_in_mask(x, m, sigma=1.0, seed=1)
    assert torch.equal(noisy[..., m[0] == 0], x[..., m[0] == 0])
    assert not torch.equal(noisy[..., m[0] > 0], x[..., m[0] > 0])
    assert torch.equal(NF.noise_in_mask(x, m, 1.0, seed=1), noisy)  # seeded
    with pytest.raises(ValueError, match="sigma"):
        NF.noise_in_mask(x, m, -1.0)


def test_random_mask_keeps_mass_and_shape():
    m = torch.zeros(4, 6, 6)
    m[:, :2, :3] = torch.rand(4, 2, 3)
    r = NF.random_mask_like(m, seed=2)
    assert torch.allclose(r.sum(dim=(1, 2)), m.sum(dim=(1, 2)))
    assert torch.equal(r.flatten(1).sort(1).values, m.flatten(1).sort(1).values)


def test_sensitivity_drops_for_the_spurious_mask_only(planted):
    model, x, y, _ = planted
    xp, yp = x[y == 1], y[y == 1]
    spurious = NF.activation_maps(model, xp, 0)
    elsewhere = spurious.flip(-1).flip(-2)  # the same soft mask, mirrored away from the patch
    res = NF.mask_sensitivity(model, xp, yp, {"spurious": spurious, "elsewhere": elsewhere}, sigma=0.5, repeats=3,
                              seed=0, target=1)
    assert res["none"]["acc"] == 1.0
    assert res["spurious"]["acc"] < 0.5 and res["spurious"]["drop"] > 0.5
    assert res["elsewhere"]["acc"] >= 0.95
    assert abs(res["spurious"]["mass"] - res["elsewhere"]["mass"]) < 1e-9
    assert res["spurious"]["target_rate"] == res["spurious"]["acc"]  # all of them are class 1


def test_sensitivity_input_checks(planted):
    model, x, y, _ = planted
    with pytest.raises(ValueError, match="labels must have shape"):
        NF.mask_sensitivity(model, x, y[:3], torch.zeros(len(x), H, H))
    with pytest.raises(ValueError, match="masks must have shape"):
        NF.mask_sensitivity(model, x, y, torch.zeros(len(x), 3, 3))
