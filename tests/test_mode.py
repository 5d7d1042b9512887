"""The mode rule: TFA_FAST wins, then a saved choice, then the device (fast without CUDA).

Device detection is mocked (``torch.cuda.is_available``), so both branches run on any machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import tfa_tutorial as T
from tfa_tutorial.core import mode
from tfa_tutorial.training.experiment import experiment_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clean(monkeypatch, tmp_path):
    """No TFA_FAST, an empty cache folder (no saved choice)."""
    monkeypatch.delenv("TFA_FAST", raising=False)
    monkeypatch.setenv("TFA_CACHE_DIR", str(tmp_path))
    return monkeypatch


def _cuda(monkeypatch, available: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)


@pytest.mark.parametrize("cuda, expected", [(False, True), (True, False)])
def test_default_follows_the_device(clean, cuda, expected):
    _cuda(clean, cuda)
    assert mode.fast_mode() is expected
    assert ("no CUDA" in mode.mode_reason()) is (not cuda)
    assert experiment_settings()["fast"] is expected
    assert experiment_settings()["n_train"] == (12000 if expected else 60000)


@pytest.mark.parametrize("cuda", [False, True])
@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), (" on ", True),
    ("0", False), ("false", False), ("no", False), ("OFF", False),
])
def test_environment_overrides_either_way(clean, cuda, value, expected):
    _cuda(clean, cuda)
    clean.setenv("TFA_FAST", value)
    assert mode.fast_mode() is expected
    assert mode.if_fast("small", "big") == ("small" if expected else "big")
    assert "TFA_FAST=" in mode.mode_reason()


@pytest.mark.parametrize("cuda", [False, True])
def test_empty_variable_means_unset(clean, cuda):
    _cuda(clean, cuda)
    clean.setenv("TFA_FAST", "  ")
    assert mode.fast_mode() is (not cuda)


def test_unknown_value_is_an_error(clean):
    clean.setenv("TFA_FAST", "maybe")
    with pytest.raises(ValueError, match=r"TFA_FAST='maybe' is not understood.*TFA_FAST=1.*TFA_FAST=0"):
        mode.fast_mode()


@pytest.mark.parametrize("cuda", [False, True])
def test_set_fast_mode_switches_this_kernel_and_later_ones(clean, tmp_path, cuda):
    _cuda(clean, cuda)
    T.set_fast_mode(cuda)  # the opposite of the device's default
    assert mode.fast_mode() is cuda
    assert json.loads((tmp_path / "mode.json").read_text()) == {"fast": cuda}
    # a kernel started later has no TFA_FAST of its own: the saved choice applies
    clean.delenv("TFA_FAST")
    assert mode.fast_mode() is cuda
    assert "saved" in mode.mode_reason()
    # ... unless the environment says otherwise
    clean.setenv("TFA_FAST", "0" if cuda else "1")
    assert mode.fast_mode() is (not cuda)
    # None: back to the device rule, the saved choice forgotten
    T.set_fast_mode(None)
    assert not (tmp_path / "mode.json").exists()
    assert mode.fast_mode() is (not cuda)


def test_set_fast_mode_without_persist_touches_only_this_process(clean, tmp_path):
    _cuda(clean, False)
    T.set_fast_mode(False, persist=False)
    assert mode.fast_mode() is False
    assert not (tmp_path / "mode.json").exists()


def test_set_fast_mode_refuses_other_values(clean):
    with pytest.raises(TypeError, match="True, False or None"):
        T.set_fast_mode("yes")
    with pytest.raises(TypeError, match="True, False or None"):
        T.set_fast_mode(1)


def test_a_corrupt_saved_choice_is_an_error(clean, tmp_path):
    _cuda(clean, False)
    (tmp_path / "mode.json").write_text('{"fast": "sometimes"}')
    with pytest.raises(ValueError, match="set_fast_mode\\(None\\)"):
        mode.fast_mode()
    (tmp_path / "mode.json").write_text("not json")
    with pytest.raises(ValueError, match="cannot be read"):
        mode.fast_mode()


@pytest.mark.parametrize("cuda", [False, True])
def test_describe_mode_says_how_to_switch(clean, cuda):
    _cuda(clean, cuda)
    text = mode.describe_mode()
    if cuda:
        assert text.startswith("Mode: full setting") and "set_fast_mode(True)" in text and "TFA_FAST=1" in text
    else:
        assert text.startswith("Mode: fast") and "set_fast_mode(False)" in text and "TFA_FAST=0" in text


def test_a_fresh_process_follows_the_rule(tmp_path):
    """No variable, no saved choice: a new interpreter (as a kernel would be) picks by the device."""
    env = {"PATH": "/usr/bin:/bin", "TFA_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    code = "import torch, tfa_tutorial as T; print(T.fast_mode() == (not torch.cuda.is_available()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_binder_and_make_do_not_set_the_mode():
    """The rule lives in tfa_tutorial/core/mode.py only: make lab / make notebooks / Binder do not set
    TFA_FAST (make test's nbval stage forces fast mode because the stored outputs are fast-mode)."""
    assert "TFA_FAST" not in "\n".join(ln for ln in (ROOT / "binder/start").read_text().splitlines()
                                       if not ln.lstrip().startswith("#"))
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lab:", "notebooks:"):
        body = makefile.split("\n" + target, 1)[1].split("\n\n", 1)[0]
        assert "TFA_FAST" not in body, target
    test_body = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    unit_line = next(ln for ln in test_body.splitlines() if "-m pytest tests" in ln and "echo" not in ln)
    assert "TFA_FAST" not in unit_line
