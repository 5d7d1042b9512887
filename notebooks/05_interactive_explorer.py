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
#   TFA map as an overlay: by default the **exact decomposition** of Grad-Cos over the training
#   image's positions (it sums to the score shown), and why we chose it over the paper's map;
# - a recipe for finding **harmful training regions**: take a test image the patch flips, explain
#   its *true* label, and look at the opponents; then compare with the clean version of the image;
# - what each control changes, and which ones cost time (test image, score, label, k, map method,
#   and SmoothGrad n and σ for the paper's map) and which are free (sign, opacity);
# - how to switch to the paper's SmoothGrad gradient map and compare the two, and what the default
#   map does *not* tell you;
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
from tfa_tutorial.evidence import aggregate_seeds, format_mean_sd, load_results
from tfa_tutorial.experiment import shortcut_experiment
from tfa_tutorial.explorer import build_explorer, explorer_figure
from tfa_tutorial.explorer_state import MAP_METHODS, ExplorerState
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
#
# Each shown training image gets a **TFA map**. The explorer's default is the *exact
# decomposition* of Grad-Cos (`T.decompose_score`, module `tfa_tutorial/decomposition.py`): the
# training gradient is a sum over the positions of each layer, so the score splits into one share
# per position, mapped to pixels; the shares **add up to the Grad-Cos shown** under the image. Red
# adds to the score, blue subtracts. The paper's map, the SmoothGrad gradient of Grad-Cos with
# respect to the training pixels, is one click away (*Map method*); section 3 says why it is not
# the default.

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
# - **Map method** chooses how each training image's map is computed: the exact decomposition
#   (default), the paper's gradient with SmoothGrad, gradient × input, or integrated gradients.
# - **SmoothGrad n and σ** apply to the paper's gradient map only; they are greyed out under the
#   decomposition, which needs no noise and no second derivative.
# - These are the slow controls (test image, score, test label, k, map method, n, σ): the sliders
#   apply when you release them, a progress bar runs while maps are computed, and with *update
#   automatically* unticked nothing is computed until you press **Compute**.
# - **Sign, channels, opacity** only redraw: the maps are cached.
# - **inspect** under a training image shows it large with three maps side by side: the raw
#   gradient of the score (the paper's map without smoothing), the explorer's map (the
#   decomposition by default), and the two-step baseline (SmoothGrad of the training image's own
#   logit, which ignores the test image).
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
# score with respect to the training pixels, the explorer's map (here the decomposition), and the
# two-step baseline. An opponent has a negative score, so its decomposition is mostly *blue*: the
# positions that make the score negative. We show the absolute value. In code:

# %%
harmful = next((it for it in r_true.opponents if it.patched), r_true.opponents[0])
d = state.detail(harmful.index, test_index=j, label="true", sign="absolute")
fig, axes = plt.subplots(1, 4, figsize=(8, 2.4))
show_image(axes[0], d.image, f"#{d.index} {d.label_name}\nGrad-Cos {d.score:+.2f}", mask=d.mask)
panels = [("raw gradient", d.raw), (MAP_METHODS[d.method], d.smooth), (f"two-step SmoothGrad n={d.n_samples}", d.two_step)]
for ax, (name, m) in zip(axes[1:], panels):
    show_map(ax, m, d.image, name, mask=d.mask, signed=False)
fig.suptitle("|map| on a harmful (opponent) training image; green box = the patch", fontsize=9)
fig.tight_layout()
plt.show()
area = float(d.mask.float().mean())
mass = {name: float(T.relevance_mass_accuracy(m[None], d.mask[None])[0]) for name, m in panels}
print("share of |map| inside the patch:", {k: round(v, 2) for k, v in mass.items()}, f"(patch area {area:.2f})")

# %% [markdown]
# One image is an anecdote; the next section measures over many pairs. Trust the **ranking**
# (steps 1–3, counted over many test images) more than any single map, compare every map with the
# two-step baseline, and switch *Sign* to see the supporting (red) or opposing (blue) part on its
# own.
#
# **Try it yourself** in the explorer: pick a *misclassified* test image from the **clean** test
# set. Are its opponents patched? What changes when you switch the score to Grad-Dot, whose
# ranking favours training images with large gradients?
#
# ## 3. Why the exact decomposition is the default
#
# Three reasons, each measured.
#
# **It is exact.** The decomposition's map sums to the Grad-Cos score shown under the image (up
# to float rounding), so "30% of the map is on the patch" means "30% of the score comes from
# there". The paper's gradient map is a sensitivity (which pixel *changes* would raise the
# score), and its values sum to nothing in particular.
#
# **It finds the patch more often.** `benchmarks/results.py` measured every map family over the
# top-4 patched training images of 8 flipped test images per seed (`docs/results.md`), on this
# tutorial's patch and on quanda's preset, for the shortcut model and for the **clean model**
# explaining the same label (a map that lights up bright squares on any model is not telling us
# about the shortcut). Mass = share of the map's positive part on the patch; rank = share of the
# top-|patch| pixels on it; pointing = the map's maximum is on it; chance = the patch's area.

# %%
results = load_results()
evidence = results["evidence"]
FAMILIES = {
    "paper's map (SmoothGrad gradient)": "TFA-Cos · gradient, SmoothGrad (paper)",
    "exact decomposition (default)": "TFA-Cos · decomposition",
    "decomposition, first conv block": "TFA-Cos · decomposition, first block",
    "two-step · occlusion": "two-step · occlusion",
    "control: random map": "control · random",
}


def measured(config):
    """{label: {"mass", "clean", "gain", "rank", "pointing"}} as aggregate_seeds leaves, and the seeds."""
    seeds = sorted(evidence[config])
    runs = [evidence[config][sd]["localisation"] for sd in seeds]
    out = {}
    for label, fam in FAMILIES.items():
        sh = aggregate_seeds([run[fam]["shortcut model"] for run in runs])
        cl = aggregate_seeds([run[fam]["clean model"] for run in runs])
        gain = aggregate_seeds([run[fam]["shortcut model"]["mass"] - run[fam]["clean model"]["mass"] for run in runs])
        out[label] = {"mass": sh["mass"], "clean": cl["mass"], "gain": gain, "rank": sh["rank"], "pointing": sh["pointing"]}
    return out, seeds


stored = {}
for config in ("tutorial", "quanda_mnist"):
    stored[config], seeds = measured(config)
    chance = evidence[config][seeds[0]]["chance"]
    print(f"{config}: seeds {', '.join(seeds)}; {evidence[config][seeds[0]]['n_pairs']} pairs per seed; chance {chance:.2f}")
    print(f"  {'map':<36}{'mass':>14}{'clean model':>14}{'gain':>14}{'rank':>14}{'pointing':>14}")
    for label, row in stored[config].items():
        cells = [format_mean_sd(row[key], signed=key == "gain") for key in ("mass", "clean", "gain", "rank", "pointing")]
        print(f"  {label:<36}" + "".join(f"{c:>14}" for c in cells))
paper, decomp = FAMILIES["paper's map (SmoothGrad gradient)"], FAMILIES["exact decomposition (default)"]
specificity = {fam: aggregate_seeds([run["families"][fam]["shortcut model"]["specificity"]
                                     for run in results["specificity"]["two_patch"].values()]) for fam in (paper, decomp)}

t_paper, t_dec = stored["tutorial"]["paper's map (SmoothGrad gradient)"], stored["tutorial"]["exact decomposition (default)"]
print(f"\ntutorial patch, mass on the patch: paper's map {format_mean_sd(t_paper['mass'])} "
      f"(clean model {format_mean_sd(t_paper['clean'])}), decomposition {format_mean_sd(t_dec['mass'])} "
      f"(clean model {format_mean_sd(t_dec['clean'])}); chance {evidence['tutorial'][seeds[0]]['chance']:.2f}")
print("test-specificity (two-patch experiment, 0 = ignores the test image): "
      + ", ".join(f"{fam} {format_mean_sd(v, signed=True)}" for fam, v in specificity.items()))

# %% [markdown]
# Read the table row by row. The **paper's map** puts *less* of its mass on the patch than a
# random map does, its maximum essentially never lands there, and it is barely different on the
# clean model: on this data it does not show the shortcut. The **decomposition** puts more than
# chance on the patch, more on the shortcut model than on the clean model (the *gain* column),
# and its maximum lands on the patch in most pairs; restricted to the first conv block
# (`T.decompose_score(..., layers="features.0")`) it is sharper still. Be honest about the size
# of the effect: on the tutorial patch the clean model's decomposition also puts more than chance
# on the bright square, so only the *gain* is about the shortcut, and it is modest.
#
# **It is cheaper.** One decomposition costs one per-sample gradient pass; the paper's map costs
# n = 16 double-backward passes (section 4 times both).
#
# **The two-step baseline is better at localising, but answers another question.** Attributing
# the training image's *own* logit (two-step, by occlusion) has the largest model-specific gain of
# all families in the table above, but it ignores the test image entirely: it is the same map
# whichever test image retrieved the training image.
#
# ### Switch to the paper's map and compare
#
# In the explorer, choose *gradient (SmoothGrad, the paper's)* under **Map method** (the n and σ
# sliders come alive). In code, `state.set(method="gradient")` does the same. Here we take the
# first flipped test images, keep their patched top-k proponents, and measure both maps on the
# same pairs:

# %%
n_cmp = 8
pairs = [(q, it.index) for q in state.flipped[:n_cmp] for it in state.result(test_index=q, maps=False).proponents
         if it.patched]


def patch_mass(method):
    """Share of the positive part of each pair's map on the patch, with ``method`` as the explorer's setting."""
    state.set(method=method)
    out = []
    for q, i in pairs:
        m = T.reduce_map(state.tfa_map(i, state.result(test_index=q, maps=False).settings), "positive")
        out.append(float(T.relevance_mass_accuracy(m[None], exp.train.masks[i][None])[0]))
    return out


mass_paper = patch_mass("gradient")  # the paper's map: SmoothGrad n = 16, σ = 0.15
mass_dec = patch_mass("decomposition")  # back to the default
area_patch = float(exp.train.masks[pairs[0][1]].float().mean())
print(f"{len(pairs)} (flipped test image, patched proponent) pairs; positive mass on the patch: "
      f"paper's map {statistics.mean(mass_paper):.2f}, decomposition {statistics.mean(mass_dec):.2f}; "
      f"chance {area_patch:.2f}; the decomposition is higher in "
      f"{sum(a > b for a, b in zip(mass_dec, mass_paper))} of {len(pairs)} pairs")

q0, i0 = pairs[0]
s0 = state.result(test_index=q0, maps=False).settings
fig, axes = plt.subplots(1, 3, figsize=(6.4, 2.5))
show_image(axes[0], exp.train.images[i0], f"#{i0} {exp.classes[int(exp.train.labels[i0])]}", mask=exp.train.masks[i0])
for ax, method in zip(axes[1:], ("gradient", "decomposition")):
    m = state.tfa_map(i0, s0, method=method)
    show_map(ax, T.reduce_map(m, "signed"), exp.train.images[i0], MAP_METHODS[method], mask=exp.train.masks[i0])
fig.suptitle(f"one proponent of flipped test image #{q0}: the paper's map vs the default (red +, blue −)", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ### What the default map does *not* tell you
#
# For the pairs Grad-Cos retrieves, the training gradient points almost the same way as the test
# gradient (cosine close to 1). The decomposition then nearly equals cos × the decomposition of
# the training image's gradient with *itself*: a map of where that image's own gradient comes
# from, whichever test image retrieved it. We measure that here: the correlation between the
# explorer's map and this test-independent "self" map, and between the maps of one training image
# retrieved by two different test images.

# %%
def self_map(i):
    """Decomposition of the training image's own Grad-Cos with itself: no test image involved."""
    x, y = exp.train.images[i : i + 1], exp.train.labels[i : i + 1]
    return T.decompose_score(exp.model, x, y, T.score_vector(exp.model, exp.train.images[i], "cos", test_target=int(y))).maps[0]


def corr(a, b):
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]).double())[0, 1])


maps_by_train = {}
for q, i in pairs:
    maps_by_train.setdefault(i, []).append(state.tfa_map(i, state.result(test_index=q, maps=False).settings))
corr_self = [corr(m, self_map(i)) for i, ms in maps_by_train.items() for m in ms]
corr_cross = [corr(ms[0], ms[1]) for ms in maps_by_train.values() if len(ms) > 1]
print(f"correlation with the training image's own-gradient map: median {statistics.median(corr_self):.3f} "
      f"(min {min(corr_self):.3f}) over {len(corr_self)} pairs")
print(f"same training image, two different test images: "
      + (f"median {statistics.median(corr_cross):.3f} over {len(corr_cross)} training image(s)" if corr_cross
         else "no training image was retrieved twice here"))

# %% [markdown]
# So the default map is a **per-training-image diagnostic**: it shows where a retrieved training
# image's gradient comes from (on the shortcut model, largely the patch), not which part of it
# matches *this* test image. The two-patch experiment in `docs/results.md` says the same: its
# test-specificity (printed above) is close to 0 for both maps. Which training images matter for a
# test image is the ranking's job; the map then tells you what is special about those images.
#
# ## 4. What costs time
#
# A new test image costs one index query, exact re-scoring of a few dozen candidates and one TFA
# map per shown training image (2k maps): one gradient pass each for the decomposition, n
# double-backward passes for the paper's SmoothGrad map. Display settings reuse the cached maps.
# The explorer computes with one torch thread (`num_threads=1`): on shared CPUs such as Binder's,
# more threads for these small per-image computations made the time jump from under a second to
# half a minute in our measurements. Measured here on uncached test images, with each method:

# %%
# NBVAL_IGNORE_OUTPUT
latency = {}
for method, images in (("decomposition", state.flipped[n_check : n_check + 4]),
                       ("gradient", state.flipped[n_check + 4 : n_check + 8])):
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
      f"decomposition {med['decomposition']:.2f} s, paper's map (n={state.settings.n_samples}) {med['gradient']:.2f} s "
      f"({med['gradient'] / med['decomposition']:.1f}×); display-only change: {display_s * 1000:.0f} ms, "
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
# call away in any notebook: `from tfa_tutorial.explorer import explore; explore()`.
#
# ## What we showed

# %%
# NBVAL_CHECK_OUTPUT
# The widgets hold no attribution logic: the explorer's maps are the package's.
r_j = state.result(test_index=j)  # the default: the exact decomposition
assert r_j.settings.method == "decomposition"
target_j = r_j.test.target
v_j = T.score_vector(exp.model, exp.patched_test.images[j], "cos", test_target=target_j)
sum_err, dec_err = 0.0, 0.0
for it in r_j.proponents + r_j.opponents:
    direct = T.decompose_score(exp.model, exp.train.images[it.index : it.index + 1],
                               exp.train.labels[it.index : it.index + 1], v_j).maps[0]
    dec_err = max(dec_err, float((it.map - direct).abs().max()))
    sum_err = max(sum_err, abs(float(it.map.sum()) - it.score))
i0 = r_j.proponents[0].index
s_paper = state.result(test_index=j, method="gradient", maps=False).settings
paper_err = float((state.tfa_map(i0, s_paper) - T.tfa_maps(
    exp.model, exp.train.images[i0 : i0 + 1], exp.train.labels[i0 : i0 + 1], exp.patched_test.images[j],
    n_samples=s_paper.n_samples, noise=s_paper.noise, seed=state.seed + i0)[0]).abs().max())
refused = state.set(test_index=10**6)
tut, qua = stored["tutorial"], stored["quanda_mnist"]
P, D = "paper's map (SmoothGrad gradient)", "exact decomposition (default)"
chance_t = evidence["tutorial"][sorted(evidence["tutorial"])[0]]["chance"]
two_step_gain = {cfg: stored[cfg]["two-step · occlusion"]["gain"]["mean"] for cfg in stored}

c = Claims()
c.check("for shortcut-flipped test images, most top-k proponents of the (wrong) prediction carry the patch",
        share_pred >= 0.7 and share_pred >= 5 * base_rate, f"share {share_pred:.2f} vs base rate {base_rate:.2f}")
c.check("without the patch, the same test images' proponents are rarely patched",
        share_clean <= 0.2, f"share {share_clean:.2f}")
c.check("explaining the true label, the strongest opponents (harmful training images) are patched far above the base rate",
        share_harm >= 4 * base_rate, f"share {share_harm:.2f} = {share_harm / base_rate:.0f}× base rate")
c.check("the explorer's default map is the exact decomposition: each shown map sums to the Grad-Cos shown (within 1e-4)",
        sum_err < 1e-4, f"largest |sum − score| {sum_err:.1e} over {len(r_j.proponents) + len(r_j.opponents)} images")
c.check("the explorer's decomposition map equals T.decompose_score", dec_err < 1e-5, f"largest difference {dec_err:.1e}")
c.check("with method='gradient' the explorer's map is the package's tfa_maps (same seed)", paper_err < 1e-5,
        f"training image #{i0}, largest difference {paper_err:.1e}")
c.check("stored results: the paper's map puts less mass on the patch than chance, the decomposition more, on both configurations",
        all(st[P]["mass"]["mean"] < chance_t < st[D]["mass"]["mean"] for st in (tut, qua)),
        f"tutorial {tut[P]['mass']['mean']:.2f} vs {tut[D]['mass']['mean']:.2f}, quanda {qua[P]['mass']['mean']:.2f} vs "
        f"{qua[D]['mass']['mean']:.2f}, chance {chance_t:.2f}")
c.check("stored results: the decomposition's maximum lands on the patch in most pairs, the paper's map's almost never",
        all(st[D]["pointing"]["mean"] > 0.5 > 0.1 > st[P]["pointing"]["mean"] for st in (tut, qua)),
        f"pointing tutorial {tut[D]['pointing']['mean']:.2f} vs {tut[P]['pointing']['mean']:.2f}, "
        f"quanda {qua[D]['pointing']['mean']:.2f} vs {qua[P]['pointing']['mean']:.2f}")
c.check("stored results: the decomposition puts more mass on the patch on the shortcut model than on the clean model",
        all(st[D]["gain"]["mean"] > 0 for st in (tut, qua)),
        f"gain tutorial {tut[D]['gain']['mean']:+.2f}, quanda {qua[D]['gain']['mean']:+.2f}")
c.check("stored results: the two-step occlusion baseline has a larger model-specific gain than the decomposition",
        all(two_step_gain[cfg] > stored[cfg][D]["gain"]["mean"] for cfg in stored),
        f"tutorial {two_step_gain['tutorial']:+.2f}, quanda {two_step_gain['quanda_mnist']:+.2f}")
c.check("on this notebook's pairs, the decomposition puts more mass on the patch than the paper's map",
        statistics.mean(mass_dec) > statistics.mean(mass_paper),
        f"{statistics.mean(mass_dec):.2f} vs {statistics.mean(mass_paper):.2f} over {len(pairs)} pairs")
c.check("caveat: the decomposition map of a retrieved image correlates strongly with its own-gradient map",
        statistics.median(corr_self) >= 0.9, f"median correlation {statistics.median(corr_self):.3f}")
c.check("changing only display settings recomputes no map and no score", redraw_free, "cache counters unchanged")
c.check("a bad choice gives a message, not an exception", bool(refused.message) and refused.test is not None,
        refused.message)
c.summary()
