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
#   prediction, its top-k **proponents** and **opponents** by Grad-Cos, and a map on each training
#   image: by default the **two-step occlusion** map (what in that training image the model uses
#   for its *own* label), and why the stored evidence over seeds made it the default instead of a
#   TFA map;
# - a recipe for finding **harmful training regions**: take a test image the patch flips, explain
#   its *true* label, and look at the opponents; then compare with the clean version of the image;
# - what each control changes, and which ones cost time (test image, score, label, k, map method,
#   and SmoothGrad n and σ for the paper's map) and which are free (sign, opacity);
# - how to switch to the TFA maps (the exact decomposition of Grad-Cos, the paper's SmoothGrad
#   gradient) and compare them with the default on the same pairs, against the clean model;
# - how to do the same from code with `ExplorerState`, and how to run the explorer as a
#   standalone app with Voilà.
#
# **Terms** are defined where they are first used and collected in the [glossary](../docs/glossary.md).
#
# **Run time and mode:** the first code cell prints the mode this notebook runs in (fast mode when
# no CUDA device is available) and its run time measured in that mode. The first run also builds the
# gradient index of the training set and caches it.
#
# **No widgets?** If you read a static copy of this notebook (e.g. on GitHub), the explorer below
# does not render. Every step is also done in code, and a static figure shows what the explorer
# shows.

# %%
from tfa_tutorial import notebook_header

notebook_header("05_interactive_explorer")

# %%
import statistics
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from tfa_tutorial import (
    Claims, ExplorerState, fast_mode, localisation_evidence, relevance_mass_accuracy, shortcut_experiment,
)
from tfa_tutorial.attribution.gradients import predicted_labels
from tfa_tutorial.evaluation.controls import (
    control_maps, gains_over_seeds, self_map_correlation, stored_table, depends_on_test, with_gain,
)
from tfa_tutorial.evaluation.evidence import aggregate_seeds, format_mean_sd, load_results
from tfa_tutorial.explorer.render import explorer_figure
from tfa_tutorial.explorer.settings import DEFAULT_MAP_METHOD, MAP_METHODS, METHOD_FAMILIES
from tfa_tutorial.explorer.summaries import format_items, patched_pairs, patched_share
from tfa_tutorial.explorer.view import build_explorer
from tfa_tutorial.teaching.plots import FONT, bar_table, map_rows, show_image, show_map

torch.manual_seed(0)
FAST = fast_mode()
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
# best candidates of each list exactly (`tfa_tutorial/explorer/state.py` explains why).
# `build_explorer` returns the UI and its named controls; the cell's last line displays it.
#
# Each shown training image gets a **map**. Two different questions can be asked of it:
#
# - *TFA*: which regions of this training image make its **score** (Grad-Cos with the test image)
#   high? The paper's map (SmoothGrad gradient of Grad-Cos with respect to the training pixels) and
#   the exact decomposition of Grad-Cos (`decompose_score`) answer this; they depend on the test
#   image.
# - *two-step*: which regions of this training image does the model use for **its own label**?
#   The explorer's default, **two-step occlusion** (`two_step_baseline(model, x, y,
#   method="occlusion", window=4, stride=2)`), slides a 4×4 black window (stride 2) over the
#   training image and records how much its own label's logit drops. Red = occluding this region
#   lowers that logit. It ignores the test image: the **ranking** (Grad-Cos) is what connects the
#   shown training images to the test image.
#
# Section 3 shows the stored measurements over seeds that made the two-step map the default, and
# how to switch to the TFA maps (*Map method*, or `state.set(method="decomposition")`).

# %%
state = ExplorerState.from_experiment(exp)  # starts on the first shortcut-flipped test image
state.build_index()
print(f"{len(state.flipped)} shortcut-flipped test images; {len(state.misclassified)} misclassified and "
      f"{len(state.correct)} correct on the patched test set")
print(f"map method: {MAP_METHODS[state.settings.method]} (options: {', '.join(MAP_METHODS)})")

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
# - **Map method** chooses how each training image's map is computed: two-step occlusion of its own
#   label (default), or a TFA map of the score: the paper's gradient with SmoothGrad, gradient ×
#   input, integrated gradients, or the exact decomposition.
# - **SmoothGrad n and σ** apply to the paper's gradient map only; they are greyed out for the
#   other methods.
# - These are the slow controls (test image, score, test label, k, map method, n, σ): the sliders
#   apply when you release them, a progress bar runs while maps are computed, and with *update
#   automatically* unticked nothing is computed until you press **Compute**.
# - **Sign, channels, opacity** only redraw: the maps are cached.
# - **inspect** under a training image shows it large with three maps side by side: the raw
#   gradient of the score (the paper's map without smoothing), the explorer's map (two-step
#   occlusion by default), and the two-step SmoothGrad baseline (SmoothGrad of the training
#   image's own logit, which also ignores the test image).
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
print(f"top-{len(r.proponents)} proponents of the prediction ({t.target_name}):")
print(format_items(r.proponents))

# %% [markdown]
# The proponents are T-shirt/top training images **with the patch**: the prediction rests on what
# the patched test image shares with them. One image is an anecdote, so count over the first
# flipped test images: the share of patched images among the top-k proponents, against the base
# rate of patched images in the training set.

# %%
n_check = 40 if FAST else 100
flipped = state.flipped[:n_check]
share_pred = patched_share(state, flipped, "proponents")
print(f"patched share among the top-{state.settings.k} proponents of the prediction, {len(flipped)} flipped test images: "
      f"{share_pred:.2f} (base rate {base_rate:.2f})")

# %% [markdown]
# **Step 2: the same test image without the patch.** Switch the test set to *clean* (in the
# explorer: the *Test set* dropdown). The model now predicts the right class, and its proponents
# are ordinary training images of that class:

# %%
r_clean = state.result(test_index=j, test_set="clean")
print(f"clean test image #{j}: predicted {r_clean.test.pred_name}")
print(format_items(r_clean.proponents))
share_clean = patched_share(state, flipped, "proponents", test_set="clean")
print(f"patched share among the proponents of the clean versions: {share_clean:.2f}")

# %% [markdown]
# **Step 3: explain the error.** Back to the patched image, and set *Test label* to **true**. Now
# the scores compare each training gradient with the gradient of the loss of the *correct* label.
# The **opponents** are the training images whose training steps raise that loss: they are
# harmful for this test image.

# %%
r_true = state.result(test_index=j, label="true")
print(f"explaining the true label {r_true.test.target_name} of test image #{j}; top opponents:")
print(format_items(r_true.opponents))
share_harm = patched_share(state, flipped, "opponents", label="true")
print(f"patched share among the top-{state.settings.k} opponents of the true label: {share_harm:.2f} "
      f"({share_harm / base_rate:.0f}× the base rate)")

# %% [markdown]
# **Step 4: which regions of a harmful training image?** Click *inspect* under an opponent. The
# detail pane shows the image with the patch outlined and three maps: the raw gradient of the
# score with respect to the training pixels (TFA), the explorer's map (here two-step occlusion:
# what the model uses in this image for its own label), and the two-step SmoothGrad baseline. We
# show the absolute value of each. In code:

# %%
harmful = next((it for it in r_true.opponents if it.patched), r_true.opponents[0])
d = state.detail(harmful.index, test_index=j, label="true", sign="absolute")
fig, axes = plt.subplots(1, 4, figsize=(10, 2.9), layout="constrained")
show_image(axes[0], d.image, f"#{d.index} {d.label_name}\nGrad-Cos {d.score:+.2f}", mask=d.mask)
panels = [("TFA raw gradient", d.raw), (MAP_METHODS[d.method].split(" (")[0], d.smooth), (f"two-step SmoothGrad\nn={d.n_samples}", d.two_step)]
for ax, (name, m) in zip(axes[1:], panels):  # three different quantities: one colour bar each
    fig.colorbar(show_map(ax, m, None, name, mask=d.mask, signed=False), ax=ax, shrink=0.8).ax.tick_params(labelsize=FONT)
fig.suptitle("|map| on a harmful (opponent) training image; green box = the patch", fontsize=FONT + 1)
plt.show()
area = float(d.mask.float().mean())
mass = {name: float(relevance_mass_accuracy(m[None], d.mask[None])[0]) for name, m in panels}
print("share of |map| inside the patch:", {k: round(v, 2) for k, v in mass.items()}, f"(patch area {area:.2f})")

# %% [markdown]
# One image is an anecdote; the next section measures over many pairs. Trust the **ranking**
# (steps 1–3, counted over many test images) more than any single map, and compare every map with
# its clean-model control (next section).
#
# **Try it yourself** in the explorer: pick a *misclassified* test image from the **clean** test
# set. Are its opponents patched? What changes when you switch the score to Grad-Dot, whose
# ranking favours training images with large gradients?
#
# ## 3. The recommended map, and why
#
# Which map should the explorer show on each training image? The course chooses it in one place
# (`recommended_family()` in `tfa_tutorial/evaluation/verdict.py`) from the stored evidence,
# `docs/results.json`: every map family was measured on several seeds, each against a
# **control**, the same map computed with the **clean model** (the same architecture trained
# without the patch) explaining the same label. A map that lights up a bright square on any model
# is not telling us about the shortcut; only the difference, the **gain**, is. The recommended map
# is the one of the explorer's menu with the largest gain, and the explorer's default
# (`DEFAULT_MAP_METHOD`) is that map.
#
# `benchmarks/results.py` measured every map family over the top-4 patched training images of 8
# flipped test images per seed (`docs/results.md`), on this tutorial's patch and on quanda's
# preset. Mass = share of the map's positive part on the patch; rank = share of the top-|patch|
# pixels on it; pointing = the map's maximum is on it; chance = the patch's area (all in the
# [glossary](../docs/glossary.md)). Mean ± sd over the seeds stored, for the explorer's menu and
# the two controls:

# %%
results = load_results()
evidence = results["evidence"]
RECOMMENDED = METHOD_FAMILIES[DEFAULT_MAP_METHOD].name  # = recommended_family(): the explorer's default
SHOWN = [f.name for f in METHOD_FAMILIES.values()] + ["control · input as map", "control · random"]
stored = gains_over_seeds(evidence)  # {configuration: {family: mass, clean-model mass, gain over seeds}}
chance = {cfg: next(r for s, r in runs.items() if s.isdigit())["chance"] for cfg, runs in evidence.items()}
for cfg, runs in evidence.items():
    seeds = sorted((s for s in runs if s.isdigit()), key=int)
    display(Markdown(f"**{cfg}** (seeds {', '.join(seeds)}; {runs[seeds[0]]['n_pairs']} pairs per seed)\n\n"
                     + stored_table(stored[cfg], SHOWN, chance[cfg], mark=RECOMMENDED)))
gain = {cfg: {f: row["gain"]["mean"] for f, row in stored[cfg].items()} for cfg in stored}
best_tfa = {cfg: max(depends_on_test(gain[cfg]), key=gain[cfg].get) for cfg in stored}
display(Markdown(
    f"The recommended map is **{RECOMMENDED}**. Its gain is "
    + "; ".join(f"{format_mean_sd(stored[c][RECOMMENDED]['gain'], signed=True)} on `{c}`" for c in stored)
    + ". The best of all TFA variants (every map that depends on the test image) gains "
    + "; ".join(f"{format_mean_sd(stored[c][best_tfa[c]]['gain'], signed=True)} on `{c}` ({best_tfa[c]})" for c in stored)
    + ". The input itself as a map puts "
    + ", ".join(f"{stored[c]['control · input as map']['shortcut model']['mass']['mean']:.2f}" for c in stored)
    + " of its mass on the patch (chance " + ", ".join(f"{chance[c]:.2f}" for c in stored) + ")."))

# %% [markdown]
# Read the **gain** column first. The recommended map gains most; its clean-model control is the
# number to compare with: on the clean model the bright square is just a bright square, on the
# shortcut model it decides the label. The TFA variants (all maps that depend on the test image,
# including the exact decomposition and the paper's map) gain much less, because most of what
# they put on the patch they put there on the clean model too.
#
# Then the *mass* column, with a warning. Maps that multiply by the pixel values (gradient × input,
# the input itself) put a large share of their mass on the patch on *both* models: the patch is
# the brightest region, so any such map finds it. The input-as-map control gains nothing, as it
# cannot: mass without the clean-model control is not evidence about the shortcut.
#
# So the explorer shows the recommended map, while the **ranking stays test-specific**: which
# training images are shown is decided by Grad-Cos with the chosen test image (section 2 counted
# how often they carry the patch). The map then says what, in each of those images, the model uses.
# What the TFA maps would add, *which part of this training image matches this test image*, is
# what they did not measurably deliver here (the last part of this section shows why).
#
# ### Measure it yourself: the recommended map against the TFA maps, with the control
#
# In the explorer, choose *exact decomposition* or *gradient (SmoothGrad, the paper's)* under
# **Map method**; in code, `state.set(method="decomposition")` or `state.set(method="gradient")`.
# Here we run the one measurement protocol of the course (`localisation_evidence`, the one behind
# `docs/results.md`) on this notebook's model: the first 8 flipped test images, the top-4 patched
# training images of each by Grad-Cos (from the explorer's ranking, `patched_pairs`), three maps
# from the map registry, each on the shortcut model and on the clean model (same training image,
# same explained label):

# %%
COMPARED = tuple(dict.fromkeys((RECOMMENDED, METHOD_FAMILIES["decomposition"].name, METHOD_FAMILIES["gradient"].name)))
test_idx, train_idx = patched_pairs(state, state.flipped[:8], k=4)  # test_idx [8], train_idx [8, 4]
live = with_gain(localisation_evidence(exp, test_idx, train_idx, families=COMPARED))
area_patch = float(exp.train.masks[train_idx.flatten()].float().mean())
fig = bar_table({f: {"shortcut model": v["mass"], "clean model (control)": v["clean"]} for f, v in live.items()},
                "mass", chance=area_patch, ylabel="positive mass on the patch",
                title=f"{train_idx.numel()} pairs of this run: the gain is the gap between the two bars")
plt.show()
display(Markdown("| map | gain (shortcut − clean mass) |\n|---|---|\n"
                 + "\n".join(f"| {f} | {v['gain']:+.2f} |" for f, v in live.items())))

# %% [markdown]
# One pair in pictures: the four patched training images of the first test image, each map on the
# shortcut model and on the clean model. Each row has one colour scale, symmetric around 0, shown
# by its colour bar (red = supports the explained label or score, blue = against it); the green box
# is the patch.

# %%
SHORT = {METHOD_FAMILIES["decomposition"].name: "decomposition", METHOD_FAMILIES["gradient"].name: "paper's map", RECOMMENDED: "recommended"}
q0, row0 = int(test_idx[0]), train_idx[0]
cm = control_maps(exp, q0, row0, COMPARED)
fig = map_rows(exp.train.images[row0], {f"{SHORT[f]}\n{m.split()[0]}": cm[f][m] for f in COMPARED for m in cm[f]},
               col_titles=[f"#{int(i)} {exp.classes[int(exp.train.labels[i])]}" for i in row0],
               masks=exp.train.masks[row0], first_col=exp.patched_test.images[q0],
               first_col_title=f"test #{q0}\n→ {target}",
               suptitle="shortcut model vs clean model (the control), same images, same explained label")
plt.show()

# %% [markdown]
# The bars are the stored table's measurement on this run's pairs; the maps show why: the
# recommended map marks the patch on the shortcut model and much less on the clean model, while
# the TFA maps look alike on the two models.
#
# ### What the TFA maps do *not* tell you
#
# Why do the test-dependent maps not do better than a map that ignores the test image? For the
# pairs Grad-Cos retrieves, the training gradient points almost the same way as the test gradient
# (cosine close to 1). The decomposition then nearly equals cos × the decomposition of the training
# image's gradient with *itself*: a map of where that image's own gradient comes from, whichever
# test image retrieved it. We measure the correlation between the two on the same pairs
# (`self_map_correlation`):

# %%
labels = predicted_labels(exp.model, exp.patched_test.images[test_idx])
corr_self = torch.cat([self_map_correlation(exp.model, exp.train.images[train_idx[q]], exp.train.labels[train_idx[q]],
                                            exp.patched_test.images[int(test_idx[q])], int(labels[q]))
                       for q in range(len(test_idx))])
print(f"correlation of the decomposition with the training image's own-gradient map over {len(corr_self)} pairs: "
      f"median {float(corr_self.median()):.3f}, min {float(corr_self.min()):.3f}")
paper, decomp = METHOD_FAMILIES["gradient"].name, METHOD_FAMILIES["decomposition"].name
specificity = {fam: aggregate_seeds([run["families"][fam]["shortcut model"]["specificity"]
                                     for run in results["specificity"]["two_patch"].values()]) for fam in (paper, decomp)}
print("stored test-specificity (two-patch experiment, 0 = ignores the test image): "
      + ", ".join(f"{fam} {format_mean_sd(v, signed=True)}" for fam, v in specificity.items()))

# %% [markdown]
# So a TFA map of a retrieved image is, in practice, a **per-training-image diagnostic** too: it
# shows where that image's gradient comes from, not which part of it matches *this* test image;
# the two-patch experiment in `docs/results.md` says the same (its test-specificity, printed
# above, is close to 0 on a scale where +1 means the map moves entirely onto the test image's
# patch; checked at the end). Since the map hardly depends on the test image anyway, the explorer shows
# the map that measured best against its control, and leaves the test-specific part to the ranking.
#
# ## 4. What costs time
#
# A new test image costs one index query, exact re-scoring of a few dozen candidates and one map
# per shown training image (2k maps): 169 forward passes (13 × 13 window positions) for two-step
# occlusion, computed once per training image and reused for every test image; one gradient pass
# for the decomposition; n double-backward passes for the paper's SmoothGrad map. Display settings
# (sign, channels, opacity) reuse the cached maps (checked at the end).
# The explorer computes with one torch thread (`ExplorerState(..., num_threads=1)`, the default):
# these per-image computations are small, and on shared CPUs such as Binder's extra threads only
# compete for the same cores. Measured here, with that setting, on uncached test images with each
# method:

# %%
# NBVAL_IGNORE_OUTPUT
latency = {}
for method, images in (("two_step_occlusion", state.flipped[n_check : n_check + 4]),
                       ("decomposition", state.flipped[n_check + 4 : n_check + 8]),
                       ("gradient", state.flipped[n_check + 8 : n_check + 12])):
    latency[method] = []
    for i in images:
        t0 = time.perf_counter()
        state.result(test_index=i, method=method)
        latency[method].append(time.perf_counter() - t0)
before = dict(state.stats)
t0 = time.perf_counter()
state.result(test_index=state.flipped[n_check], sign="absolute", channels="max", opacity=0.3)
display_s = time.perf_counter() - t0
recomputed = {k: state.stats[k] - before[k] for k in ("maps", "queries", "exact")}  # maps, index queries, exact scores
redraw_free = not any(recomputed.values())
med = {m: statistics.median(v) for m, v in latency.items()}
print(f"new test image (k={state.settings.k}, {state.num_threads} torch thread), median over {len(latency['gradient'])} images: "
      f"two-step occlusion {med['two_step_occlusion']:.2f} s, decomposition {med['decomposition']:.2f} s, "
      f"paper's map (n={state.settings.n_samples}) {med['gradient']:.2f} s; display-only change: {display_s * 1000:.0f} ms, "
      f"maps recomputed: {not redraw_free}")

# %% [markdown]
# ## 5. The explorer as an app
#
# Voilà runs this notebook and shows only its outputs, so the explorer becomes a standalone page:
#
# ```bash
# voila notebooks/05_interactive_explorer.ipynb
# ```
#
# On Binder, the README's *Interactive explorer* link opens it the same way. The explorer is also one
# call away in any notebook: `from tfa_tutorial.explorer.view import explore; explore()`.
#
# ## What we showed

# %%
# NBVAL_CHECK_OUTPUT
# Each claim checks something this run measured; thresholds for the maps come from the seed spread
# of the stored evidence (docs/results.json, configuration "tutorial").
ref = stored["tutorial"]
sd_rec = ref[RECOMMENDED]["gain"]["sd"]
tfa_live = {f: v["gain"] for f, v in live.items() if f != RECOMMENDED}
c = Claims()
c.check("for shortcut-flipped test images, most top-k proponents of the (wrong) prediction carry the patch",
        share_pred >= 0.7 and share_pred >= 5 * base_rate, f"share {share_pred:.2f} vs base rate {base_rate:.2f}")
c.check("without the patch, the same test images' proponents are rarely patched",
        share_clean <= 0.2, f"share {share_clean:.2f}")
c.check("explaining the true label, the strongest opponents (harmful training images) are patched far above the base rate",
        share_harm >= 4 * base_rate, f"share {share_harm:.2f} = {share_harm / base_rate:.0f}× base rate")
c.check("this run reproduces the stored gain of the recommended map (within 2 sd of the seeds)",
        abs(live[RECOMMENDED]["gain"] - ref[RECOMMENDED]["gain"]["mean"]) <= 2 * sd_rec,
        f"{RECOMMENDED}: {live[RECOMMENDED]['gain']:+.2f} vs stored {format_mean_sd(ref[RECOMMENDED]['gain'], signed=True)}")
c.check("on this run's pairs, the recommended map gains more than each TFA map, by more than one seed sd of its gain",
        all(live[RECOMMENDED]["gain"] - g > sd_rec for g in tfa_live.values()),
        f"{live[RECOMMENDED]['gain']:+.2f} vs " + ", ".join(f"{f} {g:+.2f}" for f, g in tfa_live.items())
        + f"; sd {sd_rec:.2f}")
c.check("caveat: the decomposition map of a retrieved image correlates strongly with its own-gradient map",
        float(corr_self.median()) >= 0.9, f"median correlation {float(corr_self.median()):.3f}")
c.check("the stored test-specificity of the paper's map and of the decomposition is close to 0 "
        "(|mean over seeds| ≤ 0.1, where +1 = the map moves entirely onto the test image's patch)",
        all(abs(v["mean"]) <= 0.1 for v in specificity.values()),
        ", ".join(f"{fam} {format_mean_sd(v, signed=True)}" for fam, v in specificity.items()))
c.check("display settings (sign, channels, opacity) reuse the cached maps: nothing is recomputed",
        redraw_free, ", ".join(f"{k} recomputed: {v}" for k, v in recomputed.items()))
c.summary()

# %% [markdown]
# ## Summary
#
# - The explorer shows, for one test image, its top proponents and opponents by Grad-Cos and a map
#   on each; its default map is the one that localised the patch best in the stored evidence.
# - Harmful training regions: take a test image the patch flips, explain its *true* label, and look
#   at the opponents.
# - Display settings are free; changing the test image, the score, the label, k or the map method
#   recomputes. `ExplorerState` does the same from code.
#
# **Exercises:**
# [`exercises/05_interactive_explorer.ipynb`](../exercises/05_interactive_explorer.ipynb) (answers
# are checked automatically; hints never give the answer).
#
# **Next:** [06 · From diagnosis to fix](06_from_diagnosis_to_fix.ipynb) acts on the flagged
# training images and retrains.
