"""CIFAR-10 from its python pickle batches (the paper's setting): read without running pickled
code, offline from a folder, or downloaded with torchvision. Shares the search and error rules of
:mod:`tfa_tutorial.data.datasets`."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import torch

from ..core.cache import cache_dir
from .datasets import (
    CIFAR10_CLASSES,
    ENV_DATA_DIR,
    ImageDataset,
    _candidate_folders,
    _check_split,
    _locate,
    _not_found,
)

__all__ = ["load_cifar10"]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches (dicts, lists, numpy arrays) and refuses any other global, so a
    tampered batch file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")
        return super().find_class(module, name)


def _read_cifar_pickle(path: Path) -> dict:
    with open(path, "rb") as f:
        obj = _ArrayUnpickler(f, encoding="latin1").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a CIFAR batch (expected a dict, got {type(obj).__name__})")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_files(split: str) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


def _find_cifar_folder(folder: Path, split: str) -> Path | None:
    for sub in (folder / "cifar-10-batches-py", folder):
        if all((sub / f).is_file() for f in _cifar_files(split)):
            return sub
    return None


def _read_cifar_folder(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    data, labels = [], []
    for fname in _cifar_files(split):
        batch = _read_cifar_pickle(folder / fname)
        x = np.asarray(batch["data"], dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or len(batch["labels"]) != len(x):
            raise ValueError(f"{folder / fname}: expected 'data' [n, 3072] uint8 and n labels, got {x.shape} and {len(batch['labels'])}")
        data.append(x)
        labels.extend(int(v) for v in batch["labels"])
    classes = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        classes = tuple(str(c) for c in _read_cifar_pickle(folder / "batches.meta")["label_names"])
    # each row is 1024 red, then 1024 green, then 1024 blue values, each a row-major 32×32 plane
    images = torch.from_numpy(np.concatenate(data)).reshape(-1, 3, 32, 32)
    return images, torch.tensor(labels, dtype=torch.int64), classes


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None, download: bool = True) -> ImageDataset:
    """CIFAR-10 as an :class:`ImageDataset` of ``[N, 3, 32, 32]`` images in [0, 1].

    Reads ``cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``) from
    ``root``, ``$TFA_DATA_DIR`` or the cache; downloads it with torchvision when missing and
    ``download`` is true.
    """
    _check_split(split)
    tv_folder = cache_dir("torchvision", create=False)
    places = _candidate_folders(root) + [("earlier torchvision download", tv_folder)]
    found, download_error = _locate(places, lambda folder: _find_cifar_folder(folder, split), "cifar10", split, tv_folder, download)
    if found is not None:
        images, labels, classes = _read_cifar_folder(found, split)
        return ImageDataset(images.float().div_(255.0), labels, classes, f"cifar10-{split}")
    raise _not_found(
        "CIFAR-10", split, [f"{what}: {folder}" for what, folder in places], download_error,
        [
            f"be online: torchvision then downloads it (170 MB) into {tv_folder}",
            f"set the environment variable {ENV_DATA_DIR} (or pass root=) to a folder holding "
            "cifar-10-batches-py/ from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        ],
    )
