"""Cache folder, atomic writes, weights-only checkpoints and fast mode."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from tfa_tutorial.core.cache import (
    CheckpointError,
    atomic_save,
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    cache_dir,
    load_checkpoint,
    save_checkpoint,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_cache_dir_follows_env_var_and_is_created(tmp_path, monkeypatch):
    target = tmp_path / "somewhere" / "cache"
    monkeypatch.setenv("TFA_CACHE_DIR", str(target))
    assert cache_dir() == target and target.is_dir()
    sub = cache_dir("checkpoints", "x")
    assert sub == target / "checkpoints" / "x" and sub.is_dir()


def test_cache_dir_default_is_under_home(tmp_path, monkeypatch):
    monkeypatch.delenv("TFA_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "tfa_tutorial"
    assert cache_dir().is_dir()


def test_atomic_write_bytes_creates_and_replaces(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(path, b"first")
    assert path.read_bytes() == b"first"
    atomic_write_bytes(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert _leftovers(path.parent) == []


def test_writer_failing_midway_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old content")

    def half_then_crash(f):
        f.write(b"partial new cont")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, half_then_crash)
    assert path.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []


def test_torch_save_failing_midway_keeps_the_old_file(tmp_path):
    path = tmp_path / "t.pt"
    atomic_torch_save({"x": torch.arange(3)}, path)
    with pytest.raises(Exception):
        # the tensor is written first, then pickling the lambda fails
        atomic_torch_save({"big": torch.zeros(10_000), "bad": lambda: 0}, path)
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(3))
    assert _leftovers(tmp_path) == []


def test_atomic_save_dispatches_on_type_and_suffix(tmp_path):
    atomic_save(b"\x00\x01", tmp_path / "a.bin")
    atomic_save("héllo", tmp_path / "b.txt")
    atomic_save({"k": [1, 2]}, tmp_path / "c.json")
    atomic_save({"t": torch.ones(2)}, tmp_path / "d.pt")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert json.loads((tmp_path / "c.json").read_text()) == {"k": [1, 2]}
    assert torch.equal(torch.load(tmp_path / "d.pt", weights_only=True)["t"], torch.ones(2))
    with pytest.raises(TypeError):
        atomic_save({"x": object()}, tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text()) == {"k": [1, 2]}
    with pytest.raises(TypeError, match="bytes"):
        atomic_write_bytes(tmp_path / "e.bin", "not bytes")


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


def test_checkpoint_round_trip(tmp_path):
    model = _net(0)
    model.train()(torch.randn(8, 4))  # moves the BatchNorm running stats off their defaults
    meta = {"epochs": 3, "acc": 0.91, "tags": ["a", "b"], "shape": (1, 28, 28), "nested": {"x": None, "t": torch.ones(2)}}
    path = save_checkpoint(model, tmp_path / "ck" / "m.pt", meta)
    state, got_meta = load_checkpoint(path)
    assert set(state) == set(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v), k
    assert got_meta["epochs"] == 3 and got_meta["tags"] == ["a", "b"] and got_meta["shape"] == (1, 28, 28)
    assert torch.equal(got_meta["nested"]["t"], torch.ones(2))

    fresh = _net(1)
    assert not torch.equal(fresh[0].weight, model[0].weight)
    loaded, _ = load_checkpoint(path, fresh)
    assert loaded is fresh
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_load_uses_weights_only(tmp_path):
    # a file that needs full unpickling (a custom class) must be refused, not executed
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "meta": {"obj": _Custom()}}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(path)


class _Custom:
    pass


def test_bad_meta_fails_at_save_time_and_writes_nothing(tmp_path):
    path = tmp_path / "m.pt"
    with pytest.raises(TypeError, match=r"meta\['cfg'\]\['obj'\]"):
        save_checkpoint(_net(0), path, {"cfg": {"obj": _Custom()}})
    assert not path.exists()


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="delete it"):
        load_checkpoint(tmp_path / "junk.pt")
    atomic_torch_save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a tfa_tutorial checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    path = save_checkpoint(_net(0), tmp_path / "m.pt", {})
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(path, nn.Linear(4, 2))


