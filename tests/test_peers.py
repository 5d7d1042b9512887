"""Our numbers against peer libraries on the same model (Captum; test-only dependency)."""
import pytest
import torch
import torch.nn.functional as F
from tiny_models import make_data, make_model

import tfa_tutorial as T
from tfa_tutorial.attribution.feature_layer import find_feature_layer

captum = pytest.importorskip("captum")
from captum.attr import LayerAttribution, LayerGradCam, Saliency  # noqa: E402
from captum.influence import TracInCP  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402


@pytest.mark.parametrize("norm", ["batch", "group"])
def test_grad_cos_equals_captum_tracincp_normalised_by_self_influence(norm, tmp_path):
    m = make_model(norm)
    xtr, ytr = make_data(12, seed=1)
    xte, yte = make_data(3, seed=2)
    ckpt = tmp_path / "ckpt.pt"
    torch.save(m.state_dict(), ckpt)

    def load(model, path):
        model.load_state_dict(torch.load(path, weights_only=True))
        return 1.0  # learning rate: Grad-Dot unscaled

    tracin = TracInCP(
        m, TensorDataset(xtr, ytr), [str(ckpt)], checkpoints_load_func=load,
        loss_fn=torch.nn.CrossEntropyLoss(reduction="none"), batch_size=5,
    )
    dot = tracin.influence((xte, yte))  # [Q, N]
    s_tr = tracin.self_influence(torch.utils.data.DataLoader(TensorDataset(xtr, ytr), batch_size=5))
    s_te = tracin.self_influence(torch.utils.data.DataLoader(TensorDataset(xte, yte), batch_size=5))
    cos = dot / torch.sqrt(s_te[:, None] * s_tr[None, :])
    torch.testing.assert_close(T.grad_dot(m, xtr, ytr, xte, yte), dot.to(torch.float64), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(T.grad_cos(m, xtr, ytr, xte, yte), cos.to(torch.float64), rtol=1e-8, atol=1e-10)


def test_raw_tfa_equals_captum_saliency_over_an_autograd_grad_cos_forward():
    m = make_model("batch")
    x, y = make_data(4, seed=3)
    xj, yj = x[3], y[3]
    params = list(m.parameters())
    gj = torch.cat([g.flatten() for g in torch.autograd.grad(F.cross_entropy(m(xj[None]), yj[None]), params)])

    def grad_cos_forward(xb, yb):  # plain autograd, create_graph so Captum can differentiate it
        out = []
        for xi, yi in zip(xb, yb):
            gi = torch.autograd.grad(F.cross_entropy(m(xi[None]), yi[None]), params, create_graph=True)
            gi = torch.cat([g.flatten() for g in gi])
            out.append(gi @ gj / (gi.norm() * gj.norm()))
        return torch.stack(out)

    ref = Saliency(grad_cos_forward).attribute(x[:3].clone(), abs=False, additional_forward_args=(y[:3],))
    torch.testing.assert_close(T.tfa_maps(m, x[:3], y[:3], xj, yj), ref, rtol=1e-8, atol=1e-12)


def test_grad_cam_equals_captum_layer_grad_cam():
    m = make_model("group")
    x, y = make_data(3, seed=3)
    layer = find_feature_layer(m, x[0]).module
    assert layer is m.features  # its output (the last ReLU's) is what the classifier pools
    ref = LayerGradCam(m, layer).attribute(x, target=y, relu_attributions=True)
    ref = LayerAttribution.interpolate(ref, x.shape[-2:], interpolate_mode="bilinear")
    torch.testing.assert_close(T.grad_cam(m, x, y), ref, rtol=1e-8, atol=1e-12)
    assert ref.abs().sum() > 0
