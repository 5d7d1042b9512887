"""The notebooks' measurement helpers, against independent computations: the clean-model control
maps (evaluation/controls.py), the one-step test's registry maps (evaluation/faithfulness.py), the
explorer's counts (explorer/summaries.py)."""
import pytest
import torch
from test_evidence import _tiny_exp
from test_explorer import data, make_state  # noqa: F401  (the explorer's fixture)
from tiny_models import make_model

import tfa_tutorial as T
from tfa_tutorial.attribution.families import FAITHFULNESS_FAMILIES, FAMILIES, REPAIR_FAMILIES, PairContext, pair_seed
from tfa_tutorial.attribution.gradients import predicted_labels
from tfa_tutorial.attribution.score_vectors import score_vector
from tfa_tutorial.evaluation.controls import (
    control_maps, gains_over_seeds, self_map_correlation, stored_table, depends_on_test, with_gain,
)
from tfa_tutorial.evaluation.evidence import localisation_evidence
from tfa_tutorial.evaluation.faithfulness import family_maps
from tfa_tutorial.explorer.summaries import format_items, patched_share


def test_control_maps_are_the_protocols_maps_on_both_models():
    exp = _tiny_exp()
    tr = exp.train.patched_indices[:3]
    names = ("two-step · occlusion", "TFA-Cos · decomposition")
    cm = control_maps(exp, 0, tr, names)
    label = int(predicted_labels(exp.model, exp.patched_test.images[:1])[0])  # the shortcut model's prediction
    x, y = exp.train.images[tr], exp.train.labels[tr]
    for mname, model in (("shortcut model", exp.model), ("clean model", exp.clean_model)):
        occ = T.two_step_baseline(model, x, y, method="occlusion", window=4, stride=2).sum(1)
        torch.testing.assert_close(cm["two-step · occlusion"][mname], occ)
        d = T.decompose_score(model, x, y, score_vector(model, exp.patched_test.images[0], "cos", test_target=label))
        direct = d.maps.sum(1) * torch.where(d.scores < 0, -1.0, 1.0).view(-1, 1, 1)
        torch.testing.assert_close(cm["TFA-Cos · decomposition"][mname], direct, rtol=1e-4, atol=1e-7)
    # the masses of these maps are the protocol's table
    table = localisation_evidence(exp, torch.tensor([0]), tr[None], families=names)
    for n in names:
        for mname in ("shortcut model", "clean model"):
            pos = cm[n][mname].clamp_min(0)
            mass = float((T.relevance_mass_accuracy(pos, exp.train.masks[tr])).mean())
            assert table[n][mname]["mass"] == pytest.approx(mass, abs=1e-6)
    g = with_gain(table)
    for n in names:
        assert g[n]["gain"] == pytest.approx(table[n]["shortcut model"]["mass"] - table[n]["clean model"]["mass"])
    # noise as the protocol draws it: the first pair's seed, pair_seed(seed, 0), so noisy maps match its table too
    rnd = control_maps(exp, 0, tr, ["control · random"], seed=7)["control · random"]["clean model"]
    ctx = PairContext(exp.clean_model, x, y, exp.patched_test.images[0], label, seed=pair_seed(7, 0))
    torch.testing.assert_close(rnd, T.reduce_map(FAMILIES["control · random"](ctx), "signed", "sum"), rtol=0, atol=0)
    noisy = ("control · random", "TFA-Cos · gradient, SmoothGrad (paper)")
    cm = control_maps(exp, 0, tr, noisy, seed=7)
    table = localisation_evidence(exp, torch.tensor([0]), tr[None], families=noisy, seed=7)
    for n in noisy:
        mass = float(T.relevance_mass_accuracy(cm[n]["shortcut model"].clamp_min(0), exp.train.masks[tr]).mean())
        assert table[n]["shortcut model"]["mass"] == pytest.approx(mass, abs=1e-6)


def test_self_map_correlation_is_one_when_the_test_image_is_the_training_image():
    m = make_model("batch", dtype=torch.float32)
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    c = self_map_correlation(m, x[:1], y[:1], x[0], 0)  # the map of an image with itself
    assert c.shape == (1,) and float(c[0]) == pytest.approx(1.0, abs=1e-6)
    c2 = self_map_correlation(m, x, y, torch.rand(1, 8, 8), 3)
    assert c2.shape == (3,) and bool(((c2 >= -1 - 1e-9) & (c2 <= 1 + 1e-9)).all())


def _runs(gains):
    return {str(s): {"localisation": {"A · x": {"shortcut model": {"mass": 0.5 + g, "rank": 0.1, "pointing": 0.0},
                                                 "clean model": {"mass": 0.5, "rank": 0.1, "pointing": 0.0}}},
                     "chance": 0.2} for s, g in enumerate(gains)}


def test_gains_over_seeds_and_the_stored_table():
    agg = gains_over_seeds({"cfg": _runs([0.1, 0.2, 0.3])})
    leaf = agg["cfg"]["A · x"]["gain"]
    assert leaf["mean"] == pytest.approx(0.2) and leaf["sd"] == pytest.approx(0.1)
    md = stored_table(agg["cfg"], ["A · x"], 0.2, mark="A · x")
    assert "**A · x** (recommended)" in md and "+0.20 ± 0.10" in md and "| chance (patch area) | 0.20" in md
    assert depends_on_test(["TFA-Cos · decomposition", "two-step · occlusion"]) == ["TFA-Cos · decomposition"]


def test_family_maps_are_the_registry_families_per_test_image():
    exp = _tiny_exp()
    top = torch.arange(4).reshape(2, 2)
    xq, yq = exp.patched_test.images[:2], torch.tensor([0, 0])
    X, Y = exp.train.images, exp.train.labels
    maps = family_maps(exp.model, X[top], Y[top], xq, yq, names=("control · input as map", "two-step · occlusion"))
    torch.testing.assert_close(maps["control · input as map"], X[top.flatten()])
    torch.testing.assert_close(maps["two-step · occlusion"],
                               T.two_step_baseline(exp.model, X[top.flatten()], Y[top.flatten()], method="occlusion", window=4, stride=2))
    with pytest.raises(ValueError):
        family_maps(exp.model, X[top.flatten()], Y[top.flatten()], xq, yq)
    assert all(n in FAMILIES for n in FAITHFULNESS_FAMILIES) and "two-step · occlusion" in REPAIR_FAMILIES


def _direct_patched_share(d, idx, side, label, k):
    """The share of patched images among the top-k (proponents: highest Grad-Cos on the training set;
    opponents: lowest) for the patched test images ``idx``, from T.grad_cos and topk, not the explorer."""
    shares = []
    for q in idx:
        xq = d.xt_patched[q : q + 1]
        with torch.no_grad():
            target = d.yt[q : q + 1] if label == "true" else d.model(xq).argmax(1)
        s = T.grad_cos(d.model, d.x, d.y, xq, target)[0]
        top = (s if side == "proponents" else -s).topk(k).indices
        shares.append(d.patched[top].double().mean().item())
    return sum(shares) / len(shares)


def test_patched_share_counts_the_ranked_items(data):  # noqa: F811
    idx = [0, 1, 2, 3, 4, 5]
    cases = [("proponents", "predicted"), ("opponents", "predicted"), ("proponents", "true"), ("opponents", "true")]
    for k in (3, 4):  # on these data, the 3rd proponent differs from the 4th and the 4th opponent from the 5th
        state = make_state(data, k=k)
        direct = {c: _direct_patched_share(data, idx, *c, k) for c in cases}
        assert len(set(direct.values())) > 1  # the four rankings do not all give the same share
        for side, label in cases:
            assert patched_share(state, idx, side, label=label) == pytest.approx(direct[side, label], abs=1e-12)
        assert patched_share(state, idx, "proponents") == pytest.approx(direct["proponents", "predicted"], abs=1e-12)
    with pytest.raises(ValueError):
        patched_share(state, idx, "sideways")
    with pytest.raises(ValueError):
        patched_share(state, [], "proponents")
    text = format_items(state.result(test_index=1, maps=False).proponents)
    assert text.count("\n") == state.settings.k - 1 and "#" in text


def test_view_counts_and_the_sensitivity_test_against_direct_computations(data):  # noqa: F811
    from tfa_tutorial.attribution import neural_features as NF
    from tfa_tutorial.explorer.compare import core_neuron, sensitivity_test, view_counts

    state = make_state(data, method="gradient")
    layer = NF.find_feature_layer(data.model, data.x[0])
    box = torch.zeros(8, 8, dtype=torch.bool)
    box[:3, :3] = True
    idx = [1, 2, 5]
    out = view_counts(state, layer, 0, idx, box, n_tfa=2, methods=("gradient", "two_step_occlusion"))
    # neural features, directly: W[pred] * h, the top neuron's map on each image
    x = data.xt_patched[idx]
    with torch.no_grad():
        pred = data.model(x).argmax(1)
    contrib = layer.weight[pred].cpu() * NF.neural_activations(data.model, x, layer)
    top = contrib.topk(3, dim=1).indices
    assert out["neuron_in_top"] == pytest.approx(float((top == 0).any(1).float().mean()))
    maps = torch.stack([NF.activation_maps(data.model, x[i : i + 1], int(top[i, 0]), layer)[0] for i in range(len(idx))])
    assert out["top_neuron_mass"] == pytest.approx(float(T.relevance_mass_accuracy(maps, box.expand(3, 8, 8)).mean()), abs=1e-6)
    assert out["patched_share"] == pytest.approx(patched_share(state, idx[:2], "proponents"))
    assert set(out["mass"]) == {"gradient", "two_step_occlusion"}
    # the sensitivity test: the core neuron is the most used one with ratio <= 1
    spur = {"order": torch.tensor([2, 0, 1]), "ratio": torch.tensor([0.5, 3.0, 2.0])}
    assert core_neuron(spur, torch.tensor([[0.1, 0.9, 0.5]])) == 0
    assert core_neuron({"order": spur["order"], "ratio": torch.tensor([2.0, 3.0, 2.0])}, torch.tensor([[0.1, 0.9, 0.5]])) == 0
    st = sensitivity_test(data.model, layer, {"order": torch.tensor([0]), "ratio": torch.zeros(layer.num_features)},
                          torch.rand(4, layer.num_features), x, data.yt[idx], box, 0, sigma=0.0, repeats=1)
    base = st["results"]["none"]["target_rate"]
    assert all(r["target_rate"] == pytest.approx(base) for r in st["results"].values())  # σ = 0: no noise, no change
    assert st["on_box"]["patch box"] == pytest.approx(1.0)


def test_patched_pairs_are_the_top_patched_proponents(data):  # noqa: F811
    from tfa_tutorial.explorer.summaries import patched_pairs

    state = make_state(data)
    test_idx, train_idx = patched_pairs(state, [1, 2], k=2, search=16)  # top-32 of 40 training images, 30 patched
    assert test_idx.tolist() == [1, 2] and train_idx.shape == (2, 2)
    for q, row in zip([1, 2], train_idx.tolist()):
        ranked = [it.index for it in state.result(test_index=q, k=32, maps=False).proponents if it.patched]
        assert row == ranked[:2] and all(bool(data.patched[i]) for i in row)
    with pytest.raises(ValueError):
        patched_pairs(state, [1], k=16, search=2)  # fewer than 16 of its top-32 proponents carry the patch
