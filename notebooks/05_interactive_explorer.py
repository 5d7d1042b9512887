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

from tfa_tutorial import (
    Claims, decompose_score, ExplorerState, FAMILIES, fast_mode, reduce_map, relevance_mass_accuracy,
    score_vector, shortcut_experiment, tfa_maps, two_step_baseline,
)
from tfa_tutorial.evaluation.evidence import aggregate_seeds, format_mean_sd, load_results, localisation_over_seeds
from tfa_tutorial.explorer.view import build_explorer
from tfa_tutorial.explorer.render import explorer_figure
from tfa_tutorial.explorer.settings import DEFAULT_MAP_METHOD, MAP_METHODS, METHOD_FAMILIES, TWO_STEP_OCCLUSION
from tfa_tutorial.teaching.plots import show_image, show_map

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
# detail pane shows the image with the patch outlined and three maps: the raw gradient of the
# score with respect to the training pixels (TFA), the explorer's map (here two-step occlusion:
# what the model uses in this image for its own label), and the two-step SmoothGrad baseline. We
# show the absolute value of each. In code:

# %%
harmful = next((it for it in r_true.opponents if it.patched), r_true.opponents[0])
d = state.detail(harmful.index, test_index=j, label="true", sign="absolute")
fig, axes = plt.subplots(1, 4, figsize=(8, 2.4))
show_image(axes[0], d.image, f"#{d.index} {d.label_name}\nGrad-Cos {d.score:+.2f}", mask=d.mask)
panels = [("TFA raw gradient", d.raw), (MAP_METHODS[d.method].split(" (")[0], d.smooth), (f"two-step SmoothGrad n={d.n_samples}", d.two_step)]
for ax, (name, m) in zip(axes[1:], panels):
    show_map(ax, m, d.image, name, mask=d.mask, signed=False)
fig.suptitle("|map| on a harmful (opponent) training image; green box = the patch", fontsize=9)
fig.tight_layout()
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
# ## 3. Why two-step occlusion is the default
#
# Until this version the explorer showed the exact decomposition of Grad-Cos by default, because it
# is exact (its map sums to the score). We then measured every map family on several seeds, each
# against a **control**: the same map computed with the **clean model** (the same architecture
# trained without the patch) explaining the same label. A map that lights up a
# bright square on any model is not telling us about the shortcut; only the difference, the
# **gain**, is.
#
# `benchmarks/results.py` measured every map family over the top-4 patched training images of 8
# flipped test images per seed (`docs/results.md`), on this tutorial's patch and on quanda's
# preset. Mass = share of the map's positive part on the patch; rank = share of the top-|patch|
# pixels on it; pointing = the map's maximum is on it; chance = the patch's area. Mean ± sd over
# the seeds stored:

# %%
results = load_results()
evidence = results["evidence"]
# the explorer's menu (the map registry's EXPLORER_FAMILIES) and the two controls
SHOWN = [f.name for f in METHOD_FAMILIES.values()] + ["control · input as map", "control · random"]
OCC = METHOD_FAMILIES[DEFAULT_MAP_METHOD].name  # "two-step · occlusion", the default

stored, chance = {}, {}
for config in ("tutorial", "quanda_mnist"):
    seeds = sorted(evidence[config], key=int)
    stored[config] = localisation_over_seeds(evidence[config])  # per family, over seeds, with the gain
    chance[config] = evidence[config][seeds[0]]["chance"]
    print(f"{config}: seeds {', '.join(seeds)}; {evidence[config][seeds[0]]['n_pairs']} pairs per seed; "
          f"chance {chance[config]:.2f}")
    print(f"  {'map':<40}{'mass':>13}{'clean model':>13}{'gain':>14}{'rank':>13}{'pointing':>13}")
    for fam in SHOWN:
        row, sh = stored[config][fam], stored[config][fam]["shortcut model"]
        cells = [format_mean_sd(sh["mass"]), format_mean_sd(row["clean model"]["mass"]),
                 format_mean_sd(row["gain"], signed=True), format_mean_sd(sh["rank"]), format_mean_sd(sh["pointing"])]
        print(f"  {fam + (' (default)' if fam == OCC else ''):<40}" + "".join(f"{c:>13}" for c in cells))
    # every map that depends on the test image: the TFA variants (all score families of the registry)
    tfa = {f: row for f, row in stored[config].items() if FAMILIES[f].explained_label == "test"}
    best_tfa = max(tfa, key=lambda f: tfa[f]["gain"]["mean"])
    print(f"  largest gain of all {len(tfa)} TFA variants: {best_tfa} {format_mean_sd(tfa[best_tfa]['gain'], signed=True)}\n")

# %% [markdown]
# Read the **gain** column first. Two-step occlusion has by far the largest gain on both
# configurations, and its clean-model control stays *below* chance: on the clean model, occluding
# the bright square barely changes the logit, so the map does not light it up; on the shortcut
# model it does. Every TFA variant (all maps that depend on the test image, including the exact
# decomposition and the paper's map; the last line of each block is the best of them) gains less
# than half as much on both configurations, because most of what it puts on the patch it puts
# there on the clean model too: **no TFA variant localises the patch consistently better than its
# clean-model control**.
#
# Then the *mass* column, with a warning. Gradient × input and the input itself put a large share
# of their mass on the patch on *both* models: the patch is the brightest region, so any map that
# multiplies by the pixel values finds it. The input-as-map control has no gain at all, by
# construction; mass without the clean-model control is not evidence about the shortcut.
#
# So the explorer's default map is the two-step map, the method that does best with its controls,
# while the **ranking stays test-specific**: which training images are shown is decided by Grad-Cos
# with the chosen test image (section 2 counted how often they carry the patch). The map then
# says what, in each of those images, the model uses for its label. What the TFA maps would add,
# *which part of this training image matches this test image*, is exactly what they did not
# measurably deliver here (the last part of this section shows why).
#
# ### Switch to the TFA maps and compare
#
# In the explorer, choose *exact decomposition* or *gradient (SmoothGrad, the paper's)* under
# **Map method**. In code, `state.set(method="decomposition")` or `state.set(method="gradient")`
# does the same, and `state.set(method="two_step_occlusion")` goes back. Here we take the first
# flipped test images, keep their patched top-k proponents, and measure the three maps on the
# same pairs, each also on the clean model (same training image, same explained label) as its
# control:

# %%
n_cmp = 8
pairs = [(q, it.index) for q in state.flipped[:n_cmp] for it in state.result(test_index=q, maps=False).proponents
         if it.patched]
COMPARED = ("two_step_occlusion", "decomposition", "gradient")


def clean_model_map(method, q, i, s):
    """The same map computed with the clean model: the control (package functions, not the explorer)."""
    x, y = exp.train.images[i : i + 1], exp.train.labels[i : i + 1]
    x_te, t = exp.patched_test.images[q], state.result(test_index=q, maps=False).test.target
    if method == "two_step_occlusion":
        return two_step_baseline(exp.clean_model, x, y, method="occlusion", **TWO_STEP_OCCLUSION)[0]
    if method == "decomposition":
        return decompose_score(exp.clean_model, x, y, score_vector(exp.clean_model, x_te, "cos", test_target=t)).maps[0]
    return tfa_maps(exp.clean_model, x, y, x_te, t, n_samples=s.n_samples, noise=s.noise, seed=state.seed + i)[0]


def positive_mass(m, i):
    return float(relevance_mass_accuracy(reduce_map(m, "positive")[None], exp.train.masks[i][None])[0])


live = {}
for method in COMPARED:
    state.set(method=method)
    shortcut_mass, clean_mass = [], []
    for q, i in pairs:
        s_q = state.result(test_index=q, maps=False).settings
        shortcut_mass.append(positive_mass(state.training_map(i, s_q), i))
        clean_mass.append(positive_mass(clean_model_map(method, q, i, s_q), i))
    live[method] = {"mass": statistics.mean(shortcut_mass), "clean": statistics.mean(clean_mass)}
    live[method]["gain"] = live[method]["mass"] - live[method]["clean"]
state.set(method="two_step_occlusion")  # back to the default
area_patch = float(exp.train.masks[pairs[0][1]].float().mean())
print(f"{len(pairs)} (flipped test image, patched proponent) pairs; positive mass on the patch, chance {area_patch:.2f}:")
for method, row in live.items():
    print(f"  {MAP_METHODS[method]:<48} shortcut model {row['mass']:.2f}, clean model {row['clean']:.2f}, "
          f"gain {row['gain']:+.2f}")

q0, i0 = pairs[0]
s0 = state.result(test_index=q0, maps=False).settings
fig, axes = plt.subplots(2, 4, figsize=(8, 4.8))
for row, model_name in enumerate(("shortcut model", "clean model")):
    show_image(axes[row, 0], exp.train.images[i0], f"#{i0} {exp.classes[int(exp.train.labels[i0])]}" if row == 0 else "",
               mask=exp.train.masks[i0])
    axes[row, 0].set_ylabel(model_name, fontsize=9)
    for ax, method in zip(axes[row, 1:], COMPARED):
        m = state.training_map(i0, s0, method=method) if row == 0 else clean_model_map(method, q0, i0, s0)
        show_map(ax, reduce_map(m, "signed"), exp.train.images[i0], MAP_METHODS[method].split(" (")[0],
                 mask=exp.train.masks[i0])
fig.suptitle(f"one proponent of flipped test image #{q0}: top the shortcut model, bottom the clean model "
             "(red +, blue −; green box = patch)", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# The same picture as the stored table, on this notebook's pairs: the two-step map marks the patch
# on the shortcut model and not on the clean model; the TFA maps differ much less between the two
# models.
#
# ### What the TFA maps do *not* tell you
#
# Why do the test-dependent maps not do better than a map that ignores the test image? For the
# pairs Grad-Cos retrieves, the training gradient points almost the same way as the test gradient
# (cosine close to 1). The decomposition then nearly equals cos × the decomposition of the training
# image's gradient with *itself*: a map of where that image's own gradient comes from, whichever
# test image retrieved it. We measure that here: the correlation between the explorer's
# decomposition map and this test-independent "self" map, and between the decomposition maps of
# one training image retrieved by two different test images.

# %%
def self_map(i):
    """Decomposition of the training image's own Grad-Cos with itself: no test image involved."""
    x, y = exp.train.images[i : i + 1], exp.train.labels[i : i + 1]
    return decompose_score(exp.model, x, y, score_vector(exp.model, exp.train.images[i], "cos", test_target=int(y))).maps[0]


def corr(a, b):
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]).double())[0, 1])


maps_by_train = {}
for q, i in pairs:
    s_q = state.result(test_index=q, maps=False).settings
    maps_by_train.setdefault(i, []).append(state.training_map(i, s_q, method="decomposition"))
corr_self = [corr(m, self_map(i)) for i, ms in maps_by_train.items() for m in ms]
corr_cross = [corr(ms[0], ms[1]) for ms in maps_by_train.values() if len(ms) > 1]
print(f"correlation of the decomposition with the training image's own-gradient map: median "
      f"{statistics.median(corr_self):.3f} (min {min(corr_self):.3f}) over {len(corr_self)} pairs")
print(f"same training image, two different test images: "
      + (f"median {statistics.median(corr_cross):.3f} over {len(corr_cross)} training image(s)" if corr_cross
         else "no training image was retrieved twice here"))
paper, decomp = METHOD_FAMILIES["gradient"].name, METHOD_FAMILIES["decomposition"].name
specificity = {fam: aggregate_seeds([run["families"][fam]["shortcut model"]["specificity"]
                                     for run in results["specificity"]["two_patch"].values()]) for fam in (paper, decomp)}
print("test-specificity (two-patch experiment, 0 = ignores the test image): "
      + ", ".join(f"{fam} {format_mean_sd(v, signed=True)}" for fam, v in specificity.items()))

# %% [markdown]
# So a TFA map of a retrieved image is, in practice, a **per-training-image diagnostic** too: it
# shows where that image's gradient comes from, not which part of it matches *this* test image;
# the two-patch experiment in `docs/results.md` says the same (its test-specificity, printed
# above, is close to 0). Since the map hardly depends on the test image anyway, the explorer shows
# the test-independent map that measured best, and leaves the test-specific part to the ranking.
#
# ## 4. What costs time
#
# A new test image costs one index query, exact re-scoring of a few dozen candidates and one map
# per shown training image (2k maps): 169 forward passes (13 × 13 window positions) for two-step
# occlusion, computed once per training image and reused for every test image; one gradient pass
# for the decomposition; n double-backward passes for the paper's SmoothGrad map. Display settings
# reuse the cached maps.
# The explorer computes with one torch thread (`num_threads=1`): on shared CPUs such as Binder's,
# more threads for these small per-image computations made the time jump from under a second to
# half a minute in our measurements. Measured here on uncached test images, with each method:

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
state.result(test_index=state.flipped[n_check], sign="absolute", opacity=0.3)
display_s = time.perf_counter() - t0
redraw_free = all(state.stats[k] == before[k] for k in ("maps", "queries", "exact"))
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
# The widgets hold no attribution logic: the explorer's maps are the package's.
r_j = state.result(test_index=j)  # the default: two-step occlusion of each training image's own label
occ_err = 0.0
for it in r_j.proponents + r_j.opponents:
    direct = two_step_baseline(exp.model, exp.train.images[it.index : it.index + 1],
                                 exp.train.labels[it.index : it.index + 1], method="occlusion", window=4, stride=2)[0]
    occ_err = max(occ_err, float((it.map - direct).abs().max()))
i0 = r_j.proponents[0].index
maps_before = state.stats["maps"]
other = next(q for q in state.flipped if q != j)
same_map = torch.equal(state.training_map(i0, state.result(test_index=other, maps=False).settings), r_j.proponents[0].map)
reused = same_map and state.stats["maps"] == maps_before
r_dec = state.result(test_index=j, method="decomposition")
v_j = score_vector(exp.model, exp.patched_test.images[j], "cos", test_target=r_dec.test.target)
sum_err, dec_err = 0.0, 0.0
for it in r_dec.proponents + r_dec.opponents:
    direct = decompose_score(exp.model, exp.train.images[it.index : it.index + 1],
                               exp.train.labels[it.index : it.index + 1], v_j).maps[0]
    dec_err = max(dec_err, float((it.map - direct).abs().max()))
    sum_err = max(sum_err, abs(float(it.map.sum()) - it.score))
s_paper = state.result(test_index=j, method="gradient", maps=False).settings
paper_err = float((state.training_map(i0, s_paper) - tfa_maps(
    exp.model, exp.train.images[i0 : i0 + 1], exp.train.labels[i0 : i0 + 1], exp.patched_test.images[j],
    n_samples=s_paper.n_samples, noise=s_paper.noise, seed=state.seed + i0)[0]).abs().max())
refused = state.set(test_index=10**6)
INPUT = "control · input as map"
gain = {cfg: {f: row["gain"]["mean"] for f, row in stored[cfg].items()} for cfg in stored}
tfa_gain = {cfg: max(g for f, g in gain[cfg].items() if FAMILIES[f].explained_label == "test") for cfg in stored}
all_gain = {cfg: {f: g for f, g in gain[cfg].items() if FAMILIES[f].group != "control"} for cfg in stored}
n_seeds = min(len(evidence[cfg]) for cfg in stored)

c = Claims()
c.check("for shortcut-flipped test images, most top-k proponents of the (wrong) prediction carry the patch",
        share_pred >= 0.7 and share_pred >= 5 * base_rate, f"share {share_pred:.2f} vs base rate {base_rate:.2f}")
c.check("without the patch, the same test images' proponents are rarely patched",
        share_clean <= 0.2, f"share {share_clean:.2f}")
c.check("explaining the true label, the strongest opponents (harmful training images) are patched far above the base rate",
        share_harm >= 4 * base_rate, f"share {share_harm:.2f} = {share_harm / base_rate:.0f}× base rate")
c.check("the explorer's default map is two-step occlusion and equals two_step_baseline(method='occlusion')",
        r_j.settings.method == "two_step_occlusion" and occ_err < 1e-5,
        f"largest difference {occ_err:.1e} over {len(r_j.proponents) + len(r_j.opponents)} images")
c.check("the default map ignores the test image: another test image reuses it without recomputing", reused,
        f"training image #{i0}, identical map, maps computed {state.stats['maps'] - maps_before}")
c.check("switched to the decomposition, each map equals decompose_score and sums to the Grad-Cos shown",
        dec_err < 1e-5 and sum_err < 1e-4, f"largest difference {dec_err:.1e}, largest |sum − score| {sum_err:.1e}")
c.check("with method='gradient' the explorer's map is the package's tfa_maps (same seed)", paper_err < 1e-5,
        f"training image #{i0}, largest difference {paper_err:.1e}")
c.check("stored results, mean over all seeds: two-step occlusion has the largest gain over its clean-model control "
        "of all map families, on both configurations",
        all(max(all_gain[cfg], key=all_gain[cfg].get) == "two-step · occlusion" for cfg in stored),
        f"{n_seeds} seeds; gain tutorial {gain['tutorial'][OCC]:+.2f}, quanda {gain['quanda_mnist'][OCC]:+.2f}")
c.check("stored results: two-step occlusion's clean-model control stays below chance on both configurations",
        all(stored[cfg][OCC]["clean model"]["mass"]["mean"] < chance[cfg] for cfg in stored),
        f"clean-model mass tutorial {stored['tutorial'][OCC]['clean model']['mass']['mean']:.2f}, "
        f"quanda {stored['quanda_mnist'][OCC]['clean model']['mass']['mean']:.2f}, chance {chance['tutorial']:.2f}")
c.check("stored results: every TFA variant's gain is less than half of two-step occlusion's, on both configurations",
        all(tfa_gain[cfg] < 0.5 * gain[cfg][OCC] for cfg in stored),
        f"best TFA variant tutorial {tfa_gain['tutorial']:+.2f} vs {gain['tutorial'][OCC]:+.2f}, "
        f"quanda {tfa_gain['quanda_mnist']:+.2f} vs {gain['quanda_mnist'][OCC]:+.2f}")
c.check("stored results: the input itself as a map puts more mass on the patch than chance with zero gain (mass alone is no evidence)",
        all(stored[cfg][INPUT]["shortcut model"]["mass"]["mean"] > 2 * chance[cfg]
            and abs(gain[cfg][INPUT]) < 1e-9 for cfg in stored),
        f"input mass tutorial {stored['tutorial'][INPUT]['shortcut model']['mass']['mean']:.2f}, "
        f"quanda {stored['quanda_mnist'][INPUT]['shortcut model']['mass']['mean']:.2f}")
c.check("on this notebook's pairs, two-step occlusion's mass on the patch drops sharply on the clean model",
        live["two_step_occlusion"]["gain"] >= 0.15,
        f"{live['two_step_occlusion']['mass']:.2f} vs {live['two_step_occlusion']['clean']:.2f} over {len(pairs)} pairs")
c.check("on this notebook's pairs, two-step occlusion's gain exceeds the decomposition's and the paper's map's",
        live["two_step_occlusion"]["gain"] > max(live["decomposition"]["gain"], live["gradient"]["gain"]) + 0.1,
        f"gain {live['two_step_occlusion']['gain']:+.2f} vs {live['decomposition']['gain']:+.2f} and "
        f"{live['gradient']['gain']:+.2f}")
c.check("caveat: the decomposition map of a retrieved image correlates strongly with its own-gradient map",
        statistics.median(corr_self) >= 0.9, f"median correlation {statistics.median(corr_self):.3f}")
c.check("changing only display settings recomputes no map and no score", redraw_free, "cache counters unchanged")
c.check("a bad choice gives a message, not an exception", bool(refused.message) and refused.test is not None,
        refused.message)
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
