"""The one map-family registry (tfa_tutorial.attribution.families) and the one localisation protocol:
names are unique, every selection names registry families, a family's maps equal the direct
computation, and notebook 04 measures with the same function as docs/results.md."""
import ast
import dataclasses
from pathlib import Path

import pytest
import torch
from tiny_models import make_data, make_model

import tfa_tutorial as T
from tfa_tutorial.attribution import families
from tfa_tutorial.attribution.baselines import model_output_fn
from tfa_tutorial.attribution.families import FAMILIES, MapFamily, PairContext, family
from tfa_tutorial.attribution.score_vectors import vector_score_fn, vector_scores
from tfa_tutorial.evaluation import evidence
from tfa_tutorial.evaluation import pairs as evaluation

ROOT = Path(__file__).resolve().parents[1]


def test_names_are_unique_and_selections_name_registry_families():
    names = [f.name for f in families._ALL]
    assert len(names) == len(set(names)) == len(FAMILIES)
    assert all(isinstance(f, MapFamily) and FAMILIES[f.name] is f for f in families._ALL)
    for sel in (families.COURSE_FAMILIES, families.KEY_FAMILIES, families.SPECIFICITY_FAMILIES,
                families.EXPLORER_FAMILIES, families.REPAIR_FAMILIES, families.ROBUSTNESS_FAMILIES):
        assert len(sel) == len(set(sel)) and set(sel) <= set(FAMILIES)
    # the evidence names are the registry's names but the robustness variants, in its order (docs/results.json's keys)
    assert list(evidence.EVIDENCE_FAMILIES) == [n for n in names if n not in families.ROBUSTNESS_FAMILIES]
    assert all(f.group in ("TFA-Cos", "TFA-Dot", "centered", "contrast", "counterfactual", "two-step", "control")
               for f in evidence.EVIDENCE_FAMILIES.values())
    assert {f.group for n, f in FAMILIES.items() if n in families.ROBUSTNESS_FAMILIES} == {
        "TFA-Logit", "TFA-Cos", "TFA-Cos, conv layers", "TFA-Cos, first block", "TFA-Cos, classifier"}
    with pytest.raises(ValueError, match="unknown map family"):
        family("TFA gradient, SmoothGrad (paper)")  # the second name notebook 04 used to have


def test_families_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FAMILIES["control · random"].method = "input"


def test_consumers_read_the_registry():
    from tfa_tutorial.explorer import settings as explorer_state
    assert [f.name for f in explorer_state.METHOD_FAMILIES.values()] == list(families.EXPLORER_FAMILIES)
    assert explorer_state.TWO_STEP_OCCLUSION == FAMILIES["two-step · occlusion"].opts
    assert explorer_state.IG_STEPS == FAMILIES["TFA-Cos · integrated gradients"].opts["steps"]
    # one SmoothGrad setting for gradient × input everywhere (fixing used n = 8 before)
    assert FAMILIES["TFA-Cos · gradient × input"].opts == {"n_samples": 16, "noise": 0.15}


@pytest.fixture(scope="module")
def pair():
    model = make_model("batch")
    x, y = make_data(n=3)
    x_test = make_data(n=1, seed=7)[0][0]
    return model, x, y, x_test


@pytest.mark.parametrize("name", ["TFA-Cos · gradient × input", "TFA-Dot · integrated gradients", "TFA-Cos · decomposition"])
def test_score_family_equals_direct_computation(pair, name):
    model, x, y, x_test = pair
    fam = FAMILIES[name]
    maps = fam(PairContext(model, x, y, x_test, 2, seed=3))
    v = T.score_vector(model, x_test, fam.score, test_target=2)
    normalize = fam.score != "dot"
    s = vector_scores(model, x, y, v, normalize)[0]
    sign = torch.where(s < 0, -1.0, 1.0).to(x.dtype).view(-1, 1, 1, 1)
    if fam.method == "decomposition":
        direct = T.decompose_score(model, x, y, v, normalize).maps
    else:
        direct = T.attribute(vector_score_fn(model, v, normalize), x, y, method=fam.method, seed=3, **fam.opts)
    torch.testing.assert_close(maps, direct * sign)
    if fam.score in ("cos", "dot") and fam.method != "decomposition":  # the same as the package's TFA maps (tda_score_fn is that score)
        tfa = T.tfa_maps(model, x, y, x_test, 2, score=fam.score, method=fam.method, seed=3, **fam.opts)
        torch.testing.assert_close(maps, tfa * sign)


def test_two_step_and_controls_equal_direct_computation(pair):
    model, x, y, x_test = pair
    ctx = PairContext(model, x, y, x_test, 2, seed=5)
    occ = FAMILIES["two-step · occlusion"]
    torch.testing.assert_close(occ(ctx), T.two_step_baseline(model, x, y, method="occlusion", **occ.opts))
    sg = FAMILIES["two-step · SmoothGrad"]
    torch.testing.assert_close(sg(ctx), T.attribute(model_output_fn(model), x, y, method="gradient", seed=5, **sg.opts))
    assert torch.equal(FAMILIES["control · input as map"](ctx), x)
    assert torch.equal(FAMILIES["control · random"](ctx), T.random_map(x.shape, seed=5, dtype=x.dtype))


def test_tda_score_fn_is_the_vector_score_of_the_score_vector(pair):
    model, x, y, x_test = pair
    for score in ("cos", "dot"):
        f = T.tda_score_fn(model, x_test, 1, score)
        g = vector_score_fn(model, T.score_vector(model, x_test, score, test_target=1), score == "cos")
        for i in range(len(x)):
            torch.testing.assert_close(f(x[i], y[i]), g(x[i], y[i]))


def _calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.func.id if isinstance(n.func, ast.Name) else n.func.attr for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}


def test_notebook_04_and_results_use_the_one_localisation_protocol():
    nb, bench = ROOT / "notebooks" / "04_training_feature_attribution.py", ROOT / "benchmarks" / "results.py"
    assert "localisation_evidence" in _calls(nb) and "localisation_evidence" in _calls(bench)
    assert "localisation_table" not in nb.read_text()
    # evaluation defines no other protocol: no map families, no localisation or retrieval of its own
    public = {n for n in dir(evaluation) if not n.startswith("_")}
    assert not {"localisation_table", "MAP_FAMILIES", "retrieval_auprc"} & public
    # pairs.py: the pairs, the contexts the protocol builds from them (its one loop), tables
    pairs_api = {"select_pairs", "explained_labels", "iter_pair_contexts", "format_table"}
    assert set(evaluation.__all__) == pairs_api
    funcs = {n.name for n in ast.walk(ast.parse((ROOT / "tfa_tutorial" / "evaluation" / "pairs.py").read_text()))
             if isinstance(n, ast.FunctionDef)}
    assert funcs == pairs_api
    # notebook 04's table measures the course families of the registry
    assert "COURSE_FAMILIES" in nb.read_text()


def test_no_second_family_list():
    """No module, notebook, benchmark or script repeats a list of families: a literal list, tuple,
    set or dict names at most three registry families (a figure's choice); longer selections
    live in tfa_tutorial.attribution.families."""
    names = set(FAMILIES)
    files = [p for d in ("tfa_tutorial", "notebooks", "benchmarks", "scripts") for p in (ROOT / d).rglob("*.py")]
    for path in files:
        if path.name == "families.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
                elts = [*node.keys, *node.values] if isinstance(node, ast.Dict) else node.elts
                hits = [e.value for e in elts if isinstance(e, ast.Constant) and e.value in names]
                assert len(hits) <= 3, f"{path.name} lists map families {hits}: use a selection of tfa_tutorial.attribution.families"


def _fake_db(gains_by_config: dict) -> dict:
    """``{config: {family: [gain per seed]}}`` → a results db whose clean-model mass is 0.1."""
    db = {"evidence": {}}
    for cfg, fams in gains_by_config.items():
        n_seeds = len(next(iter(fams.values())))
        db["evidence"][cfg] = {
            str(s): {"localisation": {f: {"shortcut model": {"mass": 0.1 + g[s], "rank": 0.0, "pointing": 0.0},
                                          "clean model": {"mass": 0.1, "rank": 0.0, "pointing": 0.0}}
                                      for f, g in fams.items()}}
            for s in range(n_seeds)}
    return db


def test_recommended_family_is_the_largest_mean_gain_over_configurations():
    from tfa_tutorial.evaluation.verdict import recommended_family

    a, b, c = "two-step · occlusion", "TFA-Cos · gradient × input", "TFA-Cos · decomposition"
    db = _fake_db({"x": {a: [0.1, 0.2], b: [0.4, 0.4], c: [0.0, 0.0]},
                   "y": {a: [0.5, 0.5], b: [0.1, 0.1], c: [0.9, 0.9]}})
    # mean over configs: a 0.325, b 0.25, c 0.45
    assert recommended_family(db, candidates=[a, b, c]) == c
    assert recommended_family(db, candidates=[a, b]) == a
    # a family missing from one configuration is not a candidate
    del db["evidence"]["y"]["0"]["localisation"][c], db["evidence"]["y"]["1"]["localisation"][c]
    assert recommended_family(db, candidates=[a, b, c]) == a
    with pytest.raises(ValueError, match="no 'evidence' section"):
        recommended_family({}, candidates=[a])


def test_the_explorer_default_is_the_recommended_map():
    from tfa_tutorial.evaluation.verdict import recommended_family
    from tfa_tutorial.explorer.settings import DEFAULT_MAP_METHOD, METHOD_FAMILIES

    assert METHOD_FAMILIES[DEFAULT_MAP_METHOD].name == recommended_family()
