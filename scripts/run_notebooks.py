#!/usr/bin/env python
"""Execute the course notebooks headless, save their outputs in place, and report time and memory.

    python scripts/run_notebooks.py                       # every notebook in notebooks/, in order
    python scripts/run_notebooks.py notebooks/01_patch_injection.ipynb
    python scripts/run_notebooks.py --fast                # force fast mode (what the committed outputs use)
    python scripts/run_notebooks.py --full                # force the full setting (meant for a GPU)
    python scripts/run_notebooks.py --fast --record empty # store the times in tfa_tutorial/teaching/run_times.json

For each notebook, in the order given:

1. **sync from the script**: ``notebooks/NN_name.py`` (jupytext ``py:percent``) is the reviewable
   source, so the ``.ipynb`` is rebuilt from it (``jupytext --to ipynb --update``). A notebook
   without a script gets one written from the ``.ipynb`` first.
2. **execute** it with nbclient in a fresh ``python3`` kernel started in the notebook's folder.
   The mode follows the package's rule (fast mode when no CUDA device is available, see
   ``tfa_tutorial/core/mode.py``) unless ``--fast`` or ``--full`` sets ``TFA_FAST``; ``TFA_STRICT=1`` (a failed claim is an error) unless
   ``--no-strict`` or the variable is already set.
3. **save** it in place: outputs and execution counts, no widget state (``metadata.widgets``)
   and no widget views that would need it (progress bars), no per-cell timing metadata,
   kernelspec ``python3``.

While a notebook runs, the resident memory and CPU time of the kernel's process tree are sampled
(psutil if installed, else ``/proc``). The script prints a markdown table of wall time, kernel
CPU time and peak memory, and exits non-zero when a notebook errors or exceeds
``--budget-seconds`` (wall time) / ``--budget-mb`` (peak memory). With ``--record empty|warm`` it
stores each successful notebook's times in ``tfa_tutorial/teaching/run_times.json`` (with the date, the
machine and the load average), where the notebooks' headers and the README's table read them.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


# --------------------------------------------------------------------------------------------
# memory of the kernel's process tree


def _children_proc(pid: int) -> list[int]:
    """All descendants of ``pid``, from /proc (Linux) when psutil is not installed."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name (2nd field) is in parentheses and may contain spaces
        fields = stat[stat.rfind(")") + 2:].split()
        parent_of[int(entry)] = int(fields[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out += kids
        frontier += kids
    return out


def _rss_proc(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_proc(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (and its reaped children), from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_usage() -> tuple[int, float]:
    """``(rss_bytes, cpu_seconds)`` summed over every descendant of this process (the kernel and
    anything it started). The runner starts no other children while a notebook executes."""
    try:
        import psutil
    except ImportError:
        if not Path("/proc").is_dir():
            return 0, 0.0
        pids = _children_proc(os.getpid())
        return sum(_rss_proc(p) for p in pids), sum(_cpu_proc(p) for p in pids)
    rss, cpu = 0, 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            rss += child.memory_info().rss
            t = child.cpu_times()
            cpu += t.user + t.system + t.children_user + t.children_system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, cpu


class PeakSampler:
    """Samples :func:`tree_usage` every ``interval`` seconds in a thread: ``peak`` resident memory
    in bytes, and ``cpu`` seconds (the last reading before the kernel exits). CPU time close to
    wall time means the kernel was computing, not waiting; on shared or virtual machines it still
    grows with contention (spinning OpenMP threads, stolen cycles), so it is no load-free measure."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self.cpu = interval, 0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, cpu = tree_usage()
            self.peak, self.cpu = max(self.peak, rss), max(self.cpu, cpu)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------------------------
# one notebook


def sync_from_script(ipynb: Path) -> None:
    """Rebuild ``ipynb``'s cells from its paired ``.py`` (outputs of unchanged cells are kept
    until execution replaces them); write the ``.py`` from the ``.ipynb`` if it is missing."""
    script = ipynb.with_suffix(".py")
    jupytext = [sys.executable, "-m", "jupytext", "--quiet"]
    if script.is_file():
        cmd = jupytext + ["--to", "ipynb", "--update", str(script)]
    elif ipynb.is_file():
        cmd = jupytext + ["--to", "py:percent", str(ipynb)]
    else:
        raise FileNotFoundError(f"neither {ipynb} nor {script} exists")
    subprocess.run(cmd, check=True, cwd=ROOT)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def clean_notebook(nb: nbformat.NotebookNode) -> None:
    """Drop widget state and volatile per-cell metadata; fix the kernelspec.

    Without their state, saved widget views (e.g. tqdm's notebook progress bars) cannot be
    rendered and only show a stale text fallback ("0%|  | 0/72"), so they are removed from the
    outputs too, except in cells marked ``# NBVAL_CHECK_OUTPUT``, whose outputs nbval compares.
    """
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    for cell in nb.cells:
        for key in ("execution", "ExecuteTime", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code" and "NBVAL_CHECK_OUTPUT" not in cell.source:
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]


def run_one(ipynb: Path, timeout: int) -> tuple[str, float, float, float, str]:
    """Execute ``ipynb`` in place; returns ``(status, seconds, cpu_seconds, peak_mb, message)``."""
    from nbclient import NotebookClient
    from nbclient.exceptions import (
        CellExecutionError,
        CellTimeoutError,
        DeadKernelError,
    )

    sync_from_script(ipynb)
    nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:  # a failed run must not leave stale outputs below the failing cell
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=False, record_timing=False,
        resources={"metadata": {"path": str(ipynb.parent)}},
    )
    status, message = "ok", ""
    start = time.perf_counter()
    with PeakSampler() as sampler:
        try:
            client.execute()
        except CellExecutionError as err:
            status, message = "error", f"{err.ename}: {err.evalue}".splitlines()[0]
        except (CellTimeoutError, DeadKernelError, TimeoutError, RuntimeError) as err:
            status, message = "error", f"{type(err).__name__}: {err}".splitlines()[0]
    seconds = time.perf_counter() - start
    clean_notebook(nb)
    nbformat.write(nb, ipynb)
    return status, seconds, sampler.cpu, sampler.peak / 2**20, message


# --------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run, .ipynb or .py (default: every notebook in notebooks/, in order)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--fast", action="store_true", help="force fast mode (TFA_FAST=1)")
    which.add_argument("--full", action="store_true", help="force the full setting (TFA_FAST=0)")
    parser.add_argument("--record", choices=["empty", "warm"], help="store the times in tfa_tutorial/teaching/run_times.json as "
                        "this cache state (empty: no trained models in TFA_CACHE_DIR before the run)")
    parser.add_argument("--no-strict", action="store_true", help="do not set TFA_STRICT=1 (failed claims only print ✗)")
    parser.add_argument("--budget-seconds", type=float, default=600, help="fail a notebook that takes longer (default 600)")
    parser.add_argument("--budget-mb", type=float, default=2000, help="fail a notebook whose kernel peaks above this RSS (default 2000)")
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds (default 1800)")
    args = parser.parse_args(argv)

    # default: every notebook, including a new NN_name.py script that has no .ipynb yet
    notebooks = args.notebooks or sorted(
        set(NOTEBOOK_DIR.glob("*.ipynb")) | {p.with_suffix(".ipynb") for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py")})
    if not notebooks:
        print(f"no notebooks in {NOTEBOOK_DIR}", file=sys.stderr)
        return 1
    if args.fast or args.full:
        os.environ["TFA_FAST"] = "1" if args.fast else "0"
    if not args.no_strict:
        os.environ.setdefault("TFA_STRICT", "1")
    sys.path.insert(0, str(ROOT))
    import torch

    from tfa_tutorial.core.mode import fast_mode, mode_reason
    from tfa_tutorial.teaching.run_times import record_run_time

    mode = "fast" if fast_mode() else "full"
    print(f"mode: {mode} ({mode_reason()})", file=sys.stderr, flush=True)
    recorded = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} CPU cores, {os.uname().machine}"
                   + (", a CUDA GPU" if torch.cuda.is_available() else ", no GPU") + f"; {os.environ.get('OMP_NUM_THREADS', 'default')} torch threads",
        "load": f"load average {os.getloadavg()[0]:.1f} at the start",
        "command": "python scripts/run_notebooks.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }

    rows, failed = [], False
    for path in notebooks:
        ipynb = path.with_suffix(".ipynb")
        print(f"running {ipynb} ({mode} mode) ...", file=sys.stderr, flush=True)
        try:
            status, seconds, cpu, peak_mb, message = run_one(ipynb, args.timeout)
        except Exception as err:  # sync failure, unreadable notebook, kernel would not start
            status, seconds, cpu, peak_mb, message = "error", 0.0, 0.0, 0.0, f"{type(err).__name__}: {err}".splitlines()[0]
        if status == "ok" and seconds > args.budget_seconds:
            status, message = "over time", f"{seconds:.0f} s > budget {args.budget_seconds:.0f} s"
        if status == "ok" and peak_mb > args.budget_mb:
            status, message = "over memory", f"{peak_mb:.0f} MB > budget {args.budget_mb:.0f} MB"
        failed |= status != "ok"
        rows.append((ipynb.name, status, seconds, cpu, peak_mb, message))
        if args.record and status == "ok":
            record_run_time(ipynb.stem, mode, args.record, seconds, cpu, peak_mb, recorded)
        print(f"  {status}: {seconds:.1f} s wall, {cpu:.1f} s CPU, peak {peak_mb:.0f} MB {message}",
              file=sys.stderr, flush=True)

    if args.record:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "render_docs.py")], check=True, cwd=ROOT)

    print("\n| notebook | mode | status | wall time (s) | kernel CPU time (s) | peak memory (MB) |")
    print("|---|---|---|---:|---:|---:|")
    for name, status, seconds, cpu, peak_mb, message in rows:
        shown = status if not message else f"{status}: {message}"
        print(f"| `{name}` | {mode} | {shown} | {seconds:.0f} | {cpu:.0f} | {peak_mb:.0f} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
