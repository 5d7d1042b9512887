"""Models sized for the tutorial: a small CNN for CPU, a ResNet-9 for the paper setting on GPU,
and softmax regression for closed-form checks.

All models map images ``x`` of shape ``[B, C, H, W]`` to logits ``f_θ(x)`` of shape ``[B, K]``.
Normalisation layers are BatchNorm (use eval mode for per-sample gradients) or
GroupNorm (independent of the batch, valid in both modes).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["SmallCNN", "ResNet9", "SoftmaxRegression", "count_parameters", "build_model"]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: choose 'batch', 'group' or 'none'")


def _conv_block(cin: int, cout: int, norm: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=(norm == "none")),
        _norm(norm, cout),
        nn.ReLU(),
    )


class SmallCNN(nn.Module):
    """Four 3×3 conv blocks (conv → norm → ReLU), max-pool after the first two,
    global average pool (``pool="max"``: global max pool, as ResNet-9), linear classifier.

    With ``widths=(16, 32, 64, 64)`` and a 1×28×28 input this has about 61k parameters
    and trains on Fashion-MNIST in well under a minute per epoch on 2 CPU cores.

    Args:
        in_channels: C of the input images.
        num_classes: K, the number of logits.
        widths: output channels of the four conv blocks.
        norm: ``"batch"``, ``"group"`` or ``"none"``.
        pool: the global pooling before the classifier, ``"avg"`` or ``"max"``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: Sequence[int] = (16, 32, 64, 64),
        norm: str = "batch",
        pool: str = "avg",
    ):
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"widths needs 4 entries, got {len(widths)}")
        w1, w2, w3, w4 = widths
        self.features = nn.Sequential(
            _conv_block(in_channels, w1, norm),
            nn.MaxPool2d(2),
            _conv_block(w1, w2, norm),
            nn.MaxPool2d(2),
            _conv_block(w2, w3, norm),
            _conv_block(w3, w4, norm),
        )
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = nn.AdaptiveAvgPool2d(1) if pool == "avg" else nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(w4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class _Residual(nn.Module):
    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(_conv_block(channels, channels, norm), _conv_block(channels, channels, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """ResNet-9 in the DAWNBench style (Page, 2018), for CIFAR-10-sized inputs on a GPU.

    About 6.6M parameters at ``width=64``; use ``width=16`` for a CPU-sized variant.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 64, norm: str = "batch"):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_block(in_channels, w, norm),
            _conv_block(w, 2 * w, norm),
            nn.MaxPool2d(2),
            _Residual(2 * w, norm),
            _conv_block(2 * w, 4 * w, norm),
            nn.MaxPool2d(2),
            _conv_block(4 * w, 8 * w, norm),
            nn.MaxPool2d(2),
            _Residual(8 * w, norm),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(8 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


class SoftmaxRegression(nn.Module):
    """Multinomial logistic regression f(x) = W vec(x) + b, W ∈ R^{K×d}.

    Its per-sample gradient has the closed form g = (p − e_y) [vec(x); 1]ᵀ, so Grad-Cos is
    cos(δ_i, δ_j)·cos(x̃_i, x̃_j) with δ = p − e_y and x̃ = [vec(x); 1].
    """

    def __init__(self, in_features: int, num_classes: int = 10, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters P."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_model(name: str, in_channels: int, num_classes: int, **kwargs) -> nn.Module:
    """Build a model by name: ``"small_cnn"``, ``"resnet9"`` or ``"softmax"`` (needs ``in_features``)."""
    if name == "small_cnn":
        return SmallCNN(in_channels, num_classes, **kwargs)
    if name == "resnet9":
        return ResNet9(in_channels, num_classes, **kwargs)
    if name == "softmax":
        return SoftmaxRegression(num_classes=num_classes, **kwargs)
    raise ValueError(f"unknown model {name!r}: choose 'small_cnn', 'resnet9' or 'softmax'")
