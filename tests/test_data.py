"""ImageDataset validation, the IDX and CIFAR loaders on hand-written fixtures, the real Debian
Fashion-MNIST, the one clear error when data is missing, and subsampling."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tfa_tutorial.data import datasets as data_mod
from tfa_tutorial.data.cifar10 import load_cifar10
from tfa_tutorial.data.datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    DataNotFoundError,
    ImageDataset,
    load_dataset,
    load_fashion_mnist,
    read_idx,
    subsample,
    subsample_indices,
)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Own cache folder, no $TFA_DATA_DIR, and no network for every test here."""
    monkeypatch.setenv("TFA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TFA_DATA_DIR", raising=False)
    calls = []

    def offline(kind, split, folder):
        calls.append((kind, split))
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(data_mod, "_torchvision_download", offline)
    return calls


def _ds(n=6, c=1, h=4, w=4, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageDataset(torch.rand(n, c, h, w, generator=g), torch.arange(n) % k, tuple(f"c{i}" for i in range(k)), "toy")


# ------------------------------------------------------------------ ImageDataset


def test_dataset_basics():
    ds = _ds(n=7, c=3, h=5, w=6, k=3)
    assert len(ds) == 7 and ds.num_classes == 3 and ds.image_shape == (3, 5, 6)
    assert ds.classes == ("c0", "c1", "c2")
    img, label = ds[4]
    assert img.shape == (3, 5, 6) and label == 1
    assert ds.class_counts().tolist() == [3, 2, 2]
    with pytest.raises(Exception):
        ds.images = torch.zeros(1)  # frozen


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (torch.rand(4, 8, 8), torch.zeros(4, dtype=torch.long), r"\[N, C, H, W\]"),
        (torch.rand(4, 1, 8, 8, dtype=torch.float64), torch.zeros(4, dtype=torch.long), "float32"),
        (torch.randint(0, 255, (4, 1, 8, 8), dtype=torch.uint8), torch.zeros(4, dtype=torch.long), "float32"),
        (torch.rand(4, 1, 8, 8) * 255, torch.zeros(4, dtype=torch.long), r"\[0, 1\]"),
        (torch.rand(4, 1, 8, 8) - 0.5, torch.zeros(4, dtype=torch.long), r"\[0, 1\]"),
        (torch.full((4, 1, 8, 8), float("nan")), torch.zeros(4, dtype=torch.long), "NaN"),
        (torch.rand(4, 1, 8, 8), torch.zeros(4), "int64"),
        (torch.rand(4, 1, 8, 8), torch.zeros(3, dtype=torch.long), "4 images but 3 labels"),
        (torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]), r"labels must lie in \[0, 3\).*\[0, 3\]"),
        (torch.rand(4, 1, 8, 8), torch.tensor([0, -1, 2, 1]), r"labels must lie in \[0, 3\)"),
    ],
)
def test_dataset_rejects_bad_input(images, labels, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ImageDataset(images, labels, ("a", "b", "c"), "bad")


def test_subset_copies_and_keeps_order():
    ds = _ds(n=6)
    sub = ds.subset([4, 1])
    assert torch.equal(sub.images, ds.images[[4, 1]]) and sub.labels.tolist() == [1, 1]
    sub.images[0].zero_()
    assert ds.images[4].sum() > 0  # the source is untouched
    mask = torch.tensor([True, False, True, False, False, True])
    assert ds.subset(mask).labels.tolist() == [0, 2, 2]
    assert len(ds.subset([])) == 0
    with pytest.raises(IndexError, match=r"\[0, 6\)"):
        ds.subset([0, 6])
    with pytest.raises(ValueError, match="mask"):
        ds.subset(torch.tensor([True, False]))


def test_fingerprint_changes_with_content():
    a, b = _ds(seed=0), _ds(seed=1)
    assert a.fingerprint() == _ds(seed=0).fingerprint() != b.fingerprint()


# ------------------------------------------------------------------ IDX / Fashion-MNIST fixture


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_fashion_fixture(folder: Path, n_train=5, n_test=3, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 3, 5] = 255  # known pixels
        images[0, 27, 0] = 0
        labels = (np.arange(n) * 3 % 10).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            raw = _idx_bytes(arr)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        arrays[prefix] = (images, labels)
    return arrays


def test_read_idx_raw_and_gzip(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
    for name in ("a", "a.gz"):
        t = read_idx(tmp_path / name)
        assert t.dtype == torch.uint8 and t.shape == (2, 3, 4)
        assert torch.equal(t, torch.from_numpy(arr))


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(_idx_bytes(np.zeros((4, 4), np.uint8))[:-3])
    with pytest.raises(ValueError, match=r"header says shape \(4, 4\)"):
        read_idx(tmp_path / "short")
    (tmp_path / "float").write_bytes(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + b"\x00" * 4)
    with pytest.raises(ValueError, match="unsigned-byte"):
        read_idx(tmp_path / "float")


@pytest.mark.parametrize("layout", ["flat_gz", "flat_raw", "torchvision_raw"])
def test_fashion_mnist_from_root_folder(tmp_path, layout):
    root = tmp_path / "fm"
    folder = root / "FashionMNIST" / "raw" if layout == "torchvision_raw" else root
    arrays = _write_fashion_fixture(folder, gz=(layout != "flat_raw"))
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = load_fashion_mnist(split, root=root)
        images, labels = arrays[prefix]
        assert ds.images.shape == (len(labels), 1, 28, 28) and ds.images.dtype == torch.float32
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images).float() / 255)
        assert ds.images[0, 0, 3, 5] == 1.0 and ds.images[0, 0, 27, 0] == 0.0
        assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
        assert ds.classes == FASHION_MNIST_CLASSES and ds.classes[0] == "T-shirt/top"
        assert ds.name == f"fashion_mnist-{split}"


def test_fashion_mnist_from_env_var_and_decoded_cache(tmp_path, monkeypatch):
    arrays = _write_fashion_fixture(tmp_path / "env")
    monkeypatch.setenv("TFA_DATA_DIR", str(tmp_path / "env"))
    first = load_fashion_mnist("train")
    cached = list((tmp_path / "cache" / "data").glob("fashion_mnist-train-*.pt"))
    assert len(cached) == 1
    # the second load must come from the decoded cache, not from the IDX files
    monkeypatch.setattr(data_mod, "read_idx", lambda p: pytest.fail("IDX re-parsed despite the cache"))
    second = load_fashion_mnist("train")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.labels.tolist() == arrays["train"][1].tolist()


def test_explicit_root_wins_over_env_var(tmp_path, monkeypatch):
    _write_fashion_fixture(tmp_path / "a", n_train=4, seed=1)
    _write_fashion_fixture(tmp_path / "b", n_train=7, seed=2)
    monkeypatch.setenv("TFA_DATA_DIR", str(tmp_path / "b"))
    assert len(load_fashion_mnist("train", root=tmp_path / "a")) == 4
    assert len(load_fashion_mnist("train")) == 7


def test_missing_fashion_mnist_is_one_clear_error(tmp_path, monkeypatch, _isolated):
    monkeypatch.setattr(data_mod, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist("train", root=tmp_path / "empty")
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "TFA_DATA_DIR" in msg
    assert "online" in msg and "torchvision" in msg
    assert "Name or service not known" in msg  # why the download did not help
    assert str(tmp_path / "empty") in msg and str(tmp_path / "no-debian") in msg  # where it looked
    assert _isolated == [("fashion_mnist", "train")]
    with pytest.raises(DataNotFoundError, match=r"not attempted \(download=False\)"):
        load_fashion_mnist("test", download=False)
    assert len(_isolated) == 1  # download=False does not try


def test_bad_split_and_unknown_dataset():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_fashion_mnist("valid")
    with pytest.raises(ValueError, match="fashion_mnist, cifar10"):
        load_dataset("imagenet", "train")


DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (DEBIAN / "train-images-idx3-ubyte.gz").is_file(), reason="apt package dataset-fashion-mnist not installed")
def test_real_debian_fashion_mnist():
    train = load_dataset("fashion_mnist", "train")
    test = load_dataset("Fashion-MNIST", "test")
    assert len(train) == 60000 and len(test) == 10000
    assert train.image_shape == (1, 28, 28) and train.num_classes == 10
    assert train.class_counts().tolist() == [6000] * 10
    assert test.class_counts().tolist() == [1000] * 10
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    # T-shirts and bags differ on average: a smoke test that images and labels are aligned
    mean = [float(train.images[train.labels == k].mean()) for k in range(10)]
    assert mean[1] < mean[8]  # trousers are thin, bags are big


# ------------------------------------------------------------------ CIFAR-10 fixture


def _write_cifar_fixture(root: Path, str_keys=True, per_batch=2, n_test=3, seed=0):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    key = (lambda s: s) if str_keys else (lambda s: s.encode())
    out = {}
    for fname, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        batch = {key("batch_label"): f"{fname} of 6", key("labels"): labels, key("data"): data,
                 key("filenames"): [f"img{i}.png" for i in range(n)]}
        with open(folder / fname, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        out[fname] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({key("label_names"): list(CIFAR10_CLASSES), key("num_cases_per_batch"): per_batch, key("num_vis"): 3072}, f, protocol=2)
    return out


def test_cifar10_fixture_pixels_and_layout(tmp_path):
    batches = _write_cifar_fixture(tmp_path)
    data, labels = batches["test_batch"]
    # plant known values at (row 5, col 7) of image 1: R, G, B planes are 1024 values each
    data[1, 0 * 1024 + 5 * 32 + 7] = 255
    data[1, 1 * 1024 + 5 * 32 + 7] = 128
    data[1, 2 * 1024 + 5 * 32 + 7] = 3
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "t", "labels": labels, "data": data, "filenames": ["a", "b", "c"]}, f, protocol=2)

    test = load_cifar10("test", root=tmp_path)
    assert test.images.shape == (3, 3, 32, 32) and test.images.dtype == torch.float32
    assert test.images[1, :, 5, 7].tolist() == pytest.approx([1.0, 128 / 255, 3 / 255])
    # every pixel: channel c, row r, col w comes from data[i, c*1024 + r*32 + w]
    expected = torch.from_numpy(data).float().div(255).reshape(3, 3, 32, 32)
    assert torch.equal(test.images, expected)
    assert test.labels.tolist() == labels
    assert test.classes == CIFAR10_CLASSES and test.name == "cifar10-test"

    train = load_dataset("CIFAR-10", "train", root=tmp_path)
    assert len(train) == 10
    assert train.labels.tolist() == sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert torch.equal(train.images[8:10].reshape(2, -1), torch.from_numpy(batches["data_batch_5"][0]).float() / 255)


def test_cifar10_accepts_bytes_keys_and_env_var(tmp_path, monkeypatch):
    _write_cifar_fixture(tmp_path, str_keys=False)
    monkeypatch.setenv("TFA_DATA_DIR", str(tmp_path))
    ds = load_cifar10("test")
    assert len(ds) == 3 and ds.classes == CIFAR10_CLASSES


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar10_refuses_code_in_pickles(tmp_path):
    _write_cifar_fixture(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": _Evil(), "labels": []}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_cifar10("test", root=tmp_path)


def test_missing_cifar10_is_one_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_cifar10("train", root=tmp_path)
    msg = str(info.value)
    assert "CIFAR-10" in msg and "TFA_DATA_DIR" in msg and "online" in msg and "cifar-10-batches-py" in msg


# ------------------------------------------------------------------ subsampling


def test_subsample_stratified_exact_and_seeded():
    labels = torch.arange(1000) % 10
    idx = subsample_indices(labels, 50, seed=0)
    assert len(idx) == 50 and len(set(idx.tolist())) == 50
    assert torch.equal(idx, idx.sort().values)
    assert torch.bincount(labels[idx], minlength=10).tolist() == [5] * 10
    assert torch.equal(idx, subsample_indices(labels, 50, seed=0))
    assert not torch.equal(idx, subsample_indices(labels, 50, seed=1))


def test_subsample_uneven_classes_total_is_exact():
    labels = torch.tensor([0] * 70 + [1] * 20 + [2] * 10)
    idx = subsample_indices(labels, 11, seed=3)
    counts = torch.bincount(labels[idx], minlength=3).tolist()
    assert sum(counts) == 11 and counts == [8, 2, 1]  # quotas 7.7, 2.2, 1.1 -> largest remainder to class 0
    plain = subsample_indices(labels, 11, seed=3, stratified=False)
    assert len(plain) == 11 and len(set(plain.tolist())) == 11


def test_subsample_dataset():
    ds = _ds(n=30, k=3)
    sub = subsample(ds, 9, seed=0)
    assert len(sub) == 9 and sub.class_counts().tolist() == [3, 3, 3]
    assert sub.name == "toy-n9-s0"
    assert subsample(ds, 100) is ds
    with pytest.raises(ValueError, match="positive"):
        subsample(ds, 0)
