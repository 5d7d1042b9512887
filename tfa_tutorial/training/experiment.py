"""The tutorial's shortcut experiment in one call, cached, so every notebook runs on its own.

    exp = shortcut_experiment()        # fast mode follows TFA_FAST; checkpoints are cached
    exp.model, exp.clean_model         # trained with and without the patch (same seed and init)
    exp.train, exp.test                # PatchedDataset (training, with flags/masks), clean test set
    exp.flipped_test_indices()         # test images the patch flips to the target class

Fast mode (``TFA_FAST=1``, on in CI and suggested on Binder) trains on a stratified subset so
each notebook finishes in minutes on 2 CPU cores; the full setting uses all 60k images.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.mode import fast_mode
from ..data.datasets import ImageDataset, load_fashion_mnist, subsample
from ..data.patches import PRESETS, PatchedDataset, PatchSpec, inject_patch, patch_all
from .models import SmallCNN
from .train import predict, shortcut_report, train_model, train_or_load

__all__ = ["ShortcutExperiment", "shortcut_experiment", "experiment_settings", "course_data", "train_course_model",
           "flipped_indices"]


def experiment_settings(fast: bool | None = None) -> dict:
    """Sizes and epochs of the tutorial's experiment: fast mode (CI, Binder) or full."""
    fast = fast_mode() if fast is None else fast
    if fast:
        return {"fast": True, "n_train": 12000, "n_test": 2000, "epochs": 3}
    return {"fast": False, "n_train": 60000, "n_test": 10000, "epochs": 6}


def course_data(settings: dict, seed: int) -> tuple[ImageDataset, ImageDataset]:
    """The training and test subsets of Fashion-MNIST for ``settings`` (stratified, seeded)."""
    train = subsample(load_fashion_mnist("train"), settings["n_train"], seed=seed)
    test = subsample(load_fashion_mnist("test"), settings["n_test"], seed=seed)
    return train, test


def train_course_model(name: str, data: ImageDataset, config: dict, settings: dict, seed: int,
                       progress: bool = True, retrain: bool = False) -> nn.Module:
    """A :class:`SmallCNN` trained on ``data`` with the course's epochs and ``seed``, or loaded from
    the cache when a model with the same ``name`` and ``config`` was trained before."""
    def build():
        return SmallCNN(data.image_shape[0], data.num_classes)

    def fit(m):
        return train_model(m, data, epochs=settings["epochs"], seed=seed, progress=progress)

    model, _ = train_or_load(name, build, fit, config=config, seed=seed, retrain=retrain)
    return model


def flipped_indices(model: nn.Module, test: ImageDataset, patched_versions, target: int) -> torch.Tensor:
    """Test images of other classes that ``model`` classifies correctly when clean and as ``target``
    in **every** patched version (``[M, C, H, W]`` tensors of the same test images): the shortcut
    at work. Returns their indices ``[F]``."""
    clean_pred, _ = predict(model, test.images)
    ok = (test.labels != target) & (clean_pred == test.labels)
    for images in patched_versions:
        ok &= predict(model, images)[0] == target
    return torch.nonzero(ok).flatten()


@dataclass
class ShortcutExperiment:
    """Data, patch and the two trained models of the tutorial (see :func:`shortcut_experiment`)."""

    spec: PatchSpec
    train: PatchedDataset
    test: ImageDataset
    patched_test: PatchedDataset
    model: nn.Module
    clean_model: nn.Module
    settings: dict
    seed: int
    report: dict = field(default_factory=dict)
    clean_report: dict = field(default_factory=dict)

    @property
    def classes(self):
        return self.train.classes

    def flipped_test_indices(self, model: nn.Module | None = None) -> torch.Tensor:
        """Test images of other classes that ``model`` (default: the shortcut model) predicts
        correctly when clean and as the target class once patched — the shortcut at work."""
        return flipped_indices(model or self.model, self.test, [self.patched_test.images], self.spec.target_class)

    def shortcut_detection_test_indices(self, model: nn.Module | None = None) -> torch.Tensor:
        """quanda's filter: patched test images whose true class is not the target but that are
        predicted as the target."""
        model = model or self.model
        t = self.spec.target_class
        pred, _ = predict(model, self.patched_test.images)
        return torch.nonzero((self.patched_test.labels != t) & (pred == t)).flatten()


def shortcut_experiment(
    preset: str | PatchSpec = "tutorial",
    seed: int = 0,
    fast: bool | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    epochs: int | None = None,
    progress: bool = True,
    retrain: bool = False,
) -> ShortcutExperiment:
    """Load Fashion-MNIST, inject the patch, train (or load from cache) the shortcut and the clean
    model with the same seed, initialisation and batch order, and measure both.

    Args:
        preset: a name in :data:`tfa_tutorial.PRESETS` or a :class:`PatchSpec`.
        fast: ``None`` follows ``TFA_FAST``; sizes and epochs from :func:`experiment_settings`
            unless given.
    """
    spec = PRESETS[preset] if isinstance(preset, str) else preset
    settings = experiment_settings(fast)
    settings.update({k: v for k, v in {"n_train": n_train, "n_test": n_test, "epochs": epochs}.items() if v is not None})
    train, test = course_data(settings, seed)
    patched_train = inject_patch(train, spec)
    patched_test = patch_all(test, spec)
    config = {"data": "fashion_mnist", **settings, "spec": spec}
    model = train_course_model("shortcut", patched_train, config, settings, seed, progress, retrain)
    clean_model = train_course_model("clean", train, config, settings, seed, progress, retrain)
    exp = ShortcutExperiment(spec, patched_train, test, patched_test, model, clean_model, settings, seed)
    exp.report = shortcut_report(model, test, spec)
    exp.clean_report = shortcut_report(clean_model, test, spec)
    return exp
