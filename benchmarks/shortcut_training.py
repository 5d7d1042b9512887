"""Does SmallCNN learn the patch shortcuts on real Fashion-MNIST?

Trains the same SmallCNN (same seed, initialisation and batch order) three times on Fashion-MNIST:
with the ``quanda_mnist`` patch preset, with the ``tutorial`` preset, and without any patch. Each
model is evaluated on the clean test set and on the test images of the other classes with each
patch pasted on, and one markdown table is printed:

    clean acc | patched acc (other classes) | flip rate | flip rate strict | train seconds

The no-patch model gets one row per preset (its flip rate is the false-alarm floor).

Usage (from the repository root). On a quiet 2-core machine one model takes about 75 s on the full
60k × 5 epochs (the whole script about 4 minutes) and about 10 s on 12k × 3 epochs; other load on
the machine slows it several-fold. Results are deterministic for a seed on one machine.

    .venv/bin/python benchmarks/shortcut_training.py                # full 60k, 5 epochs, seed 0
    .venv/bin/python benchmarks/shortcut_training.py --n-train 12000 --epochs 3   # ~1 minute
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfa_tutorial.data.datasets import load_fashion_mnist, subsample  # noqa: E402
from tfa_tutorial.data.patches import PRESETS, inject_patch  # noqa: E402
from tfa_tutorial.training.models import SmallCNN, count_parameters  # noqa: E402
from tfa_tutorial.training.train import seed_everything, shortcut_report, train_model  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=60000, help="stratified training subset (default: all 60k)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--presets", default="quanda_mnist,tutorial", help="comma-separated PRESETS keys")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    train = subsample(load_fashion_mnist("train"), args.n_train, seed=args.seed)
    test = load_fashion_mnist("test")
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    specs = {name: PRESETS[name] for name in presets}

    rows = []
    for trained_with in presets + ["none"]:
        data = train if trained_with == "none" else inject_patch(train, specs[trained_with])
        seed_everything(args.seed)
        model = SmallCNN(1, 10)
        t0 = time.perf_counter()
        model, history = train_model(model, data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                     seed=args.seed, progress=sys.stderr.isatty())
        seconds = time.perf_counter() - t0
        for evaluated in ([trained_with] if trained_with != "none" else presets):
            r = shortcut_report(model, test, specs[evaluated])
            n_patched = int(data.patched.sum()) if trained_with != "none" else 0
            rows.append((trained_with, evaluated, n_patched, r, seconds))
            print(f"done: trained with {trained_with}, evaluated with {evaluated}: {r}", file=sys.stderr, flush=True)

    print(f"\nSmallCNN ({count_parameters(SmallCNN(1, 10)):,} parameters) on Fashion-MNIST: "
          f"{len(train):,} training images, full 10,000-image test set; {args.epochs} epochs, batch {args.batch_size}, "
          f"AdamW + OneCycle max lr {args.lr}, seed {args.seed}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads ({platform.processor() or platform.machine()}).\n")
    for name in presets:
        s = specs[name]
        print(f"- `{name}`: value {s.value} {s.size[0]}×{s.size[1]} at {s.location}, class {s.target_class} "
              f"({test.classes[s.target_class]}), prevalence {s.prevalence}")
    print()
    print("| trained with | patch at test | patched train images | clean acc | patched acc (other classes) "
          "| flip rate | flip rate strict | train s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for trained_with, evaluated, n_patched, r, seconds in rows:
        print(f"| {trained_with} | {evaluated} | {n_patched:,} | {r['clean_acc']:.3f} | {r['patched_acc_other']:.3f} "
              f"| {r['flip_rate']:.3f} | {r['flip_rate_strict']:.3f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
