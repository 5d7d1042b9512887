"""The on-disk cache: where it lives, atomic writes, checkpoints, and fast mode.

- :func:`cache_dir` is ``$TFA_CACHE_DIR`` or ``~/.cache/tfa_tutorial``, created on demand. A
  relative ``$TFA_CACHE_DIR`` is resolved against the working directory at the moment
  ``tfa_tutorial`` was imported (not the one of each call), so a notebook that changes directory
  keeps one cache.
- A read-only cache is read, never fatal: what exists is used, and what cannot be written is
  recomputed next time (callers warn when work would otherwise be lost).
- Every cache file is written **atomically**: to a temporary file in the same folder, flushed and
  fsync'ed, then moved over the target with :func:`os.replace`. A writer that fails midway leaves
  the previous file untouched and no temporary file behind.
- Checkpoints are read with ``torch.load(..., weights_only=True)`` **always**, so loading a cache
  file never runs pickled code. Their metadata is therefore restricted to plain values
  (str, int, float, bool, None, lists, tuples, str-keyed dicts, tensors). Weights holding NaN
  or ±inf are refused on save and on load (a diverged model is never cached or reused).
- :func:`fast_mode` and :func:`if_fast` are re-exported from :mod:`tfa_tutorial.core.mode`, which holds
  the rule that picks fast mode or the full setting.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch
from torch import nn

from .mode import ENV_FAST, fast_mode, if_fast
from .validation import check_finite

__all__ = [
    "ENV_CACHE_DIR",
    "ENV_FAST",
    "CheckpointError",
    "cache_dir",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_save",
    "atomic_torch_save",
    "save_checkpoint",
    "load_checkpoint",
    "fast_mode",
    "if_fast",
]

ENV_CACHE_DIR = "TFA_CACHE_DIR"
_CHECKPOINT_FORMAT = 1
_IMPORT_CWD = Path.cwd()  # a relative $TFA_CACHE_DIR is resolved against this, once


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used (corrupt, wrong format, or wrong model)."""


def cache_dir(*parts: str, create: bool = True) -> Path:
    """The cache folder (``$TFA_CACHE_DIR``, default ``~/.cache/tfa_tutorial``), or a subfolder of
    it named by ``parts``, as an absolute path; created if missing (``create=False``: only the
    path; writers create it with :func:`atomic_write`, so a read-only cache can still be read).

    A relative ``$TFA_CACHE_DIR`` (e.g. ``cache``) is resolved against the working directory at
    the time ``tfa_tutorial`` was imported, whatever the working directory of later calls."""
    base = Path(os.environ.get(ENV_CACHE_DIR) or str(Path.home() / ".cache" / "tfa_tutorial")).expanduser()
    if not base.is_absolute():
        base = _IMPORT_CWD / base
    path = base.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike, write_fn: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write_fn(f)`` on a temporary binary file next to ``path``, then atomically move it
    to ``path``. If ``write_fn`` raises, ``path`` keeps its old content and the temporary file is
    removed. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not possible on every platform/file system.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"atomic_write_bytes needs bytes, got {type(data).__name__}")
    return atomic_write(path, lambda f: f.write(data))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)``, atomically. Keep ``obj`` to tensors and plain values so that it
    can be read back with ``torch.load(path, weights_only=True)``."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """Save ``obj`` atomically, choosing the format from its type and the file suffix:
    ``bytes`` as raw bytes, ``str`` as UTF-8 text, anything else to a ``.json`` path as JSON, and
    otherwise with ``torch.save`` (see :func:`atomic_torch_save`)."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return atomic_write_bytes(path, obj)
    if isinstance(obj, str):
        return atomic_write_bytes(path, obj.encode("utf-8"))
    if Path(path).suffix == ".json":
        text = json.dumps(obj, indent=1, sort_keys=True)  # fails before anything is written
        return atomic_write_bytes(path, text.encode("utf-8"))
    return atomic_torch_save(obj, path)


def _check_plain(value: Any, where: str) -> None:
    """Raise a TypeError naming the first value that ``weights_only=True`` could not load."""
    if value is None or isinstance(value, (str, int, float, bool, torch.Tensor, torch.dtype, torch.Size)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint meta key {where}[{k!r}] must be a str or int, got {type(k).__name__}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(
        f"checkpoint meta value {where} has type {type(value).__name__}; only str, int, float, bool, "
        "None, lists, tuples, dicts and tensors can be loaded with weights_only=True"
    )


def save_checkpoint(model: nn.Module | dict, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Save ``model``'s state dict (moved to CPU) and ``meta`` atomically to ``path``.

    ``meta`` holds plain values only (checked here, so a bad value fails at save time, not when
    the checkpoint is loaded)."""
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    _check_plain(meta, "meta")
    state = model.state_dict() if isinstance(model, nn.Module) else model
    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint needs an nn.Module or a state dict, got {type(model).__name__}")
    state = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    _check_state_finite(state, f"the weights to save to {path}", "refusing to save a diverged model; retrain it")
    payload = {"format": _CHECKPOINT_FORMAT, "state_dict": state, "meta": meta}
    return atomic_torch_save(payload, path)


def _check_state_finite(state: dict, where: str, hint: str) -> None:
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            check_finite(v, f"{where}: entry {k!r}", hint)


def load_checkpoint(
    path: str | os.PathLike, model: nn.Module | None = None, map_location: str | torch.device = "cpu"
) -> tuple[dict | nn.Module, dict]:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Returns ``(state_dict, meta)``, or ``(model, meta)`` with the weights loaded into ``model``
    when it is given (strictly: every key must match).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt file, or not written by save_checkpoint
        raise CheckpointError(
            f"cannot read checkpoint {path} with weights_only=True ({type(err).__name__}: {err}); "
            "delete it to recompute"
        ) from err
    if not isinstance(payload, dict) or "state_dict" not in payload or "meta" not in payload:
        raise CheckpointError(f"{path} is not a tfa_tutorial checkpoint (no 'state_dict'/'meta'); delete it to recompute")
    state, meta = payload["state_dict"], payload["meta"]
    try:
        _check_state_finite(state, f"checkpoint {path}", "delete it to recompute")
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    if model is None:
        return state, meta
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit this {type(model).__name__}: {err}. "
            "Delete the file (or retrain) if the model definition changed."
        ) from err
    return model, meta
