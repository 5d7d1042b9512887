"""The evidence module: aggregation over seeds, the sign convention of score maps, and the whole
family table on a tiny model (every family runs; controls equal their direct computation)."""
from types import SimpleNamespace

import pytest
import torch
from tiny_models import make_model

import tfa_tutorial as T
from tfa_tutorial.attribution.families import PairContext, family, family_group, pair_seed
from tfa_tutorial.attribution.gradients import predicted_labels
from tfa_tutorial.attribution.score_vectors import class_mean_gradient, vector_scores
from tfa_tutorial.data.datasets import ImageDataset
from tfa_tutorial.data.patches import PatchSpec, inject_patch, patch_all
from tfa_tutorial.evaluation.evidence import (
    EVIDENCE_FAMILIES,
    aggregate_seeds,
    format_mean_sd,
    localisation_evidence,
    retrieval_evidence,
)
from tfa_tutorial.evaluation.pairs import iter_pair_contexts


def test_aggregate_and_format():
    agg = aggregate_seeds([{"a": 1.0, "b": {"c": 2}}, {"a": 2.0, "b": {"c": 4}}, {"a": 3.0, "b": {"c": 6}}])
    assert agg["a"]["mean"] == 2.0 and agg["a"]["sd"] == pytest.approx(1.0) and agg["b"]["c"]["mean"] == 4.0
    assert format_mean_sd(agg["a"]) == "2.00 ± 1.00"
    assert format_mean_sd(aggregate_seeds([0.5]), signed=True) == "+0.50"
    assert family_group("two-step · occlusion") == "two-step"


def _tiny_exp():
    torch.manual_seed(0)
    x = torch.rand(24, 1, 8, 8) * 0.6
    y = torch.arange(24) % 4
    spec = PatchSpec(size=3, value=1.0, location=(0, 0), target_class=0, prevalence=0.5)
    train = inject_patch(ImageDataset(x, y, tuple("abcd"), "toy"), spec)
    test = ImageDataset(torch.rand(6, 1, 8, 8), torch.tensor([1, 2, 3, 1, 2, 3]), tuple("abcd"), "toy-test")
    ptest = patch_all(test, spec)
    return SimpleNamespace(train=train, test=test, patched_test=ptest, model=make_model("batch", dtype=torch.float32),
                           clean_model=make_model("batch", seed=5, dtype=torch.float32), spec=spec)


def test_every_family_runs_and_controls_match_direct_computation():
    exp = _tiny_exp()
    test_idx = torch.tensor([0, 1])
    train_idx = exp.train.patched_indices[:2].repeat(2, 1)
    fams = {k: v for k, v in EVIDENCE_FAMILIES.items() if "first block" not in k}
    table = localisation_evidence(exp, test_idx, train_idx, families=fams)
    assert set(table) == set(fams)
    for row in table.values():
        for m in row.values():
            assert 0.0 <= m["mass"] <= 1.0 and 0.0 <= m["rank"] <= 1.0
    direct = T.relevance_mass_accuracy(T.reduce_map(exp.train.images[train_idx.flatten()], "positive"), exp.train.masks[train_idx.flatten()])
    assert table["control · input as map"]["shortcut model"]["mass"] == pytest.approx(float(direct.mean()))
    r = retrieval_evidence(exp, test_idx)
    assert r["label only"] >= 0 and 0 <= r["Grad-Cos"] <= 1


def _pairs(exp):
    """Three test images ``[3]`` and their training images ``[3, 2]`` (patched ones, a different pair per row)."""
    P = exp.train.patched_indices
    return torch.tensor([2, 0, 5]), torch.stack([P.roll(i)[:2] for i in range(3)])


def test_iter_pair_contexts_builds_each_pair_as_the_protocol_says():
    exp = _tiny_exp()
    test_idx, train_idx = _pairs(exp)
    X, Y = exp.train.images, exp.train.labels
    with torch.no_grad():  # the explained label: the shortcut model's prediction, one image at a time
        label = [int(exp.model(exp.patched_test.images[i][None]).argmax()) for i in test_idx.tolist()]
    for model in (exp.model, exp.clean_model):
        means = {c: class_mean_gradient(model, X, Y, c, seed=3) for c in set(label)}
        got = list(iter_pair_contexts(exp, test_idx, train_idx, model, class_means=means, seed=3))
        assert [q for q, _ in got] == [0, 1, 2]
        for q, ctx in got:
            i, tr = int(test_idx[q]), train_idx[q]
            assert ctx.model is model and ctx.label == label[q] and ctx.true_label == int(exp.patched_test.labels[i])
            assert torch.equal(ctx.x_train, X[tr]) and torch.equal(ctx.y_train, Y[tr]) and ctx.x_train.shape == (2, 1, 8, 8)
            assert torch.equal(ctx.x_test, exp.patched_test.images[i]) and torch.equal(ctx.x_counterfactual, exp.test.images[i])
            assert ctx.class_mean is means[label[q]] and ctx.seed == pair_seed(3, q)
    # no class means: none in the context; explicit noise seeds replace pair_seed
    got = [ctx for _, ctx in iter_pair_contexts(exp, test_idx, train_idx, exp.model, noise_seeds=[7, 8, 9])]
    assert [c.seed for c in got] == [7, 8, 9] and all(c.class_mean is None for c in got)


def test_localisation_evidence_measures_the_contexts_built_by_hand():
    """The table's masses are the maps of contexts built directly (noise seed pair_seed(seed, q),
    class mean of each model, the shortcut model's label for both models), bit for bit."""
    exp = _tiny_exp()
    test_idx, train_idx = _pairs(exp)
    names = ("control · random", "TFA-Cos · gradient, SmoothGrad (paper)", "centered · decomposition")
    table = localisation_evidence(exp, test_idx, train_idx, families=names, seed=3)
    X, Y = exp.train.images, exp.train.labels
    labels = predicted_labels(exp.model, exp.patched_test.images[test_idx])
    masks = exp.train.masks[train_idx.flatten()]
    for mname, model in (("shortcut model", exp.model), ("clean model", exp.clean_model)):
        ctxs = [PairContext(model, X[train_idx[q]], Y[train_idx[q]], exp.patched_test.images[i], int(labels[q]),
                            int(exp.patched_test.labels[i]), exp.test.images[i],
                            class_mean_gradient(model, X, Y, int(labels[q]), seed=3), pair_seed(3, q))
                for q, i in enumerate(test_idx.tolist())]
        for n in names:
            maps = torch.cat([family(n)(c).detach().cpu() for c in ctxs])
            mass = T.relevance_mass_accuracy(T.reduce_map(maps, "positive", "sum"), masks).mean()
            assert table[n][mname]["mass"] == float(mass), (n, mname)


def test_decomposition_family_sums_to_abs_score():
    exp = _tiny_exp()
    m = exp.model
    X, Y = exp.train.images, exp.train.labels
    ctx = PairContext(m, X[:3], Y[:3], exp.patched_test.images[0], 0, 1, exp.test.images[0], class_mean_gradient(m, X, Y, 0))
    for kind in ("cos", "dot", "centered", "contrast", "counterfactual"):
        maps = EVIDENCE_FAMILIES[f"{'TFA-Cos' if kind == 'cos' else 'TFA-Dot' if kind == 'dot' else kind} · decomposition"](ctx)
        s = vector_scores(m, X[:3], Y[:3], ctx.vector(kind), kind != "dot")[0]
        torch.testing.assert_close(maps.sum((1, 2, 3)), s.abs(), rtol=1e-4, atol=1e-6)


def test_localisation_over_seeds_gain_is_per_seed_difference():
    from tfa_tutorial.evaluation.evidence import localisation_over_seeds

    def run(s, c):
        return {"localisation": {"f": {"shortcut model": {"mass": s}, "clean model": {"mass": c}}}}

    agg = localisation_over_seeds({"0": run(0.5, 0.1), "1": run(0.3, 0.2), "2": run(0.4, 0.0)})
    assert agg["f"]["gain"]["values"] == pytest.approx([0.4, 0.1, 0.4])
    assert agg["f"]["gain"]["mean"] == pytest.approx(0.3)
    assert agg["f"]["shortcut model"]["mass"]["mean"] == pytest.approx(0.4)
