"""The explorer's map methods: gradient (SmoothGrad), gradient × input, integrated gradients,
the exact decomposition of the score over the training image's positions, and the default
two-step occlusion of the training image's own label.

Every test names its method explicitly, so none depends on which one is DEFAULT_MAP_METHOD.
A tiny float64 CNN with GroupNorm and 1×8×8 synthetic images keep each test to seconds.
"""
from types import SimpleNamespace

import pytest
import torch
from tiny_models import loop_grads, make_model
from torch.func import grad

import tfa_tutorial as T
from tfa_tutorial.explorer.settings import (
    DEFAULT_MAP_METHOD,
    MAP_METHODS,
    METHOD_FAMILIES,
    SLOW_SETTINGS,
    TWO_STEP_OCCLUSION,
    ExplorerSettings,
)
from tfa_tutorial.explorer.state import ExplorerState
from tfa_tutorial.explorer.view import build_explorer

N_TRAIN, N_TEST, K_CLASSES = 40, 12, 4
DT = torch.float64


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N_TRAIN, 1, 8, 8, generator=g, dtype=DT)
    y = torch.arange(N_TRAIN) % K_CLASSES
    patched = (y == 0) & (torch.arange(N_TRAIN) < 30)
    masks = torch.zeros(N_TRAIN, 8, 8, dtype=torch.bool)
    masks[patched, :3, :3] = True
    x[masks.unsqueeze(1)] = 1.0
    xt = torch.rand(N_TEST, 1, 8, 8, generator=g, dtype=DT)
    yt = torch.arange(N_TEST) % K_CLASSES
    xt_patched = xt.clone()
    xt_patched[:, :, :3, :3] = 1.0
    model = make_model("group", dtype=DT)
    return SimpleNamespace(x=x, y=y, patched=patched, masks=masks, xt=xt, xt_patched=xt_patched, yt=yt, model=model)


def make_state(d, **kw):
    opts = dict(train_patched=d.patched, train_masks=d.masks, flipped=[1, 2, 5], k=3, n_samples=4, method="gradient")
    opts.update(kw)
    return ExplorerState(d.model, d.x, d.y, {"patched": d.xt_patched, "clean": d.xt}, d.yt, **opts)


def loop_scores(d, j, target, score):
    """Independent reference: Grad-Cos / Grad-Dot of every training image by per-example autograd."""
    g_tr = loop_grads(d.model, d.x, d.y)
    g_te = loop_grads(d.model, d.xt_patched[j : j + 1], torch.tensor([target]))[0]
    dot = g_tr @ g_te
    return dot if score == "dot" else dot / (g_tr.norm(dim=1) * g_te.norm())


def test_method_constants_and_default():
    assert set(MAP_METHODS) == {"gradient", "gradient_x_input", "integrated_gradients", "decomposition",
                                "two_step_occlusion"}
    assert all(isinstance(v, str) and v for v in MAP_METHODS.values())
    assert DEFAULT_MAP_METHOD in MAP_METHODS
    # names, labels and options come from the one map registry
    from tfa_tutorial.attribution.families import EXPLORER_FAMILIES, FAMILIES
    assert [METHOD_FAMILIES[k].name for k in MAP_METHODS] == list(EXPLORER_FAMILIES)
    assert all(label in FAMILIES[METHOD_FAMILIES[k].name].name for k, label in MAP_METHODS.items())
    assert TWO_STEP_OCCLUSION == FAMILIES["two-step · occlusion"].opts
    assert ExplorerSettings(test_set="t").method == DEFAULT_MAP_METHOD
    assert "method" in SLOW_SETTINGS


@pytest.mark.parametrize("score", ["cos", "dot"])
def test_decomposition_map_is_decompose_score_and_sums_to_the_shown_score(data, score):
    st = make_state(data, method="decomposition", score=score)
    r = st.result()
    assert r.ok, r.message
    target = r.test.target
    ref_scores = loop_scores(data, 0, target, score)
    v = T.score_vector(data.model, data.xt_patched[0], score, test_target=target)
    for item in r.proponents + r.opponents:
        i = item.index
        direct = T.decompose_score(data.model, data.x[i : i + 1], data.y[i : i + 1], v,
                                   divide_by_train_norm=score == "cos", mapping="rf")
        torch.testing.assert_close(item.map, direct.maps[0], rtol=1e-10, atol=1e-12)
        # exact: the map sums to the score the explorer shows for this image, and to autograd's
        assert float(item.map.sum()) == pytest.approx(item.score, rel=1e-8, abs=1e-10)
        assert float(item.map.sum()) == pytest.approx(float(ref_scores[i]), rel=1e-8, abs=1e-10)
        # shown as computed, not multiplied by sign(score): opponents' maps sum to a negative score
        torch.testing.assert_close(item.shown, T.reduce_map(item.map, "signed"))
    assert all(o.score < 0 and float(o.map.sum()) < 0 for o in r.opponents)
    # the detail pane shows the same map and names its method
    d = st.detail(r.opponents[0].index)
    assert d.method == "decomposition"
    torch.testing.assert_close(d.smooth, r.opponents[0].shown)
    assert float(d.smooth.sum()) == pytest.approx(d.score, rel=1e-8, abs=1e-10)


def test_gradient_x_input_is_input_times_the_raw_gradient(data):
    st = make_state(data, method="gradient_x_input")
    r = st.result()
    for item in r.proponents + r.opponents:
        i = item.index
        raw = st.training_map(i, method="gradient", n_samples=0)
        torch.testing.assert_close(item.map, data.x[i] * raw)
        # and the raw gradient is the package's TFA map (independent code path)
        ref = T.tfa_maps(data.model, data.x[i : i + 1], data.y[i : i + 1], data.xt_patched[0], n_samples=0)[0]
        torch.testing.assert_close(item.map, data.x[i] * ref, rtol=1e-8, atol=1e-12)


def test_integrated_gradients_is_a_16_step_riemann_sum_from_black(data):
    st = make_state(data, method="integrated_gradients")
    r = st.result()
    item = r.proponents[0]
    i = item.index
    fn = T.tda_score_fn(data.model, data.xt_patched[0], r.test.target, "cos")
    g = grad(fn)
    xi, yi = data.x[i], data.y[i]
    path = [g((k + 0.5) / 16 * xi, yi) for k in range(16)]
    ref = xi * torch.stack(path).mean(0)
    torch.testing.assert_close(item.map, ref, rtol=1e-8, atol=1e-12)
    # black baseline: the map's total approximates S(x_i) − S(0) (completeness, up to the Riemann error)
    assert not torch.allclose(item.map, torch.zeros_like(item.map))


def test_switching_method_recomputes_maps_not_scores(data):
    st = make_state(data, method="gradient")
    r0 = st.result()
    before = dict(st.stats)
    r1 = st.set(method="decomposition")
    assert r1.ok and r1.settings.method == "decomposition"
    assert st.stats["maps"] == before["maps"] + 6  # 3 proponents + 3 opponents
    for key in ("queries", "exact", "index_builds"):
        assert st.stats[key] == before[key], key
    assert [p.index for p in r1.proponents] == [p.index for p in r0.proponents]
    assert [p.score for p in r1.proponents] == [p.score for p in r0.proponents]
    assert not torch.allclose(r1.proponents[0].map, r0.proponents[0].map)
    # n and σ do not apply to the decomposition: changing them recomputes nothing
    maps = st.stats["maps"]
    st.set(n_samples=8, noise=0.3)
    assert st.stats["maps"] == maps
    # back to the gradient with the old n, σ: cached
    r2 = st.set(method="gradient", n_samples=4, noise=0.15)
    assert st.stats["maps"] == maps
    torch.testing.assert_close(r2.proponents[0].map, r0.proponents[0].map)
    st.set(method="gradient_x_input")
    assert st.stats["maps"] == maps + 6 and st.stats["queries"] == before["queries"]


def test_unknown_method_gives_a_message_and_keeps_the_settings(data):
    st = make_state(data, method="gradient_x_input")
    good = st.result()
    before = st.settings
    r = st.set(method="lrp")
    assert not r.ok and "unknown map method 'lrp'" in r.message and "decomposition" in r.message
    assert st.settings == before and r.settings.method == "gradient_x_input"
    assert [p.index for p in r.proponents] == [p.index for p in good.proponents]
    with pytest.raises(ValueError, match="unknown map method"):
        st.update(method=None)
    assert st.settings == before
    with pytest.raises(ValueError, match="unknown map method"):
        st.training_map(0, method="occlusion")


def test_decomposition_needs_all_parameters(data):
    st = make_state(data, method="gradient", params=["classifier"])
    r = st.set(method="decomposition")
    assert not r.ok and "all trainable parameters" in r.message and st.settings.method == "gradient"


def test_the_decomposition_view_starts_with_smoothgrad_sliders_off(data):
    st = ExplorerState(data.model, data.x, data.y, data.xt_patched, data.yt, k=2, method="decomposition")
    assert st.settings.method == "decomposition"
    _ui, c = build_explorer(st)
    assert c["method"].value == "decomposition"
    assert c["n_samples"].disabled and c["noise"].disabled
    r = st.result()
    assert r.ok, r.message
    # the maps shown by default are the decomposition's: each sums to autograd's Grad-Cos
    ref = loop_scores(data, 0, r.test.target, "cos")
    for item in r.proponents + r.opponents:
        assert item.map.shape == (1, 8, 8)
        assert float(item.map.sum()) == pytest.approx(float(ref[item.index]), rel=1e-8, abs=1e-10)


def test_a_parameter_subset_gets_a_default_that_works(data):
    # the default must not make every later set() fail; two-step occlusion needs no parameter selection
    st = ExplorerState(data.model, data.x, data.y, data.xt_patched, data.yt, k=2, params=["classifier"])
    assert st.settings.method == DEFAULT_MAP_METHOD == "two_step_occlusion"
    r = st.set(k=3)
    assert r.ok and r.settings.method == "two_step_occlusion" and len(r.proponents) == 3
    # the ranking uses the subset (Grad-Cos over the classifier only), the maps the whole model's own logit
    g_tr = torch.stack([torch.cat([t.flatten() for t in torch.autograd.grad(
        torch.nn.functional.cross_entropy(data.model(data.x[i : i + 1]), data.y[i : i + 1]),
        list(data.model.classifier.parameters()))]) for i in range(N_TRAIN)])
    g_te = torch.cat([t.flatten() for t in torch.autograd.grad(
        torch.nn.functional.cross_entropy(data.model(data.xt_patched[:1]), torch.tensor([r.test.target])),
        list(data.model.classifier.parameters()))])
    ref = g_tr @ g_te / (g_tr.norm(dim=1) * g_te.norm())
    assert [p.index for p in r.proponents] == ref.topk(3).indices.tolist()
    for item in r.proponents + r.opponents:
        i = item.index
        direct = T.two_step_baseline(data.model, data.x[i : i + 1], data.y[i : i + 1], method="occlusion",
                                     window=4, stride=2)[0]
        torch.testing.assert_close(item.map, direct)
    # and the gradient still works with the subset
    assert st.set(method="gradient").ok


def occlusion_reference(model, x, y, window=4, stride=2):
    """Independent reference: occlude each window (fill 0) by hand, own-label logit drop averaged
    over the windows covering each pixel."""
    _c, h, w = x.shape
    with torch.no_grad():
        base = model(x[None])[0, y]
        total = torch.zeros(h, w, dtype=x.dtype)
        count = torch.zeros(h, w, dtype=x.dtype)
        for top in range(0, h - window + 1, stride):
            for left in range(0, w - window + 1, stride):
                xo = x.clone()
                xo[:, top : top + window, left : left + window] = 0
                total[top : top + window, left : left + window] += base - model(xo[None])[0, y]
                count[top : top + window, left : left + window] += 1
    return (total / count.clamp(min=1)).expand_as(x)


def test_default_is_two_step_occlusion_equal_to_the_direct_baseline(data):
    assert DEFAULT_MAP_METHOD == "two_step_occlusion"
    assert ExplorerSettings(test_set="t").method == "two_step_occlusion"
    st = ExplorerState(data.model, data.x, data.y, {"patched": data.xt_patched, "clean": data.xt}, data.yt, k=3)
    assert st.settings.method == "two_step_occlusion"
    r = st.result()
    assert r.ok, r.message
    for item in r.proponents + r.opponents:
        i = item.index
        direct = T.two_step_baseline(data.model, data.x[i : i + 1], data.y[i : i + 1], method="occlusion",
                                     window=4, stride=2)[0]
        torch.testing.assert_close(item.map, direct)
        torch.testing.assert_close(item.map, occlusion_reference(data.model, data.x[i], int(data.y[i])),
                                   rtol=1e-8, atol=1e-12)
        torch.testing.assert_close(item.shown, T.reduce_map(item.map, "signed"))
    # it is not a TFA map: the gradient TFA map of the same image differs
    i = r.proponents[0].index
    assert not torch.allclose(r.proponents[0].map, st.training_map(i, method="gradient"))
    # the view starts on it, with the SmoothGrad sliders off and the own-label legend
    _ui, c = build_explorer(st)
    assert c["method"].value == "two_step_occlusion"
    assert c["n_samples"].disabled and c["noise"].disabled
    assert "own-label logit" in c["legend"].value and "does not depend on the test image" in c["legend"].value
    assert "supports the score" not in c["legend"].value  # it explains no score
    c["method"].value = "gradient"
    assert "supports the score" in c["legend"].value and "own label" not in c["legend"].value


def test_two_step_occlusion_is_cached_by_training_index_only(data):
    st = make_state(data, method="two_step_occlusion")
    st.result()
    fixed = 7
    m0 = st.training_map(fixed)
    # another test image, the other test set, the other label and score: the same map, not recomputed
    for change in ({"test_index": 3}, {"test_set": "clean"}, {"label": "true"}, {"score": "dot"},
                   {"n_samples": 8, "noise": 0.3}):
        assert st.set(**change).ok
        before = st.stats["maps"]
        torch.testing.assert_close(st.training_map(fixed), m0)
        assert st.stats["maps"] == before
    st2 = make_state(data, method="two_step_occlusion")
    st2.training_map(fixed)
    st2.set(test_index=5)
    n = st2.stats["maps"]
    st2.training_map(fixed, settings=st2.settings)
    assert st2.stats["maps"] == n
    # whereas a TFA map of the same training image does depend on the test image
    a = st.training_map(fixed, method="gradient_x_input", settings=st._validated({"test_index": 0}))
    b = st.training_map(fixed, method="gradient_x_input", settings=st._validated({"test_index": 3}))
    assert not torch.allclose(a, b)


def test_view_method_dropdown_recomputes_and_disables_smoothgrad_sliders(data):
    st = make_state(data, method="gradient")
    _ui, c = build_explorer(st)
    assert [v for _, v in c["method"].options] == list(MAP_METHODS)
    assert not c["n_samples"].disabled and not c["noise"].disabled
    maps, queries = st.stats["maps"], st.stats["queries"]
    c["method"].value = "decomposition"  # auto-update is on: recomputes like any slow setting
    assert st.settings.method == "decomposition"
    assert st.stats["maps"] == maps + 6 and st.stats["queries"] == queries
    assert c["n_samples"].disabled and c["noise"].disabled
    assert MAP_METHODS["decomposition"] in c["test_info"].value and "sums to the shown score" in c["legend"].value
    c["proponent_buttons"][0].click()
    assert f"Map method: <b>{MAP_METHODS['decomposition']}</b>" in c["detail_info"].value
    assert f"TFA {MAP_METHODS['decomposition']}" in c["detail_titles"][2].value
    c["method"].value = "gradient"
    assert not c["n_samples"].disabled and "SmoothGrad n = 4" in c["detail_titles"][2].value
    assert MAP_METHODS["gradient"] in c["detail_info"].value
