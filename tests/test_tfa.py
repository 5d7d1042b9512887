import pytest
import torch
import torch.nn.functional as F
from tiny_models import make_data, make_model

import tfa_tutorial as T


def cosine(a, b):
    return (a @ b) / (a.norm() * b.norm())


def analytic_softmax_tfa(m, x, y, xj, yj):
    """∇_x [cos(δ(x), δ_j)·cos(x̃, x̃_j)] for softmax regression, by hand (no autograd)."""
    W, bias = m.linear.weight.detach(), m.linear.bias.detach()
    k = W.shape[0]
    def parts(x, y):
        xt = torch.cat([x.flatten(), torch.ones(1, dtype=x.dtype)])
        p = torch.softmax(W @ x.flatten() + bias, 0)
        return p, p - F.one_hot(torch.tensor(y), k).double(), xt
    p, a, xt = parts(x, y)
    _, b, xtj = parts(xj, yj)
    ah, bh, xh, xjh = a / a.norm(), b / b.norm(), xt / xt.norm(), xtj / xtj.norm()
    d_cos_a = W.T @ ((torch.diag(p) - torch.outer(p, p)) @ ((bh - (ah @ bh) * ah) / a.norm()))
    d_cos_x = ((xjh - (xh @ xjh) * xh) / xt.norm())[:-1]
    g = d_cos_a * cosine(xt, xtj) + cosine(a, b) * d_cos_x
    return g.reshape(x.shape)


def test_softmax_regression_tfa_equals_analytic_gradient():
    torch.manual_seed(0)
    m = T.SoftmaxRegression(12, 3).double().eval()
    g = torch.Generator().manual_seed(5)
    x, xj = torch.rand(1, 3, 4, generator=g, dtype=torch.float64), torch.rand(1, 3, 4, generator=g, dtype=torch.float64)
    got = T.tfa_map(m, x, 1, xj, 2)
    torch.testing.assert_close(got, analytic_softmax_tfa(m, x, 1, xj, 2), rtol=1e-9, atol=1e-12)


def central_differences(fn, x, coords, eps=1e-6):
    out = []
    for c in coords:
        e = torch.zeros_like(x)
        e[c] = eps
        out.append((fn(x + e) - fn(x - e)) / (2 * eps))
    return torch.stack(out)


@pytest.mark.parametrize("norm", ["batch", "group"])
@pytest.mark.parametrize("score", ["cos", "dot"])
def test_tfa_equals_finite_differences_on_small_cnn(norm, score):
    m = make_model(norm)
    x, y = make_data(3, seed=3)
    xj, yj = x[2], y[2]

    def S(xi):  # the score recomputed from scratch with plain autograd
        gi = torch.autograd.grad(F.cross_entropy(m(xi[None]), y[:1]), list(m.parameters()))
        gj = torch.autograd.grad(F.cross_entropy(m(xj[None]), yj[None]), list(m.parameters()))
        gi, gj = torch.cat([t.flatten() for t in gi]), torch.cat([t.flatten() for t in gj])
        return cosine(gi, gj) if score == "cos" else gi @ gj

    got = T.tfa_map(m, x[0], y[0], xj, yj, score=score)
    assert got.shape == x[0].shape
    coords = [(0, r, c) for r, c in [(0, 0), (1, 5), (3, 3), (4, 6), (7, 7), (2, 1)]]
    fd = central_differences(S, x[0], coords)
    an = torch.stack([got[c] for c in coords])
    torch.testing.assert_close(an, fd, rtol=1e-4, atol=1e-8)
    assert an.abs().max() > 1e-6  # not a vacuous comparison of zeros


def autograd_tfa(m, xi, yi, xj, yj):
    """Double backward with create_graph=True, one image at a time (the reference sketch)."""
    gj = torch.autograd.grad(F.cross_entropy(m(xj[None]), yj[None]), list(m.parameters()))
    gj = torch.cat([t.flatten() for t in gj])
    xi = xi.clone().requires_grad_(True)
    gi = torch.autograd.grad(F.cross_entropy(m(xi[None]), yi[None]), list(m.parameters()), create_graph=True)
    s = cosine(torch.cat([t.flatten() for t in gi]), gj)
    return torch.autograd.grad(s, xi)[0]


def test_batched_smoothgrad_tfa_equals_per_image_autograd_loop():
    m = make_model("batch")
    x, y = make_data(4, seed=4)
    xj, yj = x[3], y[3]
    n, noise, seed = 5, 0.2, 7
    got = T.tfa_maps(m, x[:3], y[:3], xj, yj, n_samples=n, noise=noise, seed=seed, chunk_size=4)
    eps = torch.randn((n,) + tuple(x[:3].shape), generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    for b in range(3):
        sigma = noise * (x[b].max() - x[b].min())
        ref = torch.stack([autograd_tfa(m, x[b] + sigma * eps[k, b], y[b], xj, yj) for k in range(n)]).mean(0)
        torch.testing.assert_close(got[b], ref, rtol=1e-8, atol=1e-12)


def test_smoothgrad_is_seeded_and_differs_from_raw():
    m = make_model("group")
    x, y = make_data(2, seed=4)
    a = T.tfa_map(m, x[0], y[0], x[1], n_samples=4, seed=1)
    torch.testing.assert_close(a, T.tfa_map(m, x[0], y[0], x[1], n_samples=4, seed=1))
    assert not torch.allclose(a, T.tfa_map(m, x[0], y[0], x[1], n_samples=4, seed=2))
    assert not torch.allclose(a, T.tfa_map(m, x[0], y[0], x[1]))


def test_test_label_changes_the_map():
    m = make_model("group")
    x, y = make_data(2, seed=4)
    pred = int(m(x[1:]).argmax())
    torch.testing.assert_close(T.tfa_map(m, x[0], y[0], x[1]), T.tfa_map(m, x[0], y[0], x[1], pred))
    assert not torch.allclose(T.tfa_map(m, x[0], y[0], x[1]), T.tfa_map(m, x[0], y[0], x[1], (pred + 1) % 4))


def test_zero_training_gradient_gives_zero_map_not_nan():
    torch.manual_seed(0)
    m = T.SoftmaxRegression(12, 3, bias=False).double().eval()
    x0 = torch.zeros(1, 3, 4, dtype=torch.float64)  # g = δ·0ᵀ = 0 exactly
    mp = T.tfa_map(m, x0, 0, torch.ones(1, 3, 4, dtype=torch.float64), 1)
    assert torch.isfinite(mp).all()


@pytest.mark.parametrize("method", ["gradient_x_input", "integrated_gradients", "occlusion"])
def test_value_methods_run_and_have_the_image_shape(method):
    m = make_model("group")
    x, y = make_data(3, seed=4)
    out = T.tfa_maps(m, x[:2], y[:2], x[2], method=method, steps=4, window=2, stride=2)
    assert out.shape == x[:2].shape and torch.isfinite(out).all() and out.abs().sum() > 0


def test_tfa_bad_inputs():
    m = make_model("batch")
    x, y = make_data(2)
    with pytest.raises(ValueError, match="differ in shape"):
        T.tfa_maps(m, x, y, torch.rand(1, 6, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown method"):
        T.tfa_maps(m, x, y, x[0], method="lrp")
    with pytest.raises(ValueError, match="n_samples"):
        T.tfa_maps(m, x, y, x[0], n_samples=-1)
    with pytest.raises(ValueError, match="noise must be"):
        T.tfa_maps(m, x, y, x[0], n_samples=2, noise=-0.1)
    with pytest.raises(TypeError, match="test_input"):
        T.tfa_map(m, x[0], y[0], [1, 2])
    with pytest.raises(ValueError, match="must lie in"):
        T.tfa_map(m, x[0], 9, x[1])
    m.train()
    with pytest.raises(ValueError, match="model.eval"):
        T.tfa_map(m, x[0], y[0], x[1])


def test_package_closed_forms_agree_with_the_test_derivation_and_autograd():
    torch.manual_seed(1)
    m = T.SoftmaxRegression(12, 3).double().eval()
    g = torch.Generator().manual_seed(6)
    x, xj = torch.rand(1, 3, 4, generator=g, dtype=torch.float64), torch.rand(1, 3, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(T.softmax_regression_tfa(m, x, 0, xj, 1), analytic_softmax_tfa(m, x, 0, xj, 1))
    torch.testing.assert_close(T.softmax_regression_tfa(m, x, 0, xj, 1), T.tfa_map(m, x, 0, xj, 1), rtol=1e-9, atol=1e-12)
    s = T.grad_cos(m, x[None], torch.tensor([0]), xj[None], torch.tensor([1]))[0, 0]
    torch.testing.assert_close(T.softmax_regression_grad_cos(m, x, 0, xj, 1), s)
