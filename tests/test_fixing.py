"""Diagnosis to fix: flagging, removal, repair and retraining on tiny synthetic data with a planted
patch, checked against brute force (per-example autograd loops, hand-computed class means)."""
from __future__ import annotations

import pytest
import torch
from tiny_models import loop_grads, make_model

from tfa_tutorial.data.datasets import ImageDataset
from tfa_tutorial.data.patches import PatchSpec, inject_patch, patch_all
from tfa_tutorial.fixing.flagging import flag_harmful, harmful_examples, harmful_maps
from tfa_tutorial.fixing.repair import (
    fill_values,
    mask_overlap,
    random_indices,
    remove_examples,
    repair_examples,
    repair_maps,
    repair_masks,
)
from tfa_tutorial.fixing.retrain import STRATEGIES, fix_and_retrain, modify_training_set
from tfa_tutorial.training.experiment import ShortcutExperiment
from tfa_tutorial.training.train import shortcut_report

SPEC = PatchSpec(size=3, value=1.0, location=(0, 0), target_class=0, prevalence=0.5)
CLASSES = ("a", "b", "c", "d")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TFA_CACHE_DIR", str(tmp_path / "cache"))


def dataset(n: int, seed: int) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = 0.6 * torch.rand(n, 1, 8, 8, generator=g)
    labels = torch.arange(n) % 4
    images[:, :, 3:7, 3:7] += 0.1 * labels[:, None, None, None]  # a faint class signal
    return ImageDataset(images, labels, CLASSES, f"tiny-{seed}")


@pytest.fixture
def exp() -> ShortcutExperiment:
    train = inject_patch(dataset(48, 0), SPEC)  # 12 images of class 0, 6 patched
    test = dataset(16, 1)
    model = make_model("batch", seed=0, dtype=torch.float32)  # untrained: plenty of errors to explain
    clean = make_model("batch", seed=1, dtype=torch.float32)
    e = ShortcutExperiment(SPEC, train, test, patch_all(test, SPEC), model, clean, {"epochs": 1}, 0)
    e.report = shortcut_report(model, test, SPEC)
    return e


def reference_cos(model, train, x_test, y_test):
    """[Q, N] Grad-Cos from one autograd backward per example."""
    g_tr = loop_grads(model, train.images, train.labels)
    g_te = loop_grads(model, x_test, y_test)
    g_tr = g_tr / g_tr.norm(dim=1, keepdim=True)
    g_te = g_te / g_te.norm(dim=1, keepdim=True)
    return g_te @ g_tr.T


# ------------------------------------------------------------------ finding harmful examples


def test_harmful_examples_match_brute_force(exp):
    x, y = exp.test.images[:5], exp.test.labels[:5]
    out = harmful_examples(exp.model, exp.train, x, y, top_k=4)
    pred = exp.model(x).argmax(1)
    assert torch.equal(out["pred"], pred)
    s_pred = reference_cos(exp.model, exp.train, x, pred)
    s_true = reference_cos(exp.model, exp.train, x, y)
    assert torch.equal(out["proponents"], s_pred.topk(4, dim=1).indices)
    assert torch.equal(out["opponents"], (-s_true).topk(4, dim=1).indices)
    torch.testing.assert_close(out["opponent_scores"], s_true.gather(1, out["opponents"]), atol=1e-5, rtol=1e-4)
    assert (out["opponent_scores"][:, :-1] <= out["opponent_scores"][:, 1:] + 1e-6).all()


def test_harmful_maps_are_oriented_towards_the_error(exp):
    from tfa_tutorial import tfa_maps

    x, y = exp.test.images[:2], exp.test.labels[:2]
    harm = harmful_examples(exp.model, exp.train, x, y, top_k=3)
    idx, m = harmful_maps(exp.model, exp.train, harm, x, 1, "opponents", method="gradient", n_samples=0)
    assert torch.equal(idx, harm["opponents"][1])
    ref = tfa_maps(exp.model, exp.train.images[idx], exp.train.labels[idx], x[1], harm["true"][1])
    torch.testing.assert_close(m, -ref)  # S < 0 for opponents: flipped so that + = towards the error
    idx, m = harmful_maps(exp.model, exp.train, harm, x, 0, "proponents", method="gradient", n_samples=0)
    torch.testing.assert_close(m, tfa_maps(exp.model, exp.train.images[idx], exp.train.labels[idx], x[0], harm["pred"][0]))
    with pytest.raises(ValueError, match="kind"):
        harmful_maps(exp.model, exp.train, harm, x, 0, "neutral")


def test_flag_harmful_votes_union_and_precision(exp):
    flags = flag_harmful(exp, n_test=6, top_k=5, source="misclassified", seed=3)
    q = flags["n_test"]
    assert 1 <= q <= 6 and len(flags["test_source"]) == q
    idx = flags["test_indices"]
    assert torch.equal(flags["test_inputs"], exp.test.images[idx])
    assert (exp.model(flags["test_inputs"]).argmax(1) != exp.test.labels[idx]).all(), "only errors are explained"
    ref = reference_cos(exp.model, exp.train, flags["test_inputs"], flags["test_targets"])
    top = ref.topk(5, dim=1).indices
    votes = torch.zeros(len(exp.train), dtype=torch.long)
    for row in top:
        votes[row] += 1
    assert torch.equal(flags["votes"], votes)
    assert set(flags["flagged"].tolist()) == set(top.flatten().tolist())
    assert (flags["flag_votes"][:-1] >= flags["flag_votes"][1:]).all(), "most votes first"
    patched = exp.train.patched
    f = flags["flagged"]
    assert flags["precision"] == pytest.approx(patched[f].float().mean().item())
    assert flags["recall"] == pytest.approx(patched[f].sum().item() / patched.sum().item())
    assert flags["chance_precision"] == pytest.approx(6 / 48)
    # best_test points at the test image that scores the flag highest
    assert torch.equal(flags["best_test"], ref[:, f].argmax(0))
    strict = flag_harmful(exp, n_test=6, top_k=5, source="misclassified", seed=3, min_votes=2)
    assert set(strict["flagged"].tolist()) == set((votes >= 2).nonzero().flatten().tolist())


def test_flag_harmful_rejects_bad_input(exp):
    with pytest.raises(ValueError, match="source"):
        flag_harmful(exp, source="everything", top_k=5)
    with pytest.raises(ValueError, match="top_k"):
        flag_harmful(exp, top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        flag_harmful(exp, top_k=len(exp.train) + 1)
    with pytest.raises(ValueError, match="score"):
        flag_harmful(exp, score="tracin", top_k=5)
    with pytest.raises(ValueError, match="n_test"):
        flag_harmful(exp, n_test=0, top_k=5)


# ------------------------------------------------------------------ changing the training set


def test_remove_examples_removes_exactly_those(exp):
    drop = torch.tensor([0, 5, 47, 13])
    data, kept = remove_examples(exp.train, drop)
    assert len(data) == 44 and set(kept.tolist()) == set(range(48)) - {0, 5, 13, 47}
    assert torch.equal(data.images, exp.train.images[kept]) and torch.equal(data.labels, exp.train.labels[kept])
    assert torch.equal(data.patched, exp.train.patched[kept])
    with pytest.raises(ValueError, match="duplicates"):
        remove_examples(exp.train, torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r"\[0, 48\)"):
        remove_examples(exp.train, torch.tensor([48]))
    with pytest.raises(TypeError, match="integer"):
        remove_examples(exp.train, torch.tensor([1.0]))
    with pytest.raises(ValueError, match="no training data"):
        remove_examples(exp.train, torch.arange(48))


def test_strategies_change_the_intended_images(exp):
    flagged = torch.tensor([2, 7, 11, 30, 40])
    data, info = modify_training_set(exp, "remove", flagged)
    assert torch.equal(info["changed"], flagged) and len(data) == 43
    keep = torch.ones(48, dtype=torch.bool)
    keep[flagged] = False
    assert torch.equal(data.images, exp.train.images[keep]) and torch.equal(data.labels, exp.train.labels[keep])

    data, info = modify_training_set(exp, "oracle_remove")
    patched = exp.train.patched.nonzero().flatten()
    assert torch.equal(info["changed"], patched) and len(data) == 48 - 6 and not data.patched.any()
    assert torch.equal(data.images, exp.train.images[~exp.train.patched])

    data, info = modify_training_set(exp, "random_remove", flagged, seed=1)
    assert len(info["changed"]) == len(flagged) and len(data) == 43
    again, info2 = modify_training_set(exp, "random_remove", flagged, seed=1)
    assert torch.equal(info["changed"], info2["changed"]), "seeded"
    other = modify_training_set(exp, "random_remove", flagged, seed=2)[1]["changed"]
    assert not torch.equal(other, info["changed"])
    # the random draw must not replay the patch injection's draw (randperm of the class with the same seed)
    target = (exp.train.labels == 0).nonzero().flatten()
    injection_order = target[torch.randperm(len(target), generator=torch.Generator().manual_seed(SPEC.seed))]
    assert not torch.equal(random_indices(48, 6, SPEC.seed, target), injection_order[:6].sort().values)
    same = modify_training_set(exp, "random_remove", flagged, seed=1, pool="same_class")[1]["changed"]
    assert torch.equal(torch.bincount(exp.train.labels[same], minlength=4), torch.bincount(exp.train.labels[flagged], minlength=4))

    data, info = modify_training_set(exp, "none")
    assert data is exp.train and len(info["changed"]) == 0


def test_repair_changes_only_the_masked_pixels_of_flagged_images(exp):
    flagged = torch.tensor([0, 4, 9])  # includes a class-0 image and others
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, :2, :2] = True
    masks[1, 5:, 5:] = True
    masks[2, 0, 7] = True
    out = repair_examples(exp.train, flagged, masks, fill="class_mean")
    other = torch.ones(48, dtype=torch.bool)
    other[flagged] = False
    assert torch.equal(out.images[other], exp.train.images[other]), "unflagged images untouched"
    for f, i in enumerate(flagged.tolist()):
        m = masks[f]
        assert torch.equal(out.images[i][:, ~m], exp.train.images[i][:, ~m]), "pixels outside the mask kept"
        pool = other & (exp.train.labels == exp.train.labels[i])
        mean = exp.train.images[pool].mean(0)  # the class mean over unflagged images, by hand
        torch.testing.assert_close(out.images[i][:, m], mean[:, m])
    assert torch.equal(out.patched, exp.train.patched) and out is not exp.train
    zero = repair_examples(exp.train, flagged, masks, fill="zero")
    assert (zero.images[flagged][masks[:, None]] == 0).all()
    med = fill_values(exp.train, flagged, "image_median", masks)
    x = exp.train.images[4, 0]
    assert med[1, 0, 0, 0] == x[~masks[1]].median()
    with pytest.raises(ValueError, match="unknown fill"):
        repair_examples(exp.train, flagged, masks, fill="inpaint")
    with pytest.raises(ValueError, match="masks must be"):
        repair_examples(exp.train, flagged, masks[:2])


def test_repair_masks_pick_the_top_pixels():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(4, 1, 10, 10, generator=g) - 0.5
    m = repair_masks(maps, fraction=0.13, smooth=1)
    assert (m.flatten(1).sum(1) == 13).all()
    ref = maps.clamp_min(0).sum(1).flatten(1).topk(13, dim=1).indices  # positive part, brute force
    for b in range(4):
        assert set(m[b].flatten().nonzero().flatten().tolist()) == set(ref[b].tolist())
    # a planted 3×3 square is found exactly, with or without smoothing
    planted = torch.zeros(2, 10, 10)
    planted[:, 4:7, 2:5] = 1.0
    planted[1, 0, 9] = 1.5  # an isolated spike: smoothing suppresses it
    for smooth in (1, 3):
        got = repair_masks(planted, fraction=0.09, smooth=smooth)
        assert torch.equal(got[0], planted[0] > 0)
    assert torch.equal(repair_masks(planted, fraction=0.09, smooth=3)[1], planted[0] > 0)
    for bad in ({"fraction": 0.0}, {"fraction": 1.5}, {"smooth": 2}, {"smooth": 0}):
        with pytest.raises(ValueError):
            repair_masks(planted, **bad)
    with pytest.raises(ValueError, match="maps must be"):
        repair_masks(torch.zeros(10, 10))


def test_mask_overlap_closed_form():
    truth = torch.zeros(3, 4, 4, dtype=torch.bool)
    truth[0, :2, :2] = True  # 4 pixels
    truth[1, :2, :] = True  # 8 pixels
    rep = torch.zeros(3, 4, 4, dtype=torch.bool)
    rep[0, :2, :1] = True  # 2 inside
    rep[1, 1:3, :] = True  # 4 inside, 4 outside
    rep[2, 0, 0] = True  # image without a patch: ignored
    o = mask_overlap(rep, truth)
    assert o["n"] == 2
    assert o["iou"] == pytest.approx((2 / 4 + 4 / 12) / 2)
    assert o["coverage"] == pytest.approx(6 / 12)
    assert o["precision"] == pytest.approx(6 / 10)


def test_repair_maps_methods(exp):
    flags = flag_harmful(exp, n_test=4, top_k=3, source="misclassified")
    idx = flags["flagged"]
    x = exp.train.images[idx]
    assert torch.equal(repair_maps(exp.model, exp.train, idx, "control · input as map"), x)
    tfa = repair_maps(exp.model, exp.train, idx, "TFA-Cos · gradient × input", flags["test_inputs"], flags["test_targets"], flags["best_test"])
    assert tfa.shape == x.shape and tfa.abs().sum() > 0
    assert (tfa[x == 0] == 0).all(), "gradient × input is 0 where the input is 0"
    two = repair_maps(exp.model, exp.train, idx, "two-step · integrated gradients")
    assert two.shape == x.shape
    with pytest.raises(ValueError, match="needs the test images"):
        repair_maps(exp.model, exp.train, idx, "TFA-Cos · integrated gradients")
    with pytest.raises(ValueError, match="unknown map_method"):
        repair_maps(exp.model, exp.train, idx, "gradcam")
    with pytest.raises(ValueError, match="flag_harmful"):
        modify_training_set(exp, "repair", idx, map_method="TFA-Cos · integrated gradients")


def test_bad_strategies_raise_clear_errors(exp):
    with pytest.raises(ValueError, match="unknown strategy"):
        fix_and_retrain(exp, "delete", torch.tensor([1]))
    with pytest.raises(ValueError, match="at least one flagged"):
        fix_and_retrain(exp, "remove", torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="flagged"):
        fix_and_retrain(exp, "remove", None)
    with pytest.raises(ValueError, match="flag_harmful"):
        fix_and_retrain(exp, "remove", {"votes": 1})
    with pytest.raises(ValueError, match="pool"):
        fix_and_retrain(exp, "random_remove", torch.tensor([1]), pool="nearby")
    with pytest.raises(ValueError, match="seed"):
        fix_and_retrain(exp, "none", seed=5)
    with pytest.raises(ValueError, match="random examples"):
        random_indices(10, 11)
    assert set(STRATEGIES) >= {"none", "remove", "repair", "random_remove", "oracle_remove"}


def test_fix_and_retrain_end_to_end_and_cached(exp):
    flags = flag_harmful(exp, n_test=4, top_k=3, source="misclassified")
    n_f = flags["n_flagged"]
    keys = {"strategy", "n_changed", "clean_accuracy", "patched_accuracy", "flip_rate"}
    none = fix_and_retrain(exp, "none", flags)
    assert keys <= set(none) and none["n_changed"] == 0 and none["model"] is exp.model
    assert none["flip_rate"] == exp.report["flip_rate"]
    rem = fix_and_retrain(exp, "remove", flags)
    assert keys <= set(rem) and rem["n_changed"] == n_f and rem["n_train"] == 48 - n_f and not rem["from_cache"]
    assert rem["n_patched_changed"] == int(exp.train.patched[flags["flagged"]].sum())
    assert fix_and_retrain(exp, "remove", flags)["from_cache"], "the second call loads the cached model"
    rnd = fix_and_retrain(exp, "random_remove", flags)
    assert rnd["n_changed"] == n_f and rnd["n_train"] == 48 - n_f and not rnd["from_cache"]
    orc = fix_and_retrain(exp, "oracle_remove", flags)
    assert orc["n_changed"] == 6 and orc["n_train"] == 42 and orc["n_patched_changed"] == 6
    rep = fix_and_retrain(exp, "repair", flags, map_method="two-step · gradient × input", fraction=0.15)
    assert rep["n_changed"] == n_f and rep["n_train"] == 48 and not rep["from_cache"]
    assert rep["repair_masks"].flatten(1).sum(1).eq(round(0.15 * 64)).all()
    assert 0.0 <= rep["clean_accuracy"] <= 1.0 and 0.0 <= rep["flip_rate"] <= 1.0
    # a different repair (other map) is a different cache entry
    assert not fix_and_retrain(exp, "repair", flags, map_method="control · input as map", fraction=0.15)["from_cache"]
    assert fix_and_retrain(exp, "oracle_repair", flags)["model"] is exp.clean_model
