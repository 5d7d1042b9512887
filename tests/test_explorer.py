"""The explorer of harmful training regions, headless: the state object and the built controls.

Everything runs on a ~1k-parameter CNN and a few dozen synthetic 1×8×8 images, in seconds.
The browser test (tests/test_browser.py) proves the same UI renders and reacts in JupyterLab/Voilà.
"""
from types import SimpleNamespace

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest
import torch
from tiny_models import explorer_data

import tfa_tutorial as T
from tfa_tutorial.explorer.render import (
    explorer_figure,
    image_png,
    overlay_png,
    overlay_rgb,
)
from tfa_tutorial.explorer.results import ExplorerResult
from tfa_tutorial.explorer.settings import SLOW_SETTINGS, ExplorerSettings
from tfa_tutorial.explorer.state import ExplorerState
from tfa_tutorial.explorer.view import build_explorer, explore

N_TRAIN, N_TEST, K_CLASSES = 40, 12, 4
CLASSES = ("zero", "one", "two", "three")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return explorer_data()  # N_TRAIN training images, N_TEST test images, K_CLASSES classes


def make_state(d, **kw):
    opts = dict(classes=CLASSES, train_patched=d.patched, train_masks=d.masks, flipped=[1, 2, 5], k=3, n_samples=4,
                method="gradient")  # these tests are about the SmoothGrad map, whatever the default
    opts.update(kw)
    return ExplorerState(d.model, d.x, d.y, {"patched": d.xt_patched, "clean": d.xt}, d.yt, **opts)


@pytest.fixture()
def state(data):
    return make_state(data)


@pytest.fixture()
def built(state):
    ui, controls = build_explorer(state)
    return state, ui, controls


def png(w) -> bytes:
    return bytes(w.value)


# --------------------------------------------------------------------------- state


def test_result_ranks_by_exact_grad_cos_and_maps_match_the_package(state, data):
    r = state.result()
    assert r.ok and r.message == ""
    assert len(r.proponents) == len(r.opponents) == 3
    assert state.index.projection is None  # tiny model: exact index
    exact = T.grad_cos(data.model, data.x, data.y, data.xt_patched[:1])[0]
    torch.testing.assert_close(state.scores(), exact, rtol=1e-4, atol=1e-5)
    assert [p.index for p in r.proponents] == exact.topk(3).indices.tolist()
    assert [o.index for o in r.opponents] == (-exact).topk(3).indices.tolist()
    assert [p.rank for p in r.proponents] == [1, 2, 3]
    assert r.proponents[0].score >= r.proponents[-1].score and r.opponents[0].score <= r.opponents[-1].score
    item = r.proponents[0]
    assert item.label_name == CLASSES[int(data.y[item.index])]
    assert item.patched == bool(data.patched[item.index])
    # the map is the package's TFA map (SmoothGrad noise seeded by the training index)
    ref = T.tfa_maps(data.model, data.x[item.index : item.index + 1], data.y[item.index : item.index + 1],
                     data.xt_patched[0], n_samples=4, noise=0.15, seed=item.index)[0]
    torch.testing.assert_close(item.map, ref, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(item.shown, T.reduce_map(item.map, "signed"))
    t = r.test
    pred, probs = T.predict(data.model, data.xt_patched)
    assert (t.index, t.label, t.pred, t.target) == (0, 0, int(pred[0]), int(pred[0]))
    torch.testing.assert_close(t.probs, probs[0])
    assert t.flipped is False and t.test_set == "patched"


def test_select_test_label_mode_and_score_change_the_ranking(state, data):
    r0 = state.result()
    r1 = state.select_test(1)
    assert r1.test.index == 1 and r1.test.flipped is True
    assert not torch.equal(r1.test.image, r0.test.image) and r1.test.label == 1
    # explain the true label instead of the prediction
    pred = T.predict(data.model, data.xt_patched)[0]
    j = next(i for i in range(N_TEST) if int(pred[i]) != int(data.yt[i]))
    r_pred = state.select_test(j)
    r_true = state.set(label="true")
    assert r_pred.test.target == int(pred[j]) and r_true.test.target == int(data.yt[j])
    exact = T.grad_cos(data.model, data.x, data.y, data.xt_patched[j : j + 1], data.yt[j : j + 1])[0]
    assert [p.index for p in r_true.proponents] == exact.topk(3).indices.tolist()
    # Grad-Dot
    r_dot = state.set(score="dot")
    dot = T.grad_dot(data.model, data.x, data.y, data.xt_patched[j : j + 1], data.yt[j : j + 1])[0]
    assert [p.index for p in r_dot.proponents] == dot.topk(3).indices.tolist()
    assert r_dot.proponents[0].score == pytest.approx(float(dot.max()), rel=1e-4)
    # the clean version of the same test image
    r_clean = state.set(test_set="clean")
    assert r_clean.test.test_set == "clean" and torch.equal(r_clean.test.image, data.xt[j])


def test_display_settings_do_not_recompute(state):
    r = state.result()
    before = dict(state.stats)
    r2 = state.set(sign="absolute", channels="max", opacity=0.3)
    assert r2.ok
    for key in ("maps", "queries", "exact", "two_step", "index_builds"):
        assert state.stats[key] == before[key], key
    torch.testing.assert_close(r2.proponents[0].shown, r.proponents[0].map.abs().amax(0))
    assert r2.timings["computed"]["maps"] == 0


def test_slow_settings_recompute_only_what_is_new(state):
    state.result()
    maps = state.stats["maps"]
    state.set(n_samples=8)
    assert state.stats["maps"] == maps + 6  # 3 proponents + 3 opponents
    state.set(n_samples=4)  # back: cached
    assert state.stats["maps"] == maps + 6
    state.set(k=4)  # one more per list
    assert state.stats["maps"] == maps + 8
    queries = state.stats["queries"]
    state.set(noise=0.3)
    assert state.stats["queries"] == queries  # same test image: the ranking is cached


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"test_index": 12}, ["test index 12", "out of range", "12 test images"]),
        ({"test_index": -1}, ["out of range"]),
        ({"k": N_TRAIN + 1}, [f"k = {N_TRAIN + 1}", "larger than the training set", f"{N_TRAIN} images"]),
        ({"k": 0}, ["k must be"]),
        ({"score": "tracin"}, ["unknown score", "cos"]),
        ({"label": "both"}, ["unknown test label mode"]),
        ({"sign": "up"}, ["unknown sign"]),
        ({"test_set": "cifar"}, ["unknown test set"]),
        ({"noise": -0.1}, ["σ"]),
        ({"n_samples": 2.5}, ["SmoothGrad n"]),
        ({"selected": N_TRAIN}, ["training index", "out of range"]),
        ({"colour": "red"}, ["unknown setting"]),
    ],
)
def test_bad_choices_give_a_message_and_keep_the_settings(state, changes, words):
    good = state.result()
    before = state.settings
    r = state.set(**changes)
    assert not r.ok
    for w in words:
        assert w in r.message, r.message
    assert state.settings == before
    assert r.test is not None and [p.index for p in r.proponents] == [p.index for p in good.proponents]
    with pytest.raises(ValueError):
        state.update(**changes)


def test_k_above_the_display_limit_is_refused(data):
    st = make_state(data, max_k=5)
    r = st.set(k=6)
    assert "at most 5" in r.message


def test_test_lists_partition_the_test_set(state, data):
    pred = T.predict(data.model, data.xt_patched)[0]
    assert state.flipped == [1, 2, 5]
    assert state.misclassified == torch.nonzero(pred != data.yt).flatten().tolist()
    assert sorted(state.misclassified + state.correct) == list(range(N_TEST))
    state.set(test_set="clean")
    pred_clean = T.predict(data.model, data.xt)[0]
    assert state.correct == torch.nonzero(pred_clean == data.yt).flatten().tolist()
    assert state.test_list("flipped") == [1, 2, 5]
    with pytest.raises(ValueError):
        state.test_list("nope")
    assert state.describe_test(0).startswith("#0 zero")


def test_detail_raw_smooth_and_two_step(state, data):
    r = state.result()
    i = r.opponents[0].index
    d = state.detail(i)
    assert d.index == i and d.patched == bool(data.patched[i]) and d.score == pytest.approx(r.opponents[0].score)
    torch.testing.assert_close(d.smooth, r.opponents[0].shown)
    raw = T.tfa_maps(data.model, data.x[i : i + 1], data.y[i : i + 1], data.xt_patched[0], n_samples=0)[0]
    torch.testing.assert_close(d.raw, raw.sum(0), rtol=1e-4, atol=1e-6)
    two = T.two_step_baseline(data.model, data.x[i : i + 1], data.y[i : i + 1], n_samples=4, noise=0.15, seed=i)[0]
    torch.testing.assert_close(d.two_step, two.sum(0), rtol=1e-4, atol=1e-6)
    assert d.mask is not None and d.mask.shape == (8, 8)
    r2 = state.select_train(i)
    assert r2.detail is not None and r2.detail.index == i
    assert state.select_train(None).detail is None
    with pytest.raises(ValueError):
        state.detail(N_TRAIN)


def test_projected_index_is_reranked_exactly(data):
    st = make_state(data, projection="countsketch", dim=64)
    r = st.result()
    assert st.index.projection is not None and "re-scored exactly" in r.index_info
    exact = T.grad_cos(data.model, data.x, data.y, data.xt_patched[:1])[0]
    for item in r.proponents + r.opponents:
        assert item.score == pytest.approx(float(exact[item.index]), abs=1e-5)
        assert item.index_score is not None
    assert [p.index for p in r.proponents] == exact.topk(3).indices.tolist()
    assert [o.index for o in r.opponents] == (-exact).topk(3).indices.tolist()


def test_index_disk_cache_round_trip(data, tmp_path):
    a = make_state(data, index_cache=tmp_path, projection="countsketch", dim=32)
    a.build_index()
    assert a.stats["index_builds"] == 1 and len(list(tmp_path.glob("index-*.pt"))) == 1
    b = make_state(data, index_cache=tmp_path, projection="countsketch", dim=32)
    b.build_index()
    assert b.stats == {**b.stats, "index_builds": 0, "index_loads": 1}
    assert "loaded from cache" in b.index_info
    torch.testing.assert_close(a.scores(), b.scores())
    # a damaged cache file is rebuilt, not an error
    next(tmp_path.glob("index-*.pt")).write_bytes(b"garbage")
    c = make_state(data, index_cache=tmp_path, projection="countsketch", dim=32)
    c.build_index()
    assert c.stats["index_builds"] == 1


def test_from_experiment_uses_patched_and_clean_test_sets(data):
    def flipped(model=None):
        return torch.tensor([3, 7])

    exp = SimpleNamespace(
        model=data.model, classes=CLASSES, seed=0,
        train=SimpleNamespace(images=data.x, labels=data.y, patched=data.patched, masks=data.masks),
        test=SimpleNamespace(images=data.xt, labels=data.yt),
        patched_test=SimpleNamespace(images=data.xt_patched, labels=data.yt),
        flipped_test_indices=flipped,
    )
    st = ExplorerState.from_experiment(exp, index_cache=None, n_samples=0)
    assert list(st.test_sets) == ["patched", "clean"] and st.settings.test_index == 3 and st.flipped == [3, 7]
    with pytest.raises(ValueError):
        ExplorerState.from_experiment(exp, test_sets=("noisy",))
    ui = explore(state=st)
    assert isinstance(ui, widgets.VBox) and ui.state is st and "test_index" in ui.controls


def test_constructor_rejects_inconsistent_data(data):
    with pytest.raises(ValueError, match="train_labels"):
        ExplorerState(data.model, data.x, data.y[:-1], data.xt, data.yt)
    with pytest.raises(ValueError, match="test set"):
        ExplorerState(data.model, data.x, data.y, data.xt[:-1], data.yt)
    with pytest.raises(ValueError, match="class names"):
        ExplorerState(data.model, data.x, data.y, data.xt, data.yt, classes=("a",))
    with pytest.raises(ValueError, match="test index"):
        ExplorerState(data.model, data.x, data.y, data.xt, data.yt, test_index=99)


# --------------------------------------------------------------------------- rendering


def test_png_helpers():
    img = torch.rand(1, 8, 8)
    m = torch.randn(8, 8)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:3, :3] = True
    a, b = image_png(img, mask, scale=4), overlay_png(img, m, "signed", 0.7, mask, scale=4)
    assert a.startswith(PNG) and b.startswith(PNG) and a != b
    rgb = overlay_rgb(img, torch.zeros(8, 8))  # an all-zero map leaves the gray image as it is
    assert rgb.shape == (8, 8, 3)
    assert overlay_png(img, m, "signed", 0.0) == image_png(img, None)  # opacity 0: no overlay
    assert overlay_png(img, m, "absolute", 0.7) != overlay_png(img, m, "signed", 0.7)


def test_static_fallback_figure(state):
    fig = explorer_figure(state.result())
    assert len(fig.axes) == 4 * (3 + 1) + 1  # test image column, images above their maps, one colour bar
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and all(t.get_fontsize() >= 9 for ax in fig.axes for t in ax.texts + [ax.title] if t.get_text())
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "Grad-Cos" in titles and "test #0" in titles
    plt.close(fig)
    with pytest.raises(ValueError):
        explorer_figure(ExplorerResult(state.settings))


# --------------------------------------------------------------------------- the built controls


def test_build_returns_ui_and_named_controls_with_rendered_pngs(built):
    state, ui, c = built
    assert isinstance(ui, widgets.VBox)
    for name in SLOW_SETTINGS + ("sign", "channels", "opacity", "compute", "auto", "progress", "message", "status",
                                 "test_image", "test_info", "pick_list", "pick", "prev", "next", "detail"):
        assert name in c, name
    assert png(c["test_image"]).startswith(PNG)
    assert len(c["proponent_images"]) == len(c["opponent_images"]) == 3
    assert all(png(w).startswith(PNG) for w in c["proponent_images"] + c["opponent_images"])
    assert "Test image #0" in c["test_info"].value and "zero" in c["test_info"].value
    assert c["message"].value == ""
    assert c["detail"].layout.display == "none"
    # slow sliders recompute on release, not on every drag
    assert c["n_samples"].continuous_update is False and c["noise"].continuous_update is False
    assert c["progress"].layout.visibility == "hidden"


def test_selecting_a_test_image_changes_what_is_displayed(built):
    state, _, c = built
    img0, info0 = png(c["test_image"]), c["test_info"].value
    tiles0 = [png(w) for w in c["proponent_images"]]
    c["test_index"].value = 5
    assert state.settings.test_index == 5
    assert png(c["test_image"]) != img0 and c["test_info"].value != info0
    assert "Test image #5" in c["test_info"].value and "shortcut-flipped" in c["test_info"].value
    assert [png(w) for w in c["proponent_images"]] != tiles0
    assert all(f"#{p.index}" in cap.value for p, cap in zip(state.last_result.proponents, c["proponent_captions"]))
    c["next"].click()
    assert state.settings.test_index == 6 and c["test_index"].value == 6
    c["prev"].click()
    c["prev"].click()
    assert state.settings.test_index == 4
    c["test_set"].value = "clean"
    assert state.settings.test_set == "clean" and "clean test set" in c["test_info"].value


def test_pick_lists(built, data):
    state, _, c = built
    values = [v for _, v in c["pick_list"].options]
    assert values == ["flipped", "misclassified", "correct"]
    assert [v for _, v in c["pick"].options] == [1, 2, 5]
    c["pick"].value = 2
    assert state.settings.test_index == 2 and c["test_index"].value == 2
    c["pick_list"].value = "misclassified"
    assert [v for _, v in c["pick"].options] == state.misclassified
    c["pick_list"].value = "correct"
    j = state.correct[-1]
    c["pick"].value = j
    assert state.settings.test_index == j and "(<span style='color:#1a7f37'>correct" in c["test_info"].value


def test_settings_controls_change_the_result(built):
    state, _, c = built
    tiles = [png(w) for w in c["proponent_images"]]
    c["score"].value = "dot"
    assert state.settings.score == "dot" and "Grad-Dot" in c["proponent_captions"][0].value
    c["label"].value = "true"
    assert state.settings.label == "true"
    c["n_samples"].value = 0
    assert state.settings.n_samples == 0
    c["noise"].value = 0.3
    assert state.settings.noise == pytest.approx(0.3)
    assert [png(w) for w in c["proponent_images"]] != tiles
    c["k"].value = 5
    assert len(c["proponent_images"]) == len(c["opponent_buttons"]) == 5 and len(c["proponents"].children) == 5
    c["k"].value = 2
    assert len(c["opponents"].children) == 2


def test_display_controls_rerender_without_recomputing(built):
    state, _, c = built
    maps = state.stats["maps"]
    tiles = [png(w) for w in c["proponent_images"]]
    c["sign"].value = "absolute"
    after_sign = [png(w) for w in c["proponent_images"]]
    assert after_sign != tiles
    c["opacity"].value = 0.2
    assert [png(w) for w in c["proponent_images"]] != after_sign
    c["channels"].value = "max"
    assert state.settings.sign == "absolute" and state.settings.opacity == pytest.approx(0.2)
    assert state.stats["maps"] == maps
    assert "from cache" in c["status"].value


def test_clicking_a_training_image_opens_the_detail_pane(built):
    state, _, c = built
    b = c["opponent_buttons"][1]
    i = state.last_result.opponents[1].index
    assert b.description == f"inspect #{i}"
    b.click()
    assert state.settings.selected == i
    assert c["detail"].layout.display != "none"
    assert f"Training image #{i}" in c["detail_info"].value
    imgs = [png(w) for w in c["detail_images"]]
    assert len(imgs) == 4 and all(x.startswith(PNG) for x in imgs) and len(set(imgs)) == 4
    assert "two-step" in c["detail_titles"][3].value and "n = 4" in c["detail_titles"][2].value
    c["sign"].value = "positive"  # the detail pane follows the display settings
    assert [png(w) for w in c["detail_images"][1:]] != imgs[1:]
    c["close_detail"].click()
    assert state.settings.selected is None and c["detail"].layout.display == "none"
    c["proponent_buttons"][0].click()
    c["test_index"].value = 3  # a new test image closes the detail pane
    assert state.settings.selected is None and c["detail"].layout.display == "none"


@pytest.mark.parametrize("name, bad, words", [
    ("test_index", 12, "out of range"),
    ("test_index", -3, "out of range"),
    ("k", N_TRAIN + 5, "larger than the training set"),
    ("k", 0, "k must be"),
])
def test_bad_input_in_the_ui_shows_a_message_not_a_traceback(built, name, bad, words):
    state, _, c = built
    good = c[name].value
    tiles = [png(w) for w in c["proponent_images"]]
    c[name].value = bad  # must not raise
    assert words in c["message"].value
    assert c[name].value == good  # the control shows the setting that is still in force
    assert [png(w) for w in c["proponent_images"]] == tiles
    c["test_index"].value = 1  # a good choice clears the message
    assert c["message"].value == ""


def test_a_failing_computation_is_a_message(built, monkeypatch):
    state, _, c = built

    def boom(*a, **k):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(state, "_map_for", boom)
    c["n_samples"].value = 7
    assert "out of memory (simulated)" in c["message"].value
    assert state.settings.n_samples == 4 and c["n_samples"].value == 4
    assert c["compute"].disabled is False


def test_manual_mode_waits_for_compute_and_shows_progress(built):
    state, _, c = built
    seen = []
    c["progress"].observe(lambda ch: seen.append(ch["new"]), names="value")
    c["auto"].value = False
    maps = state.stats["maps"]
    c["n_samples"].value = 9
    c["noise"].value = 0.2
    assert state.settings.n_samples == 4 and state.stats["maps"] == maps
    assert "Compute" in c["status"].value
    c["compute"].click()
    assert state.settings.n_samples == 9 and state.settings.noise == pytest.approx(0.2)
    assert state.stats["maps"] == maps + 6
    assert seen and max(seen) == pytest.approx(1.0) and any(0 < v < 1 for v in seen)
    assert c["progress"].layout.visibility == "hidden" and "6 new TFA maps" in c["status"].value


def test_settings_dataclass_is_the_single_source_of_names():
    names = {f for f in ExplorerSettings.__dataclass_fields__}
    assert set(SLOW_SETTINGS) <= names


def test_ranking_only_result_computes_no_map(state):
    maps = state.stats["maps"]
    r = state.result(maps=False, test_index=2)
    assert state.stats["maps"] == maps and r.proponents[0].map is None and r.proponents[0].shown is None
    assert [p.index for p in r.proponents] == [p.index for p in state.result(test_index=2).proponents]
    assert state.settings.test_index == 0  # overrides are not stored


def test_computations_run_with_the_chosen_thread_count_and_restore_it(data):
    seen = []
    st = make_state(data, num_threads=1)
    real = st._scores_for

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    st._scores_for = spy
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        st.result()
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
