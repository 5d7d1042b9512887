# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# # 05 · Exploring harmful training regions interactively
#
# **What you will learn**
#
# - how to open the **explorer** on the shortcut model and read it: a test image with its
#   prediction, its top-k **proponents** and **opponents** by Grad-Cos, and each training image's
#   TFA map as an overlay;
# - a recipe for finding **harmful training regions**: take a test image the patch flips, explain
#   its *true* label, and look at the opponents; then compare with the clean version of the image;
# - what each control changes, and which ones cost time (SmoothGrad n and σ) and which are free
#   (sign, opacity);
# - how to do the same from code with `ExplorerState`, and how to run the explorer as a
#   standalone app with Voilà.
#
# **Run time**: about 1 minute on 2 CPU cores in fast mode (`TFA_FAST=1`) once the models are
# cached. The first run of the course trains them (several minutes) and builds the gradient index
# of the training set (about 20 s; then it is cached too).
#
# **No widgets?** If you read a static copy of this notebook (e.g. on GitHub), the explorer below
# does not render. Every step is also done in code, and a static figure shows what the explorer
# shows.

# %%
import statistics
import time

import matplotlib.pyplot as plt
import torch

import tfa_tutorial as T
from tfa_tutorial.claims import Claims
from tfa_tutorial.experiment import shortcut_experiment
from tfa_tutorial.explorer import build_explorer, explorer_figure
from tfa_tutorial.explorer_state import ExplorerState
from tfa_tutorial.plots import show_image, show_map

torch.manual_seed(0)
FAST = T.fast_mode()
exp = shortcut_experiment(seed=0, progress=False)
target = exp.classes[exp.spec.target_class]
base_rate = float(exp.train.patched.float().mean())
print(f"fast mode: {FAST}; training images: {len(exp.train)}, of which {int(exp.train.patched.sum())} "
      f"({base_rate:.1%}) carry the patch; shortcut target: {target}")

# %% [markdown]
# ## 1. Open the explorer
#
# `ExplorerState.from_experiment` gathers the shortcut model, the training set (with its patch
# flags and masks) and two versions of the test set: **patched** (the patch pasted on every test
# image) and **clean**. It builds a gradient index of the training set once; on this model the
# full gradient has 61k entries, so the index stores a CountSketch projection and re-scores the
# best candidates of each list exactly (`tfa_tutorial/explorer_state.py` explains why).
# `build_explorer` returns the UI and its named controls; the cell's last line displays it.

# %%
state = ExplorerState.from_experiment(exp)  # starts on the first shortcut-flipped test image
state.build_index()
print(f"{len(state.flipped)} shortcut-flipped test images; {len(state.misclassified)} misclassified and "
      f"{len(state.correct)} correct on the patched test set")

# %%
# NBVAL_IGNORE_OUTPUT
ui, controls = build_explorer(state)
ui

# %% [markdown]
# **How to use it**
#
# - **Test image**: type an index, step with ◀ ▶, or pick one from the lists of
#   *shortcut-flipped*, *misclassified* and *correct* test images. *Test set* switches between the
#   patched and the clean version of the same image.
# - **Score** (Grad-Cos or Grad-Dot) and **test label** (explain the *predicted* label or the
#   *true* one) change the ranking; **k** is the number of images per list.
# - **SmoothGrad n and σ** change the maps. These are the slow controls: the sliders apply when you
#   release them, a progress bar runs while maps are computed, and with *update automatically*
#   unticked nothing is computed until you press **Compute**.
# - **Sign, channels, opacity** only redraw: the maps are cached.
# - **inspect** under a training image shows it large with its raw TFA map, its SmoothGrad TFA map
#   and the two-step baseline side by side.
#
# If you read a static copy, this is the explorer's current view drawn with matplotlib:

# %%
fig = explorer_figure(state.last_result)
plt.show()

# %% [markdown]
# ## 2. Finding harmful training regions, step by step
#
# Everything the explorer shows is a result of the state object, so we can take the same steps in
# code. `state.result(**settings)` computes the view for other settings without moving the
# explorer above; `maps=False` skips the TFA maps when only the ranking is needed.
#
# **Step 1: a test image the patch flips.** The model gets it right without the patch and calls
# it a T-shirt/top with the patch. Which training images support that prediction?

# %%
j = state.flipped[0]
r = state.result(test_index=j)
t = r.test
print(f"test image #{j}: true {t.label_name}, predicted {t.pred_name} ({float(t.probs[t.pred]):.0%})")


def ranked(items):
    for it in items:
        print(f"  #{it.index:<6} {it.label_name:<12} {'patch' if it.patched else '-':<6} {it.score:+.3f}")


print(f"top-{len(r.proponents)} proponents of the prediction ({t.target_name}):")
ranked(r.proponents)

# %% [markdown]
# The proponents are T-shirt/top training images **with the patch**: the prediction rests on what
# the patched test image shares with them. One image is an anecdote, so count over the first
# flipped test images: the share of patched images among the top-k proponents, against the base
# rate of patched images in the training set.

# %%
n_check = 40 if FAST else 100
flipped = state.flipped[:n_check]


def patched_share(items):
    return sum(bool(it.patched) for it in items) / len(items)


share_pred = statistics.mean(patched_share(state.result(test_index=i, maps=False).proponents) for i in flipped)
print(f"patched share among the top-{state.settings.k} proponents of the prediction, {len(flipped)} flipped test images: "
      f"{share_pred:.2f} (base rate {base_rate:.2f})")

# %% [markdown]
# **Step 2: the same test image without the patch.** Switch the test set to *clean* (in the
# explorer: the *Test set* dropdown). The model now predicts the right class, and its proponents
# are ordinary training images of that class:

# %%
r_clean = state.result(test_index=j, test_set="clean")
print(f"clean test image #{j}: predicted {r_clean.test.pred_name}")
ranked(r_clean.proponents)
share_clean = statistics.mean(patched_share(state.result(test_index=i, test_set="clean", maps=False).proponents)
                              for i in flipped)
print(f"patched share among the proponents of the clean versions: {share_clean:.2f}")

# %% [markdown]
# **Step 3: explain the error.** Back to the patched image, and set *Test label* to **true**. Now
# the scores compare each training gradient with the gradient of the loss of the *correct* label.
# The **opponents** are the training images whose training steps raise that loss: they are
# harmful for this test image.

# %%
r_true = state.result(test_index=j, label="true")
print(f"explaining the true label {r_true.test.target_name} of test image #{j}; top opponents:")
ranked(r_true.opponents)
share_harm = statistics.mean(patched_share(state.result(test_index=i, label="true", maps=False).opponents) for i in flipped)
print(f"patched share among the top-{state.settings.k} opponents of the true label: {share_harm:.2f} "
      f"({share_harm / base_rate:.0f}× the base rate)")

# %% [markdown]
# **Step 4: which regions of a harmful training image?** Click *inspect* under an opponent. The
# detail pane shows the image with the patch outlined, the raw TFA map (the gradient of the score
# with respect to the training pixels), its SmoothGrad average, and the two-step baseline
# (ordinary SmoothGrad of the training image's own label, which ignores the test image). In code:

# %%
harmful = next((it for it in r_true.opponents if it.patched), r_true.opponents[0])
d = state.detail(harmful.index, test_index=j, label="true", sign="absolute")
fig, axes = plt.subplots(1, 4, figsize=(8, 2.4))
show_image(axes[0], d.image, f"#{d.index} {d.label_name}", mask=d.mask)
for ax, (name, m) in zip(axes[1:], [("TFA raw", d.raw), (f"TFA SmoothGrad n={d.n_samples}", d.smooth), ("two-step", d.two_step)]):
    show_map(ax, m, d.image, name, mask=d.mask, signed=False)
fig.suptitle("|map| on a harmful (opponent) training image; green box = the patch", fontsize=9)
fig.tight_layout()
plt.show()
area = float(d.mask.float().mean())
mass = {name: float(T.relevance_mass_accuracy(m[None], d.mask[None])[0])
        for name, m in [("TFA raw", d.raw), ("TFA SmoothGrad", d.smooth), ("two-step", d.two_step)]}
print("share of |map| inside the patch:", {k: round(v, 2) for k, v in mass.items()}, f"(patch area {area:.2f})")

# %% [markdown]
# Read these maps with the measurements of notebook 04 in mind: there, over many pairs, the
# (SmoothGrad) gradient of Grad-Cos put about chance-level mass on the patch although Grad-Cos
# ranked the patched images first. A gradient map is a *sensitivity*: it shows which pixel
# changes would turn this training gradient further against the test gradient, not which pixels
# already do. So trust the **ranking** (steps 1–3, counted over many test images) more than one
# map, compare every map with the two-step baseline, and switch *Sign* to see the opposing (blue)
# part on its own.
#
# **Try it yourself** in the explorer: pick a *misclassified* test image from the **clean** test
# set. Are its opponents patched? What changes when you switch the score to Grad-Dot, whose
# ranking favours training images with large gradients?
#
# ## 3. What costs time
#
# A new test image costs one index query, exact re-scoring of a few dozen candidates and one
# SmoothGrad TFA map per shown training image (2k maps). Display settings reuse the cached maps.
# The explorer computes with one torch thread (`num_threads=1`): on shared CPUs such as Binder's,
# more threads for these small per-image computations made the time jump from under a second to
# half a minute in our measurements. Measured here on uncached test images:

# %%
# NBVAL_IGNORE_OUTPUT
latencies = []
for i in state.flipped[n_check : n_check + 5]:
    t0 = time.perf_counter()
    state.result(test_index=i)
    latencies.append(time.perf_counter() - t0)
before = dict(state.stats)
t0 = time.perf_counter()
state.result(test_index=state.flipped[n_check], sign="absolute", opacity=0.3)
display_s = time.perf_counter() - t0
redraw_free = all(state.stats[k] == before[k] for k in ("maps", "queries", "exact"))
print(f"new test image: median {statistics.median(latencies):.2f} s over {len(latencies)} images "
      f"(k={state.settings.k}, n={state.settings.n_samples}, {state.num_threads} torch thread); "
      f"display-only change: {display_s * 1000:.0f} ms, maps recomputed: {not redraw_free}")

# %% [markdown]
# ## 4. The explorer as an app
#
# Voilà runs this notebook and shows only its outputs, so the explorer becomes a standalone page:
#
# ```bash
# voila notebooks/05_interactive_explorer.ipynb
# ```
#
# On Binder, the README's *Interactive explorer* link opens it the same way. The explorer is also one
# call away in any notebook: `from tfa_tutorial.explorer import explore; explore()`.
#
# ## What we showed

# %%
# NBVAL_CHECK_OUTPUT
# The widgets hold no attribution logic: the explorer's map is the package's TFA map.
i0 = r.proponents[0].index
same_map = torch.allclose(
    state.tfa_map(i0, state.result(test_index=j).settings),
    T.tfa_maps(exp.model, exp.train.images[i0 : i0 + 1], exp.train.labels[i0 : i0 + 1], exp.patched_test.images[j],
               n_samples=state.settings.n_samples, noise=state.settings.noise, seed=state.seed + i0)[0],
    atol=1e-6,
)
refused = state.set(test_index=10**6)

c = Claims()
c.check("for shortcut-flipped test images, most top-k proponents of the (wrong) prediction carry the patch",
        share_pred >= 0.7 and share_pred >= 5 * base_rate, f"share {share_pred:.2f} vs base rate {base_rate:.2f}")
c.check("without the patch, the same test images' proponents are rarely patched",
        share_clean <= 0.2, f"share {share_clean:.2f}")
c.check("explaining the true label, the strongest opponents (harmful training images) are patched far above the base rate",
        share_harm >= 4 * base_rate, f"share {share_harm:.2f} = {share_harm / base_rate:.0f}× base rate")
c.check("changing only display settings recomputes no map and no score", redraw_free, "cache counters unchanged")
c.check("the explorer's maps are the package's tfa_maps (same seed)", same_map, f"training image #{i0}")
c.check("a bad choice gives a message, not an exception", bool(refused.message) and refused.test is not None,
        refused.message)
c.summary()
