"""Is a map's failure a matter of tuning? The SmoothGrad n × σ grid of notebook 04."""
from __future__ import annotations

import torch

from ..attribution.families import pair_seed
from ..attribution.reduction import reduce_map
from ..attribution.tfa import tfa_maps
from .metrics import relevance_mass_accuracy

__all__ = ["smoothgrad_grid"]


def smoothgrad_grid(exp, test_idx: torch.Tensor, train_idx: torch.Tensor, n_samples=(4, 16), noise=(0.05, 0.15, 0.3),
                    n_pairs: int = 4, seed: int = 0) -> torch.Tensor:
    """``[len(n_samples), len(noise)]``: relevance mass on the patch of the paper's TFA map
    (the SmoothGrad gradient of Grad-Cos, for the shortcut model's prediction) with ``n`` noisy
    copies at noise level σ (a fraction of each image's value range), averaged over the first
    ``n_pairs`` test images of ``test_idx`` ``[Q]`` and their training images ``train_idx`` ``[Q, k]``;
    the noise of test image q is seeded ``pair_seed(seed, q)``, as in the localisation protocol."""
    grid = torch.zeros(len(n_samples), len(noise))
    for a, n in enumerate(n_samples):
        for b, sigma in enumerate(noise):
            vals = []
            for q in range(min(n_pairs, len(test_idx))):
                t = train_idx[q]
                m = tfa_maps(exp.model, exp.train.images[t], exp.train.labels[t], exp.patched_test.images[test_idx[q]],
                             n_samples=n, noise=sigma, seed=pair_seed(seed, q))
                vals.append(relevance_mass_accuracy(reduce_map(m, "positive"), exp.train.masks[t]))
            grid[a, b] = torch.cat(vals).mean()
    return grid
