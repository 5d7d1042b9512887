"""Input checks shared by the whole package: bad input gets a clear error naming the problem,
never a deep torch traceback or a silent wrong answer.

Options (``chunk_size``, ``n_samples``, ``window``, ``noise``, ``lr``, ...) go through
:func:`check_int` and :func:`check_real`; tensors of results and weights through
:func:`check_finite`; images that must lie in [0, 1] through :func:`check_unit_images`; boolean
flags through :func:`check_flags`."""
from __future__ import annotations

import math
import numbers

import torch
from torch import nn

__all__ = [
    "NonFiniteError",
    "check_model_ready",
    "check_inputs_targets",
    "check_one_image",
    "check_int",
    "check_real",
    "check_finite",
    "check_unit_images",
    "check_flags",
    "check_index",
    "is_whole_number",
    "num_classes",
]


class NonFiniteError(ValueError):
    """A tensor that must be finite holds NaN or ±inf (input data, a loss, weights or scores)."""


def is_whole_number(value) -> bool:
    """Python and NumPy integers and 0-d integer tensors; never ``bool``."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return False
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool
    return isinstance(value, numbers.Integral)


def check_int(value, name: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is a whole number (Python, NumPy or a 0-d integer tensor; not
    a float, not a bool) in ``[minimum, maximum]``; otherwise a ValueError naming ``name``."""
    lo = "" if minimum is None else f" ≥ {minimum}"
    hi = "" if maximum is None else f" and ≤ {maximum}"
    if not is_whole_number(value):
        raise ValueError(f"{name} must be a whole number{lo}{hi}, got {value!r} ({type(value).__name__}); "
                         "pass an int")
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be a whole number{lo}{hi}, got {v}")
    return v


def check_real(value, name: str, minimum: float | None = None, maximum: float | None = None,
               strict_minimum: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[minimum, maximum]`` (``(minimum, maximum]`` with
    ``strict_minimum``); NaN, ±inf, bools and non-numbers raise a ValueError naming ``name``."""
    if isinstance(value, torch.Tensor) and value.ndim == 0 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v}")
    too_low = minimum is not None and (v <= minimum if strict_minimum else v < minimum)
    if too_low or (maximum is not None and v > maximum):
        left = "(" if strict_minimum else "["
        lo = "-inf" if minimum is None else f"{minimum:g}"
        hi = "inf" if maximum is None else f"{maximum:g}"
        raise ValueError(f"{name} must be a number in {left}{lo}, {hi}], got {v:g}")
    return v


def check_finite(t: torch.Tensor, name: str, hint: str = "") -> torch.Tensor:
    """Raise :class:`NonFiniteError` when ``t`` holds NaN or ±inf, saying how many and where the
    first one is; returns ``t``. ``hint`` (what to do) is appended to the message."""
    if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()):
        # fast path, one read and no mask: a NaN or ±inf makes the sum non-finite (a finite sum
        # proves every value finite; an overflowing sum falls through to the exact check)
        if t.numel() == 0 or bool(torch.isfinite(t.detach().sum())):
            return t
        bad = ~torch.isfinite(t.detach())
        if bad.any():
            n_nan = int(torch.isnan(t.detach()).sum())
            first = tuple(int(i) for i in bad.nonzero()[0]) if t.ndim else ()
            raise NonFiniteError(
                f"{name} contains {int(bad.sum())} non-finite value(s) ({n_nan} NaN) of {t.numel()}, "
                f"the first at index {first}" + (f"; {hint}" if hint else "")
            )
    return t


def check_unit_images(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Images must be floating point with finite values in [0, 1] (the package's convention: a
    patch value 1.0 is white, occlusion fill 0 is black). uint8 or [0, 255] images are refused
    rather than guessed at; convert them with ``images.float() / 255``."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be floating point with values in [0, 1], got dtype {images.dtype}; "
                        "convert uint8 images with images.float() / 255")
    check_finite(images, name, "images must hold finite values in [0, 1]")
    if images.numel():
        lo, hi = (float(v) for v in torch.aminmax(images.detach()))
        if lo < 0.0 or hi > 1.0:
            hint = ""
            if lo >= 0.0 and 2.0 < hi <= 255.0:
                hint = " (it looks like [0, 255]: divide by 255)"
            elif lo < 0.0:
                hint = " (normalised images? the package works on raw pixel values in [0, 1])"
            raise ValueError(f"{name} must have values in [0, 1], found range [{lo:.4g}, {hi:.4g}]{hint}")
    return images


def check_flags(flags, name: str, length: int | None = None) -> torch.Tensor:
    """Boolean flags ``[N]`` as a bool tensor. Integer or float 0/1 values are accepted; any
    other value (class ids, scores) is refused instead of being cast to True."""
    t = flags if isinstance(flags, torch.Tensor) else torch.as_tensor(flags)
    if t.dtype != torch.bool:
        if t.is_complex() or (t.numel() and not bool(((t == 0) | (t == 1)).all())):
            found = t.flatten().unique()[:6].tolist()
            raise ValueError(
                f"{name} must be boolean flags (True/False or 0/1), got dtype {t.dtype} with values {found}...; "
                "for class ids write e.g. (labels == target_class)"
            )
        t = t.bool()
    if length is not None and t.shape != (length,):
        raise ValueError(f"{name} must have shape [{length}], got {tuple(t.shape)}")
    return t


def check_index(value, n: int, what: str = "training index", items: str = "training images") -> int:
    """``value`` as an int index in ``[0, n)`` (NumPy integers and 0-d integer tensors accepted);
    a ValueError otherwise, in the explorer's words: "training index 99 is out of range: there
    are 6 training images (0–5)"."""
    if not is_whole_number(value) or not 0 <= int(value) < n:
        raise ValueError(f"{what} {value!r} is out of range: there are {n} {items} (0–{n - 1})")
    return int(value)

_STATEFUL = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def check_model_ready(model: nn.Module) -> None:
    """Per-sample gradients are defined only for a deterministic, per-example model: BatchNorm must
    use its running statistics and Dropout must be off, i.e. ``model.eval()``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    check_model_finite(model)
    if model.training:
        bad = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _STATEFUL)})
        if bad:
            raise ValueError(
                f"the model is in train mode and contains {', '.join(bad)}: per-sample gradients need "
                "batch-independent, deterministic layers. Call model.eval() first."
            )


def check_model_finite(model: nn.Module) -> None:
    """Refuse a model whose parameters or buffers hold NaN or ±inf (e.g. after training diverged):
    every score, map and prediction computed from it would be meaningless."""
    for kind, items in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for n, t in items:
            if t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()):
                raise NonFiniteError(
                    f"the model's {kind} {n!r} contains NaN or infinite values: training diverged or the "
                    "weights were damaged. Retrain (lower the learning rate) or reload a good checkpoint."
                )


@torch.no_grad()
def num_classes(model: nn.Module, example: torch.Tensor) -> int:
    """K, read off one forward pass of ``example`` ``[C, H, W]``."""
    device = next(model.parameters()).device
    try:
        out = model(example.unsqueeze(0).to(device))
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as err:  # noqa: BLE001 — any failure of the forward pass is a shape/type mismatch here
        hint = ""
        if example.ndim == 2:
            hint = " Images must be [N, C, H, W]: add the channel dimension with images.unsqueeze(1)."
        elif example.ndim == 4 and example.shape[0] == 1:
            hint = " One image [1, C, H, W] was given where a batch [N, C, H, W] or an image [C, H, W] is expected."
        raise ValueError(
            f"the model cannot take inputs of shape {tuple(example.shape)} (per example): "
            f"{type(err).__name__}: {err}.{hint}"
        ) from err
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise ValueError(f"the model must return logits of shape [B, K], got {tuple(getattr(out, 'shape', ()))}")
    return out.shape[1]


def check_inputs(model: nn.Module, inputs: torch.Tensor, name: str = "inputs") -> torch.Tensor:
    """``inputs`` must be a floating ``[N, ...]`` tensor with N ≥ 1 and finite values in [0, 1]
    that the model accepts (checked with one forward pass of the first example, so a wrong shape
    is reported here, before any gradient), cast to the model's dtype."""
    return _checked_inputs(model, inputs, name)[0]


def _checked_inputs(model: nn.Module, inputs: torch.Tensor, name: str) -> tuple[torch.Tensor, int]:
    """``(inputs cast to the model's dtype, K)`` after the checks of :func:`check_inputs`."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(inputs).__name__}")
    if not inputs.is_floating_point():
        raise TypeError(f"{name} must be floating point (images in [0, 1]), got dtype {inputs.dtype}")
    if inputs.ndim < 2:
        raise ValueError(f"{name} must be a batch [N, C, H, W], got shape {tuple(inputs.shape)}")
    if len(inputs) == 0:
        raise ValueError(f"{name} is empty: nothing to attribute")
    if inputs.ndim == 3 and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        raise ValueError(f"{name} must be images [N, C, H, W] for this convolutional model, got shape "
                         f"{tuple(inputs.shape)}: add the channel dimension with {name}.unsqueeze(1)")
    check_unit_images(inputs, name)
    dtype = next(model.parameters()).dtype
    inputs = inputs.to(dtype)
    return inputs, num_classes(model, inputs[0])


def check_one_image(model: nn.Module, image: torch.Tensor, name: str) -> torch.Tensor:
    """One image ``[C, H, W]`` checked like :func:`check_inputs`, returned as a batch ``[1, C, H, W]``.
    A batch of one ``[1, C, H, W]`` given to a convolutional model is refused by name."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be one image tensor [C, H, W], got {type(image).__name__}")
    if image.ndim == 4 and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        raise ValueError(f"{name} must be one image [C, H, W], got shape {tuple(image.shape)} (a batch): "
                         f"pass {name}[0] for its first image")
    return check_inputs(model, image.unsqueeze(0), name)


def check_inputs_targets(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, name: str = "inputs"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a batch and its labels against the model; returns ``(inputs, targets.long())``."""
    inputs, k = _checked_inputs(model, inputs, name)
    if not isinstance(targets, torch.Tensor):
        targets = torch.as_tensor(targets)
    if targets.is_floating_point() or targets.dtype == torch.bool or targets.is_complex():
        raise TypeError(f"labels for {name} must be integer class indices, got dtype {targets.dtype}")
    if targets.ndim != 1:
        raise ValueError(f"labels for {name} must be 1-D [N], got shape {tuple(targets.shape)}")
    if len(targets) != len(inputs):
        raise ValueError(f"{name} has {len(inputs)} examples but {len(targets)} labels")
    lo, hi = int(targets.min()), int(targets.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"labels for {name} must lie in [0, {k}) for this model, found range [{lo}, {hi}]")
    return inputs, targets.long()
