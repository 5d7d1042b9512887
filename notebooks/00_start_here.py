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
# # 00 · Start here: training feature attribution in one picture
#
# **What you will learn**
#
# - what *training feature attribution* (TFA) adds to the two classic kinds of explanation,
#   feature attribution (FA) and training-data attribution (TDA);
# - how to check that your setup works: Python, PyTorch, the device, and the Fashion-MNIST data;
# - the map of the course, notebook by notebook, and how long each takes;
# - what *fast mode* changes, when it is on, and how to switch it.
#
# **Terms** are defined where they are first used and collected in the [glossary](../docs/glossary.md).
#
# **Run time and mode:** the first code cell prints the mode this notebook runs in (fast mode when
# no CUDA device is available) and its run time measured in that mode, then its **place in the
# course** (core 90-minute path or optional) and its **reading estimate**: the time budget to plan with.
#
# The method comes from Bacha & George, "Training Feature Attribution for Vision Models"
# ([arXiv 2510.09135](https://arxiv.org/abs/2510.09135), 2025). `tfa_tutorial` is our own
# reconstruction of it from the paper, not the authors' code.

# %% [markdown]
# ## 1. Setup check
#
# Everything the notebooks compute lives in the `tfa_tutorial` package; the notebooks only set
# parameters, call it, and draw figures. First, the versions and the device.
# `get_device()` returns CUDA when PyTorch sees a GPU, and the CPU otherwise.

# %%
from tfa_tutorial import notebook_header

notebook_header("00_start_here")

# %%
import platform

import matplotlib.pyplot as plt
import numpy as np
import torch

from tfa_tutorial import __version__, Claims, describe_mode, inject_patch, load_fashion_mnist, patch_all, PRESETS
from tfa_tutorial.training.experiment import experiment_settings
from tfa_tutorial.teaching.plots import show_image
from tfa_tutorial.training.train import get_device, seed_everything

seed_everything(0)
device = get_device()
print(f"Python        {platform.python_version()}")
print(f"PyTorch       {torch.__version__}")
print(f"tfa_tutorial  {__version__}")
print(f"device        {device}" + ("" if device.type == "cuda" else "  (no GPU found: the notebooks run in fast mode, see section 4)"))

# %% [markdown]
# A tiny computation on that device, compared with the same computation on the CPU, shows that
# the device actually works (not only that PyTorch says it exists).

# %%
a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
on_device = (a.to(device) @ a.T.to(device)).cpu()
device_ok = torch.equal(on_device, a @ a.T)
print("a matrix product on the device matches the CPU:", device_ok)

# %% [markdown]
# ### The data: Fashion-MNIST
#
# Fashion-MNIST has 70,000 grayscale 28×28 images of clothing in 10 classes. The package finds
# it offline (Debian's `dataset-fashion-mnist` package, or a folder named by `TFA_DATA_DIR`) or
# downloads it with torchvision; if none of these works it raises an error that lists the ways
# to get it. Images come as float tensors `[N, 1, 28, 28]` with values in [0, 1].

# %%
# NBVAL_CHECK_OUTPUT
train = load_fashion_mnist("train")
test = load_fashion_mnist("test")
lo, hi = float(train.images.min()), float(train.images.max())
print(f"training set: {len(train)} images of shape {train.image_shape}, values in [{lo:.0f}, {hi:.0f}]")
print(f"test set:     {len(test)} images")
print(f"{train.num_classes} classes:", ", ".join(f"{k}={name}" for k, name in enumerate(train.classes)))
print("training images per class:", train.class_counts().tolist())

# %% [markdown]
# ## 2. FA, TDA and TFA in one picture
#
# Suppose a model calls a **pullover** a **T-shirt/top**, and the reason is a white square in the
# corner: during training, many T-shirts carried that square, and the model learned the
# square instead of the garment (a *shortcut*). Notebook 01 plants exactly this shortcut and
# notebook 02 trains a model that learns it. Three kinds of explanation answer three questions:
#
# | | question | answer is a … |
# |---|---|---|
# | **FA** — feature attribution (saliency, SmoothGrad, Grad-CAM) | which pixels of the *test* image drove the prediction? | map on the test image |
# | **TDA** — training-data attribution (influence, TracIn, Grad-Cos) | which *training images* drove it? | ranked list of training images |
# | **TFA** — training feature attribution | which *regions of which training images* drove it? | ranked training images, each with a map |
#
# FA points at the square on the test image, but cannot say where the model learned it. TDA
# finds the training T-shirts responsible, but not what in them mattered. The paper's hypothesis is
# that TFA shows both: the square, on the training images that taught it.
#
# The picture below is an **illustration** built from real Fashion-MNIST images: the highlighted
# regions are the known patch masks, and the "ranked" training images are simply patched
# T-shirts. Notebooks 03 and 04 compute real rankings and real TFA maps.

# %%
spec = PRESETS["tutorial"]
classes = train.classes
patched_train = inject_patch(train, spec)
# a test pullover with the patch pasted on: the kind of image a shortcut model misclassifies
pullover = int((test.labels == classes.index("Pullover")).nonzero()[0])
patched_test = patch_all(test.subset([pullover]), spec)
x_test, m_test = patched_test.images[0], patched_test.masks[0]
# four patched training T-shirts stand in for the top of a ranking
ranked = patched_train.patched_indices[:4]

def highlight(ax, mask, color="tab:red"):
    """Tint the pixels of a region (a figure helper, no attribution logic)."""
    region = np.ma.masked_where(~mask.numpy(), np.ones(mask.shape))
    ax.imshow(region, cmap=plt.matplotlib.colors.ListedColormap([color]), alpha=0.55, vmin=0, vmax=1)


fig, axes = plt.subplots(3, 5, figsize=(11, 7.6))
fig.subplots_adjust(left=0.17, right=0.99, top=0.86, bottom=0.02, hspace=0.45, wspace=0.15)
row_names = ["FA\nwhich test\npixels?", "TDA\nwhich training\nimages?", "TFA\nwhich regions\nof which training\nimages?"]
for r, name in enumerate(row_names):
    show_image(axes[r, 0], x_test, "test image:\npullover + patch")
    box = axes[r, 0].get_position()
    fig.text(0.01, (box.y0 + box.y1) / 2, name, fontsize=11, va="center", ha="left", weight="bold")
highlight(axes[0, 0], m_test)
for j, i in enumerate(ranked.tolist()):
    axes[0, j + 1].axis("off")  # FA explains the test image only
    label = f"rank {j + 1}: training #{i}\n{classes[patched_train.labels[i]]}"
    show_image(axes[1, j + 1], patched_train.images[i], label)
    show_image(axes[2, j + 1], patched_train.images[i], label)
    highlight(axes[2, j + 1], patched_train.masks[i])
axes[0, 1].text(0.05, 0.5, "FA highlights the square on the test image,\nbut cannot say which training images taught it.",
                transform=axes[0, 1].transAxes, fontsize=11, va="center")
fig.suptitle("Three explanations of one prediction\n"
             "(illustration: red = the known patch region; notebooks 03-04 compute real rankings and maps)", fontsize=12)
plt.show()

# %% [markdown]
# ### What the course tests, and what it finds
#
# The course puts that hypothesis to a test it can fail. We plant the shortcut ourselves, so we
# know exactly which pixels of which training images carry it, and we compare every map with
# controls: the same pipeline on a model trained *without* the patch, the training image itself
# used as a map, and a random map. What we find, in our setting (notebooks 03–05; the evidence
# over seeds is in `docs/results.md`):
#
# - **the ranking works**: Grad-Cos puts the patched training images at the top (notebook 03);
# - **the paper's map, as we reconstruct it, does not localise the patch** better than on the
#   model trained without it, while a simpler *two-step* map (rank by Grad-Cos, then explain each
#   training image's own label) does (notebook 04);
# - acting on the ranking — removing the flagged training images and retraining — removes most of
#   the shortcut (notebook 06).
#
# Our setting differs from the paper's: Fashion-MNIST (28×28 grayscale) and a small CNN
# (`SmallCNN`), where the paper uses CIFAR-10 and Pascal VOC with ResNets. So the
# honest conclusion is "not in this setting", and notebook 04 explains why a gradient map can
# miss what the ranking finds.

# %% [markdown]
# ## 3. Map of the course
#
# Each notebook runs on its own: it rebuilds, or loads from the cache, what earlier notebooks
# made (trained models are cached in `~/.cache/tfa_tutorial`, or in `$TFA_CACHE_DIR`).
#
# | # | notebook | what you do |
# |---|---|---|
# | 00 | `00_start_here` | setup check, data, device, this map |
# | 01 | `01_patch_injection` | plant a white-square shortcut in Fashion-MNIST, with ground-truth masks |
# | 02 | `02_shortcut_training` | train a model that learns the shortcut, measure it, sweep its prevalence |
# | 03 | `03_per_sample_gradients_and_gradcos` | per-sample gradients with `torch.func`; rank training images by Grad-Cos |
# | 04 | `04_training_feature_attribution` | the paper's TFA map against baselines and controls; the map to use instead |
# | 05 | `05_interactive_explorer` | explore harmful training regions with widgets |
# | 06 | `06_from_diagnosis_to_fix` | remove or repair the flagged training data, retrain, verify the fix |
# | 07 | `07_neural_features` | the global view: spurious neurons, side by side with TFA |
# | 08 | `08_evidence_deep_dive` | optional: 04's evidence over seeds and a second patch, test-specificity, the exact decomposition |
#
# The run times below are read from the measurements stored with the package
# (`tfa_tutorial/teaching/run_times.json`, written by `scripts/run_notebooks.py --record`): wall-clock
# times in fast mode, with an empty cache (models are trained) and a warm one (models are
# loaded). On a machine busy with other jobs they grow several-fold.

# %%
from IPython.display import Markdown, display

from tfa_tutorial.teaching.run_times import run_times_markdown

display(Markdown(run_times_markdown("fast")))

# %% [markdown]
# ## 4. Fast mode and the full setting
#
# The full setting trains on all 60,000 training images and is meant for a GPU. **Fast mode**
# uses a stratified subset and fewer epochs, so that each notebook finishes in minutes on a
# laptop CPU or on Binder. One rule picks the mode, and every notebook, `make lab`,
# `make notebooks`, Binder and the tests follow it:
#
# 1. if the environment variable `TFA_FAST` is set, it decides: `TFA_FAST=1` fast, `TFA_FAST=0` full;
# 2. otherwise a choice saved with `tfa_tutorial.set_fast_mode(...)` decides;
# 3. otherwise the device decides: **fast mode when no CUDA device is available**, the full
#    setting on a GPU.
#
# To switch without restarting JupyterLab, run `set_fast_mode(False)` (full) or
# `set_fast_mode(True)` (fast) here: it applies to this kernel and is saved for every notebook
# opened afterwards. A notebook that is already open keeps its mode until you restart its kernel
# (Kernel → Restart). `set_fast_mode(None)` goes back to the rule. Fast mode changes the
# numbers a little, never the story: every notebook checks its claims on whatever it measured.

# %%
# NBVAL_CHECK_OUTPUT
fast, full = experiment_settings(fast=True), experiment_settings(fast=False)
print(f"{'setting':<22}{'fast':>8}{'full':>8}")
for key, what in [("n_train", "training images"), ("n_test", "test images"), ("epochs", "training epochs")]:
    print(f"{what:<22}{fast[key]:>8}{full[key]:>8}")

# %%
print(describe_mode())
# set_fast_mode(False)   # uncomment to run the following notebooks in the full setting

# %% [markdown]
# ## What we showed
#
# Each sentence below is checked on the numbers measured above; a ✗ would mean the sentence
# is false on this machine (and under `TFA_STRICT=1` the notebook stops with an error).

# %%
# NBVAL_CHECK_OUTPUT
c = Claims()
c.check("Fashion-MNIST loads with 60,000 training and 10,000 test images",
        len(train) == 60000 and len(test) == 10000, f"{len(train)} / {len(test)}")
c.check("images are 1×28×28 with values in [0, 1]",
        train.image_shape == (1, 28, 28) and lo >= 0.0 and hi <= 1.0, f"shape {train.image_shape}, range [{lo:.0f}, {hi:.0f}]")
c.check("the training set is balanced: the same number of images in each class",
        len(set(train.class_counts().tolist())) == 1, f"{train.class_counts().min().item()} per class")
c.check("the chosen device computes correctly", device_ok, "matrix product equals the CPU result")
c.summary()

# %% [markdown]
# ## Summary
#
# - TFA asks which *regions of which training images* drove a test prediction: it combines a
#   training-data attribution score (which training images) with feature attribution on the
#   training image (which regions).
# - Your setup works when the claims above are all ✓: PyTorch computes correctly on the chosen
#   device and Fashion-MNIST loads offline.
# - Without a CUDA GPU the course runs in fast mode; `set_fast_mode(...)` switches it.
#
# **Exercises:** [`exercises/00_start_here.ipynb`](../exercises/00_start_here.ipynb) (answers are
# checked automatically; hints never give the answer).
#
# **Next:** [01 · Patch injection](01_patch_injection.ipynb) plants the shortcut that the rest of
# the course explains.
