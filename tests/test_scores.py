import pytest
import torch
import torch.nn.functional as F
from tiny_models import loop_grads, make_data, make_model

import tfa_tutorial as T
from tfa_tutorial.attribution.index import RandomProjection
from tfa_tutorial.attribution.scores import gradient_scores


def naive_scores(m, xtr, ytr, xte, yte):
    gtr, gte = loop_grads(m, xtr, ytr), loop_grads(m, xte, yte)
    dot = gte @ gtr.T
    cos = dot / (gte.norm(dim=1)[:, None] * gtr.norm(dim=1)[None, :])
    return dot, cos


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_grad_dot_and_cos_equal_naive_computation(norm):
    m = make_model(norm)
    xtr, ytr = make_data(11, seed=1)
    xte, yte = make_data(3, seed=2)
    dot, cos = naive_scores(m, xtr, ytr, xte, yte)
    torch.testing.assert_close(T.grad_dot(m, xtr, ytr, xte, yte), dot, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(T.grad_cos(m, xtr, ytr, xte, yte), cos, rtol=1e-9, atol=1e-12)


def test_streaming_equals_one_shot():
    m = make_model("batch")
    xtr, ytr = make_data(13, seed=1)
    xte, yte = make_data(4, seed=2)
    one_shot = T.grad_cos(m, xtr, ytr, xte, yte, chunk_size=1000)
    streamed = T.grad_cos(m, xtr, ytr, xte, yte, chunk_size=2)
    torch.testing.assert_close(streamed, one_shot, rtol=1e-12, atol=1e-12)


def test_default_test_label_is_the_prediction():
    m = make_model("group")
    xtr, ytr = make_data(6, seed=1)
    xte, _ = make_data(3, seed=2)
    pred = m(xte).argmax(1)
    torch.testing.assert_close(T.grad_cos(m, xtr, ytr, xte), T.grad_cos(m, xtr, ytr, xte, pred))
    other = (pred + 1) % 4
    assert not torch.allclose(T.grad_cos(m, xtr, ytr, xte), T.grad_cos(m, xtr, ytr, xte, other))


def softmax_model(d=12, k=3, seed=0, bias=True):
    torch.manual_seed(seed)
    m = T.SoftmaxRegression(d, k, bias=bias).double().eval()
    return m


def test_softmax_regression_closed_form():
    """g = δ x̃ᵀ with δ = p − e_y, x̃ = [x; 1]  ⇒  S_GC = cos(δ_i, δ_j)·cos(x̃_i, x̃_j)."""
    m = softmax_model()
    g = torch.Generator().manual_seed(3)
    xtr, xte = torch.rand(7, 1, 3, 4, generator=g, dtype=torch.float64), torch.rand(2, 1, 3, 4, generator=g, dtype=torch.float64)
    ytr, yte = torch.randint(0, 3, (7,), generator=g), torch.tensor([0, 2])

    def parts(x, y):
        p = torch.softmax(m(x), 1)
        delta = p - F.one_hot(y, 3).double()
        xt = torch.cat([x.flatten(1), torch.ones(len(x), 1, dtype=x.dtype)], 1)
        return delta, xt

    di, xi = parts(xtr, ytr)
    dj, xj = parts(xte, yte)
    cos = lambda a, b: F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    closed = cos(dj, di) * cos(xj, xi)
    torch.testing.assert_close(T.grad_cos(m, xtr, ytr, xte, yte), closed, rtol=1e-10, atol=1e-12)
    closed_dot = (dj @ di.T) * (xj @ xi.T)
    torch.testing.assert_close(T.grad_dot(m, xtr, ytr, xte, yte), closed_dot, rtol=1e-10, atol=1e-12)


def test_zero_gradient_scores_zero_not_nan():
    m = softmax_model(bias=False)
    xtr = torch.zeros(2, 1, 3, 4, dtype=torch.float64)  # g = δ·0ᵀ = 0
    xtr[1] = 1.0
    ytr = torch.tensor([0, 1])
    s = T.grad_cos(m, xtr, ytr, xtr[1:], torch.tensor([1]))
    assert torch.isfinite(s).all()
    assert s[0, 0] == 0
    assert s[0, 1] == pytest.approx(1.0)
    s0 = T.grad_cos(m, xtr, ytr, xtr[:1], torch.tensor([0]))  # zero *test* gradient
    assert torch.equal(s0, torch.zeros_like(s0))


def test_bad_score_inputs():
    m = make_model("batch")
    xtr, ytr = make_data(4)
    with pytest.raises(ValueError, match="differ in shape"):
        T.grad_cos(T.SoftmaxRegression(64, 4).double().eval(), xtr, ytr, torch.rand(1, 4, 4, 4, dtype=torch.float64), torch.tensor([0]))
    with pytest.raises(ValueError, match="score must be"):
        gradient_scores(m, xtr, ytr, xtr, ytr, score="euclid")


def test_exact_index_equals_streaming_scores():
    m = make_model("group")
    xtr, ytr = make_data(10, seed=1)
    xte, yte = make_data(3, seed=2)
    idx = T.GradientIndex.build(m, xtr, ytr, chunk_size=4)
    torch.testing.assert_close(idx.query(xte, yte), T.grad_cos(m, xtr, ytr, xte, yte))
    torch.testing.assert_close(idx.query(xte, yte, score="dot"), T.grad_dot(m, xtr, ytr, xte, yte))
    rep = idx.error_report(xte, yte)
    assert rep["max_abs_error"] < 1e-12 and rep["topk_overlap"] == 1.0


@pytest.mark.parametrize("kind", ["countsketch", "gaussian"])
def test_projection_is_unbiased_for_inner_products(kind):
    """E⟨Rg_i, Rg_j⟩ = ⟨g_i, g_j⟩: the mean over 200 seeds is within 4 standard errors."""
    g = torch.randn(2, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = (g[0] @ g[1]).item()
    est = torch.tensor([(lambda r: (r[0] @ r[1]).item())(RandomProjection(kind, 300, 16, seed=s)(g)) for s in range(200)])
    assert abs(est.mean().item() - exact) < 4 * est.std().item() / 200**0.5
    assert est.std() > 0  # it is a random projection, not the identity


@pytest.mark.parametrize("kind", ["countsketch", "gaussian"])
def test_projected_index_error_shrinks_with_dim_and_is_reported(kind):
    m = make_model("group", width=6)
    xtr, ytr = make_data(40, seed=1)
    xte, yte = make_data(4, seed=2)
    errs = []
    for dim in (16, 1024):
        rep = T.GradientIndex.build(m, xtr, ytr, projection=kind, dim=dim).error_report(xte, yte, k=5)
        errs.append(rep["mean_abs_error"])
    assert errs[1] < errs[0] / 3  # JL error ∝ 1/√d: 64× the dim gives ≈ 8× smaller errors
    assert errs[1] < 0.05


def test_unknown_projection():
    with pytest.raises(ValueError, match="projection must be"):
        RandomProjection("pca", 10, 2)


def test_both_scores_in_one_pass_equal_separate_calls():
    m = make_model("batch")
    xtr, ytr = make_data(9, seed=1)
    xte, yte = make_data(3, seed=2)
    cos, dot = T.grad_cos_and_dot(m, xtr, ytr, xte, yte, chunk_size=4)
    torch.testing.assert_close(cos, T.grad_cos(m, xtr, ytr, xte, yte))
    torch.testing.assert_close(dot, T.grad_dot(m, xtr, ytr, xte, yte))


@pytest.mark.parametrize("projection", [None, "countsketch"])
def test_gradient_index_save_load_round_trip(tmp_path, projection):
    m = make_model("batch")
    x, y = make_data(n=12)
    xq = make_data(n=3, seed=5)[0]
    index = T.GradientIndex.build(m, x, y, projection=projection, dim=64, seed=3, chunk_size=5)
    path = tmp_path / "index.pt"
    index.save(path)
    back = T.GradientIndex.load(path, m, x, y)
    torch.testing.assert_close(back.query(xq), index.query(xq), rtol=0, atol=0)
    assert back.chunk_size == 5 and (back.projection is None) == (projection is None)
    if projection:  # the same random projection is rebuilt from (kind, sizes, seed)
        assert back.projection == index.projection
    else:  # exact index: the same scores as the streaming computation
        torch.testing.assert_close(back.query(xq), gradient_scores(m, x, y, xq), rtol=1e-5, atol=1e-6)


def test_gradient_index_load_refuses_a_file_that_does_not_fit(tmp_path):
    m = make_model("batch")
    x, y = make_data(n=8)
    index = T.GradientIndex.build(m, x, y)
    path = tmp_path / "index.pt"
    index.save(path)
    with pytest.raises(ValueError, match="not 7 training examples"):
        T.GradientIndex.load(path, m, x[:7], y[:7])
    index.vectors[0, 0] = float("nan")
    index.save(path)
    with pytest.raises(ValueError, match="saved index"):
        T.GradientIndex.load(path, m, x, y)
