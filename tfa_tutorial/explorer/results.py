"""What the explorer returns: the test image, the ranked training items with their maps, one item's
detail, and the neural-feature view (plain dataclasses, no logic)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .settings import ExplorerSettings

__all__ = ["TestInfo", "TrainItem", "Detail", "ExplorerResult", "NeuronView", "NeuralFeaturesView"]


@dataclass
class TestInfo:
    """The chosen test image and the model's view of it."""

    test_set: str
    index: int
    image: torch.Tensor  # [C, H, W]
    label: int
    pred: int
    probs: torch.Tensor  # [K]
    target: int  # the label whose loss gradient is explained
    label_mode: str
    flipped: bool | None  # in the caller's list of shortcut-flipped test images (None: no list)
    classes: tuple[str, ...]

    @property
    def label_name(self) -> str:
        return self.classes[self.label]

    @property
    def pred_name(self) -> str:
        return self.classes[self.pred]

    @property
    def target_name(self) -> str:
        return self.classes[self.target]

    @property
    def correct(self) -> bool:
        return self.pred == self.label

    def top_classes(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` most probable classes as ``(name, probability)``."""
        p, i = self.probs.topk(min(n, len(self.probs)))
        return [(self.classes[int(c)], float(v)) for v, c in zip(p, i)]


@dataclass
class TrainItem:
    """One ranked training image with its TFA map."""

    rank: int  # 1 = strongest
    kind: str  # "proponent" or "opponent"
    index: int
    label: int
    label_name: str
    patched: bool | None
    score: float
    image: torch.Tensor  # [C, H, W]
    mask: torch.Tensor | None  # [H, W] bool, the patch (ground truth), or None
    map: torch.Tensor | None  # [C, H, W] signed TFA map ([1, H, W] by "decomposition"; None: ranking only)
    shown: torch.Tensor | None  # [H, W] after the display reduction
    index_score: float | None = None  # the index's (possibly projected) estimate of ``score``


@dataclass
class Detail:
    """One training image, large: raw TFA, the explorer's TFA map and the two-step baseline."""

    index: int
    label: int
    label_name: str
    patched: bool | None
    score: float
    image: torch.Tensor
    mask: torch.Tensor | None
    raw: torch.Tensor  # [H, W] reduced, the paper's raw gradient map (n_samples = 0)
    smooth: torch.Tensor  # [H, W] reduced, the explorer's map: its method (with n and σ for "gradient")
    two_step: torch.Tensor  # [H, W] reduced, SmoothGrad of the image's own logit, same n and σ
    n_samples: int
    noise: float
    method: str = "gradient"  # the method of ``smooth``


@dataclass
class ExplorerResult:
    """What the view shows for one set of settings. ``message`` is non-empty when a choice was
    refused (the result then shows the previous, still valid settings) or a computation failed."""

    settings: ExplorerSettings
    test: TestInfo | None = None
    proponents: list[TrainItem] = field(default_factory=list)
    opponents: list[TrainItem] = field(default_factory=list)
    detail: Detail | None = None
    message: str = ""
    timings: dict = field(default_factory=dict)
    index_info: str = ""

    @property
    def ok(self) -> bool:
        return not self.message


@dataclass
class NeuronView:
    """One penultimate neuron ("neural feature") behind a test prediction (Salient-ImageNet view)."""

    neuron: int
    contribution: float  # W[target, c] · h_c(x_test): its share of the explained logit
    activation: float  # h_c(x_test)
    map: torch.Tensor  # [H, W] its activation map on the test image, in [0, 1]
    top_indices: list[int]  # its top-activating training images (over the whole training set)
    top_images: torch.Tensor  # [m, C, H, W]
    top_maps: torch.Tensor  # [m, H, W] its activation maps on them, in [0, 1]
    top_patched: list[bool] | None  # ground-truth patch flags of those training images
    top_masks: torch.Tensor | None  # [m, H, W] bool patch masks


@dataclass
class NeuralFeaturesView:
    """The neurons that drive the explained logit of the selected test image: the global
    counterpart of the TFA view (:meth:`ExplorerState.neural_features`)."""

    test: TestInfo
    target: int
    logit: float
    bias: float
    neurons: list[NeuronView]
