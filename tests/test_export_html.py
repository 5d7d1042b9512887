"""scripts/export_html.py: executed notebooks become static pages with their outputs and embedded
figures, exercise pages lose their solutions, links and the index follow course order.

The synthetic notebooks are built here with known outputs (a text line, a PNG); one test also
exports a real, small course notebook.
"""
from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbconvert")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import export_html  # noqa: E402

# a 1×1 red PNG
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478"
    "9c63f8cfc000000301010018dd8db00000000049454e44ae426082")).decode()


def notebook(cells, executed=True):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    count = 0
    for kind, source, outputs in cells:
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            count += 1
            cell = nbformat.v4.new_code_cell(source, execution_count=count if executed else None)
            cell.outputs = outputs if executed else []
            nb.cells.append(cell)
    return nb


def write(path: Path, nb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def course(tmp_path):
    """notebooks/00, 01 (executed), 02 (never executed) and exercises/01 with a folded solution."""
    src = tmp_path / "src"
    write(src / "notebooks" / "00_intro.ipynb", notebook([
        ("markdown", "# 00 · *Intro*\n\nNext: [the patch](01_patch.ipynb#Setup), [paper](https://arxiv.org/abs/1)", None),
        ("code", "print('hello')", [nbformat.v4.new_output("stream", name="stdout", text="flip rate 0.63\n")]),
    ]))
    write(src / "notebooks" / "01_patch.ipynb", notebook([
        ("markdown", "# 01 · Patch", None),
        ("code", "plot()", [nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]),
    ]))
    write(src / "notebooks" / "02_unrun.ipynb", notebook([("markdown", "# 02 · Not run", None), ("code", "1", [])], executed=False))
    write(src / "exercises" / "01_patch.ipynb", notebook([
        ("markdown", "# Exercises 01 · Patch\n\nSee [the notebook](../notebooks/01_patch.ipynb).", None),
        ("code", "answer = ...\ncheck.ex01(answer)",
         [nbformat.v4.new_output("stream", name="stdout", text="✗ ex01: not answered yet\n")]),
        ("markdown", "<details><summary>Solution</summary>\n\n```python\nanswer = SECRET_SOLUTION_42\n```\n\n</details>", None),
    ]))
    pages = [export_html.page_for(p) for p in sorted(src.rglob("*.ipynb"))]
    out = tmp_path / "html"
    written = export_html.export(pages, out)
    return out, written


def test_pages_have_outputs_and_embedded_images(course):
    out, written = course
    intro = (out / "00_intro.html").read_text(encoding="utf-8")
    assert "flip rate 0.63" in intro and "print" in intro  # code and its output
    patch = (out / "01_patch.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', patch)
    assert images and images[0].strip() == PNG  # the figure itself, embedded: no file, no kernel
    assert not re.search(r'<img[^>]+src="(?!data:)', patch)


def test_exercise_pages_hide_solutions_and_keep_tasks(course):
    out, _ = course
    page = (out / "exercises_01_patch.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", page)  # code is syntax-highlighted: compare without tags
    assert "not answered yet" in text and "check.ex01(answer)" in text
    assert "SECRET_SOLUTION_42" not in page and "<summary>Solution" not in page


def test_links_point_at_exported_pages(course):
    out, _ = course
    intro = (out / "00_intro.html").read_text(encoding="utf-8")
    assert 'href="01_patch.html#Setup"' in intro and 'href="https://arxiv.org/abs/1"' in intro
    assert 'href="index.html"' in intro
    assert 'href="01_patch.html"' in (out / "exercises_01_patch.html").read_text(encoding="utf-8")


def test_unexecuted_notebooks_are_skipped_and_index_follows_course_order(course):
    out, written = course
    assert not (out / "02_unrun.html").exists()
    assert [p.output for p in written] == ["00_intro.html", "01_patch.html", "exercises_01_patch.html"]
    index = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)">', index)
    assert links == ["00_intro.html", "01_patch.html", "exercises_01_patch.html"]
    assert "00 · Intro" in index and "Exercises 01 · Patch" in index


def test_solution_code_in_an_exercise_notebook_is_refused(tmp_path):
    path = write(tmp_path / "exercises" / "03_x.ipynb", notebook([
        ("code", "# BEGIN SOLUTION\nx = 1\n# END SOLUTION", [nbformat.v4.new_output("stream", name="stdout", text="1\n")]),
    ]))
    with pytest.raises(ValueError, match="solution"):
        export_html.export([export_html.page_for(path)], tmp_path / "html")


def test_real_course_notebook_exports(tmp_path):
    """notebooks/01_patch_injection.ipynb (committed, executed) through the command line."""
    src = ROOT / "notebooks" / "01_patch_injection.ipynb"
    if not src.is_file():
        pytest.skip("notebook 01 is not in the repository")
    nb = nbformat.read(src, as_version=4)
    n_png = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "export_html.py"), "--out", str(tmp_path), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "01_patch_injection.html").read_text(encoding="utf-8")
    assert n_png > 0 and len(re.findall(r'src="data:image/png;base64,', page)) == n_png
    claims = next(c for c in nb.cells if c.cell_type == "code" and "Claims(" in c.source)
    last_line = "".join(o.get("text", "") for o in claims.outputs).strip().splitlines()[-1]
    assert last_line in page  # e.g. "6/6 claims hold"
    assert (tmp_path / "index.html").is_file()
