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
# or opponents) — done by hand with `grad_cos`, so you can predict what the explorer will show;
# then reading a map, asking the explorer's state from code, and designing a control.
#
# **Run time:** about a minute in fast mode once the models and the explorer's gradient index are cached
# (exercises 1–2 use a 2,000-image training slice; 3–5 the explorer on the whole training set).
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.
#
# [teacher] **Teacher's copy, with the solutions filled in** (`exercises/solutions/`). Students get
# [teacher] `exercises/05_interactive_explorer.ipynb`, written from this file by `scripts/make_exercises.py`.

# %%
import matplotlib.pyplot as plt
import torch

from tfa_tutorial import (
    ExplorerState, PairContext, grad_cos, predict, reduce_map, relevance_mass_accuracy, shortcut_experiment,
)
from tfa_tutorial.exercises import check
from tfa_tutorial.explorer.settings import DEFAULT_MAP_METHOD, METHOD_FAMILIES
from tfa_tutorial.teaching.plots import map_rows, show_image

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
# BEGIN SOLUTION
#> shares = {"predicted": ..., "true": ...}
shares = {}
for key, label in (("predicted", None), ("true", torch.tensor([y_true]))):
    s = grad_cos(model, train.images, train.labels, x_test[None], label)[0]
    shares[key] = float((train.labels[s.topk(10).indices] == target).float().mean())
print(shares)
# END SOLUTION
check.ex05_label_choice(shares, model, train, x_test, y_true, target)

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
# BEGIN SOLUTION
#> worst = ...  # an index into train
s = grad_cos(model, train.images, train.labels, x_test[None], torch.tensor([y_true]))[0]
worst = int(s.argmin())
# END SOLUTION
check.ex05_top_opponent(worst, model, train, x_test, y_true)

# %%
if check.results.get("ex05_top_opponent"):
    fig, axes = plt.subplots(1, 2, figsize=(4.4, 2.4))
    show_image(axes[0], x_test, f"test: {classes[y_true]}\n→ {classes[pred]}", mask=exp.patched_test.masks[j])
    show_image(axes[1], train.images[worst], f"top opponent of the true label:\n{classes[int(train.labels[worst])]}"
               + ("\n(patched)" if train.patched[worst] else ""))
    plt.show()

# %% [markdown]
# ## Exercise 3 · Read a map
#
# The explorer draws a map on each training image. Below is the explorer's default map (the
# course's recommended map) of one patched proponent of a flipped test image, drawn in the course's
# style: red = positive evidence, blue = negative, one colour scale with its colour bar, the patch
# outlined in green. **Read it** (no computing): in which quadrant of the image is the map largest
# (`"top-left"`, `"top-right"`, `"bottom-left"` or `"bottom-right"`), and does more of its positive
# evidence (all the red) fall inside the green box than an evenly spread map would put there
# (the box's share of the image, printed)? The checker compares your reading with the measured
# mass on the patch.

# %%
state = ExplorerState.from_experiment(exp)  # the explorer's state, no widgets (notebook 05)
state.build_index()
q0 = state.flipped[0]
i_map = next(it.index for it in state.result(test_index=q0, maps=False).proponents if it.patched)
m = state.training_map(i_map)  # the default map, [C, H, W]
fig = map_rows(exp.train.images[i_map : i_map + 1], {"default map": reduce_map(m, "signed")[None]},
               col_titles=[f"#{i_map} {classes[int(exp.train.labels[i_map])]}"], masks=exp.train.masks[i_map : i_map + 1])
plt.show()
print(f"the green box covers {float(exp.train.masks[i_map].float().mean()):.0%} of the image")

# %%
# BEGIN SOLUTION
#> reading = {"quadrant": ..., "above_chance": ...}
# the teacher's check of the reading: the largest positive value, and the mass on the patch against its area
pos = reduce_map(m, "positive")
r_max, c_max = divmod(int(pos.argmax()), pos.shape[-1])
quadrant = ("top" if r_max < pos.shape[0] / 2 else "bottom") + "-" + ("left" if c_max < pos.shape[1] / 2 else "right")
mass = float(relevance_mass_accuracy(pos[None], exp.train.masks[i_map][None])[0])
reading = {"quadrant": quadrant, "above_chance": mass > float(exp.train.masks[i_map].float().mean())}
# END SOLUTION
check.ex05_read_map(reading, m, exp.train.masks[i_map])

# %% [markdown]
# ## Exercise 4 · Ask the explorer from code
#
# Everything the explorer shows comes from its state: `state.result(test_index=..., label=...,
# maps=False)` returns the ranking for any settings without moving the explorer (`.proponents`,
# `.opponents`, each item with `.index`, `.patched`, `.score`); `state.settings` holds the current
# settings (e.g. `state.settings.k`); `state.training_map(i, settings)` gives the map of training
# image `i`. Among the first 20 shortcut-flipped test images (`candidates`), find the one whose
# **harmful** training images — its top-k opponents of the *true* label — carry the patch most
# often (the first one on a tie).

# %%
candidates = state.flipped[:20]
# BEGIN SOLUTION
#> most_harmed = ...  # one of candidates
n_patched = {q: sum(bool(it.patched) for it in state.result(test_index=q, label="true", maps=False).opponents)
             for q in candidates}
most_harmed = max(candidates, key=n_patched.get)
# END SOLUTION
check.ex05_state_api(most_harmed, state, candidates)

# %% [markdown]
# ## Exercise 5 · Design a control
#
# A map's mass on the patch means little on its own: the patch is bright, and some maps find bright
# squares on any model. A **control** is the same measurement from something that cannot know the
# shortcut. Write a function `control(x, y)` that returns maps `[k, C, H, W]` (or `[k, H, W]`) for
# the training images `x` `[k, C, H, W]` with labels `y` `[k]`: your control for the default map
# `maps` of these images on the shortcut model. The checker verifies that it behaves as a control
# should — one map per image, the same result twice, not all zero, and **unchanged when the
# shortcut model changes** — then prints the map's gain against it. Which control gives the most
# honest gain? (Notebook 05 section 3 uses one of the candidates.)
#
# The default map is a family of the package's map registry, `default_map` below: applied to a
# `PairContext(model, x_train, y_train, x_test, label)` it returns the maps of `x_train`
# (`tfa_tutorial/attribution/families.py`). `q0` is the test image, `label_q0` the label it explains.

# %%
idx = torch.tensor([it.index for it in state.result(test_index=q0, maps=False).proponents if it.patched])
x_c, y_c = exp.train.images[idx], exp.train.labels[idx]
maps = torch.stack([state.training_map(int(i)) for i in idx])  # the default map on the shortcut model
default_map = METHOD_FAMILIES[DEFAULT_MAP_METHOD]  # its registry family (the course's recommended map)
label_q0 = int(predict(model, exp.patched_test.images[q0][None])[0])  # the label the explorer explains: the prediction
print(f"default map: {default_map.name}")
# BEGIN SOLUTION
#> control = ...  # a function (x, y) -> maps


def control(x, y):
    """The default map computed with the clean model (same architecture, trained without the patch), for the same
    test image and explained label: the registry family, whatever the default is."""
    return default_map(PairContext(exp.clean_model, x, y, exp.patched_test.images[q0], label_q0))


# END SOLUTION
check.ex05_design_control(control, exp.model, x_c, y_c, exp.train.masks[idx], maps)

# %% [markdown]
# ## Summary

# %%
check.summary()
