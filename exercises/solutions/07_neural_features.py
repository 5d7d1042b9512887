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
# # Exercises 07 · Testing a neural-feature explanation
#
# **What you will practise**: the three numbers behind notebook 07's global view, each computed by
# hand so you can test it — a neuron's **contribution** to a class (weight × activation), the
# **spuriousness score** of one neuron (its map's mass on the known patch against chance), and the
# **random-mask control** of the sensitivity test (noise inside the neuron's mask against noise
# inside the same mask moved elsewhere).
#
# **Run time:** about 15–30 s in fast mode once the models are cached (a 2,000-image training slice).
#
# **How it works:** replace each `...` with your code and run the cell. `check.…` prints ✓, or ✗
# with a hint; it never prints the answer. A folded *Solution* follows each task: try first.
#
# [teacher] **Teacher's copy, with the solutions filled in** (`exercises/solutions/`). Students get
# [teacher] `exercises/07_neural_features.ipynb`, written from this file by `scripts/make_exercises.py`.

# %%
import matplotlib.pyplot as plt
import torch

from tfa_tutorial import predict, shortcut_experiment
from tfa_tutorial.attribution import neural_features as NF
from tfa_tutorial.exercises import check
from tfa_tutorial.teaching.plots import show_map

torch.manual_seed(0)
exp = shortcut_experiment(seed=0)
model, classes, target = exp.model, exp.classes, exp.spec.target_class
train = exp.train.subset(torch.arange(2000))  # a slice keeps the exercises fast
layer = NF.find_feature_layer(model, train.images[0])
W = layer.weight  # [K, F]: the final Linear's weight
j = int(exp.flipped_test_indices()[0])
x_test, y_true = exp.patched_test.images[j], int(exp.test.labels[j])
print(f"feature layer {layer.name!r}: {layer.num_features} neurons, {layer.pooling} pooling; W has shape {tuple(W.shape)}")
print(f"test image {j}: a {classes[y_true]} with the patch, predicted {classes[int(predict(model, x_test[None])[0])]}")

# %% [markdown]
# ## Exercise 1 · Which neuron says "T-shirt" for this image?
#
# The logit of class k is z_k(x) = Σ_c W[k, c] h_c(x) + b_k, where h(x) `[F]` are the pooled
# penultimate activations (`NF.neural_activations(model, x_test[None])[0]`). So W[k, c] · h_c(x)
# is neuron c's **contribution** to class k. Compute the contributions of all neurons to
# `target` (T-shirt/top) for `x_test`, by hand (not with `NF.class_contributions`), and the neuron
# that contributes most. **Predict** first: is it the neuron with the largest activation?

# %%
# BEGIN SOLUTION
#> answer = {"contributions": ..., "neuron": ...}
h = NF.neural_activations(model, x_test[None], layer)[0]  # [F]
contributions = W[target] * h
answer = {"contributions": contributions, "neuron": int(contributions.argmax())}
print(f"top contributor: neuron {answer['neuron']}; largest activation: neuron {int(h.argmax())}")
# END SOLUTION
check.ex07_top_contributor(answer, model, x_test, target)

# %% [markdown]
# A check you can always run: the contributions plus the bias give the logit back.

# %%
if check.results.get("ex07_top_contributor"):
    with torch.no_grad():
        logit = float(model(x_test[None])[0, target])
        total = float(answer["contributions"].sum() + layer.classifier.bias[target])
    print(f"logit of {classes[target]}: {logit:.4f}; sum of contributions + bias: {total:.4f}")

# %% [markdown]
# ## Exercise 2 · Is this neuron about the patch? The spuriousness score by hand
#
# Take the neuron from exercise 1 (`neuron`). Over its **m = 16 top-activating images of the
# slice** (`NF.top_activating(h_train, neuron, 16)` with `h_train` the activations of the whole
# slice — no labels used), compute
#
# - **score**: for each image, the share of its activation map's mass inside the patch mask,
#   Σ_{p ∈ mask} m(x)[p] / Σ_p m(x)[p], with m(x) = `NF.activation_maps(model, images, neuron)`
#   (upsampled, scaled to [0, 1]); then the mean over the 16 images;
# - **chance**: the mean mask area over the same 16 images (`train.masks`; an image without the
#   patch has an empty mask). A map spread evenly would score this.

# %%
neuron = int(answer["neuron"]) if check.results.get("ex07_top_contributor") else 0
h_train = NF.neural_activations(model, train.images, layer)  # [2000, F]

# %%
# BEGIN SOLUTION
#> sp = {"score": ..., "chance": ...}
top = NF.top_activating(h_train, neuron, 16)
maps = NF.activation_maps(model, train.images[top], neuron, layer)  # [16, 28, 28]
masks = train.masks[top].float()
sp = {"score": float(((maps * masks).sum(dim=(1, 2)) / maps.sum(dim=(1, 2))).mean()),
      "chance": float(masks.mean())}
print(f"neuron {neuron}: score {sp['score']:.3f}, chance {sp['chance']:.3f}; "
      f"top images with the patch: {train.patched[top].float().mean():.0%}")
# END SOLUTION
check.ex07_spuriousness(sp, model, train.images, train.masks, neuron, m=16)

# %% [markdown]
# **Test the explanation**: is the neuron that contributes most to "T-shirt/top" for this flipped
# image the one whose maps sit on the patch? `NF.spuriousness` scores every neuron the way you just
# did; compare your neuron with the most spurious one.

# %%
ranked = NF.spuriousness(model, train.images, train.masks, m=16, layer=layer, activations=h_train)
patch_neuron = int(ranked["order"][0])
print(f"most spurious neuron on the slice: {patch_neuron} (score {ranked['score'][patch_neuron]:.3f}, chance "
      f"{ranked['chance'][patch_neuron]:.3f}); your neuron {neuron} ranks "
      f"{int((ranked['order'] == neuron).nonzero()) + 1} of {layer.num_features}")

# %% [markdown]
# ## Exercise 3 · The random-mask control of the sensitivity test
#
# If the model relies on what `patch_neuron` detects, noise **inside that neuron's soft mask**
# should cut the flip rate. But noise anywhere might: a control needs **the same mask moved to a
# random place** (same mass, same shape: `NF.random_mask_like(m_spur, seed=1)`).
#
# On the patched test images of the other classes (`x_other`), with their soft masks `m_spur`
# (given), add noise x + σ ε ⊙ m with `NF.noise_in_mask(x_other, mask, 0.5, seed=0)` for each of
# the two masks, predict with `predict`, and report the **flip rate** (share predicted as
# `target`) for each.

# %%
other = exp.test.labels != target
x_other, y_other = exp.patched_test.images[other], exp.test.labels[other]
m_spur = NF.activation_maps(model, x_other, patch_neuron, layer)  # [n, 28, 28] soft masks in [0, 1]
base = float((predict(model, x_other)[0] == target).float().mean())
print(f"{len(x_other)} patched test images of other classes; flip rate without noise: {base:.3f}")

# %%
# BEGIN SOLUTION
#> rates = {"spurious": ..., "random": ...}
m_rand = NF.random_mask_like(m_spur, seed=1)
rates = {}
for key, mk in (("spurious", m_spur), ("random", m_rand)):
    pred, _ = predict(model, NF.noise_in_mask(x_other, mk, 0.5, seed=0))
    rates[key] = float((pred == target).float().mean())
print({k: round(v, 3) for k, v in rates.items()}, f"mask mass: {m_spur.sum() / len(m_spur):.1f} vs "
      f"{m_rand.sum() / len(m_rand):.1f} pixels per image")
# END SOLUTION
check.ex07_random_mask_control(rates, model, x_other, y_other, m_spur, target, sigma=0.5, seed=0, random_seed=1)

# %% [markdown]
# **Test the explanation**: does noise on the neuron's mask cut the flip rate more than noise on
# the moved mask? Notebook 07 adds a *core* neuron's mask as a second control and finds it cuts
# about as much: that is why one control is not enough.

# %%
if check.results.get("ex07_random_mask_control"):
    fig, axes = plt.subplots(1, 3, figsize=(6.6, 2.4))
    i = 0
    show_map(axes[0], m_spur[i], x_other[i], signed=False, vmax=1, alpha=0.6, title=f"neuron {patch_neuron} mask")
    show_map(axes[1], m_rand[i], x_other[i], signed=False, vmax=1, alpha=0.6, title="moved (control)")
    axes[2].bar([0, 1, 2], [base, rates["spurious"], rates["random"]], color=["#777", "#d62728", "#999"])
    axes[2].set_xticks([0, 1, 2], ["none", "neuron", "random"], fontsize=8)
    axes[2].set_title("flip rate", fontsize=9)
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## Summary

# %%
check.summary()
