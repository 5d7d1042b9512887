"""The repository stands alone: no text points to a file that is not in it.

- every path to a markdown document (``folder/name.md``) named in code, docs, notebooks or scripts
  resolves to a file of the repository (relative to the naming file or to the repository root);
- a section citation ``NAME §n`` names a document of the repository (``NAME.md``);
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
MD_PATH = re.compile(r"(?<![\w./-])((?:\.\./|\./)?(?:[\w-]+/)+[\w.-]+\.md)\b")
SECTION = re.compile(r"\b([A-Za-z][\w-]*)\s*§\s*\d")
LINK = re.compile(r"\]\(([^)\s]+)\)")
SELF = "tests/test_references.py"  # its own examples of bad references


def tracked(*suffixes: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / f for f in out if f.endswith(suffixes) and not f.startswith("docs/html/") and f != SELF]


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


def _doc_stems() -> set[str]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {Path(f).stem for f in out}


DOC_STEMS = _doc_stems()


def missing_references(path: Path, text: str) -> list[str]:
    """Markdown paths and section citations in ``text`` (of ``path``) that the repository lacks."""
    bad = [p for p in MD_PATH.findall(text) if not ((path.parent / p).exists() or (ROOT / p).exists())]
    bad += [f"{name} §" for name in SECTION.findall(text) if name not in DOC_STEMS]
    return bad


def test_no_reference_to_documents_outside_the_repository():
    hits = []
    for path in tracked(".py", ".md", ".ipynb", ".toml", ".yml", ".cfg", "Makefile", "run", "start", "postBuild"):
        for n, line in enumerate(text_of(path).splitlines(), 1):
            for ref in missing_references(path, line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {ref}")
    assert not hits, "references to documents that are not in the repository:\n" + "\n".join(hits)


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


def test_the_checks_can_fail():
    readme = ROOT / "README.md"
    assert missing_references(readme, "see PLAN §4 and drafts/plan.md") == ["drafts/plan.md", "PLAN §"]
    assert missing_references(readme, "see docs/glossary.md and docs/results.md") == []
    assert LINK.findall("[x](../docs/missing.md) and [y](https://example.org)") == ["../docs/missing.md", "https://example.org"]


REPO_PATH = re.compile(
    r"(?<![\w./~-])((?:tfa_tutorial|scripts|benchmarks|tests|notebooks|docs|exercises|binder)/[\w./-]*?"
    r"\.(?:py|json|ipynb|md|cfg|png|yml|toml))\b"
)


def test_repository_paths_named_anywhere_exist():
    """``tfa_tutorial/teaching/run_times.json``, ``scripts/render_docs.py``…: every path into the repository's
    own folders named in code, docs or notebooks is a file of the repository (placeholders such as
    ``NN_name.py`` and generated folders such as ``docs/html/`` aside)."""
    hits = []
    for path in tracked(".py", ".md", ".ipynb", ".toml", ".yml", ".cfg", "Makefile", "run", "start", "postBuild"):
        for p in set(REPO_PATH.findall(text_of(path))):
            if re.search(r"NN|NAME|\*|<|\{|docs/html/", p) or path.parent.name == "tests":
                continue
            if not ((ROOT / p).exists() or (path.parent / p).exists()):
                hits.append(f"{path.relative_to(ROOT)}: {p}")
    assert not hits, "paths that are not in the repository:\n" + "\n".join(sorted(hits))
