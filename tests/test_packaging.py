"""Repository contract: the files that install, launch and test the tutorial agree with each other.

- pyproject's runtime dependencies == the runtime packages of environment.yml and
  binder/environment.yml (names mapped, e.g. torch -> pytorch; same version ranges);
- the Makefile's torch pins fall inside pyproject's ranges;
- binder/postBuild and binder/start do what Binder needs; .ci/run runs the README's test command;
- .venv is git-ignored; every promised top-level item exists; the README's course map, links and
  Binder badge match the repository; nbval's sanitize rules parse and mask what they should.

Each check is a small function returning a list of problems, so the tests below can also show
that it fails on a broken copy.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]

PROMISED_ITEMS = [
    "notebooks/",
    "tfa_tutorial/",
    "tests/",
    "binder/",
    "environment.yml",
    "README.md",
    "pyproject.toml",
    "Makefile",
    ".ci/run",
]
CONDA_FILES = ["environment.yml", "binder/environment.yml"]
# pip/PyPI name -> accepted conda-forge names
CONDA_NAMES = {"torch": {"pytorch"}, "matplotlib": {"matplotlib", "matplotlib-base"}}
# conda packages that are not Python runtime dependencies of the package
CONDA_ONLY = {"python", "pip", "cpuonly", "nomkl"}
MAKE_TARGETS = {"venv", "data", "lab", "notebooks", "test", "clean"}
COURSE = [
    "00_start_here",
    "01_patch_injection",
    "02_shortcut_training",
    "03_per_sample_gradients_and_gradcos",
    "04_training_feature_attribution",
    "05_interactive_explorer",
    "06_from_diagnosis_to_fix",
]
BINDER_LABPATH = "labpath=notebooks%2F00_start_here.ipynb"


def read(rel: str, root: Path = ROOT) -> str:
    return (root / rel).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- parsers


def parse_conda_env(text: str) -> tuple[list[str], list[str]]:
    """The ``dependencies:`` list of a conda environment file: (conda entries, pip entries).

    A line parser for the subset of YAML these files use: a top-level ``dependencies:`` key,
    ``- entry`` items, and one nested ``- pip:`` list. Comments and quotes are stripped.
    """
    conda: list[str] = []
    pip: list[str] = []
    in_deps = False
    item_indent = None
    in_pip = False
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_deps = line.strip() == "dependencies:"
            in_pip = False
            continue
        if not in_deps:
            continue
        m = re.match(r"\s*-\s+(.*)$", line)
        if not m:
            raise ValueError(f"unexpected line in dependencies: {raw!r}")
        value = m.group(1).strip()
        if item_indent is None:
            item_indent = indent
        if indent == item_indent:
            in_pip = value == "pip:"
            if not in_pip:
                conda.append(_unquote(value))
        elif in_pip and indent > item_indent:
            pip.append(_unquote(value))
        else:
            raise ValueError(f"unexpected nesting in dependencies: {raw!r}")
    return conda, pip


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def conda_name_and_spec(entry: str) -> tuple[str, str]:
    """``"conda-forge::pytorch>=2.3,<=2.14.1"`` -> ``("pytorch", ">=2.3,<=2.14.1")``."""
    entry = entry.split("::")[-1].replace(" ", "")
    m = re.match(r"([A-Za-z0-9_.\-]+)(.*)$", entry)
    if not m:
        raise ValueError(f"cannot read conda entry {entry!r}")
    return m.group(1).lower(), m.group(2)


def runtime_requirements(pyproject_text: str) -> dict[str, Requirement]:
    data = tomllib.loads(pyproject_text)
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


# --------------------------------------------------------------------------- checks


def conda_env_problems(pyproject_text: str, env_text: str, label: str) -> list[str]:
    """Runtime packages of a conda file vs pyproject's dependencies: same names, same ranges."""
    reqs = runtime_requirements(pyproject_text)
    conda, _ = parse_conda_env(env_text)
    entries = dict(conda_name_and_spec(e) for e in conda)
    problems = []
    for name, req in reqs.items():
        accepted = CONDA_NAMES.get(name, {name})
        present = [n for n in accepted if n in entries]
        if not present:
            problems.append(f"{label}: runtime dependency {name!r} missing (conda name: {' or '.join(sorted(accepted))})")
            continue
        spec = entries[present[0]]
        try:
            conda_spec = SpecifierSet(spec)
        except InvalidSpecifier:
            problems.append(f"{label}: {present[0]}{spec} is not a plain version range; pyproject says {req.specifier}")
            continue
        if conda_spec != req.specifier:
            problems.append(f"{label}: {present[0]} has range {spec or '(none)'!r}, pyproject's {name} has {str(req.specifier)!r}")
    known = set(CONDA_ONLY)
    for name in reqs:
        known |= CONDA_NAMES.get(name, {name})
    for name in entries:
        if name not in known:
            problems.append(f"{label}: {name!r} is not a runtime dependency in pyproject.toml (add it there or remove it here)")
    if "python" not in entries:
        problems.append(f"{label}: no python pin")
    return problems


def env_installs_package_problems(pyproject_text: str, env_text: str, label: str) -> list[str]:
    """The root environment installs the package itself (pip: -e . or -e ".[extra]")."""
    _, pip = parse_conda_env(env_text)
    extras = set(tomllib.loads(pyproject_text)["project"].get("optional-dependencies", {}))
    for entry in pip:
        m = re.fullmatch(r"(?:-e\s+|--editable\s+)?\.(?:\[([A-Za-z0-9_,\-]+)\])?", entry.replace('"', "").replace("'", ""))
        if m:
            unknown = set(filter(None, (m.group(1) or "").split(","))) - extras
            return [f"{label}: pip installs unknown extra(s) {sorted(unknown)}"] if unknown else []
    return [f"{label}: the pip section does not install the package (expected '-e .' or '-e \".[test]\"')"]


def makefile_torch_pin_problems(pyproject_text: str, makefile_text: str) -> list[str]:
    """Every ``torch==X`` / ``torchvision==Y`` pin in the Makefile satisfies pyproject's range."""
    reqs = runtime_requirements(pyproject_text)
    pins = re.findall(r"\b(torch|torchvision)==([0-9][0-9A-Za-z.+]*)", makefile_text)
    problems = [] if pins else ["Makefile: no torch/torchvision pins found"]
    for name, version in pins:
        spec = reqs[name].specifier
        if not spec.contains(Version(version), prereleases=True):
            problems.append(f"Makefile pins {name}=={version}, outside pyproject's {name}{spec}")
    return problems


def makefile_target_problems(makefile_text: str) -> list[str]:
    targets = set(re.findall(r"^([A-Za-z][A-Za-z0-9_.-]*)\s*:(?!=)", makefile_text, flags=re.M))
    return [f"Makefile: target {t!r} missing" for t in sorted(MAKE_TARGETS - targets)]


def script_problems(text: str, label: str) -> list[str]:
    problems = []
    lines = [ln.strip() for ln in text.splitlines()]
    if not lines or not lines[0].startswith("#!") or "bash" not in lines[0]:
        problems.append(f"{label}: first line is not a bash shebang")
    if "set -euo pipefail" not in lines:
        problems.append(f"{label}: no 'set -euo pipefail' line")
    return problems


def postbuild_problems(text: str) -> list[str]:
    problems = script_problems(text, "binder/postBuild")
    code = _code_lines(text)
    if not any(re.search(r"\bpip install\b.*(\s|^)(-e\s+)?\.(\s|$)", ln) for ln in code):
        problems.append("binder/postBuild: does not 'pip install' the package (.)")
    return problems


def binder_start_problems(text: str) -> list[str]:
    problems = script_problems(text, "binder/start")
    code = _code_lines(text)
    if any(re.search(r"\bTFA_FAST=", ln) for ln in code):
        problems.append("binder/start: sets TFA_FAST; the mode rule lives in tfa_tutorial/core/mode.py only")
    if not code or code[-1] != 'exec "$@"':
        problems.append('binder/start: must end with exec "$@"')
    return problems


def _code_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def readme_quickstart_commands(readme_text: str) -> list[str]:
    """Commands of the first fenced block under the 'Quick start' heading (comments stripped)."""
    m = re.search(r"^#+\s*Quick start\s*$(.*?)^```[^\n]*\n(.*?)^```", readme_text, flags=re.M | re.S | re.I)
    if not m:
        raise AssertionError("README: no fenced code block under a 'Quick start' heading")
    commands = []
    for line in m.group(2).splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        line = re.sub(r"^\$\s+", "", line)
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def readme_test_command(readme_text: str) -> str:
    tests = [c for c in readme_quickstart_commands(readme_text) if re.search(r"\btest\b", c)]
    assert len(tests) == 1, f"README quick start should have exactly one test command, found {tests}"
    return tests[0]


def ci_problems(ci_text: str, test_command: str) -> list[str]:
    problems = script_problems(ci_text, ".ci/run")
    code = _code_lines(ci_text)
    pattern = r"(^|[\s;&|(\"'])" + re.escape(test_command) + r"($|[\s;&|)\"'])"
    if not any(re.search(pattern, ln) for ln in code):
        problems.append(f".ci/run: does not run the README's test command {test_command!r}")
    if not any(re.search(r"(^|\s)make venv($|\s)", ln) for ln in code):
        problems.append(".ci/run: does not create the venv with 'make venv'")
    if any(re.search(r"(^|[\s\"'=(])\.\./", ln) for ln in code):
        problems.append(".ci/run: refers to a path outside the repository, which a fresh clone does not have")
    return problems


def gitignore_covers(gitignore_text: str, name: str) -> bool:
    """True when a .gitignore line ignores the top-level directory ``name`` (no negation handling)."""
    for line in gitignore_text.splitlines():
        pat = line.strip()
        if not pat or pat.startswith(("#", "!")):
            continue
        if pat.rstrip("/").lstrip("/") in (name, "*" + name, name + "*", ".*"):
            return True
    return False


def is_git_ignored(root: Path, name: str) -> bool:
    """Ask git when ``root`` is a work tree (authoritative), else read ``.gitignore``."""
    git = shutil.which("git")
    if git:
        r = subprocess.run([git, "-C", str(root), "check-ignore", "-q", name], capture_output=True)
        if r.returncode in (0, 1):
            return r.returncode == 0
    path = root / ".gitignore"
    return path.is_file() and gitignore_covers(path.read_text(encoding="utf-8"), name)


def missing_items(root: Path) -> list[str]:
    missing = []
    for item in PROMISED_ITEMS:
        p = root / item.rstrip("/")
        if not (p.is_dir() if item.endswith("/") else p.is_file()):
            missing.append(item)
    return missing


def course_map_problems(readme_text: str, notebook_dir: Path) -> list[str]:
    """The README's course map lists every notebook; 'planned' exactly where the file is missing;
    existing notebooks are linked."""
    m = re.search(r"^## Course map\s*$(.*?)(?=^## |\Z)", readme_text, flags=re.M | re.S)
    if not m:
        return ["README: no '## Course map' section"]
    section = m.group(1)
    rows = {}
    for line in section.splitlines():
        hit = re.search(r"\b(\d\d_[a-z0-9_]+)\b", line)
        if line.lstrip().startswith("|") and hit:
            rows[hit.group(1)] = line
    problems = []
    present = sorted(p.stem for p in notebook_dir.glob("*.ipynb"))
    for name in present:
        if name not in rows:
            problems.append(f"README course map: notebooks/{name}.ipynb is not listed")
    for name in COURSE:
        if name not in rows:
            problems.append(f"README course map: {name} is missing")
    for name, line in rows.items():
        exists = (notebook_dir / f"{name}.ipynb").is_file()
        planned = re.search(r"\bplanned\b", line, flags=re.I) is not None
        if exists and planned:
            problems.append(f"README course map: {name} exists but is marked planned")
        if exists and f"(notebooks/{name}.ipynb)" not in line:
            problems.append(f"README course map: {name} exists but is not linked as (notebooks/{name}.ipynb)")
        if not exists and not planned:
            problems.append(f"README course map: notebooks/{name}.ipynb does not exist; mark it planned")
    return problems


def readme_link_problems(readme_text: str, root: Path) -> list[str]:
    """Relative links and images in the README point at files that exist."""
    problems = []
    for target in re.findall(r"!?\[[^\]]*\]\(([^)\s]+)[^)]*\)", readme_text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (root / target.split("#")[0]).exists():
            problems.append(f"README links to {target}, which does not exist")
    return problems


NBVAL_RULE = re.compile(r"^regex: (.*)$\n^replace: (.*)$", flags=re.M)  # nbval.plugin.get_sanitize_patterns


def sanitize_rules(cfg_text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """nbval's reading of a sanitize file, plus problems (rules nbval would silently drop)."""
    rules = NBVAL_RULE.findall(cfg_text)
    problems = []
    n_regex = len(re.findall(r"^regex:", cfg_text, flags=re.M))
    if n_regex != len(rules):
        problems.append(f"sanitize.cfg: {n_regex} 'regex:' lines but nbval reads only {len(rules)} rules "
                        "(each needs 'regex: ' then 'replace: ' on the next line, with the space)")
    for regex, _ in rules:
        try:
            re.compile(regex)
        except re.error as err:
            problems.append(f"sanitize.cfg: bad regex {regex!r}: {err}")
    return rules, problems


def sanitize(rules, text: str) -> str:
    for regex, replace in rules:
        text = re.sub(regex, replace, text)
    return text


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("rel", CONDA_FILES)
def test_conda_env_matches_pyproject(rel):
    assert conda_env_problems(read("pyproject.toml"), read(rel), rel) == []


@pytest.mark.parametrize("rel", CONDA_FILES)
def test_conda_env_uses_conda_forge_and_python_311(rel):
    text = read(rel)
    assert re.search(r"^channels:\s*\n\s*-\s*conda-forge\s*$", text, flags=re.M), f"{rel}: conda-forge is not the channel"
    conda, _ = parse_conda_env(text)
    assert "python=3.11" in [e.replace(" ", "") for e in conda]


def test_root_env_installs_the_package():
    assert env_installs_package_problems(read("pyproject.toml"), read("environment.yml"), "environment.yml") == []


def test_line_parser_agrees_with_yaml():
    yaml = pytest.importorskip("yaml")
    for rel in CONDA_FILES:
        deps = yaml.safe_load(read(rel))["dependencies"]
        conda = [d for d in deps if isinstance(d, str)]
        pip = [p for d in deps if isinstance(d, dict) for p in d.get("pip", [])]
        assert parse_conda_env(read(rel)) == (conda, pip), rel


def test_makefile_torch_pins_within_pyproject_ranges():
    assert makefile_torch_pin_problems(read("pyproject.toml"), read("Makefile")) == []


def test_makefile_has_targets():
    assert makefile_target_problems(read("Makefile")) == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_parses():
    r = subprocess.run(["make", "-n", "-C", str(ROOT), "help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_binder_postbuild():
    assert postbuild_problems(read("binder/postBuild")) == []
    assert os.access(ROOT / "binder/postBuild", os.X_OK), "binder/postBuild is not executable"


def test_binder_start_leaves_the_mode_to_the_rule():
    assert binder_start_problems(read("binder/start")) == []
    assert os.access(ROOT / "binder/start", os.X_OK), "binder/start is not executable"


def test_ci_runs_readme_test_command():
    commands = readme_quickstart_commands(read("README.md"))
    assert commands == ["make lab", "make test"], commands
    assert ci_problems(read(".ci/run"), readme_test_command(read("README.md"))) == []
    assert os.access(ROOT / ".ci/run", os.X_OK), ".ci/run is not executable"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("rel", [".ci/run", "binder/postBuild", "binder/start"])
def test_shell_scripts_parse(rel):
    r = subprocess.run(["bash", "-n", str(ROOT / rel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_venv_is_git_ignored():
    assert is_git_ignored(ROOT, ".venv")


def test_promised_items_exist():
    assert missing_items(ROOT) == []


def test_readme_course_map_matches_notebooks():
    assert course_map_problems(read("README.md"), ROOT / "notebooks") == []


def test_readme_links_resolve():
    assert readme_link_problems(read("README.md"), ROOT) == []


def test_readme_binder_badge():
    badge = re.search(r"\(https://mybinder\.org/v2/gh/[^)]+\)", read("README.md"))
    assert badge and BINDER_LABPATH in badge.group(0)


def test_jupytext_pairs_ipynb_with_py_percent():
    cfg = tomllib.loads(read("jupytext.toml"))
    assert cfg["formats"] == "ipynb,py:percent"


def test_sanitize_cfg_masks_volatile_output():
    rules, problems = sanitize_rules(read("notebooks/sanitize.cfg"))
    assert problems == [] and rules
    volatile = {
        "memory address": ("<function f at 0x7f3a2c1b9d30>", "0x7f3a2c1b9d30"),
        "timing": ("epoch 1 took 12.3 s", "12.3"),
        "timing ms": ("one map in 850ms", "850"),
        "tqdm bar": ("train:  40%|####      | 4/10 [00:01<00:01, 3.91it/s]\rtrain: 100%|##########| 10/10 [00:02<00:00, 4.50it/s]", "it/s"),
        "temp path": ("saved to /tmp/tmpab12cd/model.pt", "tmpab12cd"),
    }
    for what, (text, secret) in volatile.items():
        assert secret not in sanitize(rules, text), f"{what} not masked: {sanitize(rules, text)!r}"
    for stable in ["top-5 proponents: [3, 17, 42, 5, 9]", "accuracy 0.912, flip rate 0.85", "10 classes, 28x28 images, 2 samples"]:
        assert sanitize(rules, stable) == stable


# --------------------------------------------------------------------------- the checks can fail


def test_checks_fail_on_broken_copies(tmp_path):
    pyproject, env = read("pyproject.toml"), read("environment.yml")
    # a runtime dependency dropped from a conda file, and an extra one added
    assert any("'tqdm'" in p for p in conda_env_problems(pyproject, re.sub(r"^\s*- tqdm.*\n", "", env, flags=re.M), "x"))
    assert any("'scipy'" in p for p in conda_env_problems(pyproject, env.replace("  - pip\n", "  - scipy\n  - pip\n", 1), "x"))
    # a version range out of sync
    assert any("pytorch" in p for p in conda_env_problems(pyproject, env.replace("<=2.14.1", "<=2.15", 1), "x"))
    # a new runtime dependency in pyproject only
    assert any("'pillow'" in p for p in conda_env_problems(pyproject.replace('"tqdm', '"pillow>=10",\n    "tqdm', 1), env, "x"))
    # the package not installed by the root env
    assert env_installs_package_problems(pyproject, env.replace('-e ".[test]"', "numpy"), "x")
    # a Makefile pin outside pyproject's range
    assert makefile_torch_pin_problems(pyproject, "TORCH_PINS ?= torch==2.15.0 torchvision==0.29.1")
    # postBuild without strict mode / without installing; start that sets the mode itself
    assert postbuild_problems(read("binder/postBuild").replace("set -euo pipefail", "set -e"))
    assert postbuild_problems("#!/bin/bash\nset -euo pipefail\necho hi\n")
    assert binder_start_problems('#!/bin/bash\nset -euo pipefail\nexport TFA_FAST="${TFA_FAST:-1}"\nexec "$@"\n')
    assert not binder_start_problems('#!/bin/bash\nset -euo pipefail\nexec "$@"\n')
    # .ci/run that does not run the README's command (commented out), or reads outside the repository
    ci = read(".ci/run")
    assert ci_problems(re.sub(r"^(.*make test.*)$", r"# \1", ci, flags=re.M), "make test")
    assert ci_problems(ci + "\ncat ../elsewhere/plan.txt\n", "make test")
    # README without a quick-start block
    with pytest.raises(AssertionError):
        readme_quickstart_commands("# x\n\nno commands here\n")
    # .venv not ignored
    assert not gitignore_covers("__pycache__/\n/data/\n", ".venv")
    assert gitignore_covers("/.venv/\n", ".venv")
    # a promised item missing
    (tmp_path / "README.md").write_text("x")
    assert "Makefile" in missing_items(tmp_path)
    # course map out of sync: a notebook that exists but is still 'planned', and one not listed
    nb = tmp_path / "notebooks"
    nb.mkdir()
    (nb / "00_start_here.ipynb").write_text("{}")
    (nb / "99_extra.ipynb").write_text("{}")
    fake_readme = (
        "## Course map\n\n| # | notebook | what it covers | status |\n|---|---|---|---|\n"
        "| 00 | `00_start_here` | setup | planned |\n"
    )
    problems = course_map_problems(fake_readme, nb)
    assert any("00_start_here exists but is marked planned" in p for p in problems)
    assert any("99_extra" in p for p in problems)
    # a broken README link
    assert readme_link_problems("see [x](docs/nothing.png)", tmp_path)
    # a sanitize rule that nbval would silently drop ("replace:" without its space)
    assert sanitize_rules("regex: a+\nreplace:\n")[1]


def test_binder_env_installs_voila_for_the_explorer_app():
    """The README's Binder link opens notebook 05 in Voilà, so binder/environment.yml must install
    voila (pip section), in the range of pyproject's [test] extra."""
    _, pip = parse_conda_env(read("binder/environment.yml"))
    extra = {canonicalize_name(Requirement(r).name): Requirement(r)
             for r in tomllib.loads(read("pyproject.toml"))["project"]["optional-dependencies"]["test"]}
    voila = [Requirement(p) for p in pip if canonicalize_name(Requirement(p).name) == "voila"]
    assert voila, "binder/environment.yml: voila missing from the pip section"
    assert voila[0].specifier == extra["voila"].specifier
