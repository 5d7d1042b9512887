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
# # 07 · Spurious neural features: the global view, side by side with TFA
#
# **What you will learn**
#
# - how Singla & Feizi's *Salient ImageNet* (ICLR 2022) reads a trained model through its
#   **neural features**: the penultimate-layer neurons, each shown by its **top-activating
#   training images** and its **feature-activation maps** (soft masks of where the feature sits);
# - which neurons the shortcut model **uses for the T-shirt class** (weight × activation), and
#   whether we can find the **patch neuron** automatically from activations and the patch masks —
#   without class labels;
# - the **sensitivity test** (Gaussian noise inside a neuron's soft mask) and what it does and does
#   not show here, with the clean model, a random mask of equal mass and the true patch box as
#   controls;
# - how this **global** view compares with TFA's **test-specific** one on the same test image, and
#   when each is the better tool; and the explorer's *neural features* toggle.
#
# **Terms** are defined where they are first used and collected in the [glossary](../docs/glossary.md).
#
# **Run time and mode:** the first code cell prints the mode this notebook runs in (fast mode when
# no CUDA device is available) and its run time measured in that mode. The models come from notebook
# 02's cache and the gradient index from notebook 05's.
#
# | | TFA (notebooks 03–05) | neural features (this notebook) |
# |---|---|---|
# | question | which regions of which training images drive *this* prediction? | which features does the model use for a *class*, and where do they sit? |
# | unit | a (test image, training image) pair | a penultimate neuron |
# | cost | per-sample gradients, second derivatives | one forward pass over the training set |

# %%
from tfa_tutorial import notebook_header

notebook_header("07_neural_features")

# %%
import time

import matplotlib.pyplot as plt
import torch

from IPython.display import Markdown, display

from tfa_tutorial import Claims, ExplorerState, reduce_map, shortcut_experiment
from tfa_tutorial.attribution import neural_features as NF
from tfa_tutorial.data.patches import patch_mask
from tfa_tutorial.explorer.compare import sensitivity_test, spuriousness_ranking, view_counts
from tfa_tutorial.explorer.settings import DEFAULT_MAP_METHOD, MAP_METHODS
from tfa_tutorial.teaching.plots import FONT, show_image, show_map

t_start = time.perf_counter()
torch.manual_seed(0)
exp = shortcut_experiment(seed=0, progress=False)
t = exp.spec.target_class
target = exp.classes[t]
box = patch_mask(exp.spec, exp.train.image_shape)  # [H, W] bool: where the patch goes
area = float(box.float().mean())
print(f"training images: {len(exp.train)}, {int(exp.train.patched.sum())} with the patch; target class: {target}; "
      f"patch area: {area:.1%} of the image")
print(f"shortcut model: clean accuracy {exp.report['clean_acc']:.3f}, flip rate {exp.report['flip_rate']:.3f}; "
      f"clean model: flip rate {exp.clean_report['flip_rate']:.3f}")

# %% [markdown]
# ## 1. Neural features of the shortcut model
#
# `SmallCNN` ends in *features → global average pool → linear*. The **neural features** are the
# F = 64 channels A_c(x) of the last conv block (7×7 maps); the classifier sees their means
# h_c(x), and the logit of class k is z_k(x) = Σ_c W[k, c] h_c(x) + b_k. So W[k, c] h_c(x) is
# neuron c's **contribution** to class k on image x. `find_feature_layer` finds that layer with
# forward hooks (any model whose last module is a `Linear` after global pooling); Salient
# ImageNet ranks a class's neurons by their mean contribution over the class's training images.

# %%
layer = NF.find_feature_layer(exp.model, exp.train.images[0])
print(f"feature layer: {layer.name!r}, {layer.num_features} neurons, {layer.map_size} maps, {layer.pooling} pooling")
h = NF.neural_activations(exp.model, exp.train.images, layer)  # [N, F]
is_t = exp.train.labels == t
contrib = NF.class_contributions(exp.model, exp.train.images, t, layer, activations=h)
top_idx, top_val = NF.top_neurons(contrib[is_t], k=5)
class_rank = {int(c): r for r, c in enumerate(contrib[is_t].mean(0).argsort(descending=True).tolist(), 1)}
print(f"neurons most used for {target} (mean W·h over its training images):")
for c, v in zip(top_idx.tolist(), top_val.tolist()):
    print(f"  neuron {c:>2}: {v:+.3f}")

# %% [markdown]
# Each neuron is shown by the training images that excite it most (over the **whole** training
# set, all classes) and by its feature-activation map on each: the 7×7 map upsampled (bilinear)
# to 28×28 and scaled to [0, 1]. Green boxes mark the patch where an image carries it.


# %%
def neuron_rows(model, lay, neurons, acts, n_img=7, title=""):
    fig, axes = plt.subplots(len(neurons), n_img, figsize=(1.75 * n_img + 1.2, 1.9 * len(neurons) + 0.6), squeeze=False,
                             layout="constrained")
    for r, c in enumerate(neurons):
        top = NF.top_activating(acts, c, n_img)
        maps = NF.activation_maps(model, exp.train.images[top], c, lay)
        for j, i in enumerate(top.tolist()):
            im = show_map(axes[r, j], maps[j], exp.train.images[i], mask=exp.train.masks[i], signed=False, vmax=1,
                          alpha=0.6, title=f"#{i}\n{exp.classes[int(exp.train.labels[i])]}")
        axes[r, 0].set_ylabel(f"neuron {c}", fontsize=9)
    cbar = fig.colorbar(im, ax=axes, shrink=0.8)
    cbar.set_label("activation map, [0, 1]", fontsize=FONT)
    cbar.ax.tick_params(labelsize=FONT)
    fig.suptitle(title, fontsize=FONT + 1)
    return fig


fig = neuron_rows(exp.model, layer, top_idx.tolist(), h,
                  title=f"Shortcut model: the 5 neurons most used for {target}, top-activating training images + maps")
plt.show()

# %% [markdown]
# In this run most rows show garment shapes, with maps spread over the garment (which rows, and
# in which order, changes from one training run to the next). A row whose top images all carry
# the patch is a candidate spurious feature — but reading rows by eye is what
# Salient ImageNet asks humans to do. Here we know where the patch is, so we can score it.
#
# ## 2. Finding the patch neuron from activations and masks
#
# **Spuriousness** of neuron c: over its m = 32 top-activating training images, the mean share of
# its activation-map mass inside the known patch mask; **chance** is the mean mask area over the
# same images (a map spread evenly puts that share inside; unpatched images have an empty mask and
# add 0 to both). The ranking uses activations and masks, **no class labels**.
#
# Be clear about what this does *not* show: the masks are ground truth we have only because we
# planted the patch. On real data there are no masks (Salient ImageNet has humans judge each
# neuron from its images and maps), so this score measures how well the neural-feature view *can*
# isolate a known shortcut, not a method for finding unknown ones.

# %%
M_TOP = 32
sp = NF.spuriousness(exp.model, exp.train.images, exp.train.masks, m=M_TOP, layer=layer, activations=h)
sp_clean_layer = NF.find_feature_layer(exp.clean_model, exp.train.images[0])
h_clean = NF.neural_activations(exp.clean_model, exp.train.images, sp_clean_layer)
sp_clean = NF.spuriousness(exp.clean_model, exp.train.images, exp.train.masks, m=M_TOP, layer=sp_clean_layer,
                           activations=h_clean)
print(spuriousness_ranking(sp, "shortcut model"))
print(spuriousness_ranking(sp_clean, "clean model (control)"))
patch_neuron = int(sp["order"][0])
print(f"patch neuron: {patch_neuron}; its rank among the neurons used for {target}: {class_rank[patch_neuron]} of 64")

# %% [markdown]
# What this finds (checked at the end): the top neuron of the shortcut model puts more of its map
# mass on the patch than chance — but less than twice chance (its ratio is printed above) — and
# (almost) all of its top-32 images carry the patch; the clean model's top neuron sits near
# chance with a far lower score. The map localisation itself is modest: the 7×7 maps are blurry,
# and other neurons of the shortcut model reach a similar or higher score-to-chance ratio. What
# sets the patch neuron apart is mostly *which* images excite it, less *where* its map sits.
#
# Is the neuron found this way one the shortcut actually runs through? An independent check that
# uses neither masks nor labels: switch one neuron off (h_c := 0 before the classifier) and count
# how many **patched test images of the other classes** are still predicted as T-shirt/top.

# %%
other = exp.test.labels != t
x_other, y_other = exp.patched_test.images[other], exp.test.labels[other]
abl = NF.ablation_effect(exp.model, x_other, t, layer)
abl_rank = {int(c): r for r, c in enumerate(abl["order"].tolist(), 1)}
print(f"flip rate on patched other-class test images: {abl['base']:.3f}")
print("largest drops when one neuron is switched off: " + ", ".join(
    f"neuron {int(c)} −{float(abl['drop'][c]):.3f}" for c in abl["order"][:5]))
print(f"patch neuron {patch_neuron}: drop −{float(abl['drop'][patch_neuron]):.3f} (rank {abl_rank[patch_neuron]} of 64)")

# %%
fig, ax = plt.subplots(1, 2, figsize=(10.5, 3.8), sharex=True, sharey=True, layout="constrained")
lim = max(float(max(s["score"].max(), s["chance"].max())) for s in (sp, sp_clean)) * 1.1 + 1e-3  # one range for both
for a, s, name in ((ax[0], sp, "shortcut model"), (ax[1], sp_clean, "clean model (control)")):
    zero = (s["chance"] == 0) & (s["score"] == 0)
    a.scatter(s["chance"][~zero], s["score"][~zero], s=14, c="gray", alpha=0.7, clip_on=False, label="other neurons")
    a.scatter(s["chance"][zero], s["score"][zero], s=30, marker="x", c="k", clip_on=False,
              label=f"{int(zero.sum())} neurons at 0 (no patched top image)")
    c0 = int(s["order"][0])
    a.scatter([s["chance"][c0]], [s["score"][c0]], s=50, c="red", label=f"most spurious: neuron {c0}", clip_on=False)
    a.plot([0, lim], [0, lim], "k--", lw=1, label="score = chance")
    a.set_xlim(0, lim)
    a.set_ylim(0, lim)
    a.set_xlabel("chance (mean mask area over top images)", fontsize=FONT)
    a.set_title(name, fontsize=FONT + 1)
    a.tick_params(labelsize=FONT)
    a.legend(fontsize=FONT, loc="lower right")
ax[0].set_ylabel("spuriousness score", fontsize=FONT)
plt.show()

# %%
fig = neuron_rows(exp.model, layer, [patch_neuron], h, n_img=8,
                  title=f"Shortcut model: the most spurious neuron ({patch_neuron}), found from activations and masks")
plt.show()
fig = neuron_rows(exp.clean_model, sp_clean_layer, [int(sp_clean["order"][0])], h_clean, n_img=8,
                  title=f"Clean model: its most 'spurious' neuron ({int(sp_clean['order'][0])}) — the control")
plt.show()

# %% [markdown]
# ## 3. The sensitivity test
#
# Salient ImageNet's test: add Gaussian noise inside a soft mask, x' = x + σ ε ⊙ m (σ = 0.5, half
# the pixel range, fixed beforehand; 3 noise draws), and see how predictions change. We run it on
# the **patched test images of the other classes** (the shortcut shows as the flip rate: share
# predicted as T-shirt/top) with four masks per image:
#
# - **spurious**: the patch neuron's activation map on that image;
# - **core**: the activation map of a core neuron — the neuron most used for T-shirt/top whose
#   spuriousness is at most chance (ratio ≤ 1);
# - **random**: the spurious mask moved by a random circular shift (same mass, same shape);
# - **patch box** (an oracle control we have only because we planted the patch): the exact 12×12
#   box, and the same box moved at random.
#
# If the model depends on the spurious feature, noise on its mask should cut the flip rate more
# than noise on the core or random mask. The clean model, with its own neurons, is the control.

# %%
SIGMA, REPEATS = 0.5, 3
contrib_clean = NF.class_contributions(exp.clean_model, exp.train.images, t, sp_clean_layer, activations=h_clean)
sens = {"shortcut": sensitivity_test(exp.model, layer, sp, contrib[is_t], x_other, y_other, box, t, SIGMA, REPEATS),
        "clean": sensitivity_test(exp.clean_model, sp_clean_layer, sp_clean, contrib_clean[is_t], x_other, y_other, box, t,
                                  SIGMA, REPEATS)}
for name, st in sens.items():
    display(Markdown(f"**{name} model**: spurious = neuron {st['spurious']}, core = neuron {st['core']}\n\n"
                     "| mask | flip rate | accuracy | mass (px) | share on patch |\n|---|---|---|---|---|\n"
                     + "\n".join(f"| {k} | {r['target_rate']:.3f} | {r['acc']:.3f} | {r['mass']:.0f} | "
                                 f"{st['on_box'].get(k, float('nan')):.2f} |" for k, r in st["results"].items())))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.6), sharey=True, layout="constrained")
for ax, (name, st) in zip(axes, sens.items()):
    res = st["results"]
    keys = list(res)
    vals = [res[k]["target_rate"] for k in keys]
    bars = ax.bar(range(len(keys)), vals, color=["#777", "#d62728", "#1f77b4", "#999", "#2ca02c", "#bbb"][:len(keys)])
    ax.bar_label(bars, fmt="%.2f", fontsize=FONT, padding=1)
    ax.set_xticks(range(len(keys)), ["no noise" if k == "none" else k for k in keys], rotation=20, ha="right", fontsize=FONT)
    ax.set_title(f"{name} model (spurious n{st['spurious']}, core n{st['core']})", fontsize=FONT + 1)
    ax.tick_params(labelsize=FONT)
    ax.set_ylim(0, 1.05)
axes[0].set_ylabel("flip rate (predicted T-shirt/top)\nlower = the noise erased more", fontsize=FONT)
fig.suptitle(f"Noise (σ = {SIGMA}) inside each mask, patched test images of the other classes", fontsize=FONT + 1)
plt.show()
res, on_box = sens["shortcut"]["results"], sens["shortcut"]["on_box"]
cut = {k: res["none"]["target_rate"] - res[k]["target_rate"] for k in res if k != "none"}
print(f"shortcut model, cut in flip rate: " + ", ".join(f"{k} {v:.3f}" for k, v in cut.items()))
print(f"share of each soft mask on the patch: spurious {on_box['spurious']:.2f}, core {on_box['core']:.2f} "
      f"(patch area {area:.2f})")

# %% [markdown]
# The switch-off check puts the patch neuron among the neurons the shortcut runs through (in the
# top 10 of 64), but not alone: switching off any single neuron removes well under a third of the
# flips, so the shortcut is spread over several neurons (some of them also T-shirt "core" neurons).
#
# Read the sensitivity table honestly (the numbers are checked at the end) — **a negative result**:
#
# - noise inside the patch neuron's mask does **not** cut the flip rate more than noise inside the
#   **core** neuron's mask. On a patched image the core neuron's map *also* covers the patch — a
#   7×7 map of a 28×28 image is coarse, and on these images every strong neuron lights up near the
#   bright square — so the test does not separate spurious from core neurons here;
# - whether the patch neuron's mask beats the *same mask moved at random* is not something we
#   claim: in this run's table compare the "spurious" and "random" rows, but the margin between
#   them is of the size that changes from one training run to the next;
# - even the exact patch box removes less than half of the flips (it can even raise the flip
#   rate): zero-mean noise of σ = 0.5 leaves a white square mostly white, so "noise in a mask" is
#   a weak eraser for this shortcut.
#
# ## 4. Side by side for one test image: TFA vs neural features
#
# Take a test image the patch flips to T-shirt/top. **TFA** ranks the training images by Grad-Cos
# with this test image; on each we show two maps: the explorer's default (the course's recommended
# map, named below from the code) and the paper's map (which of their pixels drive the score). **Neural features** take
# the neurons with the largest W[pred, c] · h_c(x_test) for this image, show their maps on the
# test image and their top-activating training images. The explorer's state computes both.

# %%
# the explorer with its default map (the course's recommended map) and, for comparison, the paper's map
state = ExplorerState.from_experiment(exp, test_sets=("patched",), k=5)
PAPER = "gradient"
display(Markdown(f"The explorer's default map (`DEFAULT_MAP_METHOD`, chosen from the stored evidence): "
                 f"**{MAP_METHODS[DEFAULT_MAP_METHOD]}**; the paper's map: **{MAP_METHODS[PAPER]}**."))
j = int(state.flipped[0])
r = state.result(test_index=j)
paper_maps = torch.stack([reduce_map(state.training_map(p.index, r.settings, method=PAPER), "signed") for p in r.proponents])
nf = state.neural_features(j, k=3, m=5)
print(f"test image #{j}: true {r.test.label_name}, predicted {r.test.pred_name}")
print("TFA proponents: " + ", ".join(f"#{p.index} {p.label_name}{' (patch)' if p.patched else ''}" for p in r.proponents))
for n in nf.neurons:
    print(f"neuron {n.neuron}: W·h {n.contribution:+.2f}; top training images with the patch: "
          f"{sum(n.top_patched)}/{len(n.top_patched)}")

# %%
k = len(r.proponents)
rows = 3 + len(nf.neurons)
fig, axes = plt.subplots(rows, k + 1, figsize=(1.75 * (k + 1) + 1.6, 1.9 * rows + 0.8), layout="constrained")
show_image(axes[0, 0], r.test.image, f"test #{j}\n{r.test.label_name} → {r.test.pred_name}", mask=box)
for i, p in enumerate(r.proponents):
    show_image(axes[0, i + 1], p.image, f"#{p.index}\n{p.label_name}", mask=p.mask)
axes[0, 1].set_ylabel("proponents", fontsize=FONT)
for row, (name, maps) in enumerate((("default map", torch.stack([p.shown for p in r.proponents])),
                                    ("paper's map", paper_maps)), 1):
    axes[row, 0].axis("off")
    vmax = float(maps.abs().max()) or 1.0  # one symmetric scale per row
    for i in range(k):
        im = show_map(axes[row, i + 1], maps[i], mask=r.proponents[i].mask, vmax=vmax)
    axes[row, 1].set_ylabel(name, fontsize=FONT)
    fig.colorbar(im, ax=list(axes[row, 1:]), shrink=0.9).ax.tick_params(labelsize=FONT)
for row, n in enumerate(nf.neurons, 3):  # activation maps in [0, 1]: the same colour map, white = 0
    im_nf = show_map(axes[row, 0], n.map, mask=box, vmax=1, title=f"neuron {n.neuron}\nW·h {n.contribution:+.2f}")
    for i in range(k):
        if i < len(n.top_indices):
            show_map(axes[row, i + 1], n.top_maps[i], mask=n.top_masks[i], vmax=1, title=f"#{n.top_indices[i]}")
        else:
            axes[row, i + 1].axis("off")
fig.colorbar(im_nf, ax=list(axes[3:, :].flat), shrink=0.6).ax.tick_params(labelsize=FONT)
fig.suptitle("Rows 2–3: TFA maps on the top Grad-Cos proponents (red +, blue −; one scale per row).\n"
             "Rows below: the neurons driving the prediction, activation map on the test image (left) and on their "
             "top training images (0–1)", fontsize=FONT + 1)
plt.show()

# %% [markdown]
# One image is an anecdote; over more flipped test images we count, for each view, whether it
# points at the patch:

# %%
N_NEURAL, N_TFA, TOP_DRIVERS = 40, 10, 3  # flipped test images per view (TFA maps cost more), drivers per prediction
display(Markdown(
    f"- **neural features**, over the first {N_NEURAL} flipped test images: whether the patch neuron is among the "
    f"{TOP_DRIVERS} neurons driving the prediction, and the share of the top neuron's map mass on the patch of the "
    "test image;\n"
    f"- **TFA**, over the first {N_TFA} of them: share of the top-{state.settings.k} proponents that carry the patch, "
    "and the positive mass inside the patch of each map on the patched ones (relevance mass accuracy; chance = the "
    "patch area)."))
counts = view_counts(state, layer, patch_neuron, state.flipped[:N_NEURAL], box, n_tfa=N_TFA,
                     methods=(DEFAULT_MAP_METHOD, PAPER), top=TOP_DRIVERS)
base_rate = float(exp.train.patched.float().mean())
print(f"neural features over {N_NEURAL} flipped images: patch neuron among the top-{TOP_DRIVERS} drivers in "
      f"{counts['neuron_in_top']:.0%}; top neuron's map mass on the patch {counts['top_neuron_mass']:.2f} (patch area {area:.2f})")
print(f"TFA over the first {N_TFA}: patched share of the top-{state.settings.k} proponents {counts['patched_share']:.2f} "
      f"(base rate {base_rate:.3f})")
for m, v in counts["mass"].items():
    print(f"  positive mass on the patch of the patched proponents, {MAP_METHODS[m]}: {v:.2f} (patch area {area:.2f})")
print(f"run time so far: {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# What the counts say (checked at the end): most of TFA's proponents are patched T-shirts, far
# above the base rate, so the **ranking** finds the shortcut. On those proponents, the explorer's
# default map puts more of its positive mass on the patch than the paper's map, whose share stays
# near the patch's area, chance (the caution of notebooks 04 and 05: the gradient of Grad-Cos is a
# sensitivity map). The neural-feature view of the same predictions rarely has *the* patch neuron
# among its top drivers — the shortcut runs through several neurons — and the top driver's map
# on the test image is coarse (7×7).
#
# **When is each view the better tool?**
#
# - **Neural features** answer a *model-level* question cheaply: one forward pass over the training
#   set gives, for every class, the features it uses and images that show them. They need no test
#   image and no gradients, and a neuron found once explains every prediction that runs through it.
#   But someone must judge which neurons are spurious (here: masks we planted), the maps are as
#   coarse as the last conv layer (7×7 here), and the view does not say which *training images*
#   taught the feature — so it does not tell you what to remove or repair.
# - **TFA** answers a *prediction-level* question: these training images, and these regions of
#   them, are what this test prediction shares with the training set. It costs per-sample
#   gradients (the explorer caches an index), and its maps are sensitivity maps with the caveats of
#   notebook 04, but its list of patched proponents is directly actionable (notebook 06 removes or
#   repairs them).
# - Used together: neural features to see *which feature* a class relies on, TFA to find *which
#   training data* put it there for the predictions you care about.
#
# ## 5. In the explorer
#
# The explorer (notebook 05) has a **neural features** toggle under the training-image lists: it
# shows, for the selected test image, the neurons with the largest W·h for the explained class,
# their maps on the test image and their top-activating training images
# (`ExplorerState.neural_features(test_index)` from code, as used above):
#
# ```python
# from tfa_tutorial.explorer.view import explore
# ui = explore()
# ui.controls["neural_toggle"].value = True
# ui
# ```
#
# ## What we showed

# %%
# NBVAL_CHECK_OUTPUT
res_c = sens["clean"]["results"]
rate0 = res["none"]["target_rate"]
c = Claims()
others = torch.arange(layer.num_features) != patch_neuron
c.check("the most spurious neuron of the shortcut model puts more map mass on the patch than chance",
        sp["score"][patch_neuron] > 1.15 * sp["chance"][patch_neuron],
        f"score {sp['score'][patch_neuron]:.3f} vs chance {sp['chance'][patch_neuron]:.3f}")
c.check("almost all its top-activating training images carry the patch (found from activations and masks, no labels)",
        sp["frac_masked"][patch_neuron] >= 0.9, f"{sp['frac_masked'][patch_neuron]:.2f}")
c.check("it is in the top quarter of the neurons used for T-shirt/top", class_rank[patch_neuron] <= 16,
        f"rank {class_rank[patch_neuron]}")
c.check("switching it off is among the 10 largest cuts of the flip rate (a causal check without masks)",
        abl_rank[patch_neuron] <= 10, f"rank {abl_rank[patch_neuron]}, cut {float(abl['drop'][patch_neuron]):.3f}")
c.check("but no single neuron switched off removes even a third of the flips: the shortcut is spread out",
        float(abl["drop"].max()) < abl["base"] / 3, f"largest cut {float(abl['drop'].max()):.3f} of {abl['base']:.3f}")
c0 = int(sp_clean["order"][0])
c.check("the clean model's most spurious neuron scores less than half as much, near chance (the control)",
        sp_clean["score"][c0] < 0.5 * sp["score"][patch_neuron] and sp_clean["ratio"][c0] < 1.15,
        f"score {float(sp_clean['score'][c0]):.3f} vs {float(sp['score'][patch_neuron]):.3f}, ratio {float(sp_clean['ratio'][c0]):.2f}")
c.check("negative result: map localisation alone is weak; the patch neuron's map puts less than twice chance on the "
        "patch, and another shortcut-model neuron reaches at least 90% of its score-to-chance ratio",
        sp["ratio"][patch_neuron] < 2 and sp["ratio"][others].max() >= 0.9 * sp["ratio"][patch_neuron],
        f"ratio {float(sp['ratio'][patch_neuron]):.2f}, best other {float(sp['ratio'][others].max()):.2f}")
c.check("negative result: noise inside the patch neuron's mask cuts the flip rate no more than noise inside the core "
        "neuron's mask (within 0.05): the sensitivity test does not single out the spurious neuron",
        cut["spurious"] < cut["core"] + 0.05, f"cut {cut['spurious']:.3f} vs core {cut['core']:.3f}, random {cut['random']:.3f}")
c.check("negative result: even noise in the exact patch box removes less than half of the flips at this σ",
        cut["patch box"] < 0.5 * rate0, f"cut {cut['patch box']:.3f} of {rate0:.3f}")
c.check("the clean model's flip rate stays low under every mask (the control)",
        max(r_["target_rate"] for r_ in res_c.values()) < 0.3,
        f"max {max(r_['target_rate'] for r_ in res_c.values()):.3f}")
c.check("for flipped test images, more than half of TFA's top proponents are patched training images (10× the base rate)",
        counts["patched_share"] > 0.5 and counts["patched_share"] > 10 * base_rate,
        f"share {counts['patched_share']:.2f} vs base rate {base_rate:.3f}")
c.check("on those proponents, the explorer's default map puts more positive mass on the patch than the paper's map",
        counts["mass"][DEFAULT_MAP_METHOD] > counts["mass"][PAPER],
        f"{counts['mass'][DEFAULT_MAP_METHOD]:.2f} vs {counts['mass'][PAPER]:.2f}, area {area:.2f}")
c.check("the paper's map stays near the patch's area (chance): within 0.1 of it, and less than half as far from it "
        "as the default map",
        abs(counts["mass"][PAPER] - area) < 0.1 and abs(counts["mass"][PAPER] - area) < 0.5 * abs(counts["mass"][DEFAULT_MAP_METHOD] - area),
        f"paper's map {counts['mass'][PAPER]:.2f}, default map {counts['mass'][DEFAULT_MAP_METHOD]:.2f}, area {area:.2f}")
c.check(f"negative result: the patch neuron is among the top-{TOP_DRIVERS} drivers of only a minority of flipped predictions",
        counts["neuron_in_top"] < 0.5, f"{counts['neuron_in_top']:.2f}")
c.summary()

# %% [markdown]
# ## Summary
#
# - Neural features give a **global** view: which neurons the model uses for a class, and what
#   they respond to, from activations and masks.
# - TFA gives a **test-specific** view: which training images, and which of their regions, drove
#   one prediction.
# - Both views come with controls (clean model, random mask of equal mass); neither is evidence
#   without them.
#
# **Exercises:** [`exercises/07_neural_features.ipynb`](../exercises/07_neural_features.ipynb)
# (answers are checked automatically; hints never give the answer).
#
# ## Course conclusion
#
# The course planted a shortcut with a known location, trained a model that learned it, and asked
# whether training feature attribution finds it. Grad-Cos finds the training images that carry the
# shortcut. The paper's map of *where* in those images did not beat its controls in our setting,
# while simpler baselines did; a fix driven by the flagged images removed most of the shortcut.
# The method to take away is the protocol: plant or know a ground truth, compare every map with a
# clean model, the input itself and a random map, and believe only the gains that survive. The
# evidence over seeds is read in the optional [08 · Evidence deep dive](08_evidence_deep_dive.ipynb)
# and listed in full in `docs/results.md`; the [glossary](../docs/glossary.md) collects the terms.
