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
# # Exercises 05 · Harmful training regions
#
# **What you will practise**: the two choices the explorer's controls make for you — *which label
# is explained* (the prediction or the truth) and *which end of the ranking* you read (proponents
# or opponents) — done by hand with `grad_cos`, so you can predict what the explorer will show.
#
# **Run time:** about 30–50 s in fast mode once the models are cached (a 2,000-image training slice).
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.

# %%
import matplotlib.pyplot as plt
import torch

from tfa_tutorial import grad_cos, predict, shortcut_experiment
from tfa_tutorial.exercises import check
from tfa_tutorial.teaching.plots import show_image

torch.manual_seed(0)
exp = shortcut_experiment(seed=0)
model, classes, target = exp.model, exp.classes, exp.spec.target_class
train = exp.train.subset(torch.arange(2000))  # a slice keeps the exercises fast
j = int(exp.flipped_test_indices()[1])
x_test, y_true = exp.patched_test.images[j], int(exp.test.labels[j])
pred = int(predict(model, x_test[None])[0])
print(f"test image {j}: true class {classes[y_true]}, predicted (with the patch) {classes[pred]}")

# %% [markdown]
# ## Exercise 1 · Explain the prediction, or the truth?
#
# By default the package explains the **predicted** label: the test loss in g(z_j) uses ŷ_j.
# The explorer's *test label* control switches to the **true** label, which explains the error
# instead. **Predict**: among the top-10 Grad-Cos proponents, what share will be
# T-shirts/tops (class `target`) in each case?
#
# **Measure**: `grad_cos(model, train.images, train.labels, x_test[None])` explains the
# prediction; pass `torch.tensor([y_true])` as the fifth argument to explain the true label.

# %%
shares = {"predicted": ..., "true": ...}
check.ex05_label_choice(shares, model, train, x_test, y_true, target)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# shares = {}
# for key, label in (("predicted", None), ("true", torch.tensor([y_true]))):
#     s = grad_cos(model, train.images, train.labels, x_test[None], label)[0]
#     shares[key] = float((train.labels[s.topk(10).indices] == target).float().mean())
# print(shares)
# ```
#
# </details>

# %% [markdown]
# ## Exercise 2 · The most harmful training image
#
# An **opponent** has a negative Grad-Cos: one training step on it would *raise* the test loss
# of the label being explained. For a misclassified image, the harmful training images are the
# opponents of the **true** label: they push the model away from the right answer, towards its
# error. (The opponents of the *predicted* label do the opposite: they push away from the error.)
# Find the strongest opponent of the true label `y_true` in the slice — an index into `train` —
# and look at it: what class is it, and does it carry the patch?

# %%
worst = ...  # an index into train
check.ex05_top_opponent(worst, model, train, x_test, y_true)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# s = grad_cos(model, train.images, train.labels, x_test[None], torch.tensor([y_true]))[0]
# worst = int(s.argmin())
# ```
#
# </details>

# %%
if check.results.get("ex05_top_opponent"):
    fig, axes = plt.subplots(1, 2, figsize=(4.4, 2.4))
    show_image(axes[0], x_test, f"test: {classes[y_true]}\n→ {classes[pred]}", mask=exp.patched_test.masks[j])
    show_image(axes[1], train.images[worst], f"top opponent of the true label:\n{classes[int(train.labels[worst])]}"
               + ("\n(patched)" if train.patched[worst] else ""))
    plt.show()

# %% [markdown]
# ## Summary

# %%
check.summary()
