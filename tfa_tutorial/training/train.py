"""Training, prediction and shortcut measurement.

The recipe (:func:`train_model`) is deliberately plain: AdamW with a OneCycle learning-rate
schedule, cross-entropy, shuffled mini-batches from in-memory tensors, **no augmentation** (a flip
or crop would move the patch away from its ground-truth mask). It reaches about 90% test
accuracy on Fashion-MNIST with :class:`~tfa_tutorial.training.models.SmallCNN` in a few epochs on CPU.

:func:`shortcut_report` measures whether a model uses a patch shortcut: clean accuracy, accuracy
on patched test images of the other classes, and the flip rate (those predicted as the patch's
class). :func:`prevalence_sweep` repeats that as the share of patched training images grows.
:func:`train_or_load` caches trained weights (atomic writes, ``weights_only=True`` loads).
"""
from __future__ import annotations

import random
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.cache import CheckpointError, cache_dir, load_checkpoint, save_checkpoint
from ..core.hashing import config_hash, config_json
from ..core.validation import (
    NonFiniteError,
    check_finite,
    check_int,
    check_model_finite,
    check_real,
)
from ..data.datasets import ImageDataset
from ..data.patches import PatchSpec, apply_patch, inject_patch, validate

__all__ = [
    "get_device",
    "seed_everything",
    "train_model",
    "predict",
    "accuracy",
    "shortcut_report",
    "train_or_load",
    "prevalence_sweep",
]

Data = ImageDataset | tuple[torch.Tensor, torch.Tensor]


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """``prefer`` if given (an error if it asks for CUDA and there is none), else CUDA when
    available, else CPU."""
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} was requested but CUDA is not available on this machine; use 'cpu'")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> int:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) generators; returns ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def _unpack(data: Data, what: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``(images [N, C, H, W] float, labels [N] int64)`` from a data set or a pair, checked."""
    if isinstance(data, ImageDataset):
        images, labels = data.images, data.labels
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
    else:
        raise TypeError(f"{what} must be an ImageDataset or a pair (images, labels), got {type(data).__name__}")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"{what}: images must be a float tensor [N, C, H, W], got {getattr(images, 'dtype', type(images))} {tuple(getattr(images, 'shape', ()))}")
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"{what}: labels must be 1-D integer class indices [N], got {labels.dtype} {tuple(labels.shape)}")
    if len(labels) != len(images):
        raise ValueError(f"{what}: {len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise ValueError(f"{what} is empty")
    check_finite(images, f"{what}: images", "remove or repair those images (e.g. torch.nan_to_num) first")
    return images, labels.long()


def _model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _check_logits(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2:
        raise ValueError(f"the model must return logits [B, K], got shape {tuple(logits.shape)}")
    if int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]:
        raise ValueError(
            f"labels must lie in [0, {logits.shape[1]}) for a model with {logits.shape[1]} outputs, "
            f"found range [{int(labels.min())}, {int(labels.max())}]"
        )


def train_model(
    model: nn.Module,
    data: Data,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    weight_decay: float = 1e-4,
) -> tuple[nn.Module, dict]:
    """Train ``model`` with cross-entropy, AdamW and a OneCycle schedule peaking at ``lr``.

    Args:
        model: maps ``[B, C, H, W]`` to logits ``[B, K]``; trained in place.
        data: an :class:`ImageDataset` or a pair ``(images [N, C, H, W], labels [N])``.
        seed: fixes the batch order (build the model after :func:`seed_everything` to fix its
            initialisation too).
        device: default: the model's current device.

    Returns:
        ``(model, history)``: the model in **eval mode**, and ``history`` with per-epoch
        ``loss`` and ``train_acc`` lists, ``seconds``, ``steps`` and the settings used.
    """
    images, labels = _unpack(data, "training data")
    epochs, batch_size = check_int(epochs, "epochs"), check_int(batch_size, "batch_size")
    lr = check_real(lr, "lr", 0, strict_minimum=True)
    weight_decay = check_real(weight_decay, "weight_decay", 0)
    seed = check_int(seed, "seed", None)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters (none, or all requires_grad=False): nothing to train")
    check_model_finite(model)
    device = _model_device(model) if device is None else get_device(device)
    model.to(device)
    n = len(images)
    # a final batch of one example breaks BatchNorm in train mode: drop it
    steps_per_epoch = n // batch_size + (1 if n % batch_size > 1 else 0)
    if steps_per_epoch == 0:
        raise ValueError(f"need at least 2 training examples, got {n}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout etc.
    history: dict[str, Any] = {"loss": [], "train_acc": [], "epochs": epochs, "batch_size": batch_size,
                               "lr": lr, "weight_decay": weight_decay, "seed": seed, "n_train": n}
    from tqdm.auto import tqdm

    bar = tqdm(total=epochs * steps_per_epoch, desc="training", disable=not progress, leave=False)
    start = time.perf_counter()
    try:
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n, generator=gen)
            loss_sum, correct, seen = 0.0, 0, 0
            for step in range(steps_per_epoch):
                idx = order[step * batch_size:(step + 1) * batch_size]
                x, y = images[idx].to(device, non_blocking=True), labels[idx].to(device, non_blocking=True)
                logits = _forward(model, x)
                if seen == 0 and not history["loss"]:
                    _check_logits(logits, labels)
                loss = F.cross_entropy(logits, y)
                if not torch.isfinite(loss.detach()):
                    raise NonFiniteError(
                        f"training stopped: the loss is {float(loss.detach())} at epoch {epoch + 1}, batch "
                        f"{step + 1} of {steps_per_epoch} (training examples {idx[:8].tolist()}"
                        f"{'...' if len(idx) > 8 else ''}). The weights diverged: lower lr (now {lr:g}) or "
                        "check the model's forward for log(0) or division by zero"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                loss_sum += float(loss.detach()) * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
            history["loss"].append(loss_sum / seen)
            history["train_acc"].append(correct / seen)
    finally:
        bar.close()
    history["seconds"] = time.perf_counter() - start
    history["steps"] = epochs * steps_per_epoch
    check_model_finite(model)  # the last step can still overflow
    return model.eval(), history


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)``, with a failing forward pass reported as a shape/dtype mismatch."""
    try:
        out = model(x)
    except torch.cuda.OutOfMemoryError:
        raise
    except RuntimeError as err:
        raise ValueError(f"the model cannot take images of shape {tuple(x.shape[1:])} and dtype {x.dtype}: {err}") from err
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError(f"the model must return logits [B, K], got {type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
    return out


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted labels ``[N]`` int64 and softmax probabilities ``[N, K]`` (both on CPU), computed
    in eval mode without gradients; the model's train/eval mode is restored afterwards."""
    if isinstance(images, ImageDataset):
        images = images.images
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor [N, C, H, W], got {getattr(images, 'dtype', type(images))} {tuple(getattr(images, 'shape', ()))}")
    if len(images) == 0:
        raise ValueError("no images to predict")
    batch_size = check_int(batch_size, "batch_size")
    check_finite(images, "images", "a NaN image has no prediction; repair or drop it")
    device, was_training = _model_device(model), model.training
    model.eval()
    try:
        probs = torch.cat([
            F.softmax(check_finite(_forward(model, images[i:i + batch_size].to(device)), "the model's logits",
                                   "check the model's weights (they may be NaN after a diverged training)").float(),
                      dim=1).cpu()
            for i in range(0, len(images), batch_size)
        ])
    finally:
        model.train(was_training)
    return probs.argmax(1), probs


def accuracy(model: nn.Module, data: Data, batch_size: int = 512) -> float:
    """Fraction of ``data`` (an :class:`ImageDataset` or ``(images, labels)``) classified correctly."""
    images, labels = _unpack(data)
    pred, probs = predict(model, images, batch_size)
    _check_logits(probs, labels)
    return float((pred == labels).float().mean())


def shortcut_report(model: nn.Module, clean_test: ImageDataset, spec: PatchSpec, batch_size: int = 512) -> dict:
    """How much ``model`` relies on the patch ``spec``.

    Every test image whose true class is not ``spec.target_class`` ("other") is evaluated clean
    and with the patch pasted on.

    Returns a dict with
        ``clean_acc``: accuracy on the whole clean test set;
        ``patched_acc_other``: accuracy on the patched "other" images;
        ``flip_rate``: fraction of patched "other" images predicted as the target class;
        ``flip_rate_strict``: among "other" images classified correctly when clean, the fraction
        predicted as the target class once patched (the patch alone caused the change);
        ``clean_target_rate_other``: fraction of clean "other" images already predicted as the
        target class (the flip rate's floor);
        ``n_other``, ``n_strict``, ``target_class``.
    """
    validate(spec, clean_test.image_shape, clean_test.num_classes)
    other = clean_test.labels != spec.target_class
    if not other.any():
        raise ValueError(f"the test set has no images outside the target class {spec.target_class}")
    clean_pred, _ = predict(model, clean_test.images, batch_size)
    labels_o, clean_o = clean_test.labels[other], clean_pred[other]
    patched_pred, _ = predict(model, apply_patch(clean_test.images[other], spec), batch_size)
    to_target = patched_pred == spec.target_class
    strict = clean_o == labels_o
    return {
        "clean_acc": float((clean_pred == clean_test.labels).float().mean()),
        "patched_acc_other": float((patched_pred == labels_o).float().mean()),
        "flip_rate": float(to_target.float().mean()),
        "flip_rate_strict": float(to_target[strict].float().mean()) if strict.any() else float("nan"),
        "clean_target_rate_other": float((clean_o == spec.target_class).float().mean()),
        "n_other": int(other.sum()),
        "n_strict": int(strict.sum()),
        "target_class": spec.target_class,
    }


def train_or_load(
    name: str,
    build_fn: Callable[[], nn.Module],
    train_fn: Callable[[nn.Module], Any],
    config: dict | None = None,
    seed: int = 0,
    retrain: bool = False,
    directory: str | Path | None = None,
) -> tuple[nn.Module, dict]:
    """Load the model cached under ``name`` and ``config``, or build, train and cache it.

    Args:
        name: a readable prefix of the checkpoint file name.
        build_fn: ``() -> model``, called after ``seed_everything(seed)``.
        train_fn: ``model -> model`` or ``model -> (model, history)``; called only on a cache miss.
        config: everything that changes the result (data, patch, epochs, ...); it is hashed into
            the file name together with ``name``, ``seed`` and the model's architecture, so a
            different config never loads a stale model.
        retrain: ignore and overwrite an existing checkpoint (a damaged one is retrained
            anyway, with a warning).
        directory: where checkpoints live (default ``cache_dir("checkpoints")``).

    Returns:
        ``(model, meta)``: the model in eval mode; ``meta`` holds ``name``, ``config_hash``,
        ``history`` (from training), ``from_cache`` (True when loaded) and ``saved`` (False when
        the checkpoint could not be written, e.g. a read-only cache: the trained model is then
        returned with a warning, never lost).
    """
    if not name or any(ch in name for ch in "/\\"):
        raise ValueError(f"name must be a non-empty file-name part without slashes, got {name!r}")
    seed_everything(seed)
    model = build_fn()
    # the architecture (the module tree's repr) is part of the key, so changing the model never loads stale weights
    key = config_hash({"name": name, "seed": seed, "config": config, "model": repr(model)})
    folder = Path(directory) if directory is not None else cache_dir("checkpoints", create=False)
    path = folder / f"{name}-{key}.pt"
    if path.is_file() and not retrain:
        try:
            model, meta = load_checkpoint(path, model)
            return model.eval(), {**meta, "from_cache": True, "path": str(path), "saved": True}
        except CheckpointError as err:  # a damaged cache entry is recomputed, not fatal
            warnings.warn(f"retraining: {err}", RuntimeWarning, stacklevel=2)
            seed_everything(seed)
            model = build_fn()
    out = train_fn(model)
    model, history = out if isinstance(out, tuple) else (out, {})
    meta = {"name": name, "config_hash": key, "config": config_json(config),
            "history": history}
    try:
        save_checkpoint(model, path, meta)
    except OSError as err:  # a read-only or full cache: keep the trained model, warn, go on
        warnings.warn(f"the trained model {name!r} could not be saved to {path} ({type(err).__name__}: {err}); "
                      "it is kept in memory only and will be retrained next time. Set TFA_CACHE_DIR to a "
                      "writable folder to keep it.", RuntimeWarning, stacklevel=2)
        return model.eval(), {**meta, "from_cache": False, "path": None, "saved": False}
    return model.eval(), {**meta, "from_cache": False, "path": str(path), "saved": True}


def prevalence_sweep(
    train: ImageDataset,
    test: ImageDataset,
    base_spec: PatchSpec,
    prevalences: Sequence[float],
    model_fn: Callable[[], nn.Module],
    epochs: int = 3,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 2e-3,
    progress: bool = True,
    cache_name: str | None = None,
) -> list[dict]:
    """Train one model per prevalence (same seed, init and batch order) and measure the shortcut.

    Returns one dict per prevalence with ``prevalence``, ``n_patched``, ``clean_acc``,
    ``patched_acc_other``, ``flip_rate`` and ``flip_rate_strict``. With ``cache_name`` each
    model goes through :func:`train_or_load`, keyed by the data, the spec and the settings.
    """
    from tqdm.auto import tqdm

    rows = []
    train_key = train.fingerprint() if cache_name is not None else None
    for p in tqdm(list(prevalences), desc="prevalence sweep", disable=not progress):
        spec = base_spec.replace(prevalence=float(p))
        patched = inject_patch(train, spec)

        def fit(model, patched=patched):
            return train_model(model, patched, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress)

        if cache_name is None:
            seed_everything(seed)
            model, _ = fit(model_fn())
        else:
            config = {"train": train_key, "spec": spec, "epochs": epochs, "batch_size": batch_size, "lr": lr}
            model, _ = train_or_load(cache_name, model_fn, fit, config=config, seed=seed)
        report = shortcut_report(model, test, spec)
        rows.append({"prevalence": float(p), "n_patched": int(patched.patched.sum()), **{
            k: report[k] for k in ("clean_acc", "patched_acc_other", "flip_rate", "flip_rate_strict")}})
    return rows
