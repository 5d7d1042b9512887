"""Speed and memory of the attribution core against a per-example loop and peer libraries
(Captum, dattri), measured in one run on the tutorial's model (SmallCNN, 61k parameters,
1×28×28 inputs). One command regenerates every table and the scaling figure:

    make bench                                            # installs .[test,bench], then runs this
    .venv/bin/python benchmarks/attribution_speed.py      # the same run, peers already installed
    .venv/bin/python benchmarks/attribution_speed.py --device cuda   # on a CUDA machine
    .venv/bin/python benchmarks/attribution_speed.py --quick         # smoke run, writes nothing
    .venv/bin/python benchmarks/attribution_speed.py --render-only   # re-render docs from the JSON

Every measurement runs in a fresh process (so its peak memory is its own): one warm-up call at
the full size, then the median of 2 timed calls; processes are repeated and interleaved (ours, peers, ours, ...) so a change
of machine speed hits every row alike. Tables report medians and ratios within the run: on
shared machines CPU speed swings 2–3× between runs, so read the ratios, not the absolute times.

Outputs: ``docs/speed.json`` (raw measurements and the run's command, date, machine, load and
peers), ``docs/speed.md`` (tables, goals, profile), the README block between
``<!-- speed:begin -->`` and ``<!-- speed:end -->``, and ``docs/images/gradcos_scaling.png``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JSON_PATH = ROOT / "docs" / "speed.json"
MD_PATH = ROOT / "docs" / "speed.md"
README_PATH = ROOT / "README.md"
FIG_PATH = ROOT / "docs" / "images" / "gradcos_scaling.png"
BEGIN, END = "<!-- speed:begin -->", "<!-- speed:end -->"

SHAPE = (1, 28, 28)
N_TEST = 20
N_SAMPLES = 16  # SmoothGrad samples per training image


# ---------------------------------------------------------------- set-up shared by the workers
def _setup(device="cpu", seed=0):
    import torch

    import tfa_tutorial as T

    if device == "cpu":
        torch.set_num_threads(2)
    torch.manual_seed(seed)
    model = T.SmallCNN(1, 10, norm="batch")
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm running statistics
        for _ in range(5):
            model(torch.rand(64, *SHAPE))
    return model.eval().to(device)


def _data(n, seed, device="cpu"):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g).to(device), torch.randint(0, 10, (n,), generator=g).to(device)


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


# ---------------------------------------------------------------- workers
# Each worker ``w_*(n, device)`` prepares its model and data and returns the callable to time;
# the callable may return a dict of extra numbers to record.
def w_train_step(n, device):
    import torch
    import torch.nn.functional as F

    model = _setup(device).train()
    x, y = _data(n, 1, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def run():
        for s in range(0, n, 128):
            opt.zero_grad()
            F.cross_entropy(model(x[s : s + 128]), y[s : s + 128]).backward()
            opt.step()

    return run


def w_psg_ours(n, device):
    import tfa_tutorial as T

    model = _setup(device)
    x, y = _data(n, 1, device)
    return lambda: T.per_sample_grads(model, x, y)


def w_psg_loop(n, device):
    import torch
    import torch.nn.functional as F

    model = _setup(device)
    x, y = _data(n, 1, device)
    params = list(model.parameters())

    def run():
        rows = []
        for i in range(n):
            gs = torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), params)
            rows.append(torch.cat([g.flatten() for g in gs]))
        torch.stack(rows)

    return run


def w_psg_captum(n, device):
    """Captum's default per-example path (TracInCP self-influence = ‖g‖² per example)."""
    from torch.utils.data import DataLoader, TensorDataset

    model = _setup(device)
    x, y = _data(n, 1, device)
    tmp = tempfile.mkdtemp()
    tracin = _captum_tracin(model, x, y, tmp)
    return lambda: tracin.self_influence(DataLoader(TensorDataset(x, y), batch_size=64))


def w_gc_ours(n, device):
    import tfa_tutorial as T

    model = _setup(device)
    x, y = _data(n, 1, device)
    xq, yq = _data(N_TEST, 2, device)
    return lambda: T.grad_cos(model, x, y, xq, yq)


def w_gc_overhead(n, device):
    """Grad-Cos against the bare gradient pass over the same N (the same chunks of per-example
    gradients into one reused buffer, no scores), alternated in one process."""
    import torch

    import tfa_tutorial as T
    from tfa_tutorial.attribution.gradients import (
        auto_chunk_size,
        grads_fn,
        select_params,
    )

    model = _setup(device)
    x, y = _data(n, 1, device)
    xq, yq = _data(N_TEST, 2, device)

    def gradient_pass():
        fn = grads_fn(model, select_params(model))
        chunk = auto_chunk_size(model, SHAPE, fn.n_params)
        buf = torch.empty(chunk, fn.n_params, device=device)
        for s in range(0, n, chunk):
            fn(x[s : s + chunk], y[s : s + chunk], out=buf[: len(x[s : s + chunk])])

    def run():
        gc, ps = [], []
        for _ in range(3):
            t = time.perf_counter()
            gradient_pass()
            _sync(device)
            ps.append(time.perf_counter() - t)
            t = time.perf_counter()
            T.grad_cos(model, x, y, xq, yq)
            _sync(device)
            gc.append(time.perf_counter() - t)
        return {"grad_cos_s": statistics.median(gc), "gradient_pass_s": statistics.median(ps)}

    return run


def w_gc_captum(n, device):
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    model = _setup(device)
    x, y = _data(n, 1, device)
    xq, yq = _data(N_TEST, 2, device)
    tracin = _captum_tracin(model, x, y, tempfile.mkdtemp())

    def run():
        dot = tracin.influence((xq, yq))
        s_tr = tracin.self_influence(DataLoader(TensorDataset(x, y), batch_size=64))
        s_te = tracin.self_influence(DataLoader(TensorDataset(xq, yq), batch_size=64))
        return dot / torch.sqrt(s_te[:, None] * s_tr[None, :])

    return run


def w_gc_dattri(n, device):
    import torch
    import torch.nn.functional as F
    from dattri.algorithm.tracin import TracInAttributor
    from dattri.task import AttributionTask
    from torch.utils.data import DataLoader, TensorDataset

    model = _setup(device)
    x, y = _data(n, 1, device)
    xq, yq = _data(N_TEST, 2, device)

    def loss_func(params, data):
        xi, yi = data
        out = torch.func.functional_call(model, params, (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    task = AttributionTask(loss_func=loss_func, model=model, checkpoints=model.state_dict())
    att = TracInAttributor(task=task, weight_list=torch.ones(1), normalized_grad=True,
                           projector_kwargs={"proj_type": "identity"}, device=device)
    train, test = DataLoader(TensorDataset(x, y), batch_size=64), DataLoader(TensorDataset(xq, yq), batch_size=64)
    return lambda: att.attribute(train, test)


def w_tfa_ours(n_img, device):
    import tfa_tutorial as T

    model = _setup(device)
    x, y = _data(n_img + 1, 3, device)
    return lambda: T.tfa_maps(model, x[:n_img], y[:n_img], x[-1], y[-1], n_samples=N_SAMPLES)


def w_tfa_loop(n_img, device):
    import torch
    import torch.nn.functional as F

    model = _setup(device)
    x, y = _data(n_img + 1, 3, device)
    params = list(model.parameters())

    def run():
        gj = torch.cat([g.flatten() for g in torch.autograd.grad(F.cross_entropy(model(x[-1:]), y[-1:]), params)])
        gj = gj / gj.norm()
        for i in range(n_img):
            sigma = 0.15 * (x[i].max() - x[i].min())
            acc = torch.zeros_like(x[i])
            for _ in range(N_SAMPLES):
                xi = (x[i] + sigma * torch.randn_like(x[i])).requires_grad_(True)
                gi = torch.autograd.grad(F.cross_entropy(model(xi[None]), y[i : i + 1]), params, create_graph=True)
                gi = torch.cat([g.flatten() for g in gi])
                acc += torch.autograd.grad(gi @ gj / gi.norm(), xi)[0]

    return run


def w_tfa_captum(n_img, device):
    """Captum NoiseTunnel(Saliency) over a Grad-Cos forward (our torch.func score per image)."""
    from captum.attr import NoiseTunnel, Saliency
    from torch.func import vmap

    import tfa_tutorial as T

    model = _setup(device)
    x, y = _data(n_img + 1, 3, device)

    def run():
        fwd = vmap(T.tda_score_fn(model, x[-1], y[-1]))
        for i in range(n_img):
            sigma = float(0.15 * (x[i].max() - x[i].min()))
            NoiseTunnel(Saliency(fwd)).attribute(x[i : i + 1].clone(), nt_type="smoothgrad", nt_samples=N_SAMPLES,
                                                 stdevs=sigma, abs=False, additional_forward_args=(y[i : i + 1],))

    return run


def w_profile(n, device):
    """Top operators (torch.profiler, self CPU time) of our per-sample gradients and of plain
    training over the same N examples, in one process."""
    from torch.profiler import ProfilerActivity, profile

    ours, train = w_psg_ours(n, device), w_train_step(n, device)

    def top(fn):
        fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        ev = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        total = sum(e.self_cpu_time_total for e in ev) / 1e3
        return {"total_ms": total, "top": [[e.key, e.self_cpu_time_total / 1e3] for e in ev[:8]]}

    return lambda: {"ours": top(ours), "train": top(train)}


# ---------------------------------------------------------------- measuring in fresh processes
def _sync(device):
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _peak_mb(device):
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(name, n, device, q, timed=2):
    err, sys.stderr = sys.stderr, open(os.devnull, "w")  # peers' progress bars
    try:
        if timed < 2:  # one timed call (large N): warm up on a small input only
            globals()[name](64, device)()
        run = globals()[name](n, device)
        _sync(device)
        if device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()
        base = _peak_mb(device) if device.startswith("cuda") else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # warm-up at the full size: a fresh process's first pass also pays first-touch memory
        # faults and kernel selection, which on a VM can cost more than the computation
        if timed >= 2:
            run()
            _sync(device)
        times, extra = [], None
        for _ in range(timed):
            t = time.perf_counter()
            extra = run()
            _sync(device)
            times.append(time.perf_counter() - t)
        q.put({"s": statistics.median(times), "mb": _peak_mb(device) - base,
               "extra": extra if isinstance(extra, dict) else None})
    except Exception as e:  # a missing peer or an out-of-memory is reported, not fatal
        q.put({"error": f"{type(e).__name__}: {e}"[:120]})
    finally:
        sys.stderr.close()
        sys.stderr = err


_CTX = None


def _context():
    """A fork server that has imported torch, the package and the peers once: each measurement is
    a fresh process (its own peak memory) without paying the imports again."""
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload([m for m in ("torch", "tfa_tutorial", "captum.influence", "captum.attr",
                                                 "dattri.algorithm.tracin", "matplotlib") if _importable(m)])
    return _CTX


def _importable(mod):
    from importlib.util import find_spec

    try:
        return find_spec(mod) is not None
    except ModuleNotFoundError:
        return False


def measure_once(name, n, device, timed=2):
    ctx = _context()
    q = ctx.Queue()
    p = ctx.Process(target=_run, args=(name, n, device, q, timed))
    p.start()
    res = q.get()
    p.join()
    return res


# (section key, title, N argument, unit, rows: (row key, label, worker))
def sections(a):
    return [
        ("psg", f"Per-sample gradients, {a.n_psg} examples", a.n_psg, "examples/s", [
            ("ours", "tfa_tutorial.per_sample_grads", "w_psg_ours"),
            ("loop", "per-example autograd loop", "w_psg_loop"),
            ("captum", "Captum TracInCP self-influence (per-example path)", "w_psg_captum"),
            ("train", "plain training, SGD steps of 128 (reference)", "w_train_step"),
        ]),
        ("gc_small", f"Grad-Cos, {a.n_small} training × {N_TEST} test examples", a.n_small, "s", [
            ("ours", "tfa_tutorial.grad_cos (exact, streaming)", "w_gc_ours"),
            ("dattri", "dattri TracInAttributor (normalized_grad, identity projection)", "w_gc_dattri"),
            ("captum", "Captum TracInCP influence / √(self-influences)", "w_gc_captum"),
        ]),
        ("gc_large", f"Grad-Cos, {a.n_train} training × {N_TEST} test examples", a.n_train, "s", [
            ("ours", "tfa_tutorial.grad_cos (exact, streaming)", "w_gc_ours"),
            ("dattri", "dattri TracInAttributor (normalized_grad, identity projection)", "w_gc_dattri"),
            ("overhead", "Grad-Cos vs the bare gradient pass (same chunks, no scores; same process, alternated)",
             "w_gc_overhead"),
        ]),
        ("tfa", f"TFA SmoothGrad n={N_SAMPLES}, {a.n_tfa} training images", a.n_tfa, "s/image", [
            ("ours", "tfa_tutorial.tfa_maps (batched double backward)", "w_tfa_ours"),
            ("loop", "per-image autograd loop, create_graph=True", "w_tfa_loop"),
            ("captum", "Captum NoiseTunnel(Saliency) over Grad-Cos", "w_tfa_captum"),
        ]),
    ]


def _versions():
    from importlib import metadata

    out = {}
    for pkg in ("torch", "captum", "dattri"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _machine(device):
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}
    if device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def check_device(device):
    """``cpu``, or ``cuda``/``cuda:N`` when torch sees a CUDA device; otherwise a clear error."""
    if device == "cpu":
        return device
    if not device.startswith("cuda"):
        raise SystemExit(f"--device must be 'cpu' or 'cuda[:N]', got {device!r}")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit(
            f"--device {device}: this torch ({torch.__version__}) sees no CUDA device. Install a CUDA build of "
            "torch on a machine with an NVIDIA GPU, or run with --device cpu."
        )
    return device


def run_all(a, argv):
    device = check_device(a.device)
    secs = sections(a)
    load0 = os.getloadavg()
    started = _dt.datetime.now(_dt.timezone.utc)
    raw = {key: {row: [] for row, _, _ in rows} for key, _, _, _, rows in secs}
    # discarded: the first processes of a run are slower on a fresh VM (memory not yet touched)
    for worker in ("w_psg_ours", "w_train_step"):
        measure_once(worker, secs[0][2], device)
    for rep in range(a.repeats):  # interleaved: every row once per round
        for key, _, n, _, rows in secs:
            for row, _, worker in rows:
                res = measure_once(worker, n, device)
                raw[key][row].append(res)
                print(f"  round {rep + 1}/{a.repeats} {key}/{row}: {res}", file=sys.stderr, flush=True)
    scaling = {"ours": [], "dattri": []}
    for key in ("gc_small", "gc_large"):  # the tables' sizes, then the larger ones
        n = next(sec[2] for sec in secs if sec[0] == key)
        for lib in scaling:
            ok = [r for r in raw[key][lib] if "error" not in r]
            if ok:
                scaling[lib].append([n, _median(ok), _median(ok, "mb")])
    for n in a.scaling:
        for lib, worker in (("ours", "w_gc_ours"), ("dattri", "w_gc_dattri")):
            if lib == "dattri" and n > a.dattri_max:
                continue
            res = measure_once(worker, n, device, timed=1)
            print(f"  scaling {lib} N={n}: {res}", file=sys.stderr, flush=True)
            if "error" not in res:
                scaling[lib].append([n, res["s"], res["mb"]])
    prof = measure_once("w_profile", a.n_psg, device, timed=1) if device == "cpu" else {}
    load1 = os.getloadavg()
    return {
        "command": "python benchmarks/attribution_speed.py " + " ".join(argv),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_min": round((_dt.datetime.now(_dt.timezone.utc) - started).total_seconds() / 60, 1),
        "device": device,
        "machine": _machine(device),
        "load_average_start": [round(v, 2) for v in load0],
        "load_average_end": [round(v, 2) for v in load1],
        "versions": _versions(),
        "repeats": a.repeats,
        "sections": [{"key": k, "title": t, "n": n, "unit": u, "rows": [[r, lab] for r, lab, _ in rows]}
                     for k, t, n, u, rows in secs],
        "raw": raw,
        "scaling": scaling,
        "scaling_n_test": N_TEST,
        "profile": prof.get("extra") or {},
    }


# ---------------------------------------------------------------- rendering (from the JSON only)
def _median(runs, field="s"):
    vals = [r[field] if field in r else r["extra"][field] for r in runs if "error" not in r]
    return statistics.median(vals) if vals else None


def _value(sec, runs):
    s = _median(runs)
    if s is None:
        return None
    return sec["n"] / s if sec["unit"] == "examples/s" else s / sec["n"] if sec["unit"] == "s/image" else s


def _fmt(v, digits=3):
    return "–" if v is None else f"{v:,.{digits}g}" if v < 1000 else f"{v:,.0f}"


def goals(db):
    """(measurement, ours, reference, ratio, goal, met) rows computed from the raw runs."""
    by = {s["key"]: s for s in db["sections"]}
    val = {(k, r): _value(by[k], runs) for k, rows in db["raw"].items() for r, runs in rows.items() if r != "overhead"}

    def ratio(a, b):
        return None if a is None or b is None else a / b

    out = []
    psg, tr = val.get(("psg", "ours")), val.get(("psg", "train"))
    out.append((f"per-sample gradients, {by['psg']['n']} examples (ex/s)", psg, f"plain training {_fmt(tr)}",
                ratio(psg, tr), "≥ 0.7× training", 0.7))
    cap = val.get(("psg", "captum"))
    out.append(("per-sample gradients vs Captum TracInCP per-example path (ex/s)", psg, f"Captum {_fmt(cap)}",
                ratio(psg, cap), "≥ 20×", 20))
    for key in ("gc_large", "gc_small"):
        o, d = val.get((key, "ours")), val.get((key, "dattri"))
        out.append((f"Grad-Cos {by[key]['n']:,} × {N_TEST} (s)", o, f"dattri {_fmt(d)}", ratio(d, o), "≥ 2× faster", 2))
    c = val.get(("gc_small", "captum"))
    out.append((f"Grad-Cos {by['gc_small']['n']:,} × {N_TEST} vs Captum (s)", val.get(("gc_small", "ours")),
                f"Captum {_fmt(c)}", ratio(c, val.get(("gc_small", "ours"))), "≥ 2× faster", 2))
    ov = db["raw"]["gc_large"].get("overhead", [])
    g, p = _median(ov, "grad_cos_s") if ov else None, _median(ov, "gradient_pass_s") if ov else None
    extra = None if g is None else g / p - 1
    out.append((f"Grad-Cos overhead over the gradient pass ({by['gc_large']['n']:,}) (s)", g,
                f"gradient pass {_fmt(p)}", extra, "≤ +20%", None))
    t, lp, nt = val.get(("tfa", "ours")), val.get(("tfa", "loop")), val.get(("tfa", "captum"))
    out.append((f"TFA SmoothGrad n={N_SAMPLES}, per training image (s)", t, f"per-image loop {_fmt(lp)}",
                ratio(lp, t), "≥ 3× faster", 3))
    out.append((f"TFA SmoothGrad n={N_SAMPLES} vs Captum NoiseTunnel (s)", t, f"NoiseTunnel {_fmt(nt)}",
                ratio(nt, t), "≥ 2× faster", 2))
    rows = []
    for name, ours, ref, r, goal, thr in out:
        if r is None:
            verdict, rtxt = "not measured (peer missing or failed)", "–"
        elif thr is None:  # overhead: lower is better
            rtxt = f"{r:+.0%}"
            verdict = "✓" if r <= 0.20 else f"✗ gap: {r - 0.20:+.0%} over"
        else:
            rtxt = f"{r:.2f}×"
            verdict = "✓" if r >= thr else f"✗ gap: {r / thr:.0%} of goal"
        rows.append((name, _fmt(ours), ref, rtxt, goal, verdict))
    return rows


def _peers_line(db):
    v = db["versions"]
    have = [f"{p} {v[p]}" for p in ("captum", "dattri") if v.get(p)]
    miss = [p for p in ("captum", "dattri") if not v.get(p)]
    line = f"peers present: {', '.join(have) or 'none'}"
    return line + (f"; missing: {', '.join(miss)} (their rows are empty)" if miss else "")


def _run_line(db):
    m = db["machine"]
    return (f"`{db['command'].strip()}` on {db['date']} ({db['duration_min']} min), {m['cpu']}, {m['cores']} cores"
            + (f", {m['gpu']}" if m.get("gpu") else "") + f", device `{db['device']}`, torch {db['versions']['torch']}; "
            f"{_peers_line(db)}; load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in db['load_average_start'])} "
            f"at start, {'/'.join(f'{x:.1f}' for x in db['load_average_end'])} at end; medians over {db['repeats']} "
            "interleaved fresh processes, each timing 2 calls after a full-size warm-up (scaling points: one call)")


def render_goals(db):
    lines = ["| measurement | ours | peer / reference | ratio | goal | met? |", "|---|---:|---|---:|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in goals(db)]
    return "\n".join(lines)


def render_readme_block(db):
    return "\n".join([
        BEGIN,
        "<!-- generated by benchmarks/attribution_speed.py from docs/speed.json; do not edit by hand -->",
        f"**Speed** ({_run_line(db)}). Ratios are within this one run; details, per-method tables, the "
        "profile and the scaling figure are in [docs/speed.md](docs/speed.md).",
        "",
        render_goals(db),
        END,
    ])


def render_md(db):
    out = ["# Speed and memory of the attribution core", "",
           "<!-- generated by benchmarks/attribution_speed.py from docs/speed.json; do not edit by hand -->", "",
           f"Run: {_run_line(db)}.", "",
           "Model: SmallCNN(1, 10, norm='batch') in eval mode, 61k parameters, 1×28×28 inputs. Peak memory is the "
           "process's peak RSS (CUDA: peak allocated) over the level after set-up, model and data.", "",
           "## Goals", "", render_goals(db), ""]
    for sec in db["sections"]:
        runs = db["raw"][sec["key"]]
        ours = _value(sec, runs["ours"])
        better = "higher" if sec["unit"] == "examples/s" else "lower"
        out += [f"## {sec['title']} ({sec['unit']}; {better} is better)", "",
                f"| method | {sec['unit']} | ratio to ours | peak memory over base (MB) |", "|---|---:|---:|---:|"]
        for key, label in sec["rows"]:
            rr = runs[key]
            errs = [r["error"] for r in rr if "error" in r]
            if errs:
                out.append(f"| {label} | failed: {errs[0]} | | |")
                continue
            if key == "overhead":
                g, p = _median(rr, "grad_cos_s"), _median(rr, "gradient_pass_s")
                out.append(f"| {label}: grad_cos {g:.3g} s, gradient pass {p:.3g} s | | {g / p:.2f}× | |")
                continue
            v = _value(sec, rr)
            ratio = v / ours if ours else float("nan")
            out.append(f"| {label} | {_fmt(v)} | {ratio:.2f}× | {_median(rr, 'mb'):.0f} |")
        out.append("")
    sc = db["scaling"]
    if sc["ours"]:
        out += [f"## Grad-Cos scaling ({db['scaling_n_test']} test examples)", "",
                "![Grad-Cos time and peak memory against the number of training examples, ours vs dattri]"
                "(images/gradcos_scaling.png)", "",
                "| N | ours (s) | ours peak MB | dattri (s) | dattri peak MB |", "|---:|---:|---:|---:|---:|"]
        d = {n: (s, mb) for n, s, mb in sc["dattri"]}
        for n, s, mb in sc["ours"]:
            ds = d.get(n)
            out.append(f"| {n:,} | {s:.3g} | {mb:.0f} | {'–' if not ds else f'{ds[0]:.3g}'} | "
                       f"{'–' if not ds else f'{ds[1]:.0f}'} |")
        out += ["", "dattri with the identity projection keeps every training gradient in memory (N × 61k floats), "
                "so it is run only up to the largest N shown; ours streams them in chunks.", ""]
    prof = db.get("profile") or {}
    if prof:
        out += [f"## Profile: per-sample gradients vs plain training ({db['sections'][0]['n']} examples)", "",
                "torch.profiler, self CPU time of the top operators, one run each in one process:", "",
                "| per_sample_grads op | ms | plain training op | ms |", "|---|---:|---|---:|"]
        for (a, ta), (b, tb) in zip(prof["ours"]["top"], prof["train"]["top"]):
            out.append(f"| `{a}` | {ta:.1f} | `{b}` | {tb:.1f} |")
        out += [f"| **total** | {prof['ours']['total_ms']:.1f} | **total** | {prof['train']['total_ms']:.1f} |", ""]
    out += [LIMITS, ""]
    return "\n".join(out)


LIMITS = """## How each number is reached, and what limits it

- **Per-sample gradients.** `per_sample_grads` runs one batched forward and one backward to the
  layer outputs per chunk of at most 32 examples (a training step without the parameter
  gradients and the optimizer), then forms each example's parameter gradient from the layer's
  input and output gradient, as Opacus does: for a convolution, the weight gradient of the same
  convolution with one group per example (`aten::convolution_backward` with groups = N, one
  native kernel); for 1-channel inputs and linear layers a batched matmul; for BatchNorm (eval)
  and GroupNorm per-channel sums. Each layer's block is written to its columns of the result
  while still in cache. Models with other layers, a layer called twice, tied weights or in-place
  edits of a layer output fall back to `torch.func.vmap`. What plain training does not pay: the
  per-example weight gradients (the same FLOPs as training's summed weight gradient, but as N
  small groups, which run less efficiently) and writing N × 61k floats (244 KB per example) to a
  fresh result. Tried and dropped: unfold + batched matmul for every convolution (the `im2col`
  copy made it about 2× slower on the 16–64-channel layers), chunks above 64 examples (slower per
  example: a chunk's gradients leave the cache), transparent huge pages for the result (faster
  in a warm process, several times slower to fault in in a fresh one on this VM).
- **Grad-Cos.** Input checks, parameter selection, the engine choice and the test gradients are
  done once per call; the training gradients stream chunk by chunk into one reused buffer, and
  each chunk costs one [Q, P] × [P, chunk] product and the chunk's norms on top of the gradients.
  Memory stays O((Q + chunk) · P) at any N, which is why N = 60,000 fits where dattri's identity
  projection (all N × P gradients in memory) would need about 15 GB.
- **TFA SmoothGrad.** All (image × noise sample) pairs of a chunk go through one batched double
  backward: the per-example gradients above, built with `create_graph=True`, the score's dot
  product and norm taken block by block, one backward to the pixels. The test gradient is
  computed once per test image. Captum's NoiseTunnel row runs over our own `torch.func` score
  (`vmap(grad)`), so it is itself a batched double backward; the gap to it is what the hook
  engine saves over `vmap`. The double backward through the convolutions (`mkldnn_convolution`,
  `convolution_backward`) dominates the profile.
- **Noise.** On a machine shared with other jobs, 2-thread OpenMP regions stall whenever a core is
  taken; paths with many small operators (ours) suffer more than a few large ones (training), so
  a loaded run understates our ratios. The load average is recorded with each run."""


def write_outputs(db):
    JSON_PATH.write_text(json.dumps(db, indent=1) + "\n")
    MD_PATH.write_text(render_md(db))
    text = README_PATH.read_text()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        README_PATH.write_text(head + render_readme_block(db) + tail)
    else:
        print(f"README.md has no {BEGIN} … {END} block: not updated", file=sys.stderr)
    plot_scaling(db)


def plot_scaling(db):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = db["scaling"]
    if not sc["ours"]:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for lib, style, label in (("ours", "o-", "tfa_tutorial.grad_cos (streaming)"),
                              ("dattri", "s--", "dattri TracInAttributor (normalised, identity projection)")):
        pts = sc[lib]
        if not pts:
            continue
        ns = [p[0] for p in pts]
        ax1.plot(ns, [p[1] for p in pts], style, label=label)
        ax2.plot(ns, [p[2] for p in pts], style, label=label)
    for ax, ylab, title in ((ax1, "time (s)", "Time"), (ax2, "peak memory over base (MB)", "Peak memory")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training examples N")
        ax.set_ylabel(ylab)
        ax.set_title(f"Grad-Cos, N × {db['scaling_n_test']} test examples: {title.lower()}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"SmallCNN (61k parameters), device {db['device']}, {db['date']}", fontsize=9)
    fig.tight_layout()
    FIG_PATH.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIG_PATH, dpi=110)
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-psg", type=int, default=512)
    ap.add_argument("--n-small", type=int, default=500)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-tfa", type=int, default=8)
    ap.add_argument("--scaling", type=int, nargs="*", default=[8000, 20000, 60000],
                    help="extra N for the Grad-Cos scaling figure (one timed call each, after a small warm-up)")
    ap.add_argument("--dattri-max", type=int, default=8000, help="largest N for dattri (it holds N × P floats)")
    ap.add_argument("--quick", action="store_true", help="1 repeat, small sizes; prints, writes nothing")
    ap.add_argument("--render-only", action="store_true", help="rewrite docs from docs/speed.json")
    ap.add_argument("--json", type=Path, help="write the raw results here instead of docs/")
    a = ap.parse_args(argv)
    if a.render_only:
        write_outputs(json.loads(JSON_PATH.read_text()))
        return
    if a.quick:
        a.repeats, a.n_psg, a.n_small, a.n_train, a.n_tfa, a.scaling = 1, 64, 64, 96, 2, [128]
    db = run_all(a, argv)
    print(render_md(db))
    if a.json:
        a.json.write_text(json.dumps(db, indent=1) + "\n")
    elif not a.quick:
        write_outputs(db)


if __name__ == "__main__":
    main()
