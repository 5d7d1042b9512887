"""The course exercises: the checkers accept right answers, reject wrong ones with a hint that
does not give the answer away, and the teachers' solutions pass every check.

(a) each checker on tiny data: the right answer (computed here independently: autograd loops,
    plain formulas) passes; typical wrong answers fail, print ✗ and a hint, and the hint does not
    contain the reference value; ``...`` counts as not answered;
(b) files: every solution script has its generated student script and executed notebook, the
    student files hold no solution code outside the folded cells, and every registered
    exercise is exercised by its notebook's solution script;
(c) slow: every solution script runs in a fresh process (fast mode) and solves all its exercises.
"""
from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from tiny_models import explorer_data, loop_grads, make_data, make_model

from tfa_tutorial.data.datasets import ImageDataset
from tfa_tutorial.data.patches import PatchSpec, apply_patch, inject_patch
from tfa_tutorial.exercises import EX01_PATCH, CheckResult, Checks, is_answered
from tfa_tutorial.training.models import SoftmaxRegression

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import make_exercises  # noqa: E402

SOLUTIONS = sorted((ROOT / "exercises" / "solutions").glob("[0-9][0-9]_*.py"))
CLASSES = tuple(f"c{k}" for k in range(10))


@pytest.fixture
def check():
    return Checks()


def run(capsys, fn, *args, **kw):
    result = fn(*args, **kw)
    assert isinstance(result, CheckResult)
    return bool(result), capsys.readouterr().out


def assert_fails(capsys, fn, *args, hint: str | None = None, secret=None, **kw):
    """The checker returns False, prints one ✗ line (with ``hint`` in it), and does not print ``secret``."""
    ok, out = run(capsys, fn, *args, **kw)
    assert ok is False, out
    assert out.startswith("✗ ") and out.count("\n") == 1, out
    if hint:
        assert hint in out, out
    for value in ([] if secret is None else secret if isinstance(secret, (list, tuple)) else [secret]):
        for text in {f"{value:.2f}", f"{value:.3f}", f"{value:.4f}", repr(float(value))}:
            if text not in ("0.00", "0.000", "0.0000", "1.00", "1.000", "1.0000"):
                assert text not in out, f"the hint reveals the answer {text}: {out}"
    return out


def assert_passes(capsys, fn, *args, **kw):
    ok, out = run(capsys, fn, *args, **kw)
    assert ok is True and out.startswith("✓ "), out


def dataset(n=60, hw=28, k=10, seed=0, lo=0.0, hi=0.9) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = lo + (hi - lo) * torch.rand(n, 1, hw, hw, generator=g)
    labels = torch.arange(n) % k
    return ImageDataset(images, labels, CLASSES[:k], "tiny")


def cos_loop(model, x_train, y_train, x_test, y_test):
    """Grad-Cos [Q, N] from the per-example autograd loop."""
    gi, gj = loop_grads(model, x_train, y_train), loop_grads(model, x_test, y_test)
    return F.normalize(gj, dim=1) @ F.normalize(gi, dim=1).T


# ------------------------------------------------------------------------- (a) bookkeeping


def test_placeholders_count_as_not_answered(check, capsys):
    assert not is_answered(...) and not is_answered({"cos": ..., "dot": 0.1}) and not is_answered((1, ...))
    assert is_answered(0) and is_answered({"a": 1}) and is_answered(torch.zeros(3))
    for name in Checks.names():
        # every checker stops at the placeholder before it needs its other arguments
        fn = getattr(check, name)
        required = [p for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty]
        ok, out = run(capsys, fn, *([...] * len(required)))
        assert ok is False and "not answered yet" in out, (name, out)


def test_check_result_is_truthy_and_displays_nothing():
    yes, no = CheckResult(True), CheckResult(False)
    assert yes and not no and yes == True and no == False  # noqa: E712
    assert repr(no) == "CheckResult(ok=False)" and no._ipython_display_() is None


def test_names_are_grouped_by_notebook_and_summary_counts(check, capsys):
    names = Checks.names()
    assert names == sorted(names, key=lambda n: n[2:4]) and len(names) >= 12
    for nb in ("00", "01", "02", "03", "04", "05", "06", "07"):
        assert 2 <= len(Checks.names(nb)) <= 5, nb  # 05 has five: two on rankings, then a map, the state API, a control
    check.ex00_patch_area(...)
    assert check.summary() == (0, len(Checks.names("00")))
    check.ex00_patch_area(144 / 784)
    capsys.readouterr()
    assert check.summary() == (1, len(Checks.names("00")))
    assert "ex00_n_patched: – not attempted" in capsys.readouterr().out


# ------------------------------------------------------------------------- (a) 00, 01


def test_ex00_patch_area(check, capsys):
    spec = PatchSpec(size=3, location=(1, 1))
    assert_passes(capsys, check.ex00_patch_area, 9 / 64, spec, (1, 8, 8))
    assert_fails(capsys, check.ex00_patch_area, 9, spec, (1, 8, 8), hint="[0, 1]")
    assert_fails(capsys, check.ex00_patch_area, 9 / 16, spec, (1, 8, 8), hint="H × W", secret=9 / 64)
    assert_fails(capsys, check.ex00_patch_area, 0.5, spec, (1, 8, 8), secret=9 / 64)


def test_ex00_n_patched(check, capsys):
    data = dataset(n=40, hw=8, k=4)
    spec = PatchSpec(size=2, target_class=0, prevalence=0.5)
    assert_passes(capsys, check.ex00_n_patched, 5, data, spec)
    assert_fails(capsys, check.ex00_n_patched, 20, data, spec, hint="share of the target class")
    assert_fails(capsys, check.ex00_n_patched, 10, data, spec, hint="not every image")
    assert_fails(capsys, check.ex00_n_patched, 4, data, spec)
    assert_fails(capsys, check.ex00_n_patched, "five", data, spec)


def test_ex01_custom_patch(check, capsys):
    src = dataset(n=100)
    spec = PatchSpec(size=5, value=1.0, location=(23, 23), target_class=7, prevalence=0.3)
    assert tuple(spec.size) == EX01_PATCH["size"]
    right = inject_patch(src, spec)
    assert_passes(capsys, check.ex01_custom_patch, right, src)
    assert_fails(capsys, check.ex01_custom_patch, right.images, src, hint="PatchedDataset")
    assert_fails(capsys, check.ex01_custom_patch, inject_patch(src, spec.replace(location=(0, 0))), src, hint="bottom-right")
    assert_fails(capsys, check.ex01_custom_patch, inject_patch(src, spec.replace(target_class=0)), src, hint="Sneaker")
    assert_fails(capsys, check.ex01_custom_patch, inject_patch(src, spec.replace(prevalence=0.5)), src, hint="prevalence")
    assert_fails(capsys, check.ex01_custom_patch, inject_patch(src, spec.replace(value=0.5)), src, hint="white")
    assert_fails(capsys, check.ex01_custom_patch, inject_patch(dataset(n=100, seed=1), spec), src, hint="outside the patch")
    assert_fails(capsys, check.ex01_custom_patch, inject_patch(dataset(n=90), spec), src, hint="source data set")
    # right spec, but an image changed outside the patch
    tampered = inject_patch(src, spec)
    tampered.images[0, 0, 0, 0] = 0.95
    assert_fails(capsys, check.ex01_custom_patch, tampered, src, hint="outside the patch")


def test_ex01_changed_pixels(check, capsys):
    src = dataset(n=40, hw=8, k=4)
    spec = PatchSpec(size=2, value=1.0, target_class=0, prevalence=1.0)
    src.images[0, 0, 0, 0] = 1.0  # one patch pixel is white already: one value less changes
    patched = inject_patch(src, spec)
    n_changed = sum(int((a != b).sum()) for a, b in zip(patched.images, src.images))
    assert n_changed == 10 * 4 - 1
    out = capsys.readouterr()
    assert_passes(capsys, check.ex01_changed_pixels, n_changed, src, patched)
    assert_fails(capsys, check.ex01_changed_pixels, 40, src, patched, hint="upper bound")
    assert_fails(capsys, check.ex01_changed_pixels, 10, src, patched, hint="not changed images")
    assert_fails(capsys, check.ex01_changed_pixels, 7, src, patched)
    del out


# ------------------------------------------------------------------------- (a) 02


def tiny_patch_setup():
    """float32 softmax regressions on 8×8 images (predict does not cast) and a patch whose target
    is the class the model predicts most often on patched images; the first seed where the flip
    rate, the error rate and the rate including target-class images all differ."""
    g = torch.Generator().manual_seed(5)
    test = ImageDataset(torch.rand(40, 1, 8, 8, generator=g), torch.arange(40) % 4, CLASSES[:4], "tiny-test")
    for seed in range(50):
        torch.manual_seed(seed)
        model, clean = SoftmaxRegression(64, 4).eval(), SoftmaxRegression(64, 4).eval()
        with torch.no_grad():
            model.linear.weight.mul_(20)  # varied predictions
            target = int(model(apply_patch(test.images, PatchSpec(size=3))).argmax(1).mode().values)
            spec = PatchSpec(size=3, value=1.0, target_class=target)
            other = test.labels != target
            pred = model(apply_patch(test.images[other], spec)).argmax(1)
            pred_all = model(apply_patch(test.images, spec)).argmax(1)
        rates = {round(float((pred == target).float().mean()), 6), round(float((pred != test.labels[other]).float().mean()), 6),
                 round(float((pred_all == target).float().mean()), 6)}
        if len(rates) == 3:
            return model, clean, test, spec
    raise AssertionError("no tiny case separates the three rates")


def test_ex02_flip_rate(check, capsys):
    model, _, test, spec = tiny_patch_setup()
    other = test.labels != spec.target_class
    with torch.no_grad():
        pred = model(apply_patch(test.images[other], spec)).argmax(1)
        pred_all = model(apply_patch(test.images, spec)).argmax(1)
    right = float((pred == spec.target_class).float().mean())
    error_rate = float((pred != test.labels[other]).float().mean())
    with_target = float((pred_all == spec.target_class).float().mean())
    assert len({round(right, 6), round(error_rate, 6), round(with_target, 6)}) == 3, "the tiny case must tell them apart"
    assert_passes(capsys, check.ex02_flip_rate, right, model, test, spec)
    assert_fails(capsys, check.ex02_flip_rate, error_rate, model, test, spec, hint="error rate", secret=right)
    assert_fails(capsys, check.ex02_flip_rate, with_target, model, test, spec, hint="leave out", secret=right)
    assert_fails(capsys, check.ex02_flip_rate, right + 0.2, model, test, spec, secret=right)


def test_ex02_black_square(check, capsys):
    model, clean, _, spec = tiny_patch_setup()
    x = torch.zeros(1, 1, 8, 8)
    x[..., :3, :3] = 1.0
    with torch.no_grad():
        ref = (int(model(x).argmax()), int(clean(x).argmax()))
    assert_passes(capsys, check.ex02_black_square, ref, model, clean, spec, image_shape=(1, 8, 8))
    wrong = ((ref[0] + 1) % 4, ref[1])
    assert_fails(capsys, check.ex02_black_square, wrong, model, clean, spec, image_shape=(1, 8, 8), hint="shortcut model's")
    assert_fails(capsys, check.ex02_black_square, ref[0], model, clean, spec, image_shape=(1, 8, 8), hint="pair")
    if ref[0] != ref[1]:
        assert_fails(capsys, check.ex02_black_square, ref[::-1], model, clean, spec, image_shape=(1, 8, 8), hint="order")


# ------------------------------------------------------------------------- (a) 03


def test_ex03_per_sample_grad(check, capsys):
    model = make_model("batch", seed=0)
    x, y = make_data(n=2)
    g = loop_grads(model, x[:1], y[:1])[0]
    assert_passes(capsys, check.ex03_per_sample_grad, g, model, x[0], y[0])
    assert_fails(capsys, check.ex03_per_sample_grad, -g, model, x[0], y[0], hint="sign")
    assert_fails(capsys, check.ex03_per_sample_grad, g[:-1], model, x[0], y[0], hint="one entry per parameter")
    assert_fails(capsys, check.ex03_per_sample_grad, g.flip(0), model, x[0], y[0], hint="order")
    assert_fails(capsys, check.ex03_per_sample_grad, 2 * g, model, x[0], y[0], hint="autograd.grad")
    assert_fails(capsys, check.ex03_per_sample_grad, g.tolist(), model, x[0], y[0], hint="tensor")


def tiny_patched_train(n=48):
    src = dataset(n=n, hw=8, k=4, seed=2)
    return inject_patch(src, PatchSpec(size=3, value=1.0, target_class=0, prevalence=0.5))


def test_ex03_cos_vs_dot(check, capsys):
    model = make_model("batch", seed=0)
    train = tiny_patched_train()
    x_test = apply_patch(dataset(n=1, hw=8, k=1, seed=9).images[0], train.spec)
    with torch.no_grad():
        y_hat = model(x_test[None].double()).argmax(1)
    gi, gj = loop_grads(model, train.images.double(), train.labels), loop_grads(model, x_test[None].double(), y_hat)
    dot = (gj @ gi.T)[0]
    cos = (F.normalize(gj, dim=1) @ F.normalize(gi, dim=1).T)[0]
    k = 6
    right = {"cos": float(train.patched[cos.topk(k).indices].float().mean()),
             "dot": float(train.patched[dot.topk(k).indices].float().mean())}
    assert_passes(capsys, check.ex03_cos_vs_dot, right, model, train, x_test, k=k)
    low = {"cos": float(train.patched[cos.topk(k, largest=False).indices].float().mean()),
           "dot": float(train.patched[dot.topk(k, largest=False).indices].float().mean())}
    if low != right:
        assert_fails(capsys, check.ex03_cos_vs_dot, low, model, train, x_test, k=k, hint="lowest")
    assert_fails(capsys, check.ex03_cos_vs_dot, {"cos": 2.0, "dot": right["dot"]}, model, train, x_test, k=k, hint="cos share")
    assert_fails(capsys, check.ex03_cos_vs_dot, [right["cos"], right["dot"]], model, train, x_test, k=k, hint="dict")
    if right["cos"] != right["dot"]:
        swapped = {"cos": right["dot"], "dot": right["cos"]}
        assert_fails(capsys, check.ex03_cos_vs_dot, swapped, model, train, x_test, k=k, hint="swapped")


def test_ex03_best_flipped(check, capsys):
    model = make_model("batch", seed=0)
    x, y = make_data(n=9)
    x_i, y_i, tests = x[0], y[0], x[1:]
    candidates = torch.tensor([1, 3, 4, 6, 7])
    with torch.no_grad():
        y_hat = model(tests[candidates]).argmax(1)
    s = cos_loop(model, x_i[None], y_i[None], tests[candidates], y_hat)[:, 0]
    best, worst = int(candidates[s.argmax()]), int(candidates[s.argmin()])
    assert_passes(capsys, check.ex03_best_flipped, best, model, x_i, y_i, candidates, tests)
    assert_fails(capsys, check.ex03_best_flipped, worst, model, x_i, y_i, candidates, tests, hint="lowest")
    if int(s.argmax()) not in candidates.tolist():
        assert_fails(capsys, check.ex03_best_flipped, int(s.argmax()), model, x_i, y_i, candidates, tests, hint="position")
    other = next(c for c in candidates.tolist() if c not in (best, worst))
    assert_fails(capsys, check.ex03_best_flipped, other, model, x_i, y_i, candidates, tests, hint="largest score")


# ------------------------------------------------------------------------- (a) 04


def test_ex04_mass_by_hand(check, capsys):
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 6, 6, generator=g, dtype=torch.float64)
    masks = torch.zeros(3, 6, 6, dtype=torch.bool)
    masks[:, :2, :3] = True
    right = torch.tensor([
        sum(max(float(maps[b, r, c]), 0.0) for r in range(6) for c in range(6) if masks[b, r, c])
        / sum(max(float(maps[b, r, c]), 0.0) for r in range(6) for c in range(6))
        for b in range(3)
    ])
    assert_passes(capsys, check.ex04_mass_by_hand, right, maps, masks)
    absolute = (maps.abs() * masks).sum((1, 2)) / maps.abs().sum((1, 2))
    assert_fails(capsys, check.ex04_mass_by_hand, absolute, maps, masks, hint="|m|", secret=right.tolist())
    signed = (maps * masks).sum((1, 2)) / maps.sum((1, 2))
    assert_fails(capsys, check.ex04_mass_by_hand, signed, maps, masks, hint="clamp", secret=right.tolist())
    unnormalised = (maps.clamp_min(0) * masks).sum((1, 2))
    assert_fails(capsys, check.ex04_mass_by_hand, unnormalised, maps, masks, hint="divide", secret=right.tolist())
    assert_fails(capsys, check.ex04_mass_by_hand, right[:2], maps, masks, hint="one value per map")
    assert_fails(capsys, check.ex04_mass_by_hand, right.flip(0) + 0.01, maps, masks, secret=right.tolist())


def test_ex04_input_as_map(check, capsys):
    train = tiny_patched_train()
    images, masks = train.images[train.patched], train.masks[train.patched]
    chance = float(masks[0].float().mean())
    right = float(torch.stack([(im[0] * m).sum() / im[0].sum() for im, m in zip(images, masks)]).mean())
    assert right > chance  # the white patch is the brightest region
    assert_passes(capsys, check.ex04_input_as_map, right, True, images, masks, chance)
    assert_passes(capsys, check.ex04_input_as_map, torch.tensor(right), torch.tensor(right) > chance, images, masks, chance)
    assert_fails(capsys, check.ex04_input_as_map, right, "yes", images, masks, chance, hint="beats_chance")
    assert_fails(capsys, check.ex04_input_as_map, right, False, images, masks, chance, hint="beats_chance")
    assert_fails(capsys, check.ex04_input_as_map, chance, True, images, masks, chance, hint="patch area", secret=right)
    assert_fails(capsys, check.ex04_input_as_map, right + 0.1, True, images, masks, chance, hint="reduce_map", secret=right)


def test_ex04_closed_form(check, capsys):
    from tfa_tutorial.attribution.closed_forms import softmax_regression_grad_cos

    torch.manual_seed(0)
    lin = SoftmaxRegression(16, 4).double().eval()
    x, _ = make_data(n=2, hw=4)
    x_i, x_j, y_i, y_j = x[0], x[1], 1, 2
    right = float(softmax_regression_grad_cos(lin, x_i, y_i, x_j, y_j))  # the package's closed form, not autograd
    assert_passes(capsys, check.ex04_closed_form, right, lin, x_i, y_i, x_j, y_j)
    assert_fails(capsys, check.ex04_closed_form, -right, lin, x_i, y_i, x_j, y_j, hint="sign")
    W, b = lin.linear.weight.detach(), lin.linear.bias.detach()

    def cos(u, v):
        return float(u @ v / (u.norm() * v.norm()))

    p_i, p_j = torch.softmax(W @ x_i.flatten() + b, 0), torch.softmax(W @ x_j.flatten() + b, 0)
    d_i, d_j = p_i - F.one_hot(torch.tensor(y_i), 4), p_j - F.one_hot(torch.tensor(y_j), 4)
    no_bias = cos(d_i, d_j) * cos(x_i.flatten(), x_j.flatten())
    assert_fails(capsys, check.ex04_closed_form, no_bias, lin, x_i, y_i, x_j, y_j, hint="bias", secret=right)
    xt_i, xt_j = (torch.cat([v.flatten(), torch.ones(1, dtype=v.dtype)]) for v in (x_i, x_j))
    with_p = cos(p_i, p_j) * cos(xt_i, xt_j)
    assert_fails(capsys, check.ex04_closed_form, with_p, lin, x_i, y_i, x_j, y_j, hint="errors", secret=right)


# ------------------------------------------------------------------------- (a) 05


def test_ex05_label_choice(check, capsys):
    model = make_model("batch", seed=0)
    train = tiny_patched_train()
    x_test = dataset(n=1, hw=8, k=1, seed=4).images[0]
    with torch.no_grad():
        y_hat = int(model(x_test[None].double()).argmax())
    y_true = (y_hat + 1) % 4
    right = {}
    for key, label in (("predicted", y_hat), ("true", y_true)):
        s = cos_loop(model, train.images.double(), train.labels, x_test[None].double(), torch.tensor([label]))[0]
        right[key] = float((train.labels[s.topk(8).indices] == 0).float().mean())
    assert_passes(capsys, check.ex05_label_choice, right, model, train, x_test, y_true, 0, k=8)
    assert_fails(capsys, check.ex05_label_choice, {"predicted": 0.5, "true": 2.0}, model, train, x_test, y_true, 0, k=8,
                 hint="grad_cos twice")
    assert_fails(capsys, check.ex05_label_choice, (right["predicted"], right["true"]), model, train, x_test, y_true, 0, k=8,
                 hint="dict")
    if right["predicted"] != right["true"]:
        swapped = {"predicted": right["true"], "true": right["predicted"]}
        assert_fails(capsys, check.ex05_label_choice, swapped, model, train, x_test, y_true, 0, k=8, hint="swapped")


def test_ex05_top_opponent(check, capsys):
    model = make_model("batch", seed=0)
    train = tiny_patched_train()
    x_test = dataset(n=1, hw=8, k=1, seed=4).images[0]
    with torch.no_grad():
        y_hat = model(x_test[None].double()).argmax(1)
    y_true = (int(y_hat) + 1) % int(train.labels.max() + 1)  # a misclassified test image
    s = cos_loop(model, train.images.double(), train.labels, x_test[None].double(), torch.tensor([y_true]))[0]
    s_pred = cos_loop(model, train.images.double(), train.labels, x_test[None].double(), y_hat)[0]
    assert int(s.argmin()) != int(s_pred.argmin())  # the fixture tells the two answers apart
    assert_passes(capsys, check.ex05_top_opponent, int(s.argmin()), model, train, x_test, y_true)
    assert_fails(capsys, check.ex05_top_opponent, int(s_pred.argmin()), model, train, x_test, y_true, hint="predicted label")
    assert_fails(capsys, check.ex05_top_opponent, int(s.argmax()), model, train, x_test, y_true, hint="top proponent")
    other = int(s.argsort()[len(s) // 2])
    assert_fails(capsys, check.ex05_top_opponent, other, model, train, x_test, y_true, hint="lowest")


def test_ex05_read_map(check, capsys):
    m = torch.zeros(8, 8)
    m[1, 1], m[2, 2] = 3.0, 1.0  # the evidence sits in the patch, top-left
    m[6, 5] = 0.5
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:3, :3] = True
    assert_passes(capsys, check.ex05_read_map, {"quadrant": "top-left", "above_chance": True}, m, mask)
    assert_passes(capsys, check.ex05_read_map, {"quadrant": "top-left", "above_chance": True}, m[None], mask)  # [C, H, W]
    assert_fails(capsys, check.ex05_read_map, {"quadrant": "bottom-right", "above_chance": True}, m, mask, hint="strongest red")
    assert_fails(capsys, check.ex05_read_map, {"quadrant": "top-left", "above_chance": False}, m, mask, hint="green box")
    assert_fails(capsys, check.ex05_read_map, {"quadrant": "left", "above_chance": True}, m, mask, hint="one of")
    assert_fails(capsys, check.ex05_read_map, ("top-left", True), m, mask, hint="dict")
    m2 = torch.zeros(8, 8)
    m2[7, 7] = 1.0  # all the evidence off the patch, bottom-right
    assert_passes(capsys, check.ex05_read_map, {"quadrant": "bottom-right", "above_chance": False}, m2, mask)


class _RankedState:
    """A stand-in for the explorer's state with known rankings: ``counts[(side, label)][q]`` of the
    k = 3 ranked training images of test image q carry the patch."""

    def __init__(self, counts):
        self.counts, self.settings = counts, SimpleNamespace(k=3)

    def result(self, test_index, maps=True, label="predicted"):
        assert maps is False and label in ("predicted", "true")
        items = {side: [SimpleNamespace(patched=r < self.counts[side, label][test_index]) for r in range(3)]
                 for side in ("proponents", "opponents")}
        return SimpleNamespace(**items)


def test_ex05_state_api(check, capsys):
    # the known answer: candidate 1 is the first with the most patched opponents of the true label (3 of 3);
    # 3 ties with it; 0 wins on the opponents of the predicted label, 2 on the proponents
    counts = {("opponents", "true"): [1, 3, 0, 3], ("opponents", "predicted"): [3, 0, 2, 1],
              ("proponents", "predicted"): [0, 1, 3, 0], ("proponents", "true"): [2, 2, 2, 2]}
    state, cands = _RankedState(counts), [0, 1, 2, 3]
    assert_passes(capsys, check.ex05_state_api, 1, state, cands)
    assert_passes(capsys, check.ex05_state_api, torch.tensor(1), state, cands)
    assert_fails(capsys, check.ex05_state_api, 3, state, cands, hint="a tie")
    assert_fails(capsys, check.ex05_state_api, 2, state, cands, hint="counts the proponents")
    assert_fails(capsys, check.ex05_state_api, 0, state, cands, hint="label='true'")
    assert_fails(capsys, check.ex05_state_api, 99, state, cands, hint="candidate")
    assert_fails(capsys, check.ex05_state_api, ..., state, cands, hint="not answered")
    # and with the real explorer state: the answer from Grad-Cos scores on the training set (the k lowest for
    # the true label), not from the explorer's ranking
    from test_explorer import make_state

    from tfa_tutorial.attribution.scores import grad_cos

    d = explorer_data()
    real = make_state(d, method="two_step_occlusion")
    cands = list(range(6))
    harm = {q: int(d.patched[(-grad_cos(d.model, d.x, d.y, d.xt_patched[q : q + 1], d.yt[q : q + 1])[0]).topk(3).indices].sum())
            for q in cands}
    ref, worse = max(cands, key=harm.get), min(cands, key=harm.get)
    assert harm[worse] < harm[ref]  # the data separate the candidates
    assert_passes(capsys, check.ex05_state_api, ref, real, cands)
    assert_fails(capsys, check.ex05_state_api, worse, real, cands)


def test_ex05_design_control(check, capsys):
    from tfa_tutorial.attribution.baselines import two_step_baseline

    model, clean = make_model("group", seed=0, dtype=torch.float32), make_model("group", seed=3, dtype=torch.float32)
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[:, :3, :3] = True
    maps = two_step_baseline(model, x, y, method="occlusion", window=4, stride=2)
    assert_passes(capsys, check.ex05_design_control,
                  lambda a, b: two_step_baseline(clean, a, b, method="occlusion", window=4, stride=2), model, x, y, masks, maps)
    assert_passes(capsys, check.ex05_design_control, lambda a, b: a.clone(), model, x, y, masks, maps)  # the input itself
    before = [p.detach().clone() for p in model.parameters()]
    assert_fails(capsys, check.ex05_design_control,  # still the shortcut model
                 lambda a, b: two_step_baseline(model, a, b, method="occlusion", window=4, stride=2), model, x, y, masks, maps,
                 hint="depend")
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))  # the checker restored the model
    assert_fails(capsys, check.ex05_design_control, lambda a, b: torch.rand(a.shape), model, x, y, masks, maps, hint="seed")
    assert_fails(capsys, check.ex05_design_control, lambda a, b: torch.zeros(a.shape), model, x, y, masks, maps, hint="zero")
    assert_fails(capsys, check.ex05_design_control, lambda a, b: a[:2], model, x, y, masks, maps, hint="one map per")
    assert_fails(capsys, check.ex05_design_control, lambda a, b: None, model, x, y, masks, maps, hint="return")
    assert_fails(capsys, check.ex05_design_control, ..., model, x, y, masks, maps, hint="not answered")


# ------------------------------------------------------------------------- (b) files


def test_there_are_solutions_for_every_notebook_with_exercises():
    numbers = {n[2:4] for n in Checks.names()}
    assert numbers == {p.name[:2] for p in SOLUTIONS}


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_exercises_every_registered_check(solution):
    text = solution.read_text(encoding="utf-8")
    called = set(re.findall(r"\bcheck\.(ex\d\d_\w+)\(", text))
    assert called == set(Checks.names(solution.name[:2])), f"{solution.name}: calls {sorted(called)}"
    assert text.count("# BEGIN SOLUTION") >= len(called)
    assert re.search(r"^check\.summary\(\)", text, flags=re.M), f"{solution.name} must end with check.summary()"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_student_script_is_generated_from_solution(solution):
    student = ROOT / "exercises" / solution.name
    assert student.is_file(), f"run scripts/make_exercises.py: {student.name} is missing"
    assert student.read_text(encoding="utf-8") == make_exercises.student_version(solution.read_text(encoding="utf-8")), (
        f"{student.name} is out of date: run scripts/make_exercises.py")


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_student_notebook_is_executed_and_hides_solutions(solution):
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    ipynb = (ROOT / "exercises" / solution.name).with_suffix(".ipynb")
    assert ipynb.is_file(), f"run scripts/run_notebooks.py {ipynb.relative_to(ROOT)}"
    nb = nbformat.read(ipynb, as_version=4)
    from_py = [(c.cell_type, c.source.strip()) for c in jupytext.read(ipynb.with_suffix(".py"), fmt="py:percent").cells]
    assert [(c.cell_type, c.source.strip()) for c in nb.cells] == from_py, f"{ipynb.name}: not synced with its script"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), f"{ipynb.name}: not executed in order"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert nb.metadata["kernelspec"]["name"] == "python3"
    # no solution line in any code cell; each solution sits in a folded markdown cell
    solution_lines = {ln.strip() for block in re.findall(r"# BEGIN SOLUTION\n(.*?)# END SOLUTION", solution.read_text(), flags=re.S)
                      for ln in block.splitlines() if len(ln.strip()) > 20 and not ln.strip().startswith("#")}
    code_text = "\n".join(c.source for c in code)
    leaked = [ln for ln in solution_lines if ln in code_text]
    assert not leaked, f"{ipynb.name}: solution code in a code cell: {leaked}"
    details = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("<details><summary>Solution</summary>")]
    assert len(details) == solution.read_text().count("# BEGIN SOLUTION")
    outputs = "\n".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "not answered yet" in outputs and "✓ ex" not in outputs


def test_generator_folds_solutions_and_rejects_bad_blocks():
    text = "# %%\nx = 1\n# BEGIN SOLUTION\n#> y = ...  # your code\ny = x + 1\n# END SOLUTION\ncheck.ex(y)\n\n# %% [markdown]\n# [teacher] note\n# next\n"
    out = make_exercises.student_version(text)
    assert "y = x + 1\n" not in out.split("<details>")[0]
    assert "y = ...  # your code\ncheck.ex(y)\n" in out
    assert "# ```python\n# y = x + 1\n# ```" in out and "[teacher]" not in out and "# next" in out
    with pytest.raises(ValueError):
        make_exercises.student_version("# BEGIN SOLUTION\ny = 1\n# END SOLUTION\n")  # no student line
    with pytest.raises(ValueError):
        make_exercises.student_version("# BEGIN SOLUTION\n#> y = ...\n")  # not closed


# ------------------------------------------------------------------------- (c) the solutions pass


def _have_data() -> bool:
    from tfa_tutorial.data.datasets import load_fashion_mnist

    try:
        load_fashion_mnist("test", download=False)
        return True
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_solves_every_exercise(solution):
    if not _have_data():
        pytest.skip("Fashion-MNIST is not available offline")
    env = {**os.environ, "TFA_FAST": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    r = subprocess.run([sys.executable, solution.name], cwd=solution.parent, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    names = Checks.names(solution.name[:2])
    assert f"{len(names)}/{len(names)} exercises solved" in r.stdout, r.stdout
    for name in names:
        assert f"✓ {name}:" in r.stdout, r.stdout


@pytest.mark.slow
def test_ex02_prevalence_rejects_a_wrong_run(capsys):
    """The one checker that trains: a wrong flip rate or a wrong verdict fails (the model is the
    cached one of the solution run, or is trained here)."""
    if not _have_data():
        pytest.skip("Fashion-MNIST is not available offline")
    from tfa_tutorial.training.experiment import shortcut_experiment

    exp = shortcut_experiment(seed=0, fast=True, progress=False)
    check = Checks()
    assert_fails(capsys, check.ex02_prevalence, 0.999, True, exp, hint="prevalence_sweep")
    assert_fails(capsys, check.ex02_prevalence, "high", True, exp)


# ------------------------------------------------------------------------- (a) 06, 07


def test_ex06_flag_precision(check, capsys):
    model = make_model("batch", seed=1)  # seeds and k chosen so that every wrong variant below differs
    train = tiny_patched_train()
    x_test = apply_patch(dataset(n=3, hw=8, k=3, seed=0).images, train.spec)
    with torch.no_grad():
        y_hat = model(x_test.double()).argmax(1)
    s = cos_loop(model, train.images.double(), train.labels, x_test.double(), y_hat)  # [3, N] autograd loop
    k = 16
    flagged = sorted({int(i) for row in s for i in row.topk(k).indices})
    patched = [bool(train.patched[i]) for i in range(len(train))]
    right = {"precision": sum(patched[i] for i in flagged) / len(flagged), "chance": sum(patched) / len(patched)}
    assert_passes(capsys, check.ex06_flag_precision, right, model, train, x_test, top_k=k)
    secret = list(right.values())
    recall = sum(patched[i] for i in flagged) / sum(patched)
    assert 0 < right["precision"] < 1 and abs(recall - right["precision"]) > 1e-6
    assert_fails(capsys, check.ex06_flag_precision, {**right, "precision": recall}, model, train, x_test, top_k=k,
                 hint="recall", secret=right["precision"])
    target_share = float(train.patched[train.labels == 0].float().mean())
    assert abs(target_share - right["chance"]) > 0.1
    assert_fails(capsys, check.ex06_flag_precision, {**right, "chance": target_share}, model, train, x_test, top_k=k,
                 hint="whole training set", secret=right["chance"])
    low = sorted({int(i) for row in s for i in row.topk(k, largest=False).indices})
    low_precision = sum(patched[i] for i in low) / len(low)
    assert abs(low_precision - right["precision"]) > 1e-6
    assert_fails(capsys, check.ex06_flag_precision, {**right, "precision": low_precision}, model, train, x_test,
                 top_k=k, hint="lowest", secret=secret)
    with_repeats = [int(i) for row in s for i in row.topk(k).indices]
    rep_precision = sum(patched[i] for i in with_repeats) / len(with_repeats)
    assert abs(rep_precision - right["precision"]) > 1e-6
    assert_fails(capsys, check.ex06_flag_precision, {**right, "precision": rep_precision}, model, train, x_test,
                 top_k=k, hint="union", secret=secret)
    assert_fails(capsys, check.ex06_flag_precision, {"precision": right["chance"], "chance": right["precision"]}, model,
                 train, x_test, top_k=k, hint="swapped")
    assert_fails(capsys, check.ex06_flag_precision, (right["precision"], right["chance"]), model, train, x_test,
                 top_k=k, hint="dict")


def test_ex06_repair_coverage(check, capsys):
    truth = torch.zeros(4, 8, 8, dtype=torch.bool)
    truth[:2, :3, :3] = True  # images 0, 1 carry a 3×3 patch, image 2 a 2×2 one, image 3 none
    truth[2, :2, :2] = True
    repair = torch.zeros(4, 8, 8, dtype=torch.bool)
    repair[0, :2, :4] = True
    repair[1, 1:4, 1:4] = True
    repair[2, 5:, 5:] = True
    repair[3, :2, :2] = True
    inter, union, rep, pat = [], [], [], []
    for b in range(3):
        cells = [(r, c) for r in range(8) for c in range(8)]
        inter.append(sum(bool(repair[b, r, c] and truth[b, r, c]) for r, c in cells))
        union.append(sum(bool(repair[b, r, c] or truth[b, r, c]) for r, c in cells))
        rep.append(sum(bool(repair[b, r, c]) for r, c in cells))
        pat.append(sum(bool(truth[b, r, c]) for r, c in cells))
    right = {"coverage": sum(inter) / sum(pat), "iou": sum(i / u for i, u in zip(inter, union)) / 3}
    assert (sum(inter), sum(pat)) == (10, 22)
    assert_passes(capsys, check.ex06_repair_coverage, right, repair, truth)
    secret = list(right.values())
    assert_fails(capsys, check.ex06_repair_coverage, {**right, "coverage": sum(inter) / sum(rep)}, repair, truth,
                 hint="not by all repaired pixels", secret=secret)
    assert_fails(capsys, check.ex06_repair_coverage, {**right, "coverage": sum(i / p for i, p in zip(inter, pat)) / 3},
                 repair, truth, hint="pools", secret=secret)
    assert_fails(capsys, check.ex06_repair_coverage, {**right, "iou": sum(i / u for i, u in zip(inter, union)) / 4},
                 repair, truth, hint="without a patch", secret=secret)
    assert_fails(capsys, check.ex06_repair_coverage, {**right, "iou": sum(inter) / sum(union)}, repair, truth,
                 hint="pooled sums", secret=secret)
    assert_fails(capsys, check.ex06_repair_coverage, {"coverage": right["iou"], "iou": right["coverage"]}, repair,
                 truth, hint="swapped")
    assert_fails(capsys, check.ex06_repair_coverage, [right["coverage"], right["iou"]], repair, truth, hint="dict")


def _one_step_by_hand(model, x, y, keep, xq, yq, lr):
    """ΔL of one SGD step on the images with only ``keep`` [B, H, W] pixels left (the rest 0)."""
    import copy

    m = copy.deepcopy(model).eval()
    x_kept = torch.where(keep[:, None], x, torch.zeros_like(x))
    params = list(m.parameters())
    grads = torch.autograd.grad(F.cross_entropy(m(x_kept), y), params)
    with torch.no_grad():
        before = F.cross_entropy(m(xq), yq)
        for p, g in zip(params, grads):
            p -= lr * g
        return float(F.cross_entropy(m(xq), yq) - before)


def _top_k(maps, k):
    keep = torch.zeros(maps.shape[0], maps[0].numel(), dtype=torch.bool)
    for b in range(maps.shape[0]):
        for i in maps[b].flatten().argsort(descending=True)[:k].tolist():
            keep[b, i] = True
    return keep.view_as(maps)


def test_ex06_insertion(check, capsys):
    model = make_model("batch", seed=0)
    x, y = make_data(n=4)
    xq, _ = make_data(n=2, seed=3)
    with torch.no_grad():
        yq = model(xq).argmax(1)
    maps = torch.rand(4, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    k, lr = 12, 0.5
    right = _one_step_by_hand(model, x, y, _top_k(maps, k), xq, yq, lr)
    gen = torch.Generator().manual_seed(0)
    rand = [_one_step_by_hand(model, x, y, _top_k(torch.rand(maps.shape, generator=gen), k), xq, yq, lr) for _ in range(5)]
    beats = right < sum(rand) / 5
    kw = dict(k=k, lr=lr, n_random=5, seed=0)
    assert abs(right) > 1e-6
    assert_passes(capsys, check.ex06_insertion, right, beats, model, x, y, maps, xq, yq, **kw)
    assert_fails(capsys, check.ex06_insertion, right, not beats, model, x, y, maps, xq, yq, hint="beats_random", **kw)
    assert_fails(capsys, check.ex06_insertion, right, "yes", model, x, y, maps, xq, yq, hint="beats_random", **kw)
    assert_fails(capsys, check.ex06_insertion, -right, beats, model, x, y, maps, xq, yq, hint="sign", secret=right, **kw)
    deletion = _one_step_by_hand(model, x, y, ~_top_k(maps, k), xq, yq, lr)
    assert_fails(capsys, check.ex06_insertion, deletion, beats, model, x, y, maps, xq, yq, hint="deletion", secret=right, **kw)
    lowest = _one_step_by_hand(model, x, y, _top_k(-maps, k), xq, yq, lr)
    assert_fails(capsys, check.ex06_insertion, lowest, beats, model, x, y, maps, xq, yq, hint="lowest", secret=right, **kw)
    whole = _one_step_by_hand(model, x, y, torch.ones_like(maps, dtype=torch.bool), xq, yq, lr)
    assert_fails(capsys, check.ex06_insertion, whole, beats, model, x, y, maps, xq, yq, hint="k largest", secret=right, **kw)


def test_ex07_top_contributor(check, capsys):
    model = make_model(seed=4)
    x = make_data(n=1)[0][0]
    with torch.no_grad():
        h = model.features(x[None]).mean(dim=(2, 3))[0]  # [F] pooled penultimate activations, by hand
    W = model.classifier.weight.detach()
    # a class whose top contributor is not the most active neuron, and with a negative contribution
    t = next(t for t in range(4) if int((W[t] * h).argmax()) != int(h.argmax()) and bool(((W[t] * h) < 0).any()))
    c = W[t] * h
    right = {"contributions": c, "neuron": int(c.argmax())}
    assert_passes(capsys, check.ex07_top_contributor, right, model, x, t)
    assert_passes(capsys, check.ex07_top_contributor, {"contributions": c.tolist(), "neuron": torch.tensor(int(c.argmax()))},
                  model, x, t)
    assert_fails(capsys, check.ex07_top_contributor, {**right, "contributions": h}, model, x, t, hint="activation h alone")
    assert_fails(capsys, check.ex07_top_contributor, {**right, "contributions": W[t]}, model, x, t, hint="weight row")
    assert_fails(capsys, check.ex07_top_contributor, {**right, "contributions": c.abs()}, model, x, t, hint="sign")
    assert_fails(capsys, check.ex07_top_contributor, {**right, "contributions": c[:-1]}, model, x, t, hint="one contribution")
    assert_fails(capsys, check.ex07_top_contributor, {**right, "neuron": int(h.argmax())}, model, x, t, hint="largest *activation*")
    assert_fails(capsys, check.ex07_top_contributor, {**right, "neuron": int(c.argmin())}, model, x, t, hint="most negative")
    assert_fails(capsys, check.ex07_top_contributor, int(c.argmax()), model, x, t, hint="dict")


def _spuriousness_by_hand(model, images, masks, neuron, m, normalize=True, pooled=False):
    with torch.no_grad():
        a = model.features(images)  # [N, F, h, w]
    top = a.mean(dim=(2, 3))[:, neuron].topk(m).indices
    maps = F.interpolate(a[top, neuron:neuron + 1], size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
    if normalize:
        lo, hi = maps.amin(dim=(1, 2), keepdim=True), maps.amax(dim=(1, 2), keepdim=True)
        maps = (maps - lo) / (hi - lo)
    mk = masks[top].double()
    inside, total = (maps * mk).sum(dim=(1, 2)), maps.sum(dim=(1, 2))
    score = float(inside.sum() / total.sum()) if pooled else float((inside / total).mean())
    return score, float(mk.mean()), top


def test_ex07_spuriousness(check, capsys):
    model = make_model(seed=3)
    train = tiny_patched_train()
    images, masks = train.images.double(), train.masks
    neuron, m = 2, 8
    score, chance, top = _spuriousness_by_hand(model, images, masks, neuron, m)
    assert 0 < chance and bool(train.patched[top].any()) and not bool(train.patched[top].all())
    right = {"score": score, "chance": chance}
    assert_passes(capsys, check.ex07_spuriousness, right, model, images, masks, neuron, m=m)
    secret = [score, chance]
    raw = _spuriousness_by_hand(model, images, masks, neuron, m, normalize=False)[0]
    assert_fails(capsys, check.ex07_spuriousness, {**right, "score": raw}, model, images, masks, neuron, m=m,
                 hint="normalised", secret=secret)
    pooled = _spuriousness_by_hand(model, images, masks, neuron, m, pooled=True)[0]
    assert_fails(capsys, check.ex07_spuriousness, {**right, "score": pooled}, model, images, masks, neuron, m=m,
                 hint="each image", secret=secret)
    patch_area = float(masks[top][train.patched[top]].double().mean())
    assert_fails(capsys, check.ex07_spuriousness, {**right, "chance": patch_area}, model, images, masks, neuron, m=m,
                 hint="empty mask", secret=secret)
    assert_fails(capsys, check.ex07_spuriousness, {"score": chance, "chance": score}, model, images, masks, neuron, m=m,
                 hint="swapped")
    assert_fails(capsys, check.ex07_spuriousness, {**right, "score": score + 0.05}, model, images, masks, neuron, m=m,
                 hint="top-activating", secret=secret)


def test_ex07_random_mask_control(check, capsys):
    from tfa_tutorial.attribution.neural_features import random_mask_like

    model = make_model(seed=0)
    with torch.no_grad():
        model.classifier.weight.mul_(5)  # varied predictions, so the rates below all differ
    train = tiny_patched_train(n=96)
    images, labels = train.images.double(), train.labels
    masks = torch.zeros(len(images), 8, 8, dtype=torch.float64)
    masks[:, :4, :4] = 0.8  # a soft mask where the patch sits
    with torch.no_grad():
        target = int(model(images).argmax(1).mode().values)

    def rates_by_hand(mk, seed=0, sigma=1.0):
        g = torch.Generator().manual_seed(seed)
        noisy = images + sigma * torch.randn(images.shape, generator=g, dtype=images.dtype) * mk[:, None]
        with torch.no_grad():
            pred = model(noisy).argmax(1)
        return float((pred == target).double().mean()), float((pred == labels).double().mean())

    (spur, spur_acc), (rand, rand_acc) = rates_by_hand(masks), rates_by_hand(random_mask_like(masks, seed=1))
    with torch.no_grad():
        base = float((model(images).argmax(1) == target).double().mean())
    kw = dict(sigma=1.0, seed=0, random_seed=1)
    other_seed = rates_by_hand(masks, seed=5)[0]
    assert len({spur, rand, base, other_seed}) == 4 and (spur_acc, rand_acc) != (spur, rand)
    right = {"spurious": spur, "random": rand}
    assert_passes(capsys, check.ex07_random_mask_control, right, model, images, labels, masks, target, **kw)
    assert_fails(capsys, check.ex07_random_mask_control, {"spurious": rand, "random": spur}, model, images, labels,
                 masks, target, hint="swapped", **kw)
    assert_fails(capsys, check.ex07_random_mask_control, {"spurious": spur_acc, "random": rand_acc}, model, images,
                 labels, masks, target, hint="accuracy", **kw)
    assert_fails(capsys, check.ex07_random_mask_control, {"spurious": base, "random": rand}, model, images, labels,
                 masks, target, hint="without noise", **kw)
    assert_fails(capsys, check.ex07_random_mask_control, {"spurious": other_seed, "random": rand}, model, images,
                 labels, masks, target, hint="spurious rate is off", **kw)
