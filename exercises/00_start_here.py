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
# # Exercises 00 · Start here
#
# **What you will practise**: two numbers the rest of the course leans on — the share of an
# image the patch covers (the *chance level* of every map metric in notebook 04) and how many
# training images carry the patch (predicted from the preset, then checked against the package).
#
# **Run time:** about 10 s (loads Fashion-MNIST; trains nothing).
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.

# %%
from tfa_tutorial import load_fashion_mnist, PRESETS
from tfa_tutorial.exercises import check

train = load_fashion_mnist("train")
spec = PRESETS["tutorial"]
print(f"{len(train)} training images of shape {train.image_shape}")
print(f"the tutorial's patch: {spec.height}×{spec.width} at {spec.location}, value {spec.value}, "
      f"class {spec.target_class} ({train.classes[spec.target_class]}), prevalence {spec.prevalence}")

# %% [markdown]
# ## Exercise 1 · The chance level
#
# Notebook 04 scores a map by the share of its positive mass that falls on the patch. A map that
# knows nothing spreads its mass evenly, so it scores the share of the image's pixels that the
# patch covers. Compute that share for the tutorial's patch on a 1×28×28 image.

# %%
area = ...  # a fraction in [0, 1]; use spec.height, spec.width and train.image_shape
check.ex00_patch_area(area)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# _, H, W = train.image_shape
# area = spec.height * spec.width / (H * W)
# ```
#
# </details>

# %% [markdown]
# ## Exercise 2 · How many patched training images?
#
# **Predict first**: with `prevalence = 0.5` on class 0, how many of the 60,000 training images
# will carry the patch? Write the number as a computation from `train.labels` and `spec`, not by
# running `inject_patch`; the checker runs `inject_patch` and compares.

# %%
n_patched = ...  # from train.labels, spec.target_class and spec.prevalence
check.ex00_n_patched(n_patched, train)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# n_target = int((train.labels == spec.target_class).sum())
# n_patched = round(spec.prevalence * n_target)
# ```
#
# </details>

# %% [markdown]
# ## Summary

# %%
check.summary()
