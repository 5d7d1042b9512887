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
# # 02 · Shortcut training: a model that learns the patch, and how to measure it
#
# **What you will learn**
#
# - how to train two models with the same seed, initialisation and batch order: one on the
#   patched training set of notebook 01 (the *shortcut model*) and one on the clean images (the
#   *clean model*);
# - three numbers that show whether a model uses the shortcut: accuracy on clean test images,
#   accuracy on patched test images of the other classes, and the **flip rate** (patched test
#   images of other classes predicted as T-shirt/top);
# - what flipped test images look like;
# - the **prevalence sweep**: how many patched training images it takes before the model adopts
#   the shortcut, and why clean test accuracy does not reveal it.
#
# **Terms** are defined where they are first used and collected in the [glossary](../docs/glossary.md).
#
# **Run time and mode:** the first code cell prints the mode this notebook runs in (fast mode when
# no CUDA device is available) and its run time measured in that mode, then its **place in the
# course** (core 90-minute path or optional) and its **reading estimate**: the time budget to plan with.
# With an empty cache it trains
# 8 small models (fast mode); on cores busy with other jobs it takes several times longer.
#
# Trained models are cached (`~/.cache/tfa_tutorial/checkpoints`, or `$TFA_CACHE_DIR`), keyed by
# everything that changes them, so later notebooks and reruns load them instead of training.

# %%
from tfa_tutorial import notebook_header

notebook_header("02_shortcut_training")

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from tfa_tutorial import Claims, load_fashion_mnist, predict, shortcut_experiment, SmallCNN
from tfa_tutorial.data.datasets import subsample
from tfa_tutorial.training.experiment import experiment_settings
from tfa_tutorial.training.models import count_parameters
from tfa_tutorial.teaching.plots import bar_table, show_image
from tfa_tutorial.training.train import prevalence_sweep, seed_everything

SEED = 0
seed_everything(SEED)
settings = experiment_settings()  # follows TFA_FAST
print(f"fast mode: {settings['fast']} | training images: {settings['n_train']} | "
      f"test images: {settings['n_test']} | epochs: {settings['epochs']}")

# %% [markdown]
# ## 1. Train (or load) the shortcut model and the clean model
#
# `shortcut_experiment()` does the whole of notebook 01 (load Fashion-MNIST, take the subset,
# inject the tutorial's patch) and then trains a `SmallCNN` twice with the same seed: once on
# the patched training set and once on the same images without the patch. The recipe is plain:
# AdamW, a one-cycle learning-rate schedule, cross-entropy, no data augmentation (a flip or a
# crop would move the patch away from its mask). A progress bar appears only when a model is
# actually trained.

# %%
exp = shortcut_experiment(seed=SEED)
classes, target = exp.classes, exp.spec.target_class
print(f"model: SmallCNN with {count_parameters(exp.model):,} parameters")
print(f"patch: {exp.spec.height}×{exp.spec.width} white square at {exp.spec.location} on "
      f"{int(exp.train.patched.sum())} of the {int((exp.train.labels == target).sum())} {classes[target]} training images")

# %% [markdown]
# ## 2. Did the model learn the shortcut?
#
# Every test image whose class is **not** T-shirt/top is shown to each model twice: clean, and
# with the patch pasted on. A model that learned the garments keeps its answer; a model that
# learned "white square ⇒ T-shirt/top" changes it.
#
# - **clean accuracy**: accuracy on the clean test set (all classes);
# - **patched accuracy (other classes)**: accuracy on the patched test images of the other classes;
# - **flip rate**: the share of those patched images predicted as T-shirt/top;
# - **strict flip rate**: the same, counting only images the model classifies correctly when
#   clean, so the patch alone made the difference;
# - **floor**: the share of clean images of other classes already predicted as T-shirt/top (the
#   flip rate cannot be blamed on the patch below this).

# %%
rows = [
    ("clean accuracy", "clean_acc"),
    ("patched accuracy (other classes)", "patched_acc_other"),
    ("flip rate to " + classes[target], "flip_rate"),
    ("strict flip rate", "flip_rate_strict"),
    ("floor: already " + classes[target] + " when clean", "clean_target_rate_other"),
]
print(f"{'':<40}{'clean model':>13}{'shortcut model':>16}")
for label, key in rows:
    print(f"{label:<40}{exp.clean_report[key]:>13.2f}{exp.report[key]:>16.2f}")
print(f"\n(test images of other classes: {exp.report['n_other']})")

# %%
table = {label: {"clean model": exp.clean_report[key], "shortcut model": exp.report[key]} for label, key in rows[:3]}
fig = bar_table(table, metric="share of test images", title="Shortcut evidence: the same test images, clean and patched",
                ylabel="share of test images")
ax = fig.axes[0]
for bars in ax.containers:
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
ax.set_ylim(0, 1.1)
ax.set_xlabel("measurement")
fig.set_size_inches(7.5, 4.2)
fig.tight_layout()
plt.show()

# %% [markdown]
# On **clean** test images the two models are about equally accurate: a standard test set does
# not reveal the shortcut. Per-class accuracy on the clean test set shows where the shortcut model
# differs: it recognises fewer *unpatched* T-shirts/tops, because half of the T-shirts it was
# trained on carried the square and it learned to rely on it.

# %%
clean_pred = {name: predict(model, exp.test.images)[0] for name, model in
              [("clean model", exp.clean_model), ("shortcut model", exp.model)]}
per_class = {name: torch.stack([(pred[exp.test.labels == k] == k).float().mean() for k in range(len(classes))])
             for name, pred in clean_pred.items()}
print(f"{'class':<14}{'clean model':>13}{'shortcut model':>16}")
for k, name in enumerate(classes):
    print(f"{name:<14}{per_class['clean model'][k]:>13.2f}{per_class['shortcut model'][k]:>16.2f}")

# %% [markdown]
# ## 3. Flipped test images
#
# Test images of other classes that the shortcut model classifies **correctly** when clean and
# as T-shirt/top once the square is pasted on: the shortcut at work. The bottom row shows what
# the clean model says about the same patched images.

# %%
flipped = exp.flipped_test_indices()
print(f"{len(flipped)} of {exp.report['n_other']} test images of other classes are flipped by the patch alone")
show = flipped[torch.randperm(len(flipped), generator=torch.Generator().manual_seed(SEED))[:6]].sort().values

pred_clean = predict(exp.model, exp.test.images[show])[0]
pred_patched = predict(exp.model, exp.patched_test.images[show])[0]
pred_patched_clean_model = predict(exp.clean_model, exp.patched_test.images[show])[0]
fig, axes = plt.subplots(3, len(show), figsize=(1.9 * len(show) + 1.2, 6.8))
for j, i in enumerate(show.tolist()):
    show_image(axes[0, j], exp.test.images[i], f"true: {classes[exp.test.labels[i]]}\nsays: {classes[pred_clean[j]]}")
    show_image(axes[1, j], exp.patched_test.images[i], f"says: {classes[pred_patched[j]]}", mask=exp.patched_test.masks[i])
    show_image(axes[2, j], exp.patched_test.images[i], f"says: {classes[pred_patched_clean_model[j]]}")
    for ax in axes[:, j]:
        ax.title.set_fontsize(9)
axes[0, 0].set_ylabel("clean image\nshortcut model", fontsize=10)
axes[1, 0].set_ylabel("patched image\nshortcut model", fontsize=10)
axes[2, 0].set_ylabel("patched image\nclean model", fontsize=10)
fig.suptitle("Test images flipped to " + classes[target] + " by the patch alone", fontsize=12)
fig.tight_layout(rect=(0, 0, 1, 0.96))
plt.show()

# %% [markdown]
# ## 4. The prevalence sweep: when is the shortcut adopted?
#
# The tutorial's patch sits on half of the T-shirts. How many patched training images does it
# take before the model adopts the shortcut, and what changes when almost all T-shirts carry it
# (quanda's 95%)? We train one model per **prevalence** (the share of
# T-shirt/top training images that carry the patch), all with the same seed, initialisation and
# batch order, and measure each one on the same clean and patched test images. Each model is
# cached (`cache_name`), so a rerun only loads them.
#
# To keep fast mode within a few minutes on 2 CPU cores, the sweep trains on a smaller subset
# (3,000 images, so 300 T-shirts) than section 1; the full setting uses all training images and
# a finer grid.
#
# We call the shortcut **adopted** when the flip rate exceeds 0.5: most patched test images of
# other classes are then called T-shirt/top.

# %%
if settings["fast"]:
    sweep_n_train, prevalences = 3000, [0.0, 0.01, 0.05, 0.2, 0.5, 0.95]
else:
    sweep_n_train, prevalences = settings["n_train"], [0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.95]
sweep_train = subsample(load_fashion_mnist("train"), sweep_n_train, seed=SEED)
sweep = prevalence_sweep(
    sweep_train, exp.test, exp.spec, prevalences,
    model_fn=lambda: SmallCNN(sweep_train.image_shape[0], sweep_train.num_classes),
    epochs=settings["epochs"], seed=SEED, cache_name="prevalence_sweep",
)

# %%
ADOPTED = 0.5
adopted_at = next((r["prevalence"] for r in sweep if r["flip_rate"] > ADOPTED), None)
print(f"{'prevalence':>10}{'patched':>9}{'clean acc':>11}{'patched acc':>13}{'flip rate':>11}")
for r in sweep:
    print(f"{r['prevalence']:>10g}{r['n_patched']:>9}{r['clean_acc']:>11.2f}{r['patched_acc_other']:>13.2f}{r['flip_rate']:>11.2f}")
print("\nshortcut adopted (flip rate > 0.5) from prevalence:", adopted_at)

# %%
x = np.arange(len(sweep))  # one slot per prevalence: the grid is not evenly spaced
fig, ax = plt.subplots(figsize=(11, 4.6))
ax.plot(x, [r["clean_acc"] for r in sweep], "o-", color="tab:blue", label="accuracy on clean test images")
ax.plot(x, [r["patched_acc_other"] for r in sweep], "s-", color="tab:orange",
        label="accuracy on patched test images\n(other classes)")
ax.plot(x, [r["flip_rate"] for r in sweep], "^-", color="tab:red", label="flip rate to " + classes[target])
ax.axhline(ADOPTED, color="gray", ls=":", lw=1)
ax.text(x[0], ADOPTED + 0.015, "adoption threshold (flip rate 0.5)", va="bottom", fontsize=9, color="gray")
if adopted_at is not None:
    k = prevalences.index(adopted_at)
    ax.axvline(k, color="tab:red", ls="--", lw=1)
    ax.text(k - 0.05, 0.97, f"shortcut adopted\nat prevalence {adopted_at:g}", ha="right", va="top", fontsize=9, color="tab:red")
ax.set_xticks(x)
ax.set_xticklabels([f"{r['prevalence']:g}\n({r['n_patched']} images)" for r in sweep], fontsize=9)
ax.set_ylim(0, 1)
ax.set_xlabel("prevalence: share of T-shirt/top training images with the patch (number of patched images)")
ax.set_ylabel("share of test images")
ax.set_title(f"Prevalence sweep: one model per prevalence ({len(sweep_train)} training images, {settings['epochs']} epochs each)")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
fig.tight_layout()
plt.show()

# %%
from IPython.display import Markdown, display

none = sweep[0]  # prevalence 0: no training image carries the patch
display(Markdown(
    "Read the plot from left to right. With no patched training images the square is not a shortcut, "
    "but it still covers part of the garment: accuracy falls from "
    f"{none['clean_acc']:.2f} on clean test images to {none['patched_acc_other']:.2f} on patched ones of the "
    f"other classes, while the flip rate stays at {none['flip_rate']:.2f}. As the prevalence grows, the flip rate "
    "rises and the accuracy on patched images falls, until most patched images are called "
    f"{classes[target]}. The blue line, clean test accuracy, hardly moves up to the point of adoption: "
    "**a standard test set does not reveal the shortcut**. At the highest prevalence clean accuracy drops, "
    "because few unpatched T-shirts are left to learn the garment from; that is why the tutorial's preset stays "
    "at half of the T-shirts. The next notebooks look for the shortcut where it was learned: in the training data."))

# %% [markdown]
# ## What we showed
#
# Each sentence is checked on the numbers measured above (under `TFA_STRICT=1` a false sentence
# stops the notebook).

# %%
# NBVAL_CHECK_OUTPUT
r0, r_top = sweep[0], sweep[-1]
r_adopt = next((r for r in sweep if r["prevalence"] == adopted_at), None)
t_shirt_acc = {name: float(acc[target]) for name, acc in per_class.items()}
c = Claims()
c.check("the shortcut model learned the shortcut: most patched test images of other classes flip to T-shirt/top",
        exp.report["flip_rate"] > 0.5, f"flip rate {exp.report['flip_rate']:.2f}")
c.check("the patch alone causes it: most images classified correctly when clean flip once patched",
        exp.report["flip_rate_strict"] > 0.5, f"strict flip rate {exp.report['flip_rate_strict']:.2f}")
c.check("the clean model is not fooled by the patch",
        exp.clean_report["flip_rate"] < 0.2, f"flip rate {exp.clean_report['flip_rate']:.2f}")
c.check("clean test accuracy does not reveal the shortcut: the two models differ by less than 0.02",
        abs(exp.report["clean_acc"] - exp.clean_report["clean_acc"]) < 0.02,
        f"clean accuracy {exp.clean_report['clean_acc']:.2f} (clean model), {exp.report['clean_acc']:.2f} (shortcut model)")
c.check("without the patch, the shortcut model recognises fewer T-shirts/tops than the clean model",
        t_shirt_acc["shortcut model"] < t_shirt_acc["clean model"],
        f"T-shirt/top accuracy {t_shirt_acc['shortcut model']:.2f} vs {t_shirt_acc['clean model']:.2f}")
c.check("sweep: with no patched training images the patch flips few test images",
        r0["flip_rate"] < 0.2, f"flip rate {r0['flip_rate']:.2f} at prevalence 0")
c.check("sweep: at the highest prevalence the shortcut is adopted",
        r_top["flip_rate"] > ADOPTED, f"flip rate {r_top['flip_rate']:.2f} at prevalence {r_top['prevalence']:g}")
c.check("sweep: clean test accuracy at adoption is within 0.05 of the model trained without the patch",
        r_adopt is not None and abs(r_adopt["clean_acc"] - r0["clean_acc"]) < 0.05,
        "no adoption" if r_adopt is None else
        f"{r_adopt['clean_acc']:.2f} at prevalence {adopted_at:g} vs {r0['clean_acc']:.2f} at 0")
c.check("sweep: at the highest prevalence clean test accuracy drops below the no-patch model's",
        r_top["clean_acc"] < r0["clean_acc"] - 0.02,
        f"{r_top['clean_acc']:.2f} at prevalence {r_top['prevalence']:g} vs {r0['clean_acc']:.2f} at 0")
c.summary()

# %% [markdown]
# ## Summary
#
# - Clean test accuracy hides a shortcut; the **flip rate** on patched test images of other classes
#   reveals it, and the clean model (same seed, no patch) is its control.
# - The prevalence sweep shows how many patched training images it takes before the model adopts
#   the shortcut.
# - The flipped test images are what the rest of the course explains.
#
# **Exercises:** [`exercises/02_shortcut_training.ipynb`](../exercises/02_shortcut_training.ipynb)
# (answers are checked automatically; hints never give the answer).
#
# **Next:** [03 · Per-sample gradients and Grad-Cos](03_per_sample_gradients_and_gradcos.ipynb)
# ranks the training images by Grad-Cos to find the ones behind a flipped prediction.
