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
# # Exercises 02 · Shortcut training
#
# **What you will practise**: measuring a shortcut yourself — the flip rate by hand, the square
# shown to both models *without any garment*, and one more point of the prevalence sweep.
#
# **Run time:** about 30 s in fast mode once notebook 02 has cached its models (it trains one
# small model of 3,000 images itself); about 2 minutes with an empty cache.
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.
#
# [teacher] **Teacher's copy, with the solutions filled in** (`exercises/solutions/`). Students get
# [teacher] `exercises/02_shortcut_training.ipynb`, written from this file by `scripts/make_exercises.py`.

# %%
import torch

from tfa_tutorial import load_fashion_mnist, predict, shortcut_experiment, SmallCNN
from tfa_tutorial.data.datasets import subsample
from tfa_tutorial.exercises import EX02_SWEEP, check
from tfa_tutorial.data.patches import apply_patch
from tfa_tutorial.training.train import prevalence_sweep

exp = shortcut_experiment(seed=0)  # the cached models of notebook 02 (trained here if the cache is empty)
model, clean_model, test, spec = exp.model, exp.clean_model, exp.test, exp.spec
print(f"{len(test)} test images; the patch targets class {spec.target_class} ({exp.classes[spec.target_class]})")

# %% [markdown]
# ## Exercise 1 · The flip rate by hand
#
# The flip rate is the share of **patched** test images of the **other** classes (true class ≠
# `spec.target_class`) that the shortcut model predicts as the target class. Compute it with
# `apply_patch` and `predict` (which returns `(labels, probabilities)`); the checker compares with
# `shortcut_report`.

# %%
# BEGIN SOLUTION
#> flip_rate = ...
other = test.labels != spec.target_class
pred, _ = predict(model, apply_patch(test.images[other], spec))
flip_rate = float((pred == spec.target_class).float().mean())
# END SOLUTION
check.ex02_flip_rate(flip_rate, model, test, spec)

# %% [markdown]
# ## Exercise 2 · The square alone
#
# *Explanation to test*: "the shortcut model learned **white square ⇒ T-shirt/top**, the clean
# model did not." If that is right, a black image carrying only the square should be called
# T-shirt/top by the shortcut model. Paste the patch on an all-black image
# (`torch.zeros(1, 1, 28, 28)`) and answer with the pair of predicted class indices
# `(shortcut model, clean model)`. Predict before you run it!

# %%
# BEGIN SOLUTION
#> preds = ...  # (class index from the shortcut model, class index from the clean model)
black = apply_patch(torch.zeros(1, 1, 28, 28), spec)
preds = (int(predict(model, black)[0]), int(predict(clean_model, black)[0]))
print("shortcut model:", exp.classes[preds[0]], "| clean model:", exp.classes[preds[1]])
# END SOLUTION
check.ex02_black_square(preds, model, clean_model, spec)

# %% [markdown]
# ## Exercise 3 · One more point of the prevalence sweep
#
# Notebook 02's fast sweep trained at prevalences 0, 0.01, 0.05, 0.2, 0.5 and 0.95 on a stratified
# subset of 3,000 training images. Train one model at **prevalence 0.1** with the same recipe:
# `prevalence_sweep` on `subsample(load_fashion_mnist("train"), 3000, seed=0)`, `exp.test`,
# `exp.spec`, `model_fn=lambda: SmallCNN(1, 10)`, `epochs=exp.settings["epochs"]`, `seed=0`,
# `cache_name="exercises"` (the settings in `EX02_SWEEP`). Is the shortcut **adopted** (flip rate
# > 0.5)? Predict from the notebook's plot first.

# %%
print(EX02_SWEEP)

# %%
# BEGIN SOLUTION
#> flip_rate_01 = ...  # the flip rate of the model trained at prevalence 0.1
#> adopted = ...       # True or False: flip rate > 0.5
sweep_train = subsample(load_fashion_mnist("train"), EX02_SWEEP["n_train"], seed=EX02_SWEEP["seed"])
result = prevalence_sweep(sweep_train, exp.test, exp.spec, [EX02_SWEEP["prevalence"]], model_fn=lambda: SmallCNN(1, 10),
                          epochs=exp.settings["epochs"], seed=EX02_SWEEP["seed"], cache_name=EX02_SWEEP["cache_name"])
flip_rate_01 = result[0]["flip_rate"]
adopted = flip_rate_01 > 0.5
print(f"prevalence 0.1 ({result[0]['n_patched']} patched images): flip rate {flip_rate_01:.2f}, "
      f"clean accuracy {result[0]['clean_acc']:.2f}")
# END SOLUTION
check.ex02_prevalence(flip_rate_01, adopted, exp)

# %% [markdown]
# ## Summary

# %%
check.summary()
