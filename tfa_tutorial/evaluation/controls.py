"""The clean-model control on a notebook's own pairs, and the stored evidence over seeds as tables.

Notebook 05 (and the exercises) measure maps on their own (test, training) pairs with the one
protocol, :func:`tfa_tutorial.evaluation.evidence.localisation_evidence`; this module adds what a
notebook needs around it, so that no cell recomputes a map or aggregates seeds by hand:

- :func:`control_maps`: the maps of one test image's training images by families of the registry
  (:mod:`tfa_tutorial.attribution.families`), on the shortcut model and on the clean model, with
  the protocol's explained label (the shortcut model's prediction) — the figure of the control;
- :func:`with_gain`: a measured table plus the model-specific gain (shortcut − clean mass);
- :func:`self_map_correlation`: how much of a decomposition map is the training image's own
  gradient (a map of the image with itself, no test image involved);
- :func:`stored_table` / :func:`gains_over_seeds`: the stored evidence (``docs/results.json``) per
  configuration, mean ± sd over seeds, as a markdown table and as numbers.
"""
from __future__ import annotations

import torch

from ..attribution.decomposition import decompose_score
from ..attribution.families import FAMILIES, family
from ..attribution.own_gradient import map_correlation, own_gradient_maps
from ..attribution.reduction import reduce_map
from ..attribution.score_vectors import score_vector
from .evidence import format_mean_sd, localisation_over_seeds
from .pairs import explained_labels, iter_pair_contexts

__all__ = ["control_maps", "with_gain", "self_map_correlation", "gains_over_seeds", "stored_table",
           "depends_on_test"]

MODELS = ("shortcut model", "clean model")


def control_maps(exp, test_index: int, train_idx, names, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Signed maps ``{family: {"shortcut model" | "clean model": [k, H, W]}}`` (summed over channels)
    of the training images ``train_idx`` ``[k]`` for the patched test image ``test_index``, by the
    registry families ``names``, as :func:`~tfa_tutorial.evaluation.evidence.localisation_evidence`
    computes them: both models explain the same label, the shortcut model's prediction, and
    score-based maps are oriented by sign(S) (red = supports the score)."""
    test_idx = torch.tensor([int(test_index)])
    train_idx = torch.as_tensor(train_idx).long().flatten()[None]
    labels = explained_labels(exp, test_idx)
    out: dict = {}
    for mname, model in zip(MODELS, (exp.model, exp.clean_model)):
        # the protocol's noise seed for the first pair, pair_seed(seed, 0); no class mean
        _, ctx = next(iter_pair_contexts(exp, test_idx, train_idx, model, labels, seed=seed))
        for n in names:
            out.setdefault(n, {})[mname] = reduce_map(family(n)(ctx).detach().cpu(), "signed", "sum")
    return out


def with_gain(table: dict) -> dict[str, dict[str, float]]:
    """``{family: {"mass", "clean", "gain"}}`` from a :func:`localisation_evidence` table: the
    shortcut model's positive mass on the patch, the clean model's (the control), and their
    difference, the model-specific gain."""
    out = {}
    for fam, row in table.items():
        m, c = row["shortcut model"]["mass"], row["clean model"]["mass"]
        out[fam] = {"mass": m, "clean": c, "gain": m - c}
    return out


def self_map_correlation(model, x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor,
                         label: int) -> torch.Tensor:
    """``[k]`` Pearson correlation between each training image's Grad-Cos decomposition map for the
    test image ``x_test`` ``[C, H, W]`` (label ``label``) and its decomposition for its *own*
    gradient (the image's Grad-Cos with itself: no test image involved); ``x_train`` ``[k, C, H, W]``,
    ``y_train`` ``[k]``. Close to 1: the map shows where the training image's gradient comes from,
    whichever test image retrieved it."""
    v = score_vector(model, x_test, "cos", test_target=int(label))
    test_maps = decompose_score(model, x_train, y_train, v).maps
    return map_correlation(test_maps, own_gradient_maps(model, x_train, y_train))


def gains_over_seeds(evidence: dict) -> dict[str, dict]:
    """``{configuration: {family: {"shortcut model", "clean model", "gain"}}}``: the stored
    localisation runs of ``results["evidence"]`` aggregated over their seeds
    (:func:`~tfa_tutorial.evaluation.evidence.localisation_over_seeds`; leaves ``{"mean", "sd", "n", "values"}``)."""
    return {cfg: localisation_over_seeds({s: r for s, r in runs.items() if str(s).isdigit()})
            for cfg, runs in evidence.items()}


def stored_table(agg: dict, names, chance: float, mark: str | None = None) -> str:
    """Markdown: one row per family of ``names`` from one configuration of :func:`gains_over_seeds`
    — shortcut-model mass, clean-model mass, gain, rank and pointing, mean ± sd over seeds — and
    the chance row (the patch's area); the family ``mark`` is flagged as the recommended map."""
    lines = ["| map | mass | clean model | gain | rank | pointing |", "|---|---|---|---|---|---|"]
    for fam in names:
        row, sh = agg[fam], agg[fam]["shortcut model"]
        label = f"**{fam}** (recommended)" if fam == mark else fam
        lines.append(f"| {label} | {format_mean_sd(sh['mass'])} | {format_mean_sd(row['clean model']['mass'])} | "
                     f"{format_mean_sd(row['gain'], signed=True)} | {format_mean_sd(sh['rank'])} | "
                     f"{format_mean_sd(sh['pointing'])} |")
    lines.append(f"| chance (patch area) | {chance:.2f} | {chance:.2f} | +0.00 | {chance:.2f} | {chance:.2f} |")
    return "\n".join(lines)


def depends_on_test(names) -> list[str]:
    """The families among ``names`` whose map depends on the test image (all TFA variants)."""
    return [n for n in names if FAMILIES[n].explained_label == "test"]
