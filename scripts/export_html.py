#!/usr/bin/env python
"""Export the executed notebooks and exercises to static HTML, for readers without a kernel.

    python scripts/export_html.py                      # what `make html` runs: -> docs/html/
    python scripts/export_html.py --out /tmp/site notebooks/01_patch_injection.ipynb

- every executed ``notebooks/NN_*.ipynb`` becomes ``NN_name.html``;
- every executed ``exercises/NN_*.ipynb`` becomes ``exercises_NN_name.html``, **without** the
  folded solution cells (markdown cells that open with ``<details><summary>Solution``);
- ``index.html`` lists the pages in course order (each notebook, then its exercises).

Pages are nbconvert's ``lab`` template with the figures embedded as base64 PNG (images that
markdown cells reference are embedded too), so a page opens from disk with no server and no
kernel. Links between notebooks (``01_patch_injection.ipynb``) are rewritten to the matching
pages. A notebook that was never executed (no code cell has run) is skipped with a message: run
``scripts/run_notebooks.py`` first. Interactive widgets cannot run in a static page; notebook 05
draws the explorer's view with matplotlib for that reason.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"notebooks": "", "exercises": "exercises_"}  # folder -> page-name prefix
DEFAULT_OUT = ROOT / "docs" / "html"
SOLUTION_CELL = re.compile(r"^\s*<details>\s*<summary>\s*Solution", flags=re.I)


@dataclass
class Page:
    source: Path  # the .ipynb
    kind: str  # "notebooks" or "exercises"
    output: str  # file name in the output folder
    title: str = ""

    @property
    def number(self) -> str:
        return self.source.name[:2]


def page_for(path: Path) -> Page:
    path = path.resolve()
    kind = path.parent.name if path.parent.name in SOURCES else "notebooks"
    return Page(path, kind, SOURCES[kind] + path.stem + ".html")


def default_pages() -> list[Page]:
    pages = []
    for kind in SOURCES:
        pages += [page_for(p) for p in sorted((ROOT / kind).glob("[0-9][0-9]_*.ipynb"))]
    return pages


def course_order(pages: list[Page]) -> list[Page]:
    """By notebook number; a notebook before its exercises."""
    return sorted(pages, key=lambda p: (p.number, list(SOURCES).index(p.kind), p.source.name))


def is_executed(nb) -> bool:
    code = [c for c in nb.cells if c.cell_type == "code"]
    return not code or any(c.get("execution_count") for c in code)


def strip_solutions(nb) -> int:
    """Remove the folded solution cells in place; returns how many were removed."""
    keep = [c for c in nb.cells if not (c.cell_type == "markdown" and SOLUTION_CELL.match(c.source))]
    removed = len(nb.cells) - len(keep)
    nb.cells = keep
    return removed


def title_of(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.M)
            if m:
                return re.sub(r"[*`]", "", m.group(1)).strip()  # plain text: no markdown emphasis or code marks
    return fallback


def rewrite_links(body: str, page: Page, by_source: dict[Path, str]) -> str:
    """``href="X.ipynb"`` -> the exported page of X, when X is exported too."""
    def repl(m):
        target = m.group(2)
        path, _, anchor = target.partition("#")
        if re.match(r"[a-z]+:", path) or not path.endswith(".ipynb"):
            return m.group(0)
        out = by_source.get((page.source.parent / path).resolve())
        if out is None:
            return m.group(0)
        return f'{m.group(1)}"{out}{"#" + anchor if anchor else ""}"'

    return re.sub(r'(href=)"([^"]+)"', repl, body)


def add_nav(body: str, page: Page) -> str:
    nav = ('<nav style="font-family:sans-serif;padding:8px 16px;border-bottom:1px solid #ddd">'
           '<a href="index.html">← tfa_tutorial: all notebooks</a>'
           ' · static copy (fast mode), no kernel: code cannot be run here</nav>')
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def export(pages: list[Page], out: Path) -> list[Page]:
    """Write one HTML file per executed page, then index.html; returns the pages written."""
    from nbconvert import HTMLExporter

    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab", embed_images=True)
    by_source = {p.source: p.output for p in pages}
    written = []
    for page in course_order(pages):
        nb = nbformat.read(page.source, as_version=4)
        if not is_executed(nb):
            print(f"skipped {_shown(page.source)}: not executed (run scripts/run_notebooks.py first)", file=sys.stderr)
            continue
        if page.kind == "exercises":
            strip_solutions(nb)
            if any("BEGIN SOLUTION" in c.source for c in nb.cells):
                raise ValueError(f"{page.source}: holds solution code; export the students' notebook, not the teachers' script")
        page.title = title_of(nb, page.source.stem)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"path": str(page.source.parent), "name": page.title}})
        body = add_nav(rewrite_links(body, page, by_source), page)
        (out / page.output).write_text(body, encoding="utf-8")
        written.append(page)
        print(f"wrote {out / page.output}")
    write_index(written, out)
    return written


def write_index(pages: list[Page], out: Path) -> Path:
    rows = []
    for p in course_order(pages):
        what = "notebook" if p.kind == "notebooks" else "exercises (solutions hidden)"
        rows.append(f'<tr><td>{html.escape(p.number)}</td><td><a href="{html.escape(p.output)}">{html.escape(p.title)}</a></td>'
                    f"<td>{what}</td></tr>")
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tfa_tutorial — static notebooks</title>
<style>body{{font-family:sans-serif;max-width:860px;margin:2em auto;line-height:1.5}}
td{{padding:4px 12px;border-bottom:1px solid #eee}} td:last-child{{white-space:nowrap}}</style></head>
<body>
<h1>tfa_tutorial — training feature attribution, static copy</h1>
<p>The executed notebooks of the course (fast mode, outputs as they were recorded), readable without
Python or a kernel. To run the code, use Binder or <code>make lab</code> (see the README). Exercise
pages show the tasks and the checkers' output for unanswered cells; their solutions are left out.</p>
<table>
<tr><th>#</th><th>page</th><th>kind</th></tr>
{chr(10).join(rows)}
</table>
</body></html>
"""
    path = out / "index.html"
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to export (default: notebooks/ and exercises/)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default docs/html)")
    args = parser.parse_args(argv)
    pages = [page_for(p.with_suffix(".ipynb")) for p in args.notebooks] if args.notebooks else default_pages()
    missing = [p.source for p in pages if not p.source.is_file()]
    if missing:
        print("not found: " + ", ".join(map(str, missing)), file=sys.stderr)
        return 1
    written = export(pages, args.out)
    if not written:
        print("nothing exported: no executed notebook", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
