"""The explorer's neural-feature view (a mixin of :class:`~tfa_tutorial.explorer.state.ExplorerState`)."""
from __future__ import annotations

from ..attribution.neural_features import (
    activation_maps,
    class_contributions,
    find_feature_layer,
    neural_activations,
)
from ..core.validation import check_int
from .results import NeuralFeaturesView, NeuronView

__all__ = ["NeuralView"]


class NeuralView:
    """The explorer's global view: the penultimate neurons driving a prediction. A mixin of
    :class:`~tfa_tutorial.explorer.state.ExplorerState`, whose attributes it reads."""

    def neural_features(self, test_index: int | None = None, k: int = 3, m: int = 4, **overrides) -> NeuralFeaturesView:
        """The ``k`` penultimate neurons with the largest contribution W[t, c] · h_c(x) to the
        explained logit t (the prediction, or the true label with ``label="true"``) of test image
        ``test_index`` (default: the current one), each with its activation map on the test image
        and its ``m`` top-activating training images with their maps (see
        :mod:`tfa_tutorial.attribution.neural_features`). The training activations are computed once."""
        if test_index is not None:
            overrides["test_index"] = test_index
        s = self._validated(overrides) if overrides else self.settings
        k, m = check_int(k, "k"), check_int(m, "m")
        with self._threads():
            dtype = next(self.model.parameters()).dtype
            if "layer" not in self._neural:
                layer = find_feature_layer(self.model, self.train_images[0].to(dtype))
                self._neural["layer"] = layer
                self._neural["h"] = neural_activations(self.model, self.train_images.to(dtype), layer)
            layer, h_train = self._neural["layer"], self._neural["h"]
            test = self._test_info(s)
            x = test.image[None].to(dtype)
            h = neural_activations(self.model, x, layer)
            contrib = class_contributions(self.model, x, test.target, layer, activations=h)[0]
            k = min(k, layer.num_features)
            order = contrib.topk(k).indices.tolist()
            test_maps = activation_maps(self.model, x, order, layer)[0]
            neurons = []
            for j, c in enumerate(order):
                top = h_train[:, c].topk(min(m, self.n_train)).indices
                maps = activation_maps(self.model, self.train_images[top].to(dtype), c, layer)
                neurons.append(NeuronView(
                    c, float(contrib[c]), float(h[0, c]), test_maps[j], top.tolist(), self.train_images[top], maps,
                    None if self.train_patched is None else self.train_patched[top].tolist(),
                    None if self.train_masks is None else self.train_masks[top],
                ))
            bias = layer.classifier.bias
            b = 0.0 if bias is None else float(bias.detach()[test.target])
            return NeuralFeaturesView(test, test.target, float(contrib.sum()) + b, b, neurons)
