# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises 06 · Testing a diagnosis before you act on it
#
# **What you will practise**: the three checks notebook 06 makes before it trusts a fix, each by
# hand and without retraining anything: how **precise** the flagged training images are against
# random flags, how much of the real patch a **repair mask** covers, and whether a map passes the
# **one-step insertion test** against random pixels.
#
# **Run time:** about 20–40 s in fast mode once the models are cached (a 2,000-image training slice;
# no model is retrained).
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.

# %%
import copy

import matplotlib.pyplot as plt
import torch

from tfa_tutorial import grad_cos, one_step_test, predict, random_map, reduce_map, shortcut_experiment, tfa_maps
from tfa_tutorial.exercises import check
from tfa_tutorial.fixing.repair import mask_overlap, repair_masks
from tfa_tutorial.teaching.plots import image_grid

torch.manual_seed(0)
exp = shortcut_experiment(seed=0)
model, classes, target = exp.model, exp.classes, exp.spec.target_class
train = exp.train.subset(torch.arange(2000))  # a slice keeps the exercises fast
flipped = exp.flipped_test_indices()[:10]
x_flip = exp.patched_test.images[flipped]  # [10, 1, 28, 28]: patched test images the model calls T-shirt/top
print(f"{len(train)} training images in the slice, {int(train.patched.sum())} with the patch; "
      f"{len(x_flip)} shortcut-flipped test images")

# %% [markdown]
# ## Exercise 1 · Are the flags better than random?
#
# `flag_harmful` flags the training images that support the model's shortcut errors. Do it by hand
# on the slice: for each of the 10 flipped test images, take its **top-20 Grad-Cos proponents**
# (`grad_cos(model, train.images, train.labels, x_flip)` explains the predicted label; shape
# `[10, 2000]`); the flags are the **union** of those lists. Report
#
# - **precision**: the share of the flagged images that carry the patch (`train.patched`);
# - **chance**: the precision that flagging training images at random would reach.
#
# **Predict** first: how many times chance will the precision be?

# %%
flag_stats = {"precision": ..., "chance": ...}
check.ex06_flag_precision(flag_stats, model, train, x_flip, top_k=20)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# scores = grad_cos(model, train.images, train.labels, x_flip)  # [10, 2000]
# flags = scores.topk(20, dim=1).indices.flatten().unique()
# flag_stats = {"precision": float(train.patched[flags].float().mean()), "chance": float(train.patched.float().mean())}
# print(f"{len(flags)} flagged; precision {flag_stats['precision']:.2f} vs chance {flag_stats['chance']:.3f}")
# ```
#
# </details>

# %% [markdown]
# ## Exercise 2 · How much of the patch would a repair overwrite?
#
# Repair keeps a flagged image but overwrites the 20% of its pixels where a map is largest. Here
# the map is TFA (SmoothGrad × input of Grad-Cos) of the **10 best proponents of the first flipped
# image**, and `repair` `[10, 28, 28]` (bool) marks the pixels a repair would overwrite. Against
# the true patch masks `truth` `[10, 28, 28]`, compute by hand, **over the images that carry the
# patch** (an image without one has nothing to cover):
#
# - **coverage**: the patch pixels that are repaired, divided by all patch pixels (pooled over
#   those images);
# - **iou**: per image |R ∩ P| / |R ∪ P|, then the mean.

# %%
pro = grad_cos(model, train.images, train.labels, x_flip[:1])[0].topk(10).indices  # the 10 best proponents
xs, ys, truth = train.images[pro], train.labels[pro], train.masks[pro]
tfa = tfa_maps(model, xs, ys, x_flip[0], method="gradient_x_input", n_samples=8, noise=0.15)  # [10, 1, 28, 28]
repair = repair_masks(tfa, fraction=0.2, smooth=3)  # [10, 28, 28] bool
print(f"{int(train.patched[pro].sum())} of the 10 proponents carry the patch; {int(repair[0].sum())} pixels repaired per image")

# %%
overlap = {"coverage": ..., "iou": ...}
check.ex06_repair_coverage(overlap, repair, truth)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# has = truth.flatten(1).any(1)
# r, p = repair[has], truth[has]
# inter = (r & p).sum(dim=(1, 2)).double()
# union = (r | p).sum(dim=(1, 2)).double()
# overlap = {"coverage": float(inter.sum() / p.sum()), "iou": float((inter / union).mean())}
# print({k: round(v, 3) for k, v in overlap.items()})
# ```
#
# </details>

# %% [markdown]
# **Test the map**: a repair is only as good as its map. The controls below use `mask_overlap` (the
# function you just reproduced) on masks from a random map and from the image itself (the white
# patch is the brightest region — a prior, not an explanation).

# %%
controls = {"TFA SmoothGrad × input": repair, "random map": repair_masks(random_map(xs.shape, seed=0), 0.2, 3),
            "the image itself": repair_masks(xs, 0.2, 3)}
for name, m in controls.items():
    o = mask_overlap(m, truth)
    print(f"{name:<24} coverage {o['coverage']:.2f}  IoU {o['iou']:.2f}  ({o['n']} images with the patch)")
show = torch.nonzero(truth.flatten(1).any(1)).flatten()[:4]  # four proponents that carry the patch
fig = image_grid(torch.cat([xs[show], xs[show] * ~repair[show, None]]), ["proponent"] * len(show) + ["black = repaired"] * len(show),
                 masks=torch.cat([truth[show]] * 2), ncols=len(show), size=1.6,
                 suptitle="TFA repair masks (black) against the true patch (green box)")
plt.show()

# %% [markdown]
# ## Exercise 3 · The one-step insertion test by hand
#
# Does the map point at the pixels that make a training image support the test image? The paper's
# test: keep only the **top-k pixels** of each training image by the map (the rest set to 0), take
# **one SGD step** θ' = θ − lr ∇_θ mean_i ℓ(x̃_i, y_i) on those images, and measure
# ΔL = L_test(θ') − L_test(θ), the change of the mean test loss (predicted labels `yq`). A faithful
# map lowers the test loss **more** (more negative ΔL) than k random pixels.
#
# Setup (given): the 3 best proponents of each of the first 4 flipped test images (12 training
# images), their TFA maps reduced to `[12, 28, 28]`, k = 96, lr = 1e-5. The random control is
# computed for you with `one_step_test`. Compute the map's ΔL **by hand** on a copy of the model
# (`copy.deepcopy(model)`, eval mode, `torch.autograd.grad` or `.backward()`), and say whether it
# beats random.

# %%
K, LR = 96, 1e-5
xq = x_flip[:4]
yq = predict(model, xq)[0]
top3 = grad_cos(model, train.images, train.labels, xq).topk(3, dim=1).indices.flatten()
xi, yi = train.images[top3], train.labels[top3]
imaps = reduce_map(torch.cat([tfa_maps(model, xi[3 * q:3 * q + 3], yi[3 * q:3 * q + 3], xq[q], method="gradient_x_input",
                                           n_samples=8, noise=0.15) for q in range(4)]), "positive")  # [12, 28, 28]
ref = one_step_test(model, xi, yi, imaps, xq, yq, [K], lr=LR, mode="insertion", n_random=5, seed=0)
print(f"random {K} pixels: ΔL = {float(ref['random'][0]):+.2e} (± {float(ref['random_std'][0]):.1e} over 5 draws)")

# %%
delta, beats_random = ..., ...
check.ex06_insertion(delta, beats_random, model, xi, yi, imaps, xq, yq, k=K, lr=LR, n_random=5, seed=0)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# keep = torch.zeros(imaps.shape[0], imaps[0].numel(), dtype=torch.bool)
# keep.scatter_(1, imaps.flatten(1).topk(K, dim=1).indices, True)
# x_kept = torch.where(keep.view_as(imaps)[:, None], xi, torch.zeros_like(xi))
# step = copy.deepcopy(model).eval()
# params = [p for p in step.parameters() if p.requires_grad]
# grads = torch.autograd.grad(torch.nn.functional.cross_entropy(step(x_kept), yi), params)
# with torch.no_grad():
#     before = torch.nn.functional.cross_entropy(step(xq), yq)
#     for p, g in zip(params, grads):
#         p -= LR * g
#     delta = float(torch.nn.functional.cross_entropy(step(xq), yq) - before)
# beats_random = delta < float(ref["random"][0])
# print(f"map: ΔL = {delta:+.2e}; beats random: {beats_random}")
# ```
#
# </details>

# %% [markdown]
# One k and one seed is a single point of notebook 06's curves: the notebook runs six values of k,
# both insertion and deletion, and the two-step baseline and the image itself as controls before
# it draws a conclusion.

# %% [markdown]
# ## Summary

# %%
check.summary()
