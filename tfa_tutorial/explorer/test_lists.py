"""The explorer's test-image lists (a mixin of :class:`~tfa_tutorial.explorer.state.ExplorerState`):
predictions on a test set, the flipped / misclassified / correct images, and one-line labels.

Expects ``model``, ``test_sets``, ``test_labels``, ``classes``, ``settings``, ``n_test``, ``_preds`` and
``_flipped`` on the state.
"""
from __future__ import annotations

import torch

from ..core.validation import check_index
from ..training.train import predict
from .settings import TEST_LISTS

__all__ = ["TestLists"]


class TestLists:
    """Which test images the explorer offers: by prediction outcome, with their labels."""

    __test__ = False  # not a pytest test class

    def predictions(self, test_set: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted labels ``[M]``, probabilities ``[M, K]``) on a test set (cached)."""
        name = test_set or self.settings.test_set
        if name not in self.test_sets:
            raise ValueError(f"unknown test set {name!r}: choose one of {list(self.test_sets)}")
        if name not in self._preds:
            self._preds[name] = predict(self.model, self.test_sets[name].to(next(self.model.parameters()).dtype))
        return self._preds[name]

    @property
    def flipped(self) -> list[int]:
        """Shortcut-flipped test images (as given by the caller; empty when none were given)."""
        return list(self._flipped or [])

    @property
    def misclassified(self) -> list[int]:
        """Test images of the current test set that the model gets wrong."""
        pred, _ = self.predictions()
        return torch.nonzero(pred != self.test_labels).flatten().tolist()

    @property
    def correct(self) -> list[int]:
        """Test images of the current test set that the model gets right."""
        pred, _ = self.predictions()
        return torch.nonzero(pred == self.test_labels).flatten().tolist()

    def test_list(self, name: str) -> list[int]:
        """One of :data:`TEST_LISTS` by name."""
        if name not in TEST_LISTS:
            raise ValueError(f"unknown list {name!r}: choose one of {list(TEST_LISTS)}")
        return getattr(self, name)

    def describe_test(self, index: int, test_set: str | None = None) -> str:
        """``"#12 Trouser → T-shirt/top"``: a one-line label for pick lists."""
        index = check_index(index, self.n_test, "test index", "test images")
        pred, _ = self.predictions(test_set)
        true, p = self.classes[int(self.test_labels[index])], self.classes[int(pred[index])]
        return f"#{index} {true}" + (f" → {p}" if p != true else " ✓")
