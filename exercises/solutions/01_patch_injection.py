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
# # Exercises 01 · Patch injection
#
# **What you will practise**: planting a shortcut of your own with `PatchSpec` and
# `inject_patch`, and testing a prediction about what the patch changes against a measurement.
#
# **Run time:** about 10 s (no training).
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.
#
# [teacher] **Teacher's copy, with the solutions filled in** (`exercises/solutions/`). Students get
# [teacher] `exercises/01_patch_injection.ipynb`, written from this file by `scripts/make_exercises.py`.

# %%
import torch

from tfa_tutorial import inject_patch, load_fashion_mnist, PatchSpec, PRESETS
from tfa_tutorial.data.datasets import subsample
from tfa_tutorial.exercises import check

source = subsample(load_fashion_mnist("train"), 3000, seed=0)
print(f"source: {len(source)} training images; classes:", ", ".join(f"{k}={c}" for k, c in enumerate(source.classes)))

# %% [markdown]
# ## Exercise 1 · A shortcut of your own
#
# Build a `PatchSpec` for a **5×5 white square in the bottom-right corner** of the 28×28 images,
# on **30 % of the Sneakers**, and inject it into `source` with `inject_patch`. The checker
# verifies the result pixel by pixel: the right images carry the square, the masks mark exactly
# its pixels, and nothing else changed.

# %%
# BEGIN SOLUTION
#> my_spec = ...  # PatchSpec(size=..., value=..., location=(row, col), target_class=..., prevalence=...)
#> patched = ...  # inject_patch(...)
sneaker = source.classes.index("Sneaker")
my_spec = PatchSpec(size=5, value=1.0, location=(28 - 5, 28 - 5), target_class=sneaker, prevalence=0.3)
patched = inject_patch(source, my_spec)
# END SOLUTION
check.ex01_custom_patch(patched, source)

# %% [markdown]
# ## Exercise 2 · Predict, then measure: how many pixel values does the patch change?
#
# Now use the tutorial's own patch (12×12 white square at the top-left, on half of the
# T-shirts/tops). **Predict**: each patched image gets 12 × 12 = 144 new pixel values, so the
# patch should change `n_patched × 144` values. **Measure** it: count the values where the patched
# images differ from the source. If the two numbers differ, why? (Look at the top-left corner of
# a few T-shirts.)

# %%
tutorial_patched = inject_patch(source, PRESETS["tutorial"])
prediction = int(tutorial_patched.patched.sum()) * 12 * 12
print("predicted number of changed pixel values:", prediction)

# %%
# BEGIN SOLUTION
#> n_changed = ...  # compare tutorial_patched.images with source.images
n_changed = int((tutorial_patched.images != source.images).sum())
# END SOLUTION
check.ex01_changed_pixels(n_changed, source, tutorial_patched)

# %% [markdown]
# ## Summary

# %%
check.summary()
