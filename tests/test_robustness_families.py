"""The robustness variants of the registry against independent computations: logit-gradient
Grad-Cos (per-sample gradients, scores and the TFA map's pixel gradient against per-example
autograd loops in float64), scores over parameter subsets, and SmallCNN with global max pooling."""
import pytest
import torch
from test_evidence import _tiny_exp
from tiny_models import loop_grads, make_data, make_model, named_params
from torch import nn
from torch.func import grad, vmap

from tfa_tutorial.attribution.families import (
    FAMILIES,
    LOGIT,
    PARAM_SUBSETS,
    ROBUSTNESS_FAMILIES,
    MapFamily,
    PairContext,
    param_subset,
)
from tfa_tutorial.attribution.gradients import per_sample_grads
from tfa_tutorial.attribution.score_vectors import (
    score_vector,
    vector_score_fn,
    vector_scores,
)
from tfa_tutorial.evaluation.evidence import EVIDENCE_FAMILIES, localisation_evidence
from tfa_tutorial.training.models import SmallCNN


def loop_logit_grads(model, x, y, params=None, create_graph=False):
    """∇_θ z_y(x_i), one autograd backward per example."""
    ps = [p for _, p in named_params(model, params)]
    rows = []
    for i in range(len(x)):
        z = model(x[i:i + 1])[0, y[i]]
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(z, ps, create_graph=create_graph)]))
    return torch.stack(rows)


def _unit(v):
    return v / v.norm()


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_logit_per_sample_grads_match_a_loop(norm):
    model = make_model(norm)
    x, y = make_data(7)
    ref = loop_logit_grads(model, x, y)
    torch.testing.assert_close(per_sample_grads(model, x, y, objective="logit"), ref)
    # and they are not the loss gradients
    assert not torch.allclose(ref, loop_grads(model, x, y))
    with pytest.raises(ValueError, match="objective"):
        per_sample_grads(model, x, y, objective="margin")


def test_logit_grad_cos_scores_match_a_loop():
    model = make_model("batch")
    x, y = make_data(8)
    xt, yt = make_data(1, seed=9)
    v = score_vector(model, xt[0], "cos", test_target=int(yt[0]), objective="logit")
    g_test = loop_logit_grads(model, xt, yt)[0]
    torch.testing.assert_close(v, _unit(g_test))
    G = loop_logit_grads(model, x, y)
    expected = (G @ _unit(g_test)) / G.norm(dim=1)
    torch.testing.assert_close(vector_scores(model, x, y, v, True, objective="logit")[0], expected)
    with pytest.raises(ValueError, match="loss gradients only"):
        score_vector(model, xt[0], "contrast", test_target=0, true_target=1, objective="logit")


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_logit_tfa_pixel_gradient_matches_double_backward_loop(norm):
    model = make_model(norm)
    x, y = make_data(4)
    xt, yt = make_data(1, seed=9)
    v = _unit(loop_logit_grads(model, xt, yt)[0]).detach()
    expected = []
    for i in range(len(x)):
        xi = x[i:i + 1].clone().requires_grad_(True)
        g = loop_logit_grads(model, xi, y[i:i + 1], create_graph=True)[0]
        s = g @ v / g.norm()
        expected.append(torch.autograd.grad(s, xi)[0][0])
    expected = torch.stack(expected)
    fn = vector_score_fn(model, v, True, objective="logit")
    torch.testing.assert_close(vmap(grad(fn))(x, y), expected)
    torch.testing.assert_close(fn.batched_grad(x, y), expected)


def test_logit_family_is_smoothgrad_of_the_loop_gradient_times_sign():
    model = make_model("batch")
    x, y = make_data(3)
    xt, yt = make_data(1, seed=9)
    n, noise, seed = 3, 0.15, 11
    fam = MapFamily("TFA-Logit · test", "cos", "gradient", (("n_samples", n), ("noise", noise)), gradient=LOGIT)
    maps = fam(PairContext(model, x, y, xt[0], int(yt[0]), seed=seed))
    v = _unit(loop_logit_grads(model, xt, yt)[0]).detach()
    eps = torch.randn((n,) + tuple(x.shape), generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    rng = (x.flatten(1).max(1).values - x.flatten(1).min(1).values).view(-1, 1, 1, 1)
    G = loop_logit_grads(model, x, y)
    sign = torch.sign(G @ v)
    for i in range(len(x)):
        acc = torch.zeros_like(x[i])
        for s in range(n):
            xi = (x[i] + noise * rng[i] * eps[s, i])[None].requires_grad_(True)
            g = loop_logit_grads(model, xi, y[i:i + 1], create_graph=True)[0]
            acc += torch.autograd.grad(g @ v / g.norm(), xi)[0][0]
        torch.testing.assert_close(maps[i], sign[i] * acc / n)


def test_param_subset_scores_match_a_loop_over_those_parameters():
    torch.manual_seed(0)
    model = SmallCNN(1, 3, widths=(2, 3, 4, 4)).double().eval()
    assert param_subset(model, "conv layers") == ["features.0.0", "features.2.0", "features.4.0", "features.5.0"]
    assert param_subset(model, "first block") == ["features.0"]
    assert param_subset(model, "classifier") == ["classifier"]
    with pytest.raises(ValueError, match="unknown parameter subset"):
        param_subset(model, "last block")
    x = torch.rand(5, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1])
    xt = torch.rand(1, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for subset in PARAM_SUBSETS:
        fam = FAMILIES[f"TFA-Cos, {subset} · gradient, SmoothGrad"]
        ctx = PairContext(model, x, y, xt[0], 2)
        names = param_subset(model, subset)
        G = loop_grads(model, x, y, params=names)
        v = _unit(loop_grads(model, xt, torch.tensor([2]), params=names)[0])
        assert G.shape[1] < sum(p.numel() for p in model.parameters())
        torch.testing.assert_close(ctx.scores("cos", fam.gradient), G @ v / G.norm(dim=1))


def test_max_pool_smallcnn_per_sample_grads_match_a_loop():
    torch.manual_seed(0)
    model = SmallCNN(1, 3, widths=(2, 3, 4, 4), pool="max").double()
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 1, 12, 12, dtype=torch.float64))  # non-trivial BatchNorm statistics
    model.eval()
    assert isinstance(model.pool, nn.AdaptiveMaxPool2d)
    x = torch.rand(6, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.testing.assert_close(per_sample_grads(model, x, y), loop_grads(model, x, y))
    avg = SmallCNN(1, 3, widths=(2, 3, 4, 4)).double().eval()
    avg.load_state_dict(model.state_dict())  # same parameters: only the pooling differs
    assert not torch.allclose(avg(x), model(x))
    with pytest.raises(ValueError, match="pool"):
        SmallCNN(pool="median")


def test_robustness_families_are_separate_and_all_run():
    assert not set(ROBUSTNESS_FAMILIES) & set(EVIDENCE_FAMILIES)
    assert set(ROBUSTNESS_FAMILIES) <= set(FAMILIES)
    exp = _tiny_exp()
    fams = {k: FAMILIES[k] for k in ROBUSTNESS_FAMILIES if "n=50" not in k}
    tr = exp.train.patched_indices[:2]
    table = localisation_evidence(exp, torch.tensor([0]), tr[None], families=fams)
    assert set(table) == set(fams)
    for row in table.values():
        for m in row.values():
            assert 0.0 <= m["mass"] <= 1.0
    # one robustness family without the registry: TFA-Logit · occlusion (window 4, stride 2, fill 0) of
    # the logit Grad-Cos from per-example autograd loops, times sign(S), windows enumerated by hand
    with torch.no_grad():
        label = exp.model(exp.patched_test.images[:1]).argmax(1)  # both models explain the shortcut model's prediction
    x, y, masks = exp.train.images[tr], exp.train.labels[tr], exp.train.masks[tr]
    for mname, model in (("shortcut model", exp.model), ("clean model", exp.clean_model)):
        v = _unit(loop_logit_grads(model, exp.patched_test.images[:1], label)[0])

        def score(xi, yi, model=model, v=v):
            g = loop_logit_grads(model, xi[None], yi[None])[0]
            return float(g @ v / g.norm())

        masses = []
        for i in range(len(x)):
            base = score(x[i], y[i])
            total, cover = torch.zeros(8, 8), torch.zeros(8, 8)
            for r in (0, 2, 4):
                for c in (0, 2, 4):
                    occluded = x[i].clone()
                    occluded[:, r:r + 4, c:c + 4] = 0.0
                    total[r:r + 4, c:c + 4] += base - score(occluded, y[i])
                    cover[r:r + 4, c:c + 4] += 1
            pos = (total / cover * (1.0 if base >= 0 else -1.0)).clamp_min(0)
            masses.append(float((pos * masks[i]).sum() / pos.sum()))
        assert table["TFA-Logit · occlusion"][mname]["mass"] == pytest.approx(sum(masses) / len(masses), abs=1e-5)


def test_resnet9_per_sample_grads_and_tfa_pixel_gradient_match_loops():
    """The ResNet-9 robustness variant (Fashion-MNIST padded to 32×32): per-sample loss gradients
    against a per-example autograd loop, and the pixel gradient of Grad-Cos against a double backward
    per training image, in float64 with BatchNorm statistics in eval mode."""
    from tfa_tutorial import grad_cos, tfa_maps
    from tfa_tutorial.training.models import ResNet9

    torch.manual_seed(0)
    model = ResNet9(in_channels=1, num_classes=3, width=2).double()
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 1, 32, 32, dtype=torch.float64))  # non-trivial running statistics
    model.eval()
    x = torch.rand(4, 1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 1])
    G = per_sample_grads(model, x, y)
    torch.testing.assert_close(G, loop_grads(model, x, y))
    xt, yt = x[0] * 0.5, torch.tensor(2)
    g_test = loop_grads(model, xt[None], yt[None])[0]
    scores = grad_cos(model, x, y, xt[None], yt[None])[0]
    torch.testing.assert_close(scores, G @ g_test / (G.norm(dim=1) * g_test.norm()))
    ps = list(model.parameters())
    got = tfa_maps(model, x[:2], y[:2], xt, yt)
    for i in range(2):
        xi = x[i:i + 1].clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(model(xi), y[i:i + 1])
        gi = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, ps, create_graph=True)])
        (expected,) = torch.autograd.grad(gi @ g_test / (gi.norm() * g_test.norm()), xi)
        torch.testing.assert_close(got[i], expected[0])
