"""Speed and memory of the attribution core against a per-example loop and peer libraries,
measured in one run on the same model (SmallCNN, 61k parameters, 1×28×28 inputs).

    .venv/bin/python benchmarks/attribution_speed.py [--repeats 3] [--n-train 500] [--quick]

Each measurement runs in a fresh process (so peak RSS is its own) and is repeated; the table
reports medians and ratios to our implementation. CPU speed on small VMs swings 2–3× between
runs, so read the ratios, not the absolute times.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time

SHAPE = (1, 28, 28)


def _setup(seed=0):
    import torch

    import tfa_tutorial as T

    torch.set_num_threads(2)
    torch.manual_seed(seed)
    model = T.SmallCNN(1, 10, norm="batch")
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm running statistics
        for _ in range(5):
            model(torch.rand(64, *SHAPE))
    return model.eval()


def _data(n, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g)


# ---------------------------------------------------------------- workers: each returns seconds
def w_train_step(n):
    import torch
    import torch.nn.functional as F

    model = _setup().train()
    x, y = _data(n, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    t = time.perf_counter()
    for s in range(0, n, 128):
        opt.zero_grad()
        F.cross_entropy(model(x[s : s + 128]), y[s : s + 128]).backward()
        opt.step()
    return time.perf_counter() - t


def w_psg_ours(n):
    import tfa_tutorial as T

    model = _setup()
    x, y = _data(n, 1)
    t = time.perf_counter()
    T.per_sample_grads(model, x, y)
    return time.perf_counter() - t


def w_psg_loop(n):
    import torch
    import torch.nn.functional as F

    model = _setup()
    x, y = _data(n, 1)
    params = list(model.parameters())
    t = time.perf_counter()
    rows = []
    for i in range(n):
        gs = torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), params)
        rows.append(torch.cat([g.flatten() for g in gs]))
    torch.stack(rows)
    return time.perf_counter() - t


def _captum_tracin(model, x, y, tmp):
    import torch
    from captum.influence import TracInCP
    from torch.utils.data import TensorDataset

    path = f"{tmp}/ckpt.pt"
    torch.save(model.state_dict(), path)

    def load(m, p):
        m.load_state_dict(torch.load(p, weights_only=True))
        return 1.0

    return TracInCP(model, TensorDataset(x, y), [path], checkpoints_load_func=load,
                    loss_fn=torch.nn.CrossEntropyLoss(reduction="none"), batch_size=64)


def w_psg_captum(n):
    """Captum's default per-sample path (TracInCP self-influence = ‖g‖² per example)."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model = _setup()
    x, y = _data(n, 1)
    with tempfile.TemporaryDirectory() as tmp:
        tracin = _captum_tracin(model, x, y, tmp)
        t = time.perf_counter()
        tracin.self_influence(DataLoader(TensorDataset(x, y), batch_size=64))
        return time.perf_counter() - t


def w_gc_ours(n, q=20):
    import tfa_tutorial as T

    model = _setup()
    x, y = _data(n, 1)
    xq, yq = _data(q, 2)
    t = time.perf_counter()
    T.grad_cos(model, x, y, xq, yq)
    return time.perf_counter() - t


def w_gc_captum(n, q=20):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model = _setup()
    x, y = _data(n, 1)
    xq, yq = _data(q, 2)
    with tempfile.TemporaryDirectory() as tmp:
        tracin = _captum_tracin(model, x, y, tmp)
        t = time.perf_counter()
        dot = tracin.influence((xq, yq))
        s_tr = tracin.self_influence(DataLoader(TensorDataset(x, y), batch_size=64))
        s_te = tracin.self_influence(DataLoader(TensorDataset(xq, yq), batch_size=64))
        _ = dot / torch.sqrt(s_te[:, None] * s_tr[None, :])
        return time.perf_counter() - t


def w_gc_dattri(n, q=20):
    import torch
    import torch.nn.functional as F
    from dattri.algorithm.tracin import TracInAttributor
    from dattri.task import AttributionTask
    from torch.utils.data import DataLoader, TensorDataset

    model = _setup()
    x, y = _data(n, 1)
    xq, yq = _data(q, 2)

    def loss_func(params, data):
        xi, yi = data
        out = torch.func.functional_call(model, params, (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    task = AttributionTask(loss_func=loss_func, model=model, checkpoints=model.state_dict())
    att = TracInAttributor(task=task, weight_list=torch.ones(1), normalized_grad=True,
                           projector_kwargs={"proj_type": "identity"}, device="cpu")
    t = time.perf_counter()
    att.attribute(DataLoader(TensorDataset(x, y), batch_size=64), DataLoader(TensorDataset(xq, yq), batch_size=64))
    return time.perf_counter() - t


def w_tfa_ours(n_img, n_samples=16):
    import tfa_tutorial as T

    model = _setup()
    x, y = _data(n_img + 1, 3)
    t = time.perf_counter()
    T.tfa_maps(model, x[:n_img], y[:n_img], x[-1], y[-1], n_samples=n_samples)
    return time.perf_counter() - t


def w_tfa_loop(n_img, n_samples=16):
    import torch
    import torch.nn.functional as F

    model = _setup()
    x, y = _data(n_img + 1, 3)
    params = list(model.parameters())
    t = time.perf_counter()
    gj = torch.cat([g.flatten() for g in torch.autograd.grad(F.cross_entropy(model(x[-1:]), y[-1:]), params)])
    gj = gj / gj.norm()
    for i in range(n_img):
        sigma = 0.15 * (x[i].max() - x[i].min())
        acc = torch.zeros_like(x[i])
        for _ in range(n_samples):
            xi = (x[i] + sigma * torch.randn_like(x[i])).requires_grad_(True)
            gi = torch.autograd.grad(F.cross_entropy(model(xi[None]), y[i : i + 1]), params, create_graph=True)
            gi = torch.cat([g.flatten() for g in gi])
            acc += torch.autograd.grad(gi @ gj / gi.norm(), xi)[0]
    return time.perf_counter() - t


def w_tfa_captum(n_img, n_samples=16):
    """Captum NoiseTunnel(Saliency) over a Grad-Cos forward (our torch.func score per image)."""
    import torch
    from captum.attr import NoiseTunnel, Saliency
    from torch.func import vmap

    import tfa_tutorial as T

    model = _setup()
    x, y = _data(n_img + 1, 3)
    t = time.perf_counter()
    fn = T.tda_score_fn(model, x[-1], y[-1])
    fwd = vmap(fn)
    for i in range(n_img):
        sigma = float(0.15 * (x[i].max() - x[i].min()))
        NoiseTunnel(Saliency(fwd)).attribute(x[i : i + 1].clone(), nt_type="smoothgrad", nt_samples=n_samples,
                                             stdevs=sigma, abs=False, additional_forward_args=(y[i : i + 1],))
    return time.perf_counter() - t


def _run(name, arg, q):
    fn = globals()[name]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _setup()  # import cost and base memory, outside the timed part
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        fn(max(2, min(arg, 128)))  # warm-up at the working chunk shape: first calls pay a one-time cost
        secs = fn(arg)
        err = None
    except Exception as e:  # a missing peer is reported, not fatal
        secs, err = float("nan"), f"{type(e).__name__}: {e}"[:80]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    q.put((secs, (peak - base) / 1024, err, rss0))


def measure(name, arg, repeats):
    ctx = mp.get_context("spawn")
    out = []
    for _ in range(repeats):
        q = ctx.Queue()
        p = ctx.Process(target=_run, args=(name, arg, q))
        p.start()
        res = q.get()
        p.join()
        out.append(res)
    errs = [r[2] for r in out if r[2]]
    if errs:
        return float("nan"), float("nan"), errs[0]
    return statistics.median(r[0] for r in out), statistics.median(r[1] for r in out), None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=500)
    ap.add_argument("--n-psg", type=int, default=512)
    ap.add_argument("--n-tfa", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="1 repeat, small sizes (a smoke run)")
    a = ap.parse_args(argv)
    if a.quick:
        a.repeats, a.n_train, a.n_psg, a.n_tfa = 1, 64, 64, 2
    sections = [
        (f"Per-sample gradients, {a.n_psg} examples (examples/s; higher is better)", a.n_psg, "w_psg_ours", [
            ("tfa_tutorial.per_sample_grads (vmap, chunked)", "w_psg_ours"),
            ("per-example autograd loop", "w_psg_loop"),
            ("Captum TracInCP self-influence (default per-example path)", "w_psg_captum"),
            ("plain training, SGD steps of 128 (reference throughput)", "w_train_step"),
        ]),
        (f"Grad-Cos, {a.n_train} training × 20 test examples (seconds; lower is better)", a.n_train, "w_gc_ours", [
            ("tfa_tutorial.grad_cos (exact streaming)", "w_gc_ours"),
            ("Captum TracInCP influence / √(self-influences)", "w_gc_captum"),
            ("dattri TracInAttributor(normalized_grad, identity projection)", "w_gc_dattri"),
        ]),
        (f"TFA SmoothGrad n=16, {a.n_tfa} training images (seconds per image; lower is better)", a.n_tfa, "w_tfa_ours", [
            ("tfa_tutorial.tfa_maps (vmap over images × noise)", "w_tfa_ours"),
            ("per-image autograd loop, create_graph=True", "w_tfa_loop"),
            ("Captum NoiseTunnel(Saliency) over Grad-Cos", "w_tfa_captum"),
        ]),
    ]
    print(f"command: python benchmarks/attribution_speed.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    print(f"model: SmallCNN(1, 10, norm='batch'), eval mode, inputs {SHAPE}; 2 threads; median of {a.repeats} runs, each in a fresh process\n")
    for title, n, ours, rows in sections:
        res = {fn: measure(fn, n, a.repeats) for _, fn in rows}
        print(f"### {title}\n")
        per_s = "examples/s" in title
        print("| method | " + ("examples/s" if per_s else "s" if "seconds;" in title else "s/image") + " | ratio to ours | peak RSS over base (MB) |")
        print("|---|---|---|---|")
        for label, fn in rows:
            secs, mem, err = res[fn]
            if err:
                print(f"| {label} | failed: {err} | | |")
                continue
            if per_s:
                val, ratio = n / secs, (n / secs) / (n / res[ours][0])
            elif "per image" in title:
                val, ratio = secs / n, secs / res[ours][0]
            else:
                val, ratio = secs, secs / res[ours][0]
            print(f"| {label} | {val:.3g} | {ratio:.2f}× | {mem:.0f} |")
        print()


if __name__ == "__main__":
    main()
