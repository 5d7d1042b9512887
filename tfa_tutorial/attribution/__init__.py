"""03–04 · Per-sample gradients, training-data attribution and training-feature maps.

Modules (import from them directly; the course's public API is ``tfa_tutorial.__all__``):

- ``gradients``        per-sample gradients with torch.func
- ``scores``           Grad-Cos / Grad-Dot scores
- ``score_vectors``    scores linear in the training gradient
- ``index``            a reusable gradient index
- ``tfa``              TFA maps: the score differentiated w.r.t. training pixels
- ``methods``          feature-attribution methods of a scalar function of one image
- ``baselines``        baselines TFA is compared with
- ``decomposition``    exact first-order decomposition over positions
- ``own_gradient``     a decomposition split into the training image's own-gradient map and the test-specific rest
- ``closed_forms``     softmax-regression closed forms
- ``reduction``        display reductions of signed maps
- ``families``         the one registry of map families
- ``feature_layer``    where a CNN's pooled feature map lives (neural features, Grad-CAM)
- ``neural_features``  neural features (the model-level view)
"""
