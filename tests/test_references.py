"""The repository stands alone: no text points to a file that is not in it.

- no reference to private planning documents (``SPEC §…``, ``notes/…``, ``../shared``);
- every relative markdown link in README, docs, notebooks and exercises resolves to a file or
  folder of the repository (``http(s)://`` and ``#anchor`` links are not checked here).
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRIVATE = re.compile(r"SPEC §|\bnotes/(?:tfa-|env|paper|anchors|ecosystem)|\.\./shared\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# this file names the patterns; test_packaging feeds "../shared" to the CI check as a bad example
EXEMPT = {"tests/test_references.py", "tests/test_packaging.py"}


def tracked(*suffixes: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in out if f.endswith(suffixes) and not f.startswith("docs/html/") and f not in EXEMPT]


def text_of(path: Path, markdown_only: bool = False) -> str:
    """The file's text; for a notebook its cell sources (outputs are checked by the notebook
    tests). With ``markdown_only``: a notebook's markdown cells, a notebook script's comment lines."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if not markdown_only or c["cell_type"] == "markdown")
    text = path.read_text(errors="replace")
    if markdown_only and path.suffix == ".py":
        return "\n".join(ln for ln in text.splitlines() if ln.lstrip().startswith("#"))
    return text


def test_no_reference_to_private_documents():
    hits = []
    for path in tracked(".py", ".md", ".ipynb", ".toml", ".yml", ".cfg", "Makefile", "run", "start", "postBuild"):
        for n, line in enumerate(text_of(path).splitlines(), 1):
            if PRIVATE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not hits, "references to documents outside the repository:\n" + "\n".join(hits)


@pytest.mark.parametrize("suffix", [".md", ".ipynb", ".py"])
def test_relative_links_resolve(suffix):
    broken = []
    for path in tracked(suffix):
        if suffix == ".py" and not re.match(r"\d\d_", path.name):  # only notebook/exercise scripts carry markdown
            continue
        for target in LINK.findall(text_of(path, markdown_only=True)):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            file_part = target.split("#", 1)[0]
            if file_part and not (path.parent / file_part).exists():
                broken.append(f"{path.relative_to(ROOT)} → {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_the_checks_can_fail(tmp_path):
    assert PRIVATE.search("see SPEC §4") and PRIVATE.search("(notes/tfa-experiment-1.md)")
    assert not PRIVATE.search("SPECIFICITY_FAMILIES and KERNELSPEC")
    assert LINK.findall("[x](../docs/missing.md) and [y](https://example.org)") == ["../docs/missing.md", "https://example.org"]
