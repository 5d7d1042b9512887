"""Image data sets as plain tensors, loaded offline when possible.

An :class:`ImageDataset` holds ``images`` ``[N, C, H, W]`` float32 in [0, 1] (no normalisation,
so a patch value of 1.0 means white), ``labels`` ``[N]`` int64 and the class names.

Where the data comes from, in order:

- **Fashion-MNIST** (1×28×28, 60k train / 10k test): the ``root`` argument, the folder named by
  ``$TFA_DATA_DIR`` (when set, it must hold the data: a wrong setting is a
  :class:`DataNotFoundError`, never a silent fall-back to another copy), Debian's
  ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``), an earlier torchvision download in the cache, and
  finally a torchvision download into the cache when online. A folder may hold the four IDX files
  (``train-images-idx3-ubyte[.gz]``, ...) directly or in torchvision's ``FashionMNIST/raw``
  layout. The IDX files are parsed here (Debian's recompressed ``.gz`` files fail torchvision's
  checksum), and the decoded uint8 tensors are cached in :func:`~tfa_tutorial.core.cache.cache_dir`
  so the second load takes well under a second.
- **CIFAR-10** (3×32×32, 50k / 10k): the same folders, holding ``cifar-10-batches-py`` (CIFAR's
  own pickle format), else a torchvision download when online.

When nothing is found, one :class:`DataNotFoundError` lists every way to get the data.
A read-only cache folder is not an error: the decoded tensors are then simply not kept.
"""
from __future__ import annotations

import dataclasses
import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..core.cache import atomic_torch_save, cache_dir
from ..core.hashing import digest

__all__ = [
    "ENV_DATA_DIR",
    "DEBIAN_FASHION_MNIST_DIR",
    "FASHION_MNIST_CLASSES",
    "CIFAR10_CLASSES",
    "DATASET_NAMES",
    "DataNotFoundError",
    "ImageDataset",
    "read_idx",
    "load_fashion_mnist",
    "load_cifar10",
    "load_dataset",
    "subsample_indices",
    "subsample",
]

ENV_DATA_DIR = "TFA_DATA_DIR"
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
DATASET_NAMES = ("fashion_mnist", "cifar10")
_SPLITS = ("train", "test")


class DataNotFoundError(FileNotFoundError):
    """The data set is not on this machine and could not be downloaded."""


# --------------------------------------------------------------------------------------------
# The container


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Images with labels, validated on construction.

    Attributes:
        images: ``[N, C, H, W]`` float32, values in [0, 1].
        labels: ``[N]`` int64, values in ``[0, len(classes))``.
        classes: class names; class ``k`` is ``classes[k]``.
        name: a short identifier, e.g. ``"fashion_mnist-train"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str = "dataset"

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        _check_images_labels(self.images, self.labels, self.classes, self.name)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """``(image [C, H, W], label)`` of example ``i``."""
        return self.images[i], int(self.labels[i])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
            f"num_classes={self.num_classes})"
        )

    @property
    def num_classes(self) -> int:
        """K, the number of classes."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.images.shape[1:])

    def class_counts(self) -> torch.Tensor:
        """``[K]`` int64: number of examples per class."""
        return torch.bincount(self.labels, minlength=self.num_classes)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "ImageDataset":
        """A new data set with the examples at ``indices`` (int indices or a ``[N]`` bool mask),
        in that order. Tensors are copied, never shared with ``self``."""
        idx = _as_index(indices, len(self))
        return dataclasses.replace(self, images=self.images[idx], labels=self.labels[idx], **self._subset_extra(idx))

    def _subset_extra(self, idx: torch.Tensor) -> dict:
        """Per-example fields of subclasses, indexed like ``images``."""
        return {}

    def fingerprint(self) -> str:
        """A short hash of images and labels, for cache keys."""
        return digest(self.classes, self.images, self.labels)


def _check_images_labels(images, labels, classes, name: str) -> None:
    where = f"data set {name!r}"
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{where}: images must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{where}: images must have shape [N, C, H, W], got {tuple(images.shape)}")
    if images.dtype != torch.float32:
        raise TypeError(f"{where}: images must be float32 in [0, 1], got dtype {images.dtype}")
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{where}: labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype != torch.int64 or labels.ndim != 1:
        raise TypeError(f"{where}: labels must be a 1-D int64 tensor [N], got dtype {labels.dtype}, shape {tuple(labels.shape)}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{where}: {images.shape[0]} images but {labels.shape[0]} labels")
    if len(classes) == 0 or not all(isinstance(c, str) for c in classes):
        raise TypeError(f"{where}: classes must be a non-empty sequence of names (str)")
    if images.shape[0] == 0:
        return
    lo, hi = (float(v) for v in torch.aminmax(images))  # NaN propagates, ±inf fails the range check
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"{where}: images contain NaN values")
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{where}: image values must lie in [0, 1], found range [{lo:.4g}, {hi:.4g}]")
    lmin, lmax = int(labels.min()), int(labels.max())
    if lmin < 0 or lmax >= len(classes):
        raise ValueError(f"{where}: labels must lie in [0, {len(classes)}) for {len(classes)} classes, found range [{lmin}, {lmax}]")


def _as_index(indices, n: int) -> torch.Tensor:
    idx = indices if isinstance(indices, torch.Tensor) else torch.as_tensor(np.asarray(indices))
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"a boolean mask must have shape [{n}], got {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    if idx.is_floating_point() or idx.ndim != 1:
        raise TypeError(f"indices must be a 1-D sequence of ints or a bool mask, got dtype {idx.dtype}, shape {tuple(idx.shape)}")
    idx = idx.long()
    if int(idx.min()) < -n or int(idx.max()) >= n:
        raise IndexError(f"indices must lie in [0, {n}), found range [{int(idx.min())}, {int(idx.max())}]")
    return idx


# --------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files)


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Parse an IDX file of unsigned bytes (gzip'ed or not) into a uint8 tensor of its shape."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise ValueError(
                f"{path} is a damaged gzip file ({type(err).__name__}: {err}); it was probably truncated "
                "by an interrupted download or copy. Delete it and get the file again."
            ) from err
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX files (type 0x08) are supported, got 0x{dtype_code:02x}")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(dims):
        raise ValueError(f"{path}: header says shape {dims} ({math.prod(dims)} bytes) but the file holds {len(raw) - header}")
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8).reshape(dims)


def _idx_names(split: str) -> tuple[str, str]:
    prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_idx_pair(folder: Path, split: str) -> tuple[Path, Path] | None:
    for sub in (folder, folder / "FashionMNIST" / "raw", folder / "fashion-mnist", folder / "raw"):
        found = []
        for stem in _idx_names(split):
            hit = next((sub / (stem + ext) for ext in ("", ".gz") if (sub / (stem + ext)).is_file()), None)
            found.append(hit)
        if all(found):
            return found[0], found[1]
    return None


def _candidate_folders(root) -> list[tuple[str, Path]]:
    folders = []
    if root is not None:
        folders.append(("root argument", Path(root).expanduser()))
    if os.environ.get(ENV_DATA_DIR):
        folders.append((f"${ENV_DATA_DIR}", Path(os.environ[ENV_DATA_DIR]).expanduser()))
    return folders


def _torchvision_download(kind: str, split: str, folder: Path) -> None:
    """Download with torchvision into ``folder`` (raises when offline)."""
    import torchvision

    cls = {"fashion_mnist": torchvision.datasets.FashionMNIST, "cifar10": torchvision.datasets.CIFAR10}[kind]
    cls(root=str(folder), train=(split == "train"), download=True)


def _locate(places, finder, kind: str, split: str, tv_folder: Path, download: bool):
    """``(hit, None)`` for the first folder where ``finder`` finds the files, downloading with
    torchvision once if needed; ``(None, why the download did not help)`` otherwise."""
    for what, folder in places:
        hit = finder(folder)
        if hit is not None:
            return hit, None
        if what == f"${ENV_DATA_DIR}":  # an explicit setting that is wrong is an error, not a fallback
            raise DataNotFoundError(
                f"${ENV_DATA_DIR} is set to {folder}, but that folder does not hold the {kind} {split} files "
                f"({'it does not exist' if not folder.is_dir() else 'found: ' + ', '.join(sorted(p.name for p in folder.iterdir())[:8])}). "
                f"Point {ENV_DATA_DIR} at the folder with the data, or unset it to use the default locations."
            )
    if not download:
        return None, "not attempted (download=False)"
    try:
        _torchvision_download(kind, split, tv_folder)
    except Exception as err:  # offline: URLError / RuntimeError, fails in well under a second
        return None, f"{type(err).__name__}: {err}"
    hit = finder(tv_folder)
    return (hit, None) if hit is not None else (None, f"it finished but no files were found in {tv_folder}")


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}: choose 'train' or 'test'")


def _not_found(dataset: str, split: str, looked: list[str], download_error: str | None, ways: list[str]) -> DataNotFoundError:
    lines = [f"{dataset} ({split} split) was not found. Looked in:"]
    lines += [f"  - {place}" for place in looked]
    if download_error:
        lines.append(f"  - torchvision download: {download_error}")
    lines.append("Ways to get it:")
    lines += [f"  {i}. {way}" for i, way in enumerate(ways, 1)]
    return DataNotFoundError("\n".join(lines))


def _fashion_from_files(images_path: Path, labels_path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images ``[N, 28, 28]`` and labels ``[N]``, through the decoded-tensor cache."""
    files = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in (images_path, labels_path)]
    cached = cache_dir("data", create=False) / f"fashion_mnist-{split}-{digest(*files)}.pt"
    if cached.is_file():
        try:
            blob = torch.load(cached, map_location="cpu", weights_only=True)
            return blob["images"], blob["labels"]
        except Exception:  # a damaged cache file is rebuilt below
            pass
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} / {labels_path} do not form a data set: images {tuple(images.shape)}, labels {tuple(labels.shape)}"
        )
    try:
        atomic_torch_save({"images": images, "labels": labels}, cached)
    except OSError:  # a read-only cache: decode again next time
        pass
    return images, labels


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None, download: bool = True) -> ImageDataset:
    """Fashion-MNIST as an :class:`ImageDataset` of ``[N, 1, 28, 28]`` images in [0, 1].

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: a folder holding the IDX files (tried first).
        download: try a torchvision download into the cache when no local copy is found.

    Raises:
        DataNotFoundError: no local copy and no download; the message lists the ways to get it.
    """
    _check_split(split)
    tv_folder = cache_dir("torchvision", create=False)
    places = _candidate_folders(root) + [
        ("Debian package dataset-fashion-mnist", Path(DEBIAN_FASHION_MNIST_DIR)),
        ("earlier torchvision download", tv_folder),
    ]
    pair, download_error = _locate(places, lambda folder: _find_idx_pair(folder, split), "fashion_mnist", split, tv_folder, download)
    if pair is not None:
        images, labels = _fashion_from_files(*pair, split=split)
        return ImageDataset(images.unsqueeze(1).float().div_(255.0), labels.long(), FASHION_MNIST_CLASSES, f"fashion_mnist-{split}")
    looked = [f"{what}: {folder}" for what, folder in places]
    raise _not_found(
        "Fashion-MNIST", split, looked, download_error,
        [
            "install the Debian package: sudo apt-get install dataset-fashion-mnist "
            f"(files land in {DEBIAN_FASHION_MNIST_DIR})",
            f"set the environment variable {ENV_DATA_DIR} (or pass root=) to a folder holding "
            "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz (or torchvision's FashionMNIST/raw layout)",
            f"be online: torchvision then downloads it into {tv_folder}",
        ],
    )


# --------------------------------------------------------------------------------------------
# Dispatch and subsampling


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None, download: bool = True) -> ImageDataset:
    """Load a data set by name: ``"fashion_mnist"`` or ``"cifar10"`` (case, ``-`` and ``_`` are
    ignored, so ``"Fashion-MNIST"`` and ``"CIFAR-10"`` work too)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key in ("fashionmnist", "fmnist"):
        return load_fashion_mnist(split, root, download)
    if key == "cifar10":
        return load_cifar10(split, root, download)
    raise ValueError(f"unknown data set {name!r}: choose one of {', '.join(DATASET_NAMES)}")


def subsample_indices(labels: torch.Tensor, n: int, seed: int = 0, stratified: bool = True) -> torch.Tensor:
    """Sorted int64 indices of ``n`` examples drawn without replacement (seeded).

    With ``stratified=True`` every class keeps its share: class k gets ``n·N_k/N`` examples,
    rounded by largest remainder so the total is exactly ``n``.
    """
    total = labels.shape[0]
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if n >= total:
        return torch.arange(total)
    gen = torch.Generator().manual_seed(seed)
    if not stratified:
        return torch.randperm(total, generator=gen)[:n].sort().values
    counts = torch.bincount(labels)
    quota = counts.double() * n / total
    take = quota.floor().long()
    short = n - int(take.sum())
    if short > 0:  # largest remainders first, ties to the lower class index
        order = sorted(range(len(counts)), key=lambda k: (-(float(quota[k]) - int(take[k])), k))
        for k in order[:short]:
            take[k] += 1
    chosen = []
    for k in range(len(counts)):
        members = (labels == k).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=gen)[: int(take[k])]])
    return torch.cat(chosen).sort().values


def subsample(dataset: ImageDataset, n: int, seed: int = 0, stratified: bool = True) -> ImageDataset:
    """``n`` examples of ``dataset`` (all of it if ``n ≥ len``), for fast mode; see
    :func:`subsample_indices`. The name records ``n`` and ``seed``."""
    if n >= len(dataset):
        return dataset
    sub = dataset.subset(subsample_indices(dataset.labels, n, seed, stratified))
    return dataclasses.replace(sub, name=f"{dataset.name}-n{n}-s{seed}")


from .cifar10 import load_cifar10  # noqa: E402  (re-exported; cifar10 reads this module's search rules)
