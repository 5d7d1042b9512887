"""Render docs/images/overview.png: one test prediction explained three ways — feature attribution
on the test image, training-data attribution (ranked training images), and training feature
attribution: the paper's map and the course's recommended map, side by side on the same training
images.

    TFA_FAST=1 .venv/bin/python scripts/make_overview.py
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

import tfa_tutorial as T  # noqa: E402
from tfa_tutorial.attribution.families import FAMILIES, PairContext  # noqa: E402
from tfa_tutorial.evaluation.verdict import recommended_family  # noqa: E402
from tfa_tutorial.evaluation.pairs import select_pairs  # noqa: E402
from tfa_tutorial.teaching.plots import map_rows, show_map  # noqa: E402
from tfa_tutorial.training.experiment import shortcut_experiment  # noqa: E402


def main(out=Path(__file__).resolve().parents[1] / "docs" / "images" / "overview.png"):
    torch.manual_seed(0)
    exp = shortcut_experiment(seed=0, progress=False)
    test_idx, train_idx, scores = select_pairs(exp, n_test=1, top_k=4)
    j, tr = int(test_idx[0]), train_idx[0]
    x = exp.patched_test.images[j]
    pred = int(T.predict(exp.model, x[None])[0])
    cam = T.grad_cam(exp.model, x[None], torch.tensor([pred]))[0, 0]
    ctx = PairContext(exp.model, exp.train.images[tr], exp.train.labels[tr], x, pred)
    paper = FAMILIES["TFA-Cos · gradient, SmoothGrad (paper)"]
    best = FAMILIES[recommended_family()]  # the course's recommended map, chosen from docs/results.json
    rows = {"the paper's\nTFA map": T.reduce_map(paper(ctx), "signed"),
            "the recommended\nmap": T.reduce_map(best(ctx), "signed")}
    c = exp.classes
    titles = [f"#{k + 1}: {c[int(exp.train.labels[i])]}\nGrad-Cos {scores[0, i]:.2f}" for k, i in enumerate(tr.tolist())]
    fig = map_rows(exp.train.images[tr], rows, col_titles=titles, masks=exp.train.masks[tr], size=1.9, first_col=x,
                   first_col_title=f"test image\ntrue {c[int(exp.test.labels[j])]}\npredicted {c[pred]}",
                   suptitle="One shortcut prediction: the training images Grad-Cos ranks first (top row), and which of "
                            f"their pixels matter:\nthe paper's map ({paper.name}) and the recommended map ({best.name})\n"
                            "one colour scale per row; green outline = the planted patch")
    ax = fig.axes[(len(tr) + 1) * 1]  # the first column of the first map row: feature attribution on the test image
    ax.axis("on")
    show_map(ax, cam, x, "Grad-CAM on the\ntest image (FA)", signed=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out.name}: paper's map vs {best.name}")


if __name__ == "__main__":
    main()
