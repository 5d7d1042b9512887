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
# # Exercises 03 · Per-sample gradients and Grad-Cos
#
# **What you will practise**: one per-sample gradient by hand (checked against `torch.func`), a
# prediction about Grad-Dot versus Grad-Cos tested by measurement, and a search in the other
# direction: which test image does one patched training image support most?
#
# **Run time:** about 30 s in fast mode once the models are cached (scores against a
# 2,000-image slice of the training set, not all of it).
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.

# %%
import torch
import torch.nn.functional as F

from tfa_tutorial import grad_cos, grad_cos_and_dot, shortcut_experiment
from tfa_tutorial.exercises import check

torch.manual_seed(0)
exp = shortcut_experiment(seed=0)  # cached models (trained here if the cache is empty)
model = exp.model
train = exp.train.subset(torch.arange(2000))  # a slice keeps the exercises fast
flipped = exp.flipped_test_indices()
j = int(flipped[0])
x_test = exp.patched_test.images[j]
print(f"training slice: {len(train)} images, {int(train.patched.sum())} patched; "
      f"test image {j}: a {exp.classes[int(exp.test.labels[j])]} the patch flips to {exp.classes[exp.spec.target_class]}")

# %% [markdown]
# ## Exercise 1 · One per-sample gradient by hand
#
# Compute g(z) = ∇_θ ℓ(f_θ(x), y) for the training example `x, y = train.images[0], train.labels[0]`
# with plain autograd: the cross-entropy of `model(x[None])` against `y[None]`, then
# `torch.autograd.grad` with respect to `list(model.parameters())`, each gradient flattened and
# all concatenated into one vector of P entries. The checker compares with `per_sample_grads`.

# %%
x, y = train.images[0], train.labels[0]
g = ...  # a [P] tensor
check.ex03_per_sample_grad(g, model, x, y)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# loss = F.cross_entropy(model(x[None]), y[None])
# g = torch.cat([p.flatten() for p in torch.autograd.grad(loss, list(model.parameters()))])
# ```
#
# </details>

# %% [markdown]
# ## Exercise 2 · Predict, then measure: Grad-Dot or Grad-Cos?
#
# **Predict first**: for the flipped test image `x_test`, which score puts more *patched*
# training images among its top 20 — Grad-Dot ⟨g_i, g_j⟩ or Grad-Cos (the same divided by both
# norms)? Think about the size of the gradient of an image the model classifies very confidently.
#
# **Measure**: compute both scores of `x_test` against `train` in one pass with
# `grad_cos_and_dot(model, train.images, train.labels, x_test[None])` (shapes `[1, N]`; the
# predicted label is explained), and the share of patched images (`train.patched`) among each
# score's top 20.

# %%
shares = {"cos": ..., "dot": ...}
check.ex03_cos_vs_dot(shares, model, train, x_test)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# cos, dot = grad_cos_and_dot(model, train.images, train.labels, x_test[None])
# shares = {name: float(train.patched[s[0].topk(20).indices].float().mean()) for name, s in (("cos", cos), ("dot", dot))}
# print(shares)
# ```
#
# </details>

# %% [markdown]
# ## Exercise 3 · The other direction: which test image does a patched training image support?
#
# Grad-Cos is symmetric in what it compares, so you can also start from a **training** image.
# Take the first patched training image of the slice and the first 30 shortcut-flipped test
# images (patched versions, `exp.patched_test.images[candidates]`). Which of them has the
# **largest** Grad-Cos with the training image? Answer with its index into `exp.patched_test`.

# %%
i = int(train.patched_indices[0])
x_i, y_i = train.images[i], train.labels[i]
candidates = flipped[:30]
best = ...  # an index into exp.patched_test (one of candidates)
check.ex03_best_flipped(best, model, x_i, y_i, candidates, exp.patched_test.images)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# s = grad_cos(model, x_i[None], y_i[None], exp.patched_test.images[candidates])  # [30, 1]
# best = int(candidates[s[:, 0].argmax()])
# ```
#
# </details>

# %% [markdown]
# ## Summary

# %%
check.summary()
