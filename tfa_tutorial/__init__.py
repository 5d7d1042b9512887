"""tfa_tutorial — training feature attribution (TFA) for vision models, as a tutorial package.

    import tfa_tutorial as T
    exp = T.shortcut_experiment()                      # data, patch, the shortcut and the clean model
    s = T.grad_cos(exp.model, exp.train.images, exp.train.labels, exp.patched_test.images[:1])   # [1, N]
    m = T.tfa_maps(exp.model, x_train, y_train, x_test)                                          # [k, C, H, W]

Data flows one way: data → patches → models/training → gradients → scores → maps → metrics;
plots and widgets sit on top. :data:`__all__` is the public API, grouped by the course's steps;
everything else is reachable through its module (``tfa_tutorial.gradients.auto_chunk_size``, ...).
"""
from .claims import Claims
from .closed_forms import softmax_regression_grad_cos, softmax_regression_tfa
from .data import DataNotFoundError, ImageDataset, load_cifar10, load_fashion_mnist
from .attribution_methods import attribute
from .baselines import grad_cam, random_map, saliency, smoothgrad, two_step_baseline
from .cache import CheckpointError
from .decomposition import decompose_score
from .evidence import localisation_evidence, recommended_family, retrieval_evidence
from .experiment import ShortcutExperiment, shortcut_experiment
from .families import FAMILIES, PairContext
from .fixing import fix_and_retrain, flag_harmful
from .gradients import per_sample_grads
from .index import GradientIndex
from .metrics import (
    one_step_test,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    shortcut_detection_auprc,
)
from .mode import describe_mode, fast_mode, set_fast_mode
from .models import ResNet9, SmallCNN, SoftmaxRegression
from .neural_features import activation_maps, class_contributions, top_neurons
from .patches import PRESETS, PatchSpec, inject_patch, patch_all
from .reduction import reduce_map
from .run_times import notebook_header
from .score_vectors import score_vector
from .scores import grad_cos, grad_cos_and_dot, grad_dot
from .tfa import tda_score_fn, tfa_map, tfa_maps
from .training import predict, shortcut_report, train_model
from .validation import NonFiniteError

__all__ = [
    # running the course
    "shortcut_experiment", "ShortcutExperiment", "fast_mode", "set_fast_mode", "describe_mode", "notebook_header",
    "Claims",
    # 01 · data and the planted patch
    "load_fashion_mnist", "load_cifar10", "ImageDataset", "PatchSpec", "PRESETS", "inject_patch", "patch_all",
    # 02 · models, training, measuring the shortcut
    "SmallCNN", "ResNet9", "SoftmaxRegression", "train_model", "predict", "shortcut_report",
    # 03 · per-sample gradients and training-data attribution
    "per_sample_grads", "grad_cos", "grad_dot", "grad_cos_and_dot", "GradientIndex", "score_vector",
    # 04 · maps: TFA, baselines, the registry, and how to test them
    "tda_score_fn", "tfa_map", "tfa_maps", "attribute", "decompose_score", "saliency", "smoothgrad", "grad_cam",
    "two_step_baseline", "random_map", "reduce_map", "FAMILIES", "PairContext", "recommended_family",
    "softmax_regression_tfa", "softmax_regression_grad_cos",
    "relevance_mass_accuracy", "relevance_rank_accuracy", "pointing_game", "shortcut_detection_auprc",
    "localisation_evidence", "retrieval_evidence", "one_step_test",
    # 05 · the explorer (imported on first use: it loads ipywidgets)
    "ExplorerState", "explore",
    # 06 · from diagnosis to fix
    "flag_harmful", "fix_and_retrain",
    # 07 · neural features
    "class_contributions", "top_neurons", "activation_maps",
    # errors
    "DataNotFoundError", "CheckpointError", "NonFiniteError",
]

__version__ = "0.1.0"


def __getattr__(name):
    """``T.ExplorerState`` and ``T.explore`` import the explorer only when first used."""
    if name == "ExplorerState":
        from .explorer_state import ExplorerState

        return ExplorerState
    if name == "explore":
        from .explorer import explore

        return explore
    raise AttributeError(f"module 'tfa_tutorial' has no attribute {name!r}")
