import pytest
import torch
from tiny_models import loop_grads, make_data, make_model

import tfa_tutorial as T
from tfa_tutorial.attribution.gradients import (
    auto_chunk_size,
    flatten_grads,
    select_params,
)
from tfa_tutorial.training.models import count_parameters


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_per_sample_grads_equal_autograd_loop(norm):
    m = make_model(norm)
    x, y = make_data(7)
    got = T.per_sample_grads(m, x, y, chunk_size=3)
    assert got.shape == (7, count_parameters(m))
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, loop_grads(m, x, y), rtol=1e-10, atol=1e-12)


def test_parameter_subset_is_the_matching_slice():
    m = make_model("group")
    x, y = make_data(5)
    full = T.per_sample_grads(m, x, y)
    sub = T.per_sample_grads(m, x, y, params=["classifier"])
    n_before = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("classifier"))
    torch.testing.assert_close(sub, full[:, n_before:], rtol=0, atol=0)
    one = T.per_sample_grads(m, x, y, params="features.0.weight")
    torch.testing.assert_close(one, full[:, : m.features[0].weight.numel()], rtol=0, atol=0)


def test_chunking_does_not_change_results():
    m = make_model("batch")
    x, y = make_data(9)
    torch.testing.assert_close(T.per_sample_grads(m, x, y, chunk_size=1), T.per_sample_grads(m, x, y, chunk_size=100))


def test_auto_chunk_size_follows_the_memory_budget():
    m = make_model("group")
    small = auto_chunk_size(m, (1, 8, 8), count_parameters(m), memory_budget=2e5, max_chunk=10_000)
    large = auto_chunk_size(m, (1, 8, 8), count_parameters(m), memory_budget=2e7, max_chunk=10_000)
    assert 1 <= small < large


def test_bad_inputs_raise_clear_errors():
    m = make_model("batch")
    x, y = make_data(4)
    with pytest.raises(ValueError, match="4 examples but 3 labels"):
        T.per_sample_grads(m, x, y[:3])
    with pytest.raises(ValueError, match=r"must lie in \[0, 4\)"):
        T.per_sample_grads(m, x, torch.tensor([0, 1, 2, 4]))
    with pytest.raises(TypeError, match="integer class indices"):
        T.per_sample_grads(m, x, y.double())
    with pytest.raises(TypeError, match="floating point"):
        T.per_sample_grads(m, (x * 255).to(torch.uint8), y)
    with pytest.raises(ValueError, match="cannot take inputs of shape"):
        T.per_sample_grads(m, torch.rand(4, 3, 8, 8, dtype=torch.float64), y)
    with pytest.raises(ValueError, match="empty"):
        T.per_sample_grads(m, x[:0], y[:0])
    with pytest.raises(ValueError, match="match no trainable parameter"):
        T.per_sample_grads(m, x, y, params=["nonexistent"])
    with pytest.raises(ValueError, match="empty list"):
        T.per_sample_grads(m, x, y, params=[])
    m.train()
    with pytest.raises(ValueError, match=r"train mode and contains BatchNorm2d.*model.eval\(\)"):
        T.per_sample_grads(m, x, y)


def test_group_norm_model_may_stay_in_train_mode():
    m = make_model("group").train()
    x, y = make_data(3)
    torch.testing.assert_close(T.per_sample_grads(m, x, y), loop_grads(m, x, y))


class _Twice(torch.nn.Module):
    """A layer called twice per forward, an in-place ReLU on a conv output and a strided,
    dilated conv without bias: the batched engine must decline or handle each, never be wrong."""

    def __init__(self, case, cin=1):
        super().__init__()
        self.case = case
        self.conv = torch.nn.Conv2d(cin, 3, 3, stride=2, dilation=2 if case == "strided" else 1, padding=1,
                                    bias=case != "strided")
        self.lin = torch.nn.Linear(3, 3)
        self.head = torch.nn.Linear(3, 4)

    def forward(self, x):
        h = self.conv(x)
        h = torch.relu_(h) if self.case == "inplace" else torch.relu(h)
        h = h.mean(dim=(2, 3))
        h = torch.tanh(self.lin(h))
        if self.case == "twice":
            h = torch.tanh(self.lin(h))
        return self.head(h)


@pytest.mark.parametrize("case,cin", [("twice", 1), ("inplace", 1), ("strided", 1), ("strided", 2)])
def test_batched_engine_declines_or_matches_on_unusual_models(case, cin):
    torch.manual_seed(0)
    m = _Twice(case, cin).double().eval()
    x, y = make_data(5, c=cin)
    torch.testing.assert_close(T.per_sample_grads(m, x, y, chunk_size=2), loop_grads(m, x, y), rtol=1e-10, atol=1e-12)


def test_batched_engine_equals_vmap_path():
    from tfa_tutorial.attribution.gradients import grads_fn

    for norm in ("batch", "group"):
        m = make_model(norm)
        x, y = make_data(6)
        fn = grads_fn(m, select_params(m))
        assert not fn.uses_vmap
        vm = flatten_grads(fn.vmapped()(fn.theta, x, y), batched=True)
        torch.testing.assert_close(fn(x, y), vm, rtol=1e-10, atol=1e-12)
