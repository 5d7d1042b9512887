"""Display reductions of signed ``[..., C, H, W]`` maps to ``[..., H, W]`` — explicit, never
silent: first the sign (signed, positive part, negative part, absolute value), then
the channels (sum or max)."""
from __future__ import annotations

import torch

__all__ = ["SIGNS", "CHANNEL_REDUCTIONS", "reduce_map"]

SIGNS = ("signed", "positive", "negative", "absolute")
CHANNEL_REDUCTIONS = ("sum", "max")


def reduce_map(maps: torch.Tensor, sign: str = "signed", channels: str = "sum") -> torch.Tensor:
    """Reduce ``[..., C, H, W]`` to ``[..., H, W]``.

    Args:
        sign: ``"signed"`` keeps the sign, ``"positive"`` max(m, 0), ``"negative"`` max(−m, 0)
            (opposing evidence, as a non-negative map), ``"absolute"`` |m|.
        channels: ``"sum"`` (default) or ``"max"`` over C. For a signed map ``"max"`` picks the
            largest signed value per pixel.
    """
    if sign not in SIGNS:
        raise ValueError(f"sign must be one of {SIGNS}, got {sign!r}")
    if channels not in CHANNEL_REDUCTIONS:
        raise ValueError(f"channels must be one of {CHANNEL_REDUCTIONS}, got {channels!r}")
    if maps.ndim < 3:
        raise ValueError(f"maps must be [..., C, H, W], got shape {tuple(maps.shape)}")
    if sign == "positive":
        maps = maps.clamp_min(0)
    elif sign == "negative":
        maps = (-maps).clamp_min(0)
    elif sign == "absolute":
        maps = maps.abs()
    return maps.sum(-3) if channels == "sum" else maps.amax(-3)
