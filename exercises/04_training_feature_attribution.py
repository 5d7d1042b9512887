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
# # Exercises 04 · Training feature attribution
#
# **What you will practise**: scoring a map by hand (relevance mass accuracy), building the
# *input-as-map* control that explains why value attributions look good on a bright patch, and
# testing the closed form "Grad-Cos = error similarity × input similarity" of softmax regression
# against autograd.
#
# **Run time:** about 30 s in fast mode once the models are cached.
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.

# %%
import matplotlib.pyplot as plt
import torch

from tfa_tutorial import (
    grad_cos, reduce_map, relevance_mass_accuracy, shortcut_experiment, SoftmaxRegression, tfa_maps,
    train_model,
)
from tfa_tutorial.exercises import check
from tfa_tutorial.teaching.plots import map_rows

torch.manual_seed(0)
exp = shortcut_experiment(seed=0)
model = exp.model
train = exp.train.subset(torch.arange(2000))  # a slice keeps the exercises fast
j = int(exp.flipped_test_indices()[0])
x_test = exp.patched_test.images[j]
# the test image's four best Grad-Cos training images among the patched ones of the slice
scores = grad_cos(model, train.images, train.labels, x_test[None])[0]
top = scores.masked_fill(~train.patched, float("-inf")).topk(4).indices
xs, ys, masks = train.images[top], train.labels[top], train.masks[top]
maps = reduce_map(tfa_maps(model, xs, ys, x_test, n_samples=16, noise=0.15), "signed")  # [4, 28, 28]
chance = float(masks[0].float().mean())
map_rows(xs, {"TFA SmoothGrad (signed)": maps}, masks=masks, first_col=x_test, first_col_title="test image",
         suptitle="The paper's TFA map on four patched training images (red +, blue −; green box = patch)")
plt.show()

# %% [markdown]
# ## Exercise 1 · Relevance mass by hand
#
# For each of the four signed maps in `maps` (`[4, 28, 28]`), compute the **relevance mass
# accuracy**: the sum of the map's *positive part* max(m, 0) inside the patch mask (`masks`,
# `[4, 28, 28]` bool), divided by the sum of its positive part over the whole image. Answer with a
# tensor of 4 values. Then compare them with the chance level `chance` (the patch area).

# %%
mass = ...  # [4]
check.ex04_mass_by_hand(mass, maps, masks)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# pos = maps.clamp_min(0)
# mass = (pos * masks).sum(dim=(1, 2)) / pos.sum(dim=(1, 2))
# print("mass on the patch:", [f"{m:.2f}" for m in mass.tolist()], f"(chance {chance:.2f})")
# ```
#
# </details>

# %% [markdown]
# ## Exercise 2 · The input-as-map control
#
# Gradient × input and integrated gradients multiply by the image. The patch is the brightest
# region of a patched image, so part of their score might come from the image alone. Test that:
# use **the patched training images of the slice themselves** as maps (`reduce_map(images,
# "positive")`), score them with `relevance_mass_accuracy` against their masks, and report the
# mean, and whether it beats chance. No model is involved, so this is a *prior*, not evidence.

# %%
images, image_masks = train.images[train.patched], train.masks[train.patched]
input_mass = ...    # one number: the mean over the patched images
beats_chance = ...  # True or False
check.ex04_input_as_map(input_mass, beats_chance, images, image_masks, chance)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# input_mass = float(relevance_mass_accuracy(reduce_map(images, "positive"), image_masks).mean())
# beats_chance = input_mass > chance
# print(f"input as map: {input_mass:.2f} vs chance {chance:.2f}")
# ```
#
# </details>

# %% [markdown]
# ## Exercise 3 · Grad-Cos of softmax regression, by hand
#
# For softmax regression f(x) = W x + b with cross-entropy, the per-sample gradient is the outer
# product g = δ x̃ᵀ with δ = p − e_y (p = softmax(W x + b), e_y the one-hot label) and
# x̃ = [vec(x); 1]. So Grad-Cos factorises:
#
# $$S_{GC}(z_i, z_j) = \cos(\delta_i, \delta_j)\cdot\cos(\tilde x_i, \tilde x_j).$$
#
# Compute it by hand for the pair below (`lin.linear.weight`, `lin.linear.bias`); the checker
# compares with autograd's `grad_cos` on the same model.

# %%
torch.manual_seed(0)
lin = SoftmaxRegression(28 * 28, 10).double()
lin, _ = train_model(lin, (train.images.double(), train.labels), epochs=1, progress=False)
x_i, y_i = train.images[0].double(), int(train.labels[0])
x_j, y_j = exp.test.images[0].double(), int(exp.test.labels[0])

# %%
s_by_hand = ...  # one number
check.ex04_closed_form(s_by_hand, lin, x_i, y_i, x_j, y_j)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# W, b = lin.linear.weight.detach(), lin.linear.bias.detach()
#
#
# def delta_and_xt(x, y):
#     p = torch.softmax(W @ x.flatten() + b, 0)
#     return p - torch.nn.functional.one_hot(torch.tensor(y), 10).double(), torch.cat([x.flatten(), torch.ones(1).double()])
#
#
# d_i, xt_i = delta_and_xt(x_i, y_i)
# d_j, xt_j = delta_and_xt(x_j, y_j)
# s_by_hand = float(torch.cosine_similarity(d_i, d_j, 0) * torch.cosine_similarity(xt_i, xt_j, 0))
# print(f"S_GC by hand: {s_by_hand:+.6f}")
# ```
#
# </details>

# %% [markdown]
# ## Summary

# %%
check.summary()
