"""tfa_tutorial — training feature attribution (TFA) for vision models, as a tutorial package.

    import tfa_tutorial as T
    exp = T.shortcut_experiment()                      # data, patch, the shortcut and the clean model
    s = T.grad_cos(exp.model, exp.train.images, exp.train.labels, exp.patched_test.images[:1])   # [1, N]
    m = T.tfa_maps(exp.model, x_train, y_train, x_test)                                          # [k, C, H, W]

Data flows one way: data → patches → models/training → gradients → scores → maps → metrics;
plots and widgets sit on top. :data:`__all__` is the public API, grouped by the course's steps;
everything else is reachable through its module (``tfa_tutorial.attribution.gradients.auto_chunk_size``, ...).
"""
from .attribution.baselines import (
    grad_cam,
    random_map,
    saliency,
    smoothgrad,
    two_step_baseline,
)
from .attribution.closed_forms import (
    softmax_regression_grad_cos,
    softmax_regression_tfa,
)
from .attribution.decomposition import decompose_score
from .attribution.families import FAMILIES, PairContext
from .attribution.gradients import per_sample_grads
from .attribution.index import GradientIndex
from .attribution.methods import attribute
from .attribution.neural_features import (
    activation_maps,
    class_contributions,
    top_neurons,
)
from .attribution.reduction import reduce_map
from .attribution.score_vectors import score_vector
from .attribution.scores import grad_cos, grad_cos_and_dot, grad_dot
from .attribution.tfa import tda_score_fn, tfa_map, tfa_maps
from .core.cache import CheckpointError
from .core.mode import describe_mode, fast_mode, set_fast_mode
from .core.validation import NonFiniteError
from .data.cifar10 import load_cifar10
from .data.datasets import DataNotFoundError, ImageDataset, load_fashion_mnist
from .data.patches import PRESETS, PatchSpec, inject_patch, patch_all
from .evaluation.evidence import (
    localisation_evidence,
    retrieval_evidence,
)
from .evaluation.metrics import (
    one_step_test,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    shortcut_detection_auprc,
)
from .evaluation.verdict import recommended_family
from .fixing.flagging import flag_harmful
from .fixing.retrain import fix_and_retrain
from .teaching.claims import Claims
from .teaching.run_times import notebook_header
from .training.experiment import ShortcutExperiment, shortcut_experiment
from .training.models import ResNet9, SmallCNN, SoftmaxRegression
from .training.train import predict, shortcut_report, train_model

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
        from .explorer.state import ExplorerState

        return ExplorerState
    if name == "explore":
        from .explorer.view import explore

        return explore
    raise AttributeError(f"module 'tfa_tutorial' has no attribute {name!r}")
