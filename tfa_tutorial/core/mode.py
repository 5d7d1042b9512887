"""Fast mode or the full setting: the one rule, in one place.

The course runs in one of two modes:

- **fast**: a stratified 12k-image subset and 3 epochs, so each notebook finishes in minutes on
  a laptop CPU or on Binder;
- **full**: all 60k training images and 6 epochs, meant for a GPU.

:func:`fast_mode` decides, first rule that applies wins:

1. the environment variable ``TFA_FAST``: ``1``/``true``/``yes``/``on`` → fast,
   ``0``/``false``/``no``/``off`` → full (any case; anything else is an error);
2. a choice saved with :func:`set_fast_mode` (``persist=True``), kept in the cache folder
   (``$TFA_CACHE_DIR/mode.json``), so that every notebook's kernel sees it;
3. the device: **fast when no CUDA device is available**, full on a GPU.

Switch without restarting JupyterLab::

    import tfa_tutorial as T
    T.set_fast_mode(False)               # this kernel, and every kernel started later
    T.set_fast_mode(None)                # back to the rule (forget the saved choice)

A notebook that has already built its experiment keeps its models: switch before
``shortcut_experiment()`` runs, or restart that notebook's kernel.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["ENV_FAST", "fast_mode", "if_fast", "mode_reason", "set_fast_mode", "describe_mode"]

ENV_FAST = "TFA_FAST"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SAVED_FILE = "mode.json"


def _env_choice() -> bool | None:
    raw = os.environ.get(ENV_FAST)
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{ENV_FAST}={raw!r} is not understood: use {ENV_FAST}=1 for fast mode, {ENV_FAST}=0 for "
        f"the full setting, or leave it unset (fast mode when no CUDA device is available)"
    )


def _saved_path() -> Path:
    from .cache import cache_dir  # the cache folder's rule lives in cache.py

    return cache_dir(create=False) / _SAVED_FILE


def _saved_choice() -> bool | None:
    path = _saved_path()
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text()).get("fast")
    except (OSError, ValueError, AttributeError) as err:
        raise ValueError(
            f"the saved mode in {path} cannot be read ({err}); delete the file or call "
            "tfa_tutorial.set_fast_mode(None)"
        ) from err
    if not isinstance(value, bool):
        raise ValueError(f"the saved mode in {path} must be true or false, found {value!r}; "
                         "call tfa_tutorial.set_fast_mode(None) to reset it")
    return value


def _decide() -> tuple[bool, str]:
    env = _env_choice()
    if env is not None:
        return env, f"{ENV_FAST}={os.environ[ENV_FAST].strip()} is set"
    saved = _saved_choice()
    if saved is not None:
        return saved, "saved with tfa_tutorial.set_fast_mode()"
    if torch.cuda.is_available():
        return False, "a CUDA device is available"
    return True, "no CUDA device is available"


def fast_mode() -> bool:
    """True for fast mode, False for the full setting (rule in the module docstring)."""
    return _decide()[0]


def mode_reason() -> str:
    """Why :func:`fast_mode` decided as it did, e.g. ``"no CUDA device is available"``."""
    return _decide()[1]


def if_fast(fast: Any, full: Any) -> Any:
    """``fast`` in fast mode, ``full`` otherwise: ``n_train = if_fast(2000, 60000)``."""
    return fast if fast_mode() else full


def set_fast_mode(fast: bool | None, persist: bool = True) -> None:
    """Choose the mode for this kernel (and, with ``persist``, for every kernel started later).

    ``fast=True`` / ``False`` picks fast mode / the full setting; ``None`` goes back to the
    device rule. This sets ``TFA_FAST`` in this process and, with ``persist=True``, saves (or
    forgets) the choice in ``$TFA_CACHE_DIR/mode.json``. A ``TFA_FAST`` set before Jupyter started
    is replaced in this kernel only.
    """
    if fast is not None and not isinstance(fast, bool):
        raise TypeError(f"fast must be True, False or None, got {fast!r}")
    if fast is None:
        os.environ.pop(ENV_FAST, None)
    else:
        os.environ[ENV_FAST] = "1" if fast else "0"
    if not persist:
        return
    path = _saved_path()
    if fast is None:
        path.unlink(missing_ok=True)
    else:
        from .cache import atomic_write

        atomic_write(path, lambda f: f.write(json.dumps({"fast": fast}).encode()))


def describe_mode() -> str:
    """One line for a notebook's header: the mode, why, and how to switch."""
    fast, why = _decide()
    if fast:
        return (f"Mode: fast ({why}). For the full setting: tfa_tutorial.set_fast_mode(False) "
                f"before the experiment is built, or start Jupyter with {ENV_FAST}=0.")
    return (f"Mode: full setting ({why}). For fast mode: tfa_tutorial.set_fast_mode(True) "
            f"before the experiment is built, or start Jupyter with {ENV_FAST}=1.")
