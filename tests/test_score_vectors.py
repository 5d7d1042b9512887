"""Linear-in-g_i scores (cos, dot, centered, contrast, counterfactual) against brute-force
per-example autograd loops (float64)."""
import pytest
import torch
from tiny_models import loop_grads, make_data, make_model

import tfa_tutorial as T
from tfa_tutorial.attribution.score_vectors import (
    class_mean_gradient,
    score_vector,
    vector_score_fn,
    vector_scores,
)


def _cos(a, b):
    return (a @ b) / (a.norm(dim=-1) * b.norm())


@pytest.fixture
def setup():
    model = make_model("batch")
    x, y = make_data(8)
    xq, yq = make_data(1, seed=9)
    return model, x, y, xq[0], yq[0]


def test_cos_and_dot_equal_grad_cos_and_grad_dot(setup):
    model, x, y, xq, yq = setup
    for kind, ref in [("cos", T.grad_cos), ("dot", T.grad_dot)]:
        v = score_vector(model, xq, kind, test_target=yq)
        s = vector_scores(model, x, y, v, divide_by_train_norm=(kind == "cos"))
        torch.testing.assert_close(s, ref(model, x, y, xq[None], yq[None]), rtol=1e-10, atol=1e-12)


def test_contrast_is_difference_of_grad_cos_under_two_labels(setup):
    model, x, y, xq, _ = setup
    pred = int(model(xq[None]).argmax())
    true = (pred + 1) % 4
    v = score_vector(model, xq, "contrast", true_target=true)
    s = vector_scores(model, x, y, v)
    ref = T.grad_cos(model, x, y, xq[None], torch.tensor([pred])) - T.grad_cos(model, x, y, xq[None], torch.tensor([true]))
    torch.testing.assert_close(s, ref, rtol=1e-10, atol=1e-12)


def test_centered_matches_brute_force(setup):
    model, x, y, xq, yq = setup
    G = loop_grads(model, x, y)
    m = class_mean_gradient(model, x, y, int(yq))
    torch.testing.assert_close(m, G[y == yq].mean(0), rtol=1e-10, atol=1e-12)
    v = score_vector(model, xq, "centered", test_target=yq, class_mean=m)
    gq = loop_grads(model, xq[None], yq[None])[0]
    torch.testing.assert_close(vector_scores(model, x, y, v)[0], _cos(G, gq - m), rtol=1e-10, atol=1e-12)


def test_counterfactual_is_difference_of_two_grad_cos(setup):
    model, x, y, xq, yq = setup
    xc = xq.clone()
    xc[:, :3, :3] = 0
    v = score_vector(model, xq, "counterfactual", test_target=yq, counterfactual_input=xc)
    ref = T.grad_cos(model, x, y, xq[None], yq[None]) - T.grad_cos(model, x, y, xc[None], yq[None])
    torch.testing.assert_close(vector_scores(model, x, y, v), ref, rtol=1e-10, atol=1e-12)


def test_vector_score_fn_gives_the_paper_tfa_map(setup):
    model, x, y, xq, yq = setup
    v = score_vector(model, xq, "cos", test_target=yq)
    maps = T.attribute(vector_score_fn(model, v), x[:3], y[:3])
    torch.testing.assert_close(maps, T.tfa_maps(model, x[:3], y[:3], xq, yq), rtol=1e-10, atol=1e-12)


def test_errors(setup):
    model, x, y, xq, yq = setup
    with pytest.raises(ValueError, match="unknown score kind"):
        score_vector(model, xq, "cosine")
    with pytest.raises(ValueError, match="true_target"):
        score_vector(model, xq, "contrast")
    with pytest.raises(ValueError, match="class_mean"):
        score_vector(model, xq, "centered")
    with pytest.raises(ValueError, match="counterfactual_input"):
        score_vector(model, xq, "counterfactual")
    with pytest.raises(ValueError, match="no training example"):
        class_mean_gradient(model, x, torch.zeros_like(y), 3)
    with pytest.raises(ValueError, match="shape"):
        vector_score_fn(model, torch.zeros(5, dtype=torch.float64))
