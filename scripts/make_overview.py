"""Render docs/images/overview.png: one test prediction explained three ways — feature attribution
on the test image, training-data attribution (ranked training images), and training feature
attribution (maps on those training images).

    TFA_FAST=1 .venv/bin/python scripts/make_overview.py
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import tfa_tutorial as T  # noqa: E402
from tfa_tutorial.evaluation import select_pairs  # noqa: E402
from tfa_tutorial.experiment import shortcut_experiment  # noqa: E402
from tfa_tutorial.families import FAMILIES, PairContext  # noqa: E402
from tfa_tutorial.plots import show_image, show_map  # noqa: E402


def main(out=Path(__file__).resolve().parents[1] / "docs" / "images" / "overview.png"):
    torch.manual_seed(0)
    exp = shortcut_experiment(seed=0, progress=False)
    test_idx, train_idx, scores = select_pairs(exp, n_test=1, top_k=4)
    j, tr = int(test_idx[0]), train_idx[0]
    x = exp.patched_test.images[j]
    pred = int(T.predict(exp.model, x[None])[0])
    cam = T.grad_cam(exp.model, x[None], torch.tensor([pred]))[0, 0]
    fam = FAMILIES["TFA-Cos · gradient × input"]  # the map family of the registry shown (signed by S)
    tfa = T.reduce_map(fam(PairContext(exp.model, exp.train.images[tr], exp.train.labels[tr], x, pred)), "signed")
    fig, axes = plt.subplots(2, 6, figsize=(10.5, 4.2), gridspec_kw={"width_ratios": [1, 1, 0.15, 1, 1, 1]})
    for ax in axes[:, 2]:
        ax.axis("off")
    c = exp.classes
    show_image(axes[0, 0], x, f"test image\ntrue {c[int(exp.test.labels[j])]}, predicted {c[pred]}")
    show_map(axes[1, 0], cam, x, "feature attribution\n(Grad-CAM on the test image)", signed=False)
    axes[0, 1].axis("off")
    axes[1, 1].axis("off")
    axes[0, 1].text(0.5, 0.5, "which training\nimages?\n(Grad-Cos, TDA)\n→", ha="center", va="center", fontsize=10)
    axes[1, 1].text(0.5, 0.5, "which regions\nof them?\n(TFA)\n→", ha="center", va="center", fontsize=10)
    for k in range(3):
        i = int(tr[k])
        show_image(axes[0, 3 + k], exp.train.images[i], f"#{k + 1}: {c[int(exp.train.labels[i])]}\nGrad-Cos {scores[0, i]:.2f}",
                   mask=exp.train.masks[i])
        show_map(axes[1, 3 + k], tfa[k], exp.train.images[i], fam.name.replace(" · ", "\n"), mask=exp.train.masks[i])
    fig.suptitle("Explaining one shortcut prediction: test pixels, training images, training-image regions "
                 "(green box = the planted patch)", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out.name}")


if __name__ == "__main__":
    main()
