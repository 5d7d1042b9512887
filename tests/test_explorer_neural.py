"""The explorer's neural-feature hook: ``ExplorerState.neural_features`` and the view's toggle.

The answers are computed independently from the model's layers (TinyCNN: features → mean → Linear).
"""
import ipywidgets as widgets
import pytest
import torch
import torch.nn.functional as F
from tiny_models import explorer_data

from tfa_tutorial.explorer.results import NeuralFeaturesView
from tfa_tutorial.explorer.state import ExplorerState
from tfa_tutorial.explorer.view import build_explorer

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    d = explorer_data()
    return d.x, d.y, d.patched, d.masks, d.xt, d.yt, d.model


@pytest.fixture()
def state(data):
    x, y, patched, masks, xt, yt, model = data
    return ExplorerState(model, x, y, {"clean": xt}, yt, train_patched=patched, train_masks=masks, k=2, n_samples=2)


def test_neural_features_match_an_independent_computation(state, data):
    x, y, patched, masks, xt, yt, model = data
    j = 5
    nf = state.neural_features(j, k=3, m=4)
    assert isinstance(nf, NeuralFeaturesView)
    with torch.no_grad():
        a = model.features(xt[j : j + 1])  # [1, F, 4, 4]
        h = a.mean(dim=(2, 3))[0]
        logits = model(xt[j : j + 1])[0]
        pred = int(logits.argmax())
        contrib = model.classifier.weight[pred] * h
        h_train = model.features(x).mean(dim=(2, 3))
    assert nf.target == pred == nf.test.pred and nf.test.index == j
    assert [n.neuron for n in nf.neurons] == contrib.topk(3).indices.tolist()
    assert nf.neurons[0].contribution >= nf.neurons[1].contribution >= nf.neurons[2].contribution
    torch.testing.assert_close(nf.logit, float(logits[pred]), rtol=1e-5, atol=1e-5)
    for n in nf.neurons:
        c = n.neuron
        torch.testing.assert_close(n.contribution, float(contrib[c]), rtol=1e-5, atol=1e-6)
        up = F.interpolate(a[:, c : c + 1], size=(8, 8), mode="bilinear", align_corners=False)[0, 0]
        ref = (up - up.min()) / (up.max() - up.min())
        torch.testing.assert_close(n.map, ref, rtol=1e-5, atol=1e-6)
        assert n.top_indices == h_train[:, c].topk(4).indices.tolist()
        assert n.top_patched == patched[n.top_indices].tolist()
        assert n.top_maps.shape == (4, 8, 8) and 0 <= float(n.top_maps.min()) and float(n.top_maps.max()) <= 1 + 1e-6
        assert torch.equal(n.top_masks, masks[n.top_indices])
    # the training activations are computed once and reused
    h_cached = state._neural["h"]
    state.neural_features(6)
    assert state._neural["h"] is h_cached


def test_neural_features_explain_the_true_label_on_request(state, data):
    *_, yt, _ = data
    before = state.settings
    nf = state.neural_features(3, label="true")
    assert nf.target == int(yt[3]) and nf.test.label_mode == "true"
    assert state.settings == before  # a look-up, not a change of the explorer's settings
    with pytest.raises(ValueError, match="out of range"):
        state.neural_features(10**6)
    with pytest.raises(ValueError, match="k must be a whole number ≥ 1"):
        state.neural_features(0, k=0)


def test_view_toggle_shows_the_neural_panel(state):
    ui, c = build_explorer(state)
    assert c["neural_toggle"] in ui.children and c["neural"] in ui.children
    assert c["neural"].layout.display == "none"  # off by default: nothing computed
    assert "layer" not in state._neural
    c["neural_toggle"].value = True
    assert c["neural"].layout.display == "flex"
    rows = [w for w in c["neural"].children if isinstance(w, widgets.HBox)]
    assert len(rows) == 3  # default k = 3 neurons, each: test-image map + m = 4 training images
    images = [im for row in rows for card in row.children for im in card.children if isinstance(im, widgets.Image)]
    assert len(images) == 3 * 5 and all(bytes(im.value).startswith(PNG) for im in images)
    # a new test image redraws the panel for that image
    before = c["neural"].children
    c["test_index"].value = 7
    assert c["neural"].children is not before
    assert f"{state.settings.test_index}" == "7"
    c["neural_toggle"].value = False
    assert c["neural"].layout.display == "none"
