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
# # 03 · Per-sample gradients and Grad-Cos: which training images drove this prediction?
#
# **What you will learn**
#
# - what a *per-sample gradient* g(z) = ∇_θ ℓ(f_θ(x), y) is, and how `torch.func.vmap` computes a
#   whole batch of them in one call (checked here against a plain loop);
# - the two simplest training-data attribution (TDA) scores, **Grad-Dot** ⟨g(z_i), g(z_j)⟩ and
#   **Grad-Cos** (the same, divided by both norms), and what their sign means;
# - how to *measure* whether a score finds the training images that carry the shortcut
#   (the shortcut-detection AUPRC of quanda, an open-source library of TDA benchmarks; both
#   defined in section 3), against a random and a label-only control.
#
# **Terms** are defined where they are first used and collected in the [glossary](../docs/glossary.md).
#
# **Run time and mode:** the first code cell prints the mode this notebook runs in (fast mode when
# no CUDA device is available) and its run time measured in that mode, then its **place in the
# course** (core 90-minute path or optional) and its **reading estimate**: the time budget to plan with.
# The two models come from
# notebook 02's cache, or are trained here if the cache is empty.

# %%
from tfa_tutorial import notebook_header

notebook_header("03_per_sample_gradients_and_gradcos")

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from tfa_tutorial import (
    Claims, fast_mode, grad_cos_and_dot, per_sample_grads, predict, retrieval_evidence, shortcut_experiment,
)
from tfa_tutorial.teaching.plots import ranked_rows

torch.manual_seed(0)
exp = shortcut_experiment(seed=0)  # loads cached checkpoints, or trains them (notebook 02)
classes = exp.classes
target = exp.spec.target_class
print(f"training images: {len(exp.train)}, of which patched: {int(exp.train.patched.sum())}")
print(f"shortcut model flip rate: {exp.report['flip_rate']:.2f}; clean model: {exp.clean_report['flip_rate']:.2f}")

# %% [markdown]
# ## 1. Per-sample gradients
#
# Training minimises the *mean* loss over a batch, so `loss.backward()` only ever gives the
# gradient of a sum. Attribution needs each example's own gradient g(z_n) — a vector with one
# entry per parameter (P, printed below). `torch.func` writes the loss of **one** example as a pure
# function of the parameters, takes its gradient with `grad`, and maps it over the batch with
# `vmap`. The model is in eval mode, so BatchNorm uses its running statistics and every
# example's gradient is independent of the others.
#
# Here is the plain loop it replaces — one backward pass per example — and the check that both agree.

# %%
model = exp.model
x8, y8 = exp.train.images[:8], exp.train.labels[:8]

G = per_sample_grads(model, x8, y8)  # [8, P] via functional_call + vmap(grad(...))

params = list(model.parameters())
loop = torch.stack([
    torch.cat([g.flatten() for g in torch.autograd.grad(F.cross_entropy(model(x8[i:i + 1]), y8[i:i + 1]), params)])
    for i in range(8)
])
print(f"P = {G.shape[1]} parameters; max |vmap − loop| = {(G - loop).abs().max():.1e} "
      f"(gradient entries are up to {loop.abs().max():.1e})")

# %% [markdown]
# ## 2. Grad-Dot and Grad-Cos for one shortcut-flipped test image
#
# One SGD step on a training example z_i changes the loss of a test example z_j by about
# −η ⟨g(z_j), g(z_i)⟩. So a training example whose gradient points the same way as the test
# example's is a **proponent** (training on it pushes the model towards this prediction), one that
# points the opposite way is an **opponent**.
#
# - **Grad-Dot** S = ⟨g(z_i), g(z_j)⟩ keeps the gradient lengths: examples the model still gets
#   wrong (large gradients) dominate.
# - **Grad-Cos** S = cos(g(z_i), g(z_j)) ∈ [−1, 1] keeps only the direction.
#
# We explain the model's **prediction** ŷ_j (the default: `test_targets=None`). The test image
# below is a non-T-shirt that the model gets right when clean and calls "T-shirt" once the patch
# is pasted on: the shortcut at work.

# %%
flipped = exp.flipped_test_indices()
j = int(flipped[0])
x_test = exp.patched_test.images[j]
pred = int(predict(model, x_test[None])[0])
print(f"test image {j}: true class {classes[int(exp.test.labels[j])]!r}, "
      f"prediction clean {classes[int(predict(model, exp.test.images[j:j + 1])[0])]!r}, "
      f"with the patch {classes[pred]!r}")

# All test queries of this notebook in one streaming pass over the training set: this image, and
# the quanda-filtered test images of section 3. Both scores come from the same gradients.
n_q = 8 if fast_mode() else 32
q_idx = exp.shortcut_detection_test_indices()[:n_q]
queries = torch.cat([torch.tensor([j]), q_idx])
cos_all, dot_all = grad_cos_and_dot(model, exp.train.images, exp.train.labels, exp.patched_test.images[queries],
                                      progress=True)  # [1 + n_q, N] each, predicted labels
cos, dot = cos_all[0], dot_all[0]

# %%
def ranked(scores, k=8, largest=True):
    """The top-k training images by ``scores``, with class, patch flag and score as titles."""
    idx = scores.topk(k, largest=largest).indices
    titles = [f"{classes[int(exp.train.labels[i])].split('/')[0]}\n{'PATCH ' if exp.train.patched[i] else ''}{scores[i]:+.2f}"
              for i in idx]
    return exp.train.images[idx], titles, exp.train.masks[idx]


fig = ranked_rows(x_test, f"test image (patched)\n{classes[int(exp.test.labels[j])]} → {classes[pred]}",
                  {"Grad-Cos\nproponents": ranked(cos), "Grad-Cos\nopponents": ranked(cos, largest=False),
                   "Grad-Dot\nproponents": ranked(dot)},
                  suptitle="The training images each score ranks first for this test image (green outline = patch)")
plt.show()

# %% [markdown]
# Grad-Cos puts patched T-shirts first: their gradients point the same way as the test image's.
# Grad-Dot prefers examples with **large** gradients — images the model still finds hard — and
# patched T-shirts are classified so confidently that their gradients are tiny.

# %%
top_cos = cos.topk(20).indices
top_dot = dot.topk(20).indices
share_cos = exp.train.patched[top_cos].float().mean().item()
share_dot = exp.train.patched[top_dot].float().mean().item()
norms = per_sample_grads(model, exp.train.images[:1000], exp.train.labels[:1000]).norm(dim=1)
p2 = exp.train.patched[:1000]
print(f"patched share of the top-20: Grad-Cos {share_cos:.2f}, Grad-Dot {share_dot:.2f}")
print(f"median gradient norm: patched {norms[p2].median():.3f}, unpatched {norms[~p2].median():.3f}")

# %% [markdown]
# ## 3. Does the score find the shortcut? Measured, with controls
#
# **quanda** is an open-source library of benchmarks for training-data attribution; we follow its
# **shortcut-detection** metric, so our numbers are comparable with published ones: take the test
# images of other classes that the model predicts as the shortcut class once patched; for each,
# rank all training images by score and compute the **AUPRC** — the area under the
# precision–recall curve of "this training image carries the patch" (precision: the share of
# patched images above a cut-off; recall: the share of all patched images found; see the
# [glossary](../docs/glossary.md)); average over the test images.
# A random score gets the prevalence of patched images. A *label-only* score (1 if the training
# label equals the prediction) shows how much comes from label agreement alone: all patched
# images are T-shirts, so this control is strong.

# %%
auprc = retrieval_evidence(exp, q_idx, kinds=("cos", "dot"), cos=cos_all[1:], dot=dot_all[1:])
for name, value in auprc.items():
    print(f"{name:>20}: {value:.2f}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.2))
names = [n for n in auprc if n != "prevalence (chance)"]
bars = ax.bar(names, [auprc[n] for n in names], color=["tab:green", "tab:orange", "tab:gray", "tab:gray"][:len(names)])
ax.bar_label(bars, fmt="%.2f", fontsize=9, padding=1)
ax.axhline(auprc["prevalence (chance)"], color="k", ls="--", lw=1, label="chance (share of patched training images)")
ax.set_ylabel("AUPRC (patched training images)")
ax.set_title(f"Shortcut detection over {len(q_idx)} flipped test images")
ax.set_ylim(0, 1.1)
ax.legend(fontsize=9, loc="upper right")
plt.xticks(rotation=15)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What we showed
#
# Each sentence below is checked on the numbers computed above (✓ holds, ✗ does not).

# %%
# NBVAL_CHECK_OUTPUT
c = Claims()
c.check("vmap per-sample gradients equal a per-example autograd loop",
        (G - loop).abs().max() < 1e-4 * loop.abs().max(), "relative error < 1e-4")
c.check("Grad-Cos finds the patched training images far above random (AUPRC > 3× random)",
        auprc["Grad-Cos"] > 3 * auprc["random"])
c.check("Grad-Cos beats the label-only control", auprc["Grad-Cos"] > auprc["label only"])
c.check("Grad-Dot ranks patched images far worse than Grad-Cos", auprc["Grad-Dot"] < auprc["Grad-Cos"] - 0.3)
c.check("patched training images have smaller gradients than unpatched ones",
        norms[p2].median() < norms[~p2].median())
c.summary()

# %% [markdown]
# ## Summary
#
# - `torch.func` computes per-sample gradients for a whole batch in one call, equal to a plain
#   per-example loop.
# - Grad-Cos ranks the patched training images first for a flipped test image, far above the random
#   and label-only controls; Grad-Dot, dominated by large gradients, does not.
# - Retrieval works: the training images are found. Which *regions* of them matter is the next
#   question.
#
# **Exercises:** [`exercises/03_per_sample_gradients_and_gradcos.ipynb`](../exercises/03_per_sample_gradients_and_gradcos.ipynb) (answers are checked automatically; hints never give the answer).
#
# **Next:** [04 · Training feature attribution](04_training_feature_attribution.ipynb) computes
# maps on the retrieved training images and tests whether they point at the patch.
