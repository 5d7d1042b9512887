"""tfa_tutorial — training feature attribution (TFA) for vision models, as a tutorial package.

Data flows one way: data → patches → models/training → gradients → scores → maps → metrics;
plots and widgets sit on top.
"""
from .attribution_methods import METHODS, attribute, completeness_gap, ig_baseline, noise_sigma
from .baselines import grad_cam, last_feature_layer, model_output_fn, random_map, saliency, smoothgrad, two_step_baseline
from .cache import atomic_save, atomic_torch_save, cache_dir, load_checkpoint, save_checkpoint
from .claims import ClaimFailed, Claims
from .closed_forms import softmax_regression_grad_cos, softmax_regression_tfa
from .decomposition import ScoreDecomposition, decompose_score, receptive_fields
from .data import (
    DataNotFoundError,
    ImageDataset,
    load_cifar10,
    load_dataset,
    load_fashion_mnist,
    subsample,
)
from .mode import describe_mode, fast_mode, if_fast, set_fast_mode
from .run_times import notebook_header
from .faithfulness import faithfulness_curves
from .fixing import fix_and_retrain, flag_harmful, harmful_examples, harmful_maps
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
from .neural_features import FeatureLayer, ablation_effect, activation_maps, class_contributions, find_feature_layer, mask_sensitivity, neural_activations, noise_in_mask, normalize_maps, random_mask_like, spuriousness, top_activating, top_neurons
from .patches import PRESETS, PatchedDataset, PatchSpec, checkerboard, inject_patch, patch_all
from .reduction import reduce_map
from .score_vectors import VECTOR_KINDS, class_mean_gradient, score_vector, vector_score_fn, vector_scores
from .scores import grad_cos, grad_cos_and_dot, grad_dot, gradient_scores, normalize_rows
from .specificity import TWO_PATCHES, TwoPatchExperiment, two_patch_data, two_patch_experiment
from .tfa import tda_score_fn, tfa_map, tfa_maps
from .validation import NonFiniteError
from .training import (
    accuracy,
    get_device,
    predict,
    prevalence_sweep,
    seed_everything,
    shortcut_report,
    train_model,
    train_or_load,
)

__version__ = "0.1.0"
