"""benchmarks/attribution_speed.py: the committed speed docs are what the recorded run renders to,
and the --device option works on CPU and fails clearly without CUDA."""
import json
from pathlib import Path

import pytest
import torch
from benchmark_modules import load_benchmark

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("attribution_speed")


def test_readme_speed_block_and_speed_md_are_rendered_from_the_recorded_json(bench):
    db = json.loads((ROOT / "docs" / "speed.json").read_text())
    readme = (ROOT / "README.md").read_text()
    assert readme.count(bench.BEGIN) == 1 and readme.count(bench.END) == 1
    block = bench.BEGIN + readme.split(bench.BEGIN, 1)[1].split(bench.END, 1)[0] + bench.END
    assert block == bench.render_readme_block(db)
    assert (ROOT / "docs" / "speed.md").read_text() == bench.render_md(db)
    assert (ROOT / "docs" / "images" / "gradcos_scaling.png").is_file()
    for key in ("command", "date", "machine", "load_average_start", "versions"):
        assert db[key], key
    assert "peers present" in block and "load average" in block


def test_missing_peer_rows_say_so(bench):
    db = json.loads((ROOT / "docs" / "speed.json").read_text())
    db["versions"]["dattri"] = None
    for key in ("gc_small", "gc_large"):
        db["raw"][key]["dattri"] = [{"error": "ModuleNotFoundError: No module named 'dattri'"}]
    text = bench.render_readme_block(db)
    assert "missing: dattri" in text and "not measured" in text


def test_device_cpu_explicit_runs_a_measurement(bench):
    assert bench.check_device("cpu") == "cpu"

    class Q(list):
        put = list.append

    q = Q()
    bench._run("w_gc_ours", 4, "cpu", q)
    assert "error" not in q[0] and q[0]["s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_a_clear_error(bench):
    with pytest.raises(SystemExit, match="sees no CUDA device.*--device cpu"):
        bench.check_device("cuda")
    with pytest.raises(SystemExit, match="must be 'cpu' or 'cuda"):
        bench.check_device("tpu")
