import pytest
import torch
from tiny_models import make_data, make_model

import tfa_tutorial as T
from tfa_tutorial.attribution.baselines import model_output_fn
from tfa_tutorial.attribution.methods import completeness_gap, ig_baseline, noise_sigma


def linear_model(seed=0):
    torch.manual_seed(seed)
    return T.SoftmaxRegression(16, 3).double().eval()


def test_saliency_of_a_linear_model_is_its_weight_row():
    m = linear_model()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 2])
    got = T.saliency(m, x, y)
    torch.testing.assert_close(got, m.linear.weight.detach()[y].view(2, 1, 4, 4))


def test_integrated_gradients_complete_for_a_linear_logit():
    m = linear_model()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    y = torch.tensor([1, 2])
    fn = model_output_fn(m)
    ig = T.attribute(fn, x, y, method="integrated_gradients", steps=3)
    torch.testing.assert_close(ig, x * m.linear.weight.detach()[y].view(2, 1, 4, 4))  # (x − 0) ⊙ w_y
    assert completeness_gap(fn, x, y, ig).max() < 1e-10


def test_occlusion_of_a_linear_logit_with_1px_window_is_x_times_w():
    m = linear_model()
    x = torch.rand(1, 1, 4, 4, dtype=torch.float64)
    y = torch.tensor([0])
    occ = T.attribute(model_output_fn(m), x, y, method="occlusion", window=1, stride=1, fill=0.0)
    torch.testing.assert_close(occ, x * m.linear.weight.detach()[0].view(1, 1, 4, 4))


def test_ig_baselines():
    x = torch.rand(2, 3, 8, 8)
    assert ig_baseline(x, "black").abs().sum() == 0
    mean = ig_baseline(x, "mean")
    torch.testing.assert_close(mean[:, :, 0, 0], x.mean(dim=(1, 2, 3))[:, None].expand(2, 3))
    blur = ig_baseline(x, "blur")
    assert blur.shape == x.shape and blur.std() < x.std()
    c = torch.full((2, 3, 8, 8), 0.3)
    torch.testing.assert_close(ig_baseline(c, "blur"), c)  # blurring a constant keeps it
    with pytest.raises(ValueError, match="baseline must be"):
        ig_baseline(x, "white")


def test_smoothgrad_noise_is_relative_to_the_input_range():
    x = torch.zeros(2, 1, 2, 2)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 1.0, 4.0
    torch.testing.assert_close(noise_sigma(x, 0.1).flatten(), torch.tensor([0.1, 0.4]))
    torch.testing.assert_close(noise_sigma(x, 0.1, noise_range=1.0).flatten(), torch.tensor([0.1, 0.1]))


def test_smoothgrad_of_a_linear_model_equals_saliency():
    m = linear_model()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    y = torch.tensor([0, 1])
    torch.testing.assert_close(T.smoothgrad(m, x, y, n_samples=5), T.saliency(m, x, y))


def test_two_step_baseline_ignores_the_test_image_and_matches_smoothgrad():
    m = make_model("group")
    x, y = make_data(3)
    ts = T.two_step_baseline(m, x, y, n_samples=4, seed=3)
    torch.testing.assert_close(ts, T.smoothgrad(m, x, y, n_samples=4, seed=3))
    ts_loss = T.two_step_baseline(m, x, y, n_samples=0, output="loss")
    assert not torch.allclose(ts_loss, T.two_step_baseline(m, x, y, n_samples=0))


def test_reduce_map_signs_and_channels():
    m = torch.tensor([[[1.0, -2.0]], [[-3.0, 4.0]]])  # [C=2, H=1, W=2]
    torch.testing.assert_close(T.reduce_map(m), torch.tensor([[-2.0, 2.0]]))
    torch.testing.assert_close(T.reduce_map(m, "positive"), torch.tensor([[1.0, 4.0]]))
    torch.testing.assert_close(T.reduce_map(m, "negative"), torch.tensor([[3.0, 2.0]]))
    torch.testing.assert_close(T.reduce_map(m, "absolute", "max"), torch.tensor([[3.0, 4.0]]))
    with pytest.raises(ValueError, match="sign must be"):
        T.reduce_map(m, "both")
    with pytest.raises(ValueError, match=r"\[\.\.\., C, H, W\]"):
        T.reduce_map(torch.zeros(3, 3))


def test_random_map_is_seeded():
    torch.testing.assert_close(T.random_map((2, 3), seed=4), T.random_map((2, 3), seed=4))
    assert not torch.allclose(T.random_map((2, 3), seed=4), T.random_map((2, 3), seed=5))
