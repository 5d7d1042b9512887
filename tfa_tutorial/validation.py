"""Input checks shared by the attribution code: bad input gets a clear error naming the problem,
never a deep torch traceback or a silent wrong answer (SPEC §7)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["check_model_ready", "check_inputs_targets", "num_classes"]

_STATEFUL = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def check_model_ready(model: nn.Module) -> None:
    """Per-sample gradients are defined only for a deterministic, per-example model: BatchNorm must
    use its running statistics and Dropout must be off, i.e. ``model.eval()``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    if model.training:
        bad = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _STATEFUL)})
        if bad:
            raise ValueError(
                f"the model is in train mode and contains {', '.join(bad)}: per-sample gradients need "
                "batch-independent, deterministic layers. Call model.eval() first."
            )


@torch.no_grad()
def num_classes(model: nn.Module, example: torch.Tensor) -> int:
    """K, read off one forward pass of ``example`` ``[C, H, W]``."""
    device = next(model.parameters()).device
    try:
        out = model(example.unsqueeze(0).to(device))
    except RuntimeError as err:
        raise ValueError(
            f"the model cannot take inputs of shape {tuple(example.shape)} (per example): {err}"
        ) from err
    if out.ndim != 2:
        raise ValueError(f"the model must return logits of shape [B, K], got {tuple(out.shape)}")
    return out.shape[1]


def check_inputs(model: nn.Module, inputs: torch.Tensor, name: str = "inputs") -> torch.Tensor:
    """``inputs`` must be a floating ``[N, ...]`` tensor with N ≥ 1 and finite values, cast to the
    model's dtype."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(f"{name} must be floating point (images in [0, 1]), got dtype {inputs.dtype}")
    if inputs.ndim < 2:
        raise ValueError(f"{name} must be a batch [N, C, H, W], got shape {tuple(inputs.shape)}")
    if len(inputs) == 0:
        raise ValueError(f"{name} is empty: nothing to attribute")
    if not torch.isfinite(inputs).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    dtype = next(model.parameters()).dtype
    return inputs.to(dtype)


def check_inputs_targets(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, name: str = "inputs"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a batch and its labels against the model; returns ``(inputs, targets.long())``."""
    inputs = check_inputs(model, inputs, name)
    if not isinstance(targets, torch.Tensor):
        targets = torch.as_tensor(targets)
    if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"labels for {name} must be integer class indices, got dtype {targets.dtype}")
    if targets.ndim != 1:
        raise ValueError(f"labels for {name} must be 1-D [N], got shape {tuple(targets.shape)}")
    if len(targets) != len(inputs):
        raise ValueError(f"{name} has {len(inputs)} examples but {len(targets)} labels")
    k = num_classes(model, inputs[0])
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"labels for {name} must lie in [0, {k}) for this model, found range [{lo}, {hi}]")
    return inputs, targets.long()
