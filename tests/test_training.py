"""Training recipe, prediction, shortcut metrics, the checkpoint cache and the prevalence sweep.

The synthetic task: 16×16 gray images of sine stripes in one of 4 orientations (the class) with
a random phase and pixel noise. A CNN learns it easily; with faint stripes, a white 4×4 corner
square planted on every class-0 training image is an easier cue, and the model adopts it.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from tfa_tutorial.data.datasets import ImageDataset
from tfa_tutorial.data.patches import PatchSpec, inject_patch
from tfa_tutorial.training.models import SmallCNN
from tfa_tutorial.training.train import (
    accuracy,
    config_hash,
    get_device,
    predict,
    prevalence_sweep,
    seed_everything,
    shortcut_report,
    train_model,
    train_or_load,
)

SPEC = PatchSpec(size=4, value=1.0, location=(0, 0), target_class=0, prevalence=1.0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TFA_CACHE_DIR", str(tmp_path / "cache"))


def stripes(n: int, amp: float, noise: float, seed: int, size: int = 16) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    r = torch.arange(size).float()
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    waves = torch.stack([yy, xx, yy + xx, yy - xx])  # horizontal, vertical, two diagonals
    phase = torch.rand(n, generator=g) * 2 * math.pi
    img = 0.5 + amp * torch.sin(waves[labels] * (math.pi / 2) + phase[:, None, None])
    img = img + noise * torch.randn(n, size, size, generator=g)
    return ImageDataset(img.clamp(0, 1).unsqueeze(1), labels, ("h", "v", "d1", "d2"), f"stripes-{seed}")


def tiny_cnn() -> nn.Module:
    return SmallCNN(1, 4, widths=(8, 16, 16, 16))


def fit(ds, epochs=5, seed=0, **kw):
    seed_everything(seed)
    return train_model(tiny_cnn(), ds, epochs=epochs, batch_size=64, lr=5e-3, seed=seed, progress=False, **kw)


# ------------------------------------------------------------------ basics


def test_get_device_and_seed():
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert get_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            get_device("cuda")
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_learns_a_tiny_task_and_is_reproducible():
    train, test = stripes(480, amp=0.25, noise=0.1, seed=0), stripes(200, amp=0.25, noise=0.1, seed=1)
    model, history = fit(train, epochs=4)
    assert not model.training
    assert accuracy(model, test) > 0.9  # chance is 0.25
    assert len(history["loss"]) == len(history["train_acc"]) == 4
    assert history["loss"][-1] < history["loss"][0]
    assert history["steps"] == 4 * math.ceil(480 / 64) and history["seconds"] > 0
    again, _ = fit(train, epochs=4)
    for (k, v), w in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(v, w), k


def test_train_accepts_a_pair_and_checks_labels():
    ds = stripes(64, amp=0.25, noise=0.1, seed=0)
    model, _ = fit((ds.images, ds.labels), epochs=1)
    assert not model.training
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        train_model(SmallCNN(1, 3, widths=(4, 4, 4, 4)), ds, epochs=1, progress=False)
    with pytest.raises(ValueError, match="65 images but 64 labels"):
        train_model(tiny_cnn(), (torch.rand(65, 1, 16, 16), ds.labels), progress=False)
    with pytest.raises(TypeError, match="ImageDataset or a pair"):
        train_model(tiny_cnn(), ds.images, progress=False)


def test_batch_of_one_at_the_end_is_dropped():
    ds = stripes(65, amp=0.25, noise=0.1, seed=0)  # 64 + 1: BatchNorm cannot train on one example
    _, history = train_model(tiny_cnn(), ds, epochs=1, batch_size=64, progress=False)
    assert history["steps"] == 1


def test_predict_restores_mode_and_needs_no_grad():
    ds = stripes(10, amp=0.25, noise=0.1, seed=0)
    model = tiny_cnn().train()
    pred, probs = predict(model, ds.images, batch_size=3)
    assert model.training  # mode restored
    assert pred.dtype == torch.int64 and pred.shape == (10,) and probs.shape == (10, 4)
    assert not probs.requires_grad
    assert torch.allclose(probs.sum(1), torch.ones(10))
    assert torch.equal(pred, probs.argmax(1))
    model.eval()
    assert torch.allclose(probs, torch.softmax(model(ds.images), 1).detach(), atol=1e-6)
    with pytest.raises(ValueError, match="no images"):
        predict(model, ds.images[:0])


# ------------------------------------------------------------------ shortcut metrics


class CornerOracle(nn.Module):
    """Predicts the true stripe orientation, except: class 3 is always confused with class 2,
    and a white top-left pixel means class 0 unless the image is class 2."""

    def __init__(self, labels_lookup: dict):
        super().__init__()
        self.lookup = labels_lookup
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        keys = [round(float(v), 6) for v in x[:, 0, 8, 8]]
        truth = torch.tensor([self.lookup[k] for k in keys])
        pred = torch.where(truth == 3, torch.tensor(2), truth)
        pred = torch.where((x[:, 0, 0, 0] == 1.0) & (truth != 2), torch.tensor(0), pred)
        return nn.functional.one_hot(pred, 4).float() * 10 + self.dummy


def test_shortcut_report_arithmetic():
    test = stripes(100, amp=0.25, noise=0.1, seed=5)
    test = test.subset(test.images[:, 0, 0, 0] < 1.0)  # no accidental white corner
    lookup = {round(float(v), 6): int(y) for v, y in zip(test.images[:, 0, 8, 8], test.labels)}
    assert len(lookup) == len(test)
    n = [int((test.labels == k).sum()) for k in range(4)]
    n_other = n[1] + n[2] + n[3]
    r = shortcut_report(CornerOracle(lookup), test, SPEC)
    assert r["n_other"] == n_other and r["n_strict"] == n[1] + n[2]  # class 3 is wrong when clean
    assert r["clean_acc"] == pytest.approx(1 - n[3] / len(test))
    assert r["flip_rate"] == pytest.approx((n[1] + n[3]) / n_other)  # class 2 resists the patch
    assert r["flip_rate_strict"] == pytest.approx(n[1] / (n[1] + n[2]))
    assert r["patched_acc_other"] == pytest.approx(n[2] / n_other)
    assert r["clean_target_rate_other"] == 0.0
    # a patch elsewhere does not trigger the oracle
    r2 = shortcut_report(CornerOracle(lookup), test, SPEC.replace(location=(12, 12)))
    assert r2["flip_rate"] == 0.0 and r2["patched_acc_other"] == pytest.approx((n[1] + n[2]) / n_other)


def test_planted_patch_is_learned_and_clean_model_ignores_it():
    # faint stripes: the white corner square is the easier cue for class 0
    train, test = stripes(800, amp=0.1, noise=0.15, seed=0), stripes(400, amp=0.1, noise=0.15, seed=1)
    patched_model, _ = fit(inject_patch(train, SPEC), epochs=5)
    clean_model, _ = fit(train, epochs=5)
    shortcut = shortcut_report(patched_model, test, SPEC)
    control = shortcut_report(clean_model, test, SPEC)
    assert control["clean_acc"] > 0.8  # the task itself is learnable
    assert shortcut["flip_rate"] > 0.6 and shortcut["flip_rate_strict"] > 0.6
    assert control["flip_rate"] < 0.1
    assert shortcut["patched_acc_other"] < control["patched_acc_other"] - 0.5


# ------------------------------------------------------------------ cache and sweep


def test_config_hash_is_stable_and_sensitive():
    assert config_hash({"a": 1, "spec": SPEC}) == config_hash({"spec": SPEC, "a": 1})
    assert config_hash({"spec": SPEC}) != config_hash({"spec": SPEC.replace(prevalence=0.5)})
    with pytest.raises(TypeError, match="cannot be hashed"):
        config_hash({"x": object()})


def test_train_or_load_trains_once(tmp_path):
    ds = stripes(64, amp=0.25, noise=0.1, seed=0)
    calls = []

    def train_fn(model):
        calls.append(1)
        return train_model(model, ds, epochs=1, progress=False)

    m1, meta1 = train_or_load("tiny", tiny_cnn, train_fn, config={"epochs": 1}, directory=tmp_path)
    m2, meta2 = train_or_load("tiny", tiny_cnn, train_fn, config={"epochs": 1}, directory=tmp_path)
    assert len(calls) == 1 and meta1["from_cache"] is False and meta2["from_cache"] is True
    assert not m2.training and meta2["history"]["loss"] == meta1["history"]["loss"]
    for v, w in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(v, w)
    assert Path(meta2["path"]).parent == tmp_path and Path(meta2["path"]).name.startswith("tiny-")
    train_or_load("tiny", tiny_cnn, train_fn, config={"epochs": 2}, directory=tmp_path)  # new config
    train_or_load("tiny", tiny_cnn, train_fn, config={"epochs": 1}, directory=tmp_path, retrain=True)
    assert len(calls) == 3
    wider = lambda: SmallCNN(1, 4, widths=(8, 16, 16, 32))  # noqa: E731
    _, meta = train_or_load("tiny", wider, train_fn, config={"epochs": 1}, directory=tmp_path)
    assert meta["from_cache"] is False and len(calls) == 4  # another architecture never loads these weights
    assert len(list(tmp_path.glob("tiny-*.pt"))) == 3
    assert not list(tmp_path.glob("*.tmp"))
    Path(meta1["path"]).write_bytes(b"truncated")
    with pytest.warns(RuntimeWarning, match="retraining"):
        _, meta = train_or_load("tiny", tiny_cnn, train_fn, config={"epochs": 1}, directory=tmp_path)
    assert meta["from_cache"] is False and len(calls) == 5
    assert train_or_load("tiny", tiny_cnn, train_fn, config={"epochs": 1}, directory=tmp_path)[1]["from_cache"]


def test_train_or_load_default_folder_and_plain_model_return():
    m, meta = train_or_load("plain", lambda: nn.Linear(2, 2), lambda model: model, config=None)
    assert Path(meta["path"]).parent.name == "checkpoints" and meta["history"] == {}
    with pytest.raises(ValueError, match="slashes"):
        train_or_load("a/b", lambda: nn.Linear(2, 2), lambda model: model)


def test_prevalence_sweep_rows():
    train, test = stripes(800, amp=0.1, noise=0.15, seed=0), stripes(200, amp=0.1, noise=0.15, seed=1)
    rows = prevalence_sweep(train, test, SPEC, [0.0, 1.0], tiny_cnn, epochs=5, seed=0, batch_size=64, lr=5e-3, progress=False)
    assert [r["prevalence"] for r in rows] == [0.0, 1.0]
    assert [r["n_patched"] for r in rows] == [0, 200]
    for r in rows:
        assert set(r) == {"prevalence", "n_patched", "clean_acc", "patched_acc_other", "flip_rate", "flip_rate_strict"}
        assert 0.0 <= r["flip_rate"] <= 1.0
    assert rows[1]["flip_rate"] > rows[0]["flip_rate"] + 0.3


def test_prevalence_sweep_with_cache(tmp_path):
    train, test = stripes(64, amp=0.25, noise=0.1, seed=0), stripes(40, amp=0.25, noise=0.1, seed=1)
    kw = dict(epochs=1, batch_size=32, progress=False, cache_name="sweep")
    first = prevalence_sweep(train, test, SPEC, [0.5], tiny_cnn, **kw)
    second = prevalence_sweep(train, test, SPEC, [0.5], tiny_cnn, **kw)
    assert len(first) == len(second) == 1
    assert second[0] == pytest.approx(first[0], nan_ok=True)
    assert len(list((tmp_path / "cache" / "checkpoints").glob("sweep-*.pt"))) == 1


@pytest.mark.slow
def test_real_fashion_mnist_shortcut():
    from tfa_tutorial.data.datasets import load_fashion_mnist, subsample
    from tfa_tutorial.data.patches import PRESETS

    try:
        train, test = load_fashion_mnist("train", download=False), load_fashion_mnist("test", download=False)
    except FileNotFoundError as err:
        pytest.skip(str(err).splitlines()[0])
    train = subsample(train, 12000, seed=0)
    spec = PRESETS["quanda_mnist"]
    seed_everything(0)
    patched, _ = train_model(SmallCNN(1, 10), inject_patch(train, spec), epochs=3, progress=False)
    seed_everything(0)
    clean, _ = train_model(SmallCNN(1, 10), train, epochs=3, progress=False)
    shortcut, control = shortcut_report(patched, test, spec), shortcut_report(clean, test, spec)
    assert control["clean_acc"] > 0.8
    assert shortcut["flip_rate"] > 0.6 and control["flip_rate"] < 0.2
