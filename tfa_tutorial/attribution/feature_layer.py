"""Where a CNN's features live: the spatial map A ``[B, F, h, w]`` whose global pooling feeds the final
``nn.Linear`` (the penultimate "neural features"; also Grad-CAM's layer).

    layer = find_feature_layer(model, x_train[0])   # FeatureLayer(module, name, classifier, pooling, map_size)
    layer.module, layer.pooling, layer.weight.shape  # e.g. SmallCNN.features, "avg", [K, F]
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..core.validation import check_inputs, check_model_ready

__all__ = ["FeatureLayer", "find_feature_layer"]


@dataclass(frozen=True)
class FeatureLayer:
    """Where a model's neural features live.

    Attributes:
        module: the module whose output is the feature map A ``[B, F, h, w]``.
        name: its qualified name in the model (``""`` for the model itself).
        classifier: the final ``nn.Linear`` (weight W ``[K, F]``).
        pooling: ``"avg"`` or ``"max"``: h = pool(A) is the classifier's input.
        map_size: ``(h, w)`` of A.
    """

    module: nn.Module
    name: str
    classifier: nn.Linear
    pooling: str
    map_size: tuple[int, int]

    @property
    def weight(self) -> torch.Tensor:
        """W ``[K, F]`` of the final linear layer (detached)."""
        return self.classifier.weight.detach()

    @property
    def num_features(self) -> int:
        return self.classifier.in_features


_NOT_FITTING = (
    "neural features need a model whose output is a final nn.Linear applied to the global (average or "
    "max) pooling of a spatial feature map [B, F, h, w] (e.g. SmallCNN, ResNet9: features → pool → Linear)"
)


@torch.no_grad()
def find_feature_layer(model: nn.Module, example: torch.Tensor) -> FeatureLayer:
    """Find the penultimate feature map of ``model`` with forward hooks on one ``example`` ``[C, H, W]``.

    The model must end in an ``nn.Linear`` whose input h ``[B, F]`` is the global average (or max)
    pool of some module's output A ``[B, F, h, w]``; of the modules whose pooled output equals h,
    the last one to finish is returned (e.g. SmallCNN's ``features``). Raises ValueError naming
    what does not fit otherwise."""
    check_model_ready(model)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    x = check_inputs(model, example.unsqueeze(0), "example").to(device=device, dtype=dtype)
    names = {m: n for n, m in model.named_modules()}
    finished: list[tuple[nn.Module, torch.Tensor]] = []
    linear_calls: list[tuple[nn.Linear, torch.Tensor, torch.Tensor]] = []

    def hook(mod, inputs, out):
        if isinstance(mod, nn.Linear) and inputs and isinstance(inputs[0], torch.Tensor):
            linear_calls.append((mod, inputs[0], out))
        if isinstance(out, torch.Tensor) and out.ndim == 4:
            finished.append((mod, out))

    hooks = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        raise ValueError(f"{_NOT_FITTING}; this model returns {type(logits).__name__} of shape {tuple(getattr(logits, 'shape', ()))}")
    if not linear_calls:
        raise ValueError(f"{_NOT_FITTING}; this model has no nn.Linear layer")
    lin, h_in, out = linear_calls[-1]
    if out.shape != logits.shape or not torch.equal(out, logits):
        raise ValueError(f"{_NOT_FITTING}; the last nn.Linear ({names.get(lin, '?')!r}) is not the model's output layer")
    if h_in.ndim != 2:
        raise ValueError(f"{_NOT_FITTING}; the final nn.Linear gets input of shape {tuple(h_in.shape)}, not [B, F]")
    tol = 1e-5 * (1 + h_in.abs().max())
    for mod, a in reversed(finished):
        if a.shape[1] != h_in.shape[1] or a.shape[-1] * a.shape[-2] <= 1:
            continue
        for pooling, pooled in (("avg", a.mean(dim=(2, 3))), ("max", a.amax(dim=(2, 3)))):
            if (pooled - h_in).abs().max() <= tol:
                return FeatureLayer(mod, names.get(mod, ""), lin, pooling, tuple(a.shape[-2:]))
    raise ValueError(
        f"{_NOT_FITTING}; no module's output pools to the input of the final Linear "
        f"({names.get(lin, '?')!r}, {h_in.shape[1]} features)"
    )
