"""Bad input, tried as an adversarial student would: every case gets a clear error (its type and a
helpful message fragment), never a plausible number, a silent fallback or a deep torch traceback.

Table-driven: each row of ``CASES`` is ``(id, call, error type, message regex)``. Everything runs on
tiny synthetic models and data (``tiny_models``), in seconds. Behaviour that must *not* raise
(read-only caches, stale caches, NumPy indices) is tested after the table.
"""
from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_data import _idx_bytes, _write_fashion_fixture
from tiny_models import make_data, make_model
from torch import nn

import tfa_tutorial as T
import tfa_tutorial.attribution.decomposition as dec_mod
import tfa_tutorial.core.cache as cache_mod
import tfa_tutorial.data.datasets as data_mod
from tfa_tutorial.attribution.decomposition import receptive_fields
from tfa_tutorial.attribution.index import GradientIndex
from tfa_tutorial.attribution.methods import attribute, completeness_gap
from tfa_tutorial.attribution.neural_features import (
    class_contributions,
    mask_sensitivity,
    minmax_maps,
    noise_in_mask,
    top_activating,
    top_neurons,
)
from tfa_tutorial.attribution.scores import resolve_test_targets, unit_rows
from tfa_tutorial.core.cache import (
    CheckpointError,
    cache_dir,
    load_checkpoint,
    save_checkpoint,
)
from tfa_tutorial.core.validation import NonFiniteError
from tfa_tutorial.data.datasets import DataNotFoundError, ImageDataset, read_idx
from tfa_tutorial.data.patches import PatchSpec, apply_patch, inject_patch, patch_all
from tfa_tutorial.evaluation.faithfulness import faithfulness_curves
from tfa_tutorial.evaluation.metrics import average_precision
from tfa_tutorial.explorer.state import ExplorerState
from tfa_tutorial.fixing.repair import mask_overlap, repair_masks
from tfa_tutorial.training.train import accuracy, predict, train_model, train_or_load

MODEL = make_model("group")
X, Y = make_data(6)
XT, YT = make_data(3, seed=2)
P = sum(p.numel() for p in MODEL.parameters())


def nan_model():
    m = make_model("group")
    with torch.no_grad():
        m.classifier.weight[0, 0] = float("nan")
    return m


def with_nan(t, where=(0, 0, 3, 3)):
    t = t.clone()
    t[where] = float("nan")
    return t


def scores_fn(x, y):  # a scalar function of one image for attribute()
    return (x ** 2).sum()


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 4).double()
        self.fc.requires_grad_(False)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Blows(nn.Module):
    """Finite weights, but the third forward pass returns inf logits (a non-finite loss mid-training)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 4).double()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = self.fc(x.flatten(1))
        return out * float("inf") if self.calls == 3 else out


class Picky(nn.Module):
    """Its forward fails with a TypeError (not a RuntimeError) on any input."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 4).double()

    def forward(self, x):
        raise TypeError("this model only takes a dict")


def explorer(**kw):
    return ExplorerState(MODEL, X, Y, XT, YT, projection=None, index_cache=None, **kw)


def unit_ds(labels, n_classes=4):
    return ImageDataset(X.float()[: len(labels)], torch.as_tensor(labels), tuple(str(i) for i in range(n_classes)), "tiny")


def nan_checkpoint(path, value=float("nan")):
    state = {k: v.clone() for k, v in MODEL.state_dict().items()}
    state["classifier.weight"][0, 0] = value
    torch.save({"format": 1, "state_dict": state, "meta": {}}, path)
    return path


MAPS = torch.rand(2, 8, 8, dtype=torch.float64)
MASKS = torch.zeros(2, 8, 8, dtype=torch.bool)
MASKS[:, :3, :3] = True

# (id, call, error type, message fragment)
CASES = [
    # ---- non-finite data, losses and weights
    ("train_model: NaN pixel", lambda: train_model(make_model("group"), (with_nan(X), Y), epochs=1, progress=False),
     NonFiniteError, r"training data: images contains 1 non-finite value"),
    ("train_model: inf pixel", lambda: train_model(make_model("group"), (with_nan(X).nan_to_num(nan=float("inf")), Y), epochs=1, progress=False),
     NonFiniteError, r"training data: images contains 1 non-finite"),
    ("train_model: non-finite loss names the batch", lambda: train_model(Blows(), (X, Y), epochs=1, batch_size=2, progress=False),
     NonFiniteError, r"loss is (nan|inf) at epoch 1, batch 3 of 3"),
    ("train_model: NaN weights before training", lambda: train_model(nan_model(), (X, Y), epochs=1, progress=False),
     NonFiniteError, r"parameter 'classifier.weight' contains NaN"),
    ("train_model: no trainable parameters", lambda: train_model(Frozen(), (X, Y), epochs=1, progress=False),
     ValueError, r"no trainable parameters"),
    ("save_checkpoint: NaN weights", lambda: save_checkpoint(nan_model(), "/nonexistent-dir/never-written.pt"),
     NonFiniteError, r"refusing to save a diverged model"),
    ("load_checkpoint: NaN weights", lambda: load_checkpoint(nan_checkpoint(_tmp() / "nan.pt"), make_model("group")),
     CheckpointError, r"nan.pt: entry 'classifier.weight' contains 1 non-finite .*delete it"),
    ("load_checkpoint: inf weights", lambda: load_checkpoint(nan_checkpoint(_tmp() / "inf.pt", float("inf"))),
     CheckpointError, r"non-finite value\(s\) \(0 NaN\)"),
    ("grad_cos: NaN weights", lambda: T.grad_cos(nan_model(), X, Y, XT, YT),
     NonFiniteError, r"classifier.weight.*NaN.*Retrain"),
    ("grad_dot: NaN weights, predicted labels", lambda: T.grad_dot(nan_model(), X, Y, XT),
     NonFiniteError, r"classifier.weight"),
    ("unit_rows: NaN row is not zeroed", lambda: unit_rows(torch.tensor([[1.0, 2.0], [float("nan"), 0.0]])),
     NonFiniteError, r"gradient rows contains 1 non-finite"),
    ("predict: NaN weights", lambda: predict(nan_model(), X),
     NonFiniteError, r"logits contains .* non-finite"),
    ("predict: NaN image", lambda: predict(MODEL, with_nan(X)),
     NonFiniteError, r"images contains 1 non-finite .*index \(0, 0, 3, 3\)"),
    ("ExplorerState: NaN weights", lambda: ExplorerState(nan_model(), X, Y, XT, YT),
     NonFiniteError, r"contains NaN or infinite values"),
    ("tfa_map: NaN weights", lambda: T.tfa_map(nan_model(), X[0], Y[0], XT[0]),
     NonFiniteError, r"classifier.weight"),
    # ---- metrics refuse NaN
    ("average_precision: one NaN score", lambda: average_precision(torch.tensor([0.9, float("nan"), 0.1]), torch.tensor([True, False, True])),
     NonFiniteError, r"scores contains 1 non-finite"),
    ("average_precision: all NaN", lambda: average_precision(torch.full((5,), float("nan")), torch.tensor([1, 0, 1, 0, 0])),
     NonFiniteError, r"scores contains 5 non-finite"),
    ("average_precision: class ids as labels", lambda: average_precision(torch.rand(4), torch.tensor([0, 3, 7, 1])),
     ValueError, r"labels \(positive flags\) must be boolean flags .*labels == target_class"),
    ("shortcut_detection_auprc: class ids", lambda: T.shortcut_detection_auprc(torch.rand(2, 4), torch.tensor([0, 2, 5, 1])),
     ValueError, r"patched must be boolean flags"),
    ("shortcut_detection_auprc: NaN scores", lambda: T.shortcut_detection_auprc(with_nan(torch.rand(2, 4), (1, 1)), torch.tensor([1, 0, 0, 1])),
     NonFiniteError, r"scores contains 1 non-finite"),
    ("relevance_mass_accuracy: NaN pixel", lambda: T.relevance_mass_accuracy(with_nan(MAPS, (0, 3, 3)), MASKS),
     NonFiniteError, r"maps contains 1 non-finite .*no meaningful localisation"),
    ("pointing_game: NaN pixel", lambda: T.pointing_game(with_nan(MAPS, (1, 0, 0)), MASKS),
     NonFiniteError, r"maps contains 1 non-finite"),
    ("relevance_rank_accuracy: NaN pixel", lambda: T.relevance_rank_accuracy(with_nan(MAPS, (0, 7, 7)), MASKS),
     NonFiniteError, r"maps contains 1 non-finite"),
    ("relevance_mass_accuracy: masks of class ids", lambda: T.relevance_mass_accuracy(MAPS, MASKS.long() * 2),
     ValueError, r"masks must be boolean flags"),
    ("one_step_test: NaN map", lambda: T.one_step_test(MODEL, X[:2], Y[:2], with_nan(MAPS, (0, 1, 1)), XT, YT, [4]),
     NonFiniteError, r"maps contains 1 non-finite .*cannot rank pixels"),
    ("one_step_test: lr inf", lambda: T.one_step_test(MODEL, X[:2], Y[:2], MAPS, XT, YT, [4], lr=float("inf")),
     ValueError, r"lr must be a finite number, got inf"),
    ("one_step_test: n_random=0", lambda: T.one_step_test(MODEL, X[:2], Y[:2], MAPS, XT, YT, [4], n_random=0),
     ValueError, r"n_random must be a whole number ≥ 1, got 0"),
    ("one_step_test: k=2.5", lambda: T.one_step_test(MODEL, X[:2], Y[:2], MAPS, XT, YT, [2.5]),
     ValueError, r"every k must lie in \[1, 64\] and be a whole number"),
    ("repair_masks: NaN map", lambda: repair_masks(with_nan(MAPS, (0, 2, 2))),
     NonFiniteError, r"maps contains 1 non-finite .*repair"),
    ("repair_masks: NaN fraction", lambda: repair_masks(MAPS, fraction=float("nan")),
     ValueError, r"fraction must be a finite number"),
    # ---- attribution options
    ("attribute: noise NaN", lambda: attribute(scores_fn, X[:1], Y[:1], n_samples=2, noise=float("nan")),
     ValueError, r"noise must be a finite number, got nan"),
    ("attribute: noise inf", lambda: attribute(scores_fn, X[:1], Y[:1], n_samples=2, noise=float("inf")),
     ValueError, r"noise must be a finite number, got inf"),
    ("tfa_maps: noise NaN", lambda: T.tfa_maps(MODEL, X[:1], Y[:1], XT[0], n_samples=2, noise=float("nan")),
     ValueError, r"noise must be a finite number"),
    ("occlusion: window 0", lambda: attribute(scores_fn, X[:1], Y[:1], method="occlusion", window=0),
     ValueError, r"occlusion window must be a whole number ≥ 1, got 0"),
    ("occlusion: window -3", lambda: attribute(scores_fn, X[:1], Y[:1], method="occlusion", window=-3),
     ValueError, r"occlusion window must be a whole number ≥ 1, got -3"),
    ("occlusion: window (2, 0)", lambda: attribute(scores_fn, X[:1], Y[:1], method="occlusion", window=(2, 0)),
     ValueError, r"occlusion window\[1\] must be a whole number"),
    ("occlusion: stride 0", lambda: attribute(scores_fn, X[:1], Y[:1], method="occlusion", stride=0),
     ValueError, r"occlusion stride must be a whole number ≥ 1, got 0"),
    ("occlusion: fill NaN", lambda: attribute(scores_fn, X[:1], Y[:1], method="occlusion", fill=float("nan")),
     ValueError, r"occlusion fill must be a finite number"),
    ("integrated gradients: steps 0", lambda: attribute(scores_fn, X[:1], Y[:1], method="integrated_gradients", steps=0),
     ValueError, r"steps \(integrated gradients\) must be a whole number ≥ 1"),
    ("attribute: seed 1.5", lambda: attribute(scores_fn, X[:1], Y[:1], seed=1.5),
     ValueError, r"seed must be a whole number"),
    # ---- quiet misuse
    ("accuracy: labels out of range", lambda: accuracy(MODEL, (X, torch.tensor([0, 1, 2, 3, 9, 1]))),
     ValueError, r"labels must lie in \[0, 4\) .*found range \[0, 9\]"),
    ("apply_patch: uint8 images", lambda: apply_patch((X * 255).to(torch.uint8), PatchSpec(size=2)),
     TypeError, r"floating point with values in \[0, 1\].*images.float\(\) / 255"),
    ("apply_patch: [0, 255] floats", lambda: apply_patch(X * 255, PatchSpec(size=2)),
     ValueError, r"values in \[0, 1\].*divide by 255"),
    ("grad_cos: images in [0, 255]", lambda: T.grad_cos(MODEL, X * 255, Y, XT, YT),
     ValueError, r"train_inputs must have values in \[0, 1\], found range .*divide by 255"),
    ("per_sample_grads: uint8 images", lambda: T.per_sample_grads(MODEL, (X * 255).to(torch.uint8), Y),
     TypeError, r"floating point"),
    ("tfa_map: test image in [0, 255]", lambda: T.tfa_map(MODEL, X[0], Y[0], XT[0] * 255),
     ValueError, r"test_input must have values in \[0, 1\]"),
    ("inject_patch: no image of the target class", lambda: inject_patch(unit_ds([0, 1, 1, 2]), PatchSpec(size=2, target_class=3)),
     ValueError, r"no image of target_class 3 .*patch would be pasted on nothing"),
    ("inject_patch: a pair, not a data set", lambda: inject_patch((X.float(), Y), PatchSpec(size=2)),
     TypeError, r"inject_patch needs an ImageDataset .*ImageDataset\(images, labels, classes\)"),
    ("patch_all: a pair, not a data set", lambda: patch_all((X.float(), Y), PatchSpec(size=2)),
     TypeError, r"patch_all needs an ImageDataset"),
    # ---- integer options
    ("per_sample_grads: chunk_size 0", lambda: T.per_sample_grads(MODEL, X, Y, chunk_size=0),
     ValueError, r"chunk_size must be a whole number ≥ 1, got 0"),
    ("per_sample_grads: chunk_size 2.5", lambda: T.per_sample_grads(MODEL, X, Y, chunk_size=2.5),
     ValueError, r"chunk_size must be a whole number ≥ 1, got 2.5"),
    ("gradient_scores: chunk_size -1", lambda: T.grad_cos(MODEL, X, Y, XT, YT, chunk_size=-1),
     ValueError, r"chunk_size must be a whole number ≥ 1, got -1"),
    ("gradient_scores: chunk_size 0", lambda: T.grad_cos_and_dot(MODEL, X, Y, XT, YT, chunk_size=0),
     ValueError, r"chunk_size must be a whole number ≥ 1, got 0"),
    ("tfa_maps: chunk_size 0", lambda: T.tfa_maps(MODEL, X[:2], Y[:2], XT[0], chunk_size=0),
     ValueError, r"chunk_size must be a whole number ≥ 1, got 0"),
    ("decompose_score: chunk_size 0", lambda: T.decompose_score(MODEL, X[:2], Y[:2], torch.zeros(P, dtype=torch.float64), chunk_size=0),
     ValueError, r"chunk_size must be a whole number ≥ 1, got 0"),
    ("GradientIndex.build: chunk_size 0", lambda: GradientIndex.build(MODEL, X, Y, chunk_size=0),
     ValueError, r"chunk_size must be a whole number ≥ 1, got 0"),
    ("completeness_gap: chunk_size 0", lambda: completeness_gap(scores_fn, X[:1], Y[:1], X[:1], chunk_size=0),
     ValueError, r"chunk_size must be a whole number ≥ 1, got 0"),
    ("tfa_maps: n_samples 2.5", lambda: T.tfa_maps(MODEL, X[:1], Y[:1], XT[0], n_samples=2.5),
     ValueError, r"n_samples must be a whole number ≥ 0, got 2.5"),
    ("mask_sensitivity: repeats 0", lambda: mask_sensitivity(MODEL, X, Y, MASKS[:1].expand(6, 8, 8), repeats=0),
     ValueError, r"repeats must be a whole number ≥ 1, got 0"),
    ("top_neurons: k 2.5", lambda: top_neurons(torch.rand(3, 5), k=2.5),
     ValueError, r"k must be a whole number ≥ 1, got 2.5"),
    ("top_activating: m 0", lambda: top_activating(torch.rand(3, 5), 1, m=0),
     ValueError, r"m must be a whole number ≥ 1, got 0"),
    ("minmax_maps: NaN map is not zeroed", lambda: minmax_maps(with_nan(MAPS, (0, 4, 4))),
     NonFiniteError, r"maps contains 1 non-finite"),
    ("class_contributions: NaN activations", lambda: class_contributions(MODEL, X, 0, activations=with_nan(torch.rand(6, 8), (2, 3))),
     NonFiniteError, r"activations contains 1 non-finite .*index \(2, 3\)"),
    ("noise_in_mask: sigma NaN", lambda: noise_in_mask(X, MASKS[:1].expand(6, 8, 8).double(), float("nan")),
     ValueError, r"sigma must be a finite number"),
    ("train_model: epochs 2.5", lambda: train_model(make_model("group"), (X, Y), epochs=2.5, progress=False),
     ValueError, r"epochs must be a whole number ≥ 1, got 2.5"),
    ("train_model: epochs 0", lambda: train_model(make_model("group"), (X, Y), epochs=0, progress=False),
     ValueError, r"epochs must be a whole number ≥ 1, got 0"),
    ("train_model: lr NaN", lambda: train_model(make_model("group"), (X, Y), lr=float("nan"), progress=False),
     ValueError, r"lr must be a finite number, got nan"),
    ("train_model: lr negative", lambda: train_model(make_model("group"), (X, Y), lr=-1e-3, progress=False),
     ValueError, r"lr must be a number in \(0, inf\]"),
    ("predict: batch_size 0", lambda: predict(MODEL, X, batch_size=0),
     ValueError, r"batch_size must be a whole number ≥ 1, got 0"),
    ("error_report: k 0", lambda: GradientIndex.build(MODEL, X, Y).error_report(XT, YT, k=0),
     ValueError, r"k must be a whole number ≥ 1, got 0"),
    ("faithfulness_curves: k 2.5", lambda: faithfulness_curves(MODEL, X[:2], Y[:2], XT, YT, MAPS, ks=(2.5,)),
     ValueError, r"every k must be a whole number of pixels, got \[2.5\]"),
    ("faithfulness_curves: n_random 0", lambda: faithfulness_curves(MODEL, X[:2], Y[:2], XT, YT, MAPS, ks=(3,), n_random=0),
     ValueError, r"n_random must be a whole number ≥ 1, got 0"),
    ("decompose_score: NaN test vector", lambda: T.decompose_score(MODEL, X[:2], Y[:2], torch.full((P,), float("nan"), dtype=torch.float64)),
     NonFiniteError, r"test vector v contains"),
    # ---- shapes: every model call is behind the shape check
    ("grad_cos: images [N, H, W]", lambda: T.grad_cos(MODEL, X[:, 0], Y, XT, YT),
     ValueError, r"must be images \[N, C, H, W\] .*unsqueeze\(1\)"),
    ("per_sample_grads: images [N, H, W]", lambda: T.per_sample_grads(MODEL, X[:, 0], Y),
     ValueError, r"unsqueeze\(1\)"),
    ("tfa_map: test image [1, C, H, W]", lambda: T.tfa_map(MODEL, X[0], Y[0], XT[:1]),
     ValueError, r"test_input must be one image \[C, H, W\], got shape \(1, 1, 8, 8\) \(a batch\): pass test_input\[0\]"),
    ("score_vector: test image [1, C, H, W]", lambda: T.score_vector(MODEL, XT[:1]),
     ValueError, r"must be one image \[C, H, W\], got shape \(1, 1, 8, 8\)"),
    ("resolve_test_targets: wrong shape before any forward", lambda: resolve_test_targets(MODEL, torch.rand(2, 1, 1, 1, dtype=torch.float64), None),
     ValueError, r"cannot take inputs of shape"),
    ("shape check wraps a TypeError too", lambda: T.grad_cos(Picky(), X, Y, XT, YT),
     ValueError, r"cannot take inputs of shape \(1, 8, 8\) .*TypeError: this model only takes a dict"),
    ("predict: wrong number of channels", lambda: predict(MODEL, torch.rand(2, 3, 8, 8, dtype=torch.float64)),
     ValueError, r"the model cannot take images of shape \(3, 8, 8\)"),
    ("train_model: wrong number of channels", lambda: train_model(make_model("group"), (torch.rand(4, 3, 8, 8, dtype=torch.float64), Y[:4]), epochs=1, progress=False),
     ValueError, r"the model cannot take images of shape \(3, 8, 8\)"),
    # ---- flags
    ("mask_overlap: class ids as masks", lambda: mask_overlap(MASKS.long() * 3, MASKS),
     ValueError, r"repair masks must be boolean flags"),
    ("explorer: train_patched of class ids", lambda: explorer(train_patched=torch.tensor([0, 2, 0, 1, 0, 0])),
     ValueError, r"train_patched must be boolean flags"),
    # ---- files
    ("read_idx: truncated .gz", lambda: read_idx(_truncated_gz()),
     ValueError, r"train-images-idx3-ubyte.gz is a damaged gzip file .*Delete it"),
    ("TFA_DATA_DIR pointing nowhere", lambda: _load_with_bad_data_dir(),
     DataNotFoundError, r"\$TFA_DATA_DIR is set to .*nowhere.*does not exist.*unset it"),
    # ---- the explorer
    ("explorer: training_map(99)", lambda: explorer().training_map(99),
     ValueError, r"training index 99 is out of range: there are 6 training images \(0–5\)"),
    ("explorer: training_map(-1)", lambda: explorer().training_map(-1),
     ValueError, r"training index -1 is out of range"),
    ("explorer: two_step_map(99)", lambda: explorer().two_step_map(99),
     ValueError, r"training index 99 is out of range"),
    ("explorer: exact_scores([99])", lambda: explorer().exact_scores([0, 99]),
     ValueError, r"training index 99 is out of range"),
    ("explorer: describe_test(99)", lambda: explorer().describe_test(99),
     ValueError, r"test index 99 is out of range: there are 3 test images \(0–2\)"),
    ("explorer: describe_test unknown test set", lambda: explorer().describe_test(0, "patched"),
     ValueError, r"unknown test set 'patched'"),
    ("explorer: test label ≥ number of classes", lambda: ExplorerState(MODEL, X, Y, XT, torch.tensor([0, 7, 1])),
     ValueError, r"test_labels must be class indices in \[0, 4\) .*found range \[0, 7\]"),
    ("explorer: train label < 0", lambda: ExplorerState(MODEL, X, torch.tensor([0, 1, -1, 2, 3, 0]), XT, YT),
     ValueError, r"train_labels must be class indices in \[0, 4\)"),
    ("explorer: max_k=0", lambda: explorer(max_k=0),
     ValueError, r"max_k must be a whole number ≥ 1, got 0"),
    ("explorer: dim=0", lambda: explorer(dim=0),
     ValueError, r"dim must be a whole number ≥ 1, got 0"),
    ("explorer: rerank=-1", lambda: explorer(rerank=-1),
     ValueError, r"rerank must be a whole number ≥ 0, got -1"),
    ("explorer: train images in [0, 255]", lambda: ExplorerState(MODEL, X * 255, Y, XT, YT),
     ValueError, r"train_images must have values in \[0, 1\]"),
    ("explorer: update(noise=nan)", lambda: explorer().update(noise=float("nan")),
     ValueError, r"SmoothGrad σ must be a number in"),
]

_TMP = {}


def _tmp():
    return _TMP["path"]


def _truncated_gz():
    path = _tmp() / "train-images-idx3-ubyte.gz"
    raw = gzip.compress(_idx_bytes(np.zeros((4, 28, 28), dtype=np.uint8)))
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _load_with_bad_data_dir():
    return data_mod.load_fashion_mnist("train", download=False)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Own cache, a small fake Debian copy (so a silent fallback would return data), no network."""
    monkeypatch.setenv("TFA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TFA_DATA_DIR", str(tmp_path / "nowhere"))
    _write_fashion_fixture(tmp_path / "debian")
    monkeypatch.setattr(data_mod, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    _TMP["path"] = tmp_path
    yield
    _TMP.clear()


def test_the_table_is_large_and_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("call, error, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a checkpoint retrained with a warning is not this test's point
        with pytest.raises(error, match=match):
            call()


# ------------------------------------------------------------------ what must not raise


def test_nan_checkpoint_is_retrained_with_a_warning_not_loaded(tmp_path):
    build = lambda: make_model("group")  # noqa: E731
    _, meta = train_or_load("tiny", build, lambda m: m, directory=tmp_path)
    nan_checkpoint(meta["path"])
    with pytest.warns(RuntimeWarning, match="retraining: .*non-finite"):
        model, meta2 = train_or_load("tiny", build, lambda m: m, directory=tmp_path)
    assert not meta2["from_cache"] and all(torch.isfinite(p).all() for p in model.parameters())


def _unwritable_cache(tmp_path, monkeypatch):
    """A cache folder that cannot be created or written (it sits under a regular file; works as root too)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    monkeypatch.setenv("TFA_CACHE_DIR", str(blocker / "cache"))


def test_read_only_cache_keeps_the_trained_model(tmp_path, monkeypatch):
    _unwritable_cache(tmp_path, monkeypatch)
    trained = []

    def train_fn(m):
        trained.append(m)
        return m, {"loss": [0.5]}

    with pytest.warns(RuntimeWarning, match="could not be saved .*kept in memory"):
        model, meta = train_or_load("tiny", lambda: make_model("group"), train_fn)
    assert model is trained[0] and meta["saved"] is False and meta["history"] == {"loss": [0.5]}


def test_read_only_cache_still_loads_fashion_mnist(tmp_path, monkeypatch):
    _unwritable_cache(tmp_path, monkeypatch)
    monkeypatch.delenv("TFA_DATA_DIR")
    ds = data_mod.load_fashion_mnist("train", download=False)
    assert len(ds) == 5 and ds.images.shape[1:] == (1, 28, 28)


def test_read_only_cache_explorer_index_cache_true(tmp_path, monkeypatch):
    _unwritable_cache(tmp_path, monkeypatch)
    state = explorer()
    state.index_cache = True
    assert len(state.build_index()) == 6 and state.stats["index_builds"] == 1


def test_relative_cache_dir_is_resolved_once_against_the_import_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("TFA_CACHE_DIR", "relcache")
    monkeypatch.chdir(tmp_path)
    first = cache_dir("data", create=False)
    monkeypatch.chdir(tmp_path / "debian")
    assert first == cache_dir("data", create=False) == cache_mod._IMPORT_CWD / "relcache" / "data"
    assert first.is_absolute()


def test_explorer_accepts_numpy_integer_indices():
    state = explorer(test_index=np.int64(2))
    assert state.settings.test_index == 2 and type(state.settings.test_index) is int
    r = state.result(maps=False, test_index=np.int64(1), selected=None)
    assert r.test.index == 1 and r.ok
    assert state.describe_test(np.int64(0)).startswith("#0 ")
    assert state.training_map(np.int64(3), method="gradient", n_samples=0).shape == (1, 8, 8)


def test_explorer_rebuilds_an_index_cache_of_the_wrong_width(tmp_path):
    state = explorer()
    state.index_cache = tmp_path / "idx"
    path = state._index_cache_path(None)
    path.parent.mkdir(parents=True)
    meta = {"projection": None, "in_dim": 0, "dim": 3, "seed": 0, "chunk_size": 8}
    torch.save({"vectors": torch.zeros(6, 3, dtype=torch.float64), "norms": torch.ones(6, dtype=torch.float64), "meta": meta}, path)
    index = state.build_index()
    assert state.stats["index_loads"] == 0 and state.stats["index_builds"] == 1 and index.dim == P
    fresh = explorer()
    fresh.index_cache = tmp_path / "idx"
    fresh.build_index()  # the rebuilt file overwrote the stale one and now loads
    assert fresh.stats["index_loads"] == 1 and fresh.index.dim == P


def _two_nets():
    """Two classes with the same name, layers and repr; only ``forward`` differs (a notebook edit)."""

    def make(smooth):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.c1 = nn.Conv2d(1, 2, 3, padding=1)
                self.c2 = nn.Conv2d(2, 2, 3, padding=1)
                self.fc = nn.Linear(2, 4)

            if smooth:
                def forward(self, x):
                    return self.fc(self.c2(F.avg_pool2d(self.c1(x), 3, 1, 1)).mean((2, 3)))
            else:
                def forward(self, x):
                    return self.fc(self.c2(self.c1(x)).mean((2, 3)))

        return Net().eval()

    return make(False), make(True)


def test_receptive_field_cache_follows_an_edited_forward():
    a, b = _two_nets()
    assert repr(a) == repr(b) and type(a).__name__ == type(b).__name__
    rf_a = receptive_fields(a, (1, 8, 8), ["c1", "c2"])
    rf_b = receptive_fields(b, (1, 8, 8), ["c1", "c2"])
    dec_mod._RF_CACHE.clear()
    truth_b = receptive_fields(b, (1, 8, 8), ["c1", "c2"])
    assert torch.equal(rf_b["c2"], truth_b["c2"]) and not torch.equal(rf_a["c2"], rf_b["c2"])


def test_receptive_field_cache_is_bounded():
    dec_mod._RF_CACHE.clear()
    for _ in range(dec_mod._RF_CACHE_SIZE + 5):
        receptive_fields(_two_nets()[0], (1, 4, 4), ["c1"])  # a new class object each time
    assert len(dec_mod._RF_CACHE) == dec_mod._RF_CACHE_SIZE


def test_inject_patch_warns_when_the_prevalence_rounds_to_no_image():
    with pytest.warns(RuntimeWarning, match="rounds to 0: no image is patched"):
        out = inject_patch(unit_ds([0, 1, 1, 2]), PatchSpec(size=2, target_class=0, prevalence=0.2))
    assert not out.patched.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # prevalence 0 is a deliberate clean control: no warning
        inject_patch(unit_ds([0, 1, 1, 2]), PatchSpec(size=2, target_class=0, prevalence=0.0))
