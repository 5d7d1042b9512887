"""Stable short hashes for cache keys: of tensors (shape, dtype and bytes) and of JSON-able settings.

    digest(model_state_tensor, images, labels, ("countsketch", 4096))   # '3f9c0d…' (16 hex digits)
    config_hash({"name": "shortcut", "seed": 0, "spec": spec})         # '0a1b2c…' (12 hex digits)

Every cache key of the package is made here, so two places never hash the same thing differently.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

__all__ = ["digest", "config_hash"]


def digest(*parts: Any, length: int = 16) -> str:
    """A ``length``-hex-digit SHA-256 of ``parts`` in order.

    A tensor contributes its shape, dtype and raw bytes (any dtype, any device, any strides);
    ``bytes`` are hashed as they are; anything else by its ``repr``. Parts are separated, so
    ``digest(a, b) != digest(ab)``.
    """
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            t = part.detach().cpu().contiguous()
            h.update(f"tensor{tuple(t.shape)}{t.dtype}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(part, (bytes, bytearray)):
            h.update(b"bytes|" + bytes(part))
        else:
            h.update(f"repr|{part!r}".encode())
        h.update(b";")
    return h.hexdigest()[:length]


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, (Path, torch.device, torch.dtype)):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"config value of type {type(obj).__name__} cannot be hashed; use plain values")


def config_hash(config: Any) -> str:
    """A 12-hex-digit hash of a JSON-able config (key order ignored; PatchSpecs and small tensors allowed)."""
    text = json.dumps(config, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def config_json(config: Any) -> Any:
    """``config`` as plain JSON values, exactly as :func:`config_hash` sees it (for checkpoint metadata)."""
    return json.loads(json.dumps(config, default=_json_default))
