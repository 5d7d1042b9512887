"""tfa_tutorial — training feature attribution (TFA) for vision models, as a tutorial package.

Data flows one way: data → patches → models/training → gradients → scores → maps → metrics;
plots and widgets sit on top (SPEC §8).
"""
from .attribution_methods import METHODS, attribute, completeness_gap, ig_baseline, noise_sigma
from .baselines import grad_cam, last_feature_layer, model_output_fn, random_map, saliency, smoothgrad, two_step_baseline
from .gradients import auto_chunk_size, flatten_grads, per_sample_grads, predicted_labels, select_params
from .index import GradientIndex, RandomProjection
from .metrics import (
    average_precision,
    one_step_test,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    shortcut_detection_auprc,
)
from .models import ResNet9, SmallCNN, SoftmaxRegression, build_model, count_parameters
from .reduction import reduce_map
from .scores import grad_cos, grad_dot, gradient_scores, normalize_rows
from .tfa import tda_score_fn, tfa_map, tfa_maps

__version__ = "0.1.0"
