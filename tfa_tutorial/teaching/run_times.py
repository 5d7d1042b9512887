"""Measured run times of the course notebooks: stored once, read by every place that quotes them.

``run_times.json`` (next to this module) holds, per mode (``"fast"``, ``"full"``) and cache state,
how the times were recorded (date, machine, load, command) and, per notebook stem and cache state (``"empty"``:
no trained models yet; ``"warm"``: the rerun right after), the wall time, the kernel's CPU time
and its peak resident memory. ``scripts/run_notebooks.py --record`` writes it; the notebooks'
headers (:func:`notebook_header`), notebook 00's course map and the README's table
(:func:`run_times_markdown`) read it.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..core.mode import describe_mode, fast_mode

__all__ = ["RUN_TIMES_FILE", "load_run_times", "record_run_time", "header_text", "notebook_header", "run_times_markdown",
           "format_seconds", "with_generated_block"]

RUN_TIMES_FILE = Path(__file__).with_name("run_times.json")
MODES = ("fast", "full")
CACHE_STATES = ("empty", "warm")


def load_run_times(path: str | Path = RUN_TIMES_FILE) -> dict:
    """The stored measurements: ``{mode: {"recorded": {...}, "notebooks": {stem: {cache: row}}}}``."""
    with open(path) as f:
        return json.load(f)


def record_run_time(stem: str, mode: str, cache: str, wall_s: float, cpu_s: float, peak_mb: float,
                    recorded: dict, path: str | Path = RUN_TIMES_FILE) -> None:
    """Store one notebook's measurement (atomically), replacing how that mode and cache state were
    recorded."""
    from ..core.cache import atomic_write

    if mode not in MODES or cache not in CACHE_STATES:
        raise ValueError(f"mode must be one of {MODES} and cache one of {CACHE_STATES}, got {mode!r}, {cache!r}")
    data = load_run_times(path) if Path(path).is_file() else {}
    entry = data.setdefault(mode, {"recorded": {}, "notebooks": {}})
    entry["recorded"][cache] = dict(recorded)
    entry["notebooks"].setdefault(stem, {})[cache] = {
        "wall_s": round(float(wall_s)), "cpu_s": round(float(cpu_s)), "peak_mb": round(float(peak_mb))}
    text = json.dumps(data, indent=1) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def format_seconds(seconds: float) -> str:
    """``41`` → ``"41 s"``, ``107`` → ``"1.8 min"``."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _times_line(stem: str, mode: str, data: dict) -> str:
    block = data.get(mode, {})
    rows = block.get("notebooks", {}).get(stem, {})
    name = "fast mode" if mode == "fast" else "the full setting"
    if not rows:
        return (f"Measured run time in {name}: not measured on a CPU; "
                "docs/teachers_guide.md gives estimates.")
    parts = [f"{format_seconds(rows[c]['wall_s'])} with {'an empty' if c == 'empty' else 'a warm'} model cache"
             for c in CACHE_STATES if c in rows]
    rec = next(iter(block.get("recorded", {}).values()), {})
    return f"Measured run time in {name}: {', '.join(parts)} ({rec.get('machine', '?')}, {rec.get('date', '?')})."


def header_text(stem: str, path: str | Path = RUN_TIMES_FILE) -> str:
    """A notebook's header: the mode it runs in, its measured run time in that mode, and its place
    in the course (:func:`tfa_tutorial.teaching.course_plan.course_line`)."""
    from .course_plan import course_line  # course_plan imports this module

    line = course_line(stem)
    text = describe_mode() + "\n" + _times_line(stem, "fast" if fast_mode() else "full", load_run_times(path))
    return text + ("\n" + line if line else "")


def notebook_header(stem: str, path: str | Path = RUN_TIMES_FILE) -> None:
    """Print :func:`header_text` (the first code cell of every notebook calls this)."""
    print(header_text(stem, path))


def run_times_markdown(mode: str = "fast", path: str | Path = RUN_TIMES_FILE) -> str:
    """The stored measurements of ``mode`` as a markdown table, one row per notebook (the README
    and notebook 00 render it)."""
    block = load_run_times(path)[mode]

    def cell(row, key):
        return "–" if row is None or row.get(key) is None else f"{row[key]:.0f}"

    lines = ["| notebook | empty cache: wall (s) | kernel CPU (s) | warm cache: wall (s) | kernel CPU (s) | peak memory (MB) |",
             "|---|---:|---:|---:|---:|---:|"]
    for stem in sorted(block["notebooks"]):
        rows = block["notebooks"][stem]
        empty, warm = rows.get("empty"), rows.get("warm")
        peak = max((r["peak_mb"] for r in rows.values() if r.get("peak_mb") is not None), default=None)
        lines.append(f"| `{stem}` | {cell(empty, 'wall_s')} | {cell(empty, 'cpu_s')} | {cell(warm, 'wall_s')} "
                     f"| {cell(warm, 'cpu_s')} | {'–' if peak is None else f'{peak:.0f}'} |")
    totals = [sum(r[c]["wall_s"] for r in block["notebooks"].values() if c in r) for c in CACHE_STATES]
    provenance = " ".join(f"{cache.capitalize()} cache: recorded {rec['date']} on {rec['machine']}, {rec['load']}; "
                          f"command: `{rec['command']}`." for cache, rec in block["recorded"].items())
    lines += ["", f"All {len(block['notebooks'])} notebooks: {format_seconds(totals[0])} with an empty cache, "
              f"{format_seconds(totals[1])} warm. {provenance}"]
    return "\n".join(lines)


def with_generated_block(text: str, name: str, content: str) -> str:
    """``text`` with the lines between ``<!-- name:begin ... -->`` and ``<!-- name:end -->``
    replaced by ``content`` (how the README carries generated tables)."""
    lines = text.split("\n")
    begin = [i for i, ln in enumerate(lines) if ln.startswith(f"<!-- {name}:begin")]
    end = [i for i, ln in enumerate(lines) if ln.startswith(f"<!-- {name}:end")]
    if len(begin) != 1 or len(end) != 1 or end[0] < begin[0]:
        raise ValueError(f"expected one '<!-- {name}:begin' line followed by one '<!-- {name}:end' line")
    return "\n".join(lines[: begin[0] + 1] + [content] + lines[end[0]:])
