import json
import subprocess
import sys

import pytest
import torch

from gnnagg.cli import EXPERIMENTS, main


def test_help_lists_commands(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "run" in out and "bench" in out


def test_run_lists_experiments(capsys):
    try:
        main(["run", "--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    for name in EXPERIMENTS:
        assert name in out


@pytest.mark.usefixtures("one_thread")
def test_bench_aggr_small_writes_json(tmp_path, capsys):
    # In this process (the default spawns one process per cell, which takes
    # minutes here); the measurement code is the same.
    out = tmp_path / "bench.json"
    nodes, edges, channels = 200, 1500, 8
    assert main(["bench", "aggr", "--nodes", str(nodes), "--edges", str(edges), "--channels",
                 str(channels), "--hub-degrees", "120", "--aggrs", "lcm", "gru", "--repeats", "1",
                 "--check-nodes", "5", "--threads", "1", "--device", "cpu", "--in-process",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["cells"]) == 2 * 2 * 2
    assert all("error" not in c for c in result["cells"]), result["cells"]
    for key, check in result["checks"].items():
        assert check["max_abs_diff_gnnagg_vs_pyg_alone"] < 1e-5, key
    uniform_lcm = result["checks"]["uniform/lcm"]
    assert uniform_lcm["max_abs_diff_pyg_batched_vs_alone"] > 1e-3  # PyG's padding shows
    stdout = capsys.readouterr().out
    assert "| graph" in stdout and "GEMM bound reached" in stdout
    assert "pyg/gnnagg forward_backward, uniform, lcm" in result["ratios"]
    # The GEMM-only bound counts exactly the products the kernels need:
    # LCM: the leaves' projection (forward, two in backward) and, per merge
    # of two elements, one projection of both (2 x H x 6H) and two of its
    # gradient; GRU: per element one input projection and, after the first
    # step, one hidden projection, each with two gradient products.
    h = channels
    for graph in result["graphs"]:
        deg = torch.bincount(_index(graph), minlength=nodes)
        e, k = int(deg.sum()), int((deg > 0).sum())
        expected = {"lcm": 6 * e * h * h + 72 * h * h * (e - k), "gru": 18 * h * h * (2 * e - k)}
        for aggr, flops in expected.items():
            cell = next(c for c in result["cells"] if c["graph"] == graph["name"]
                        and c["aggr"] == aggr and c["impl"] == "gnnagg")
            assert cell["gemm"]["gflop"] * 1e9 == pytest.approx(flops, rel=1e-9), (graph, aggr)
            assert 0 < cell["gemm"]["alone_s"]
    pyg_lcm = next(c for c in result["cells"] if c["graph"] == "uniform" and c["aggr"] == "lcm"
                   and c["impl"] == "pyg")
    ours_lcm = next(c for c in result["cells"] if c["graph"] == "uniform" and c["aggr"] == "lcm"
                    and c["impl"] == "gnnagg")
    assert pyg_lcm["gemm"]["gflop"] > ours_lcm["gemm"]["gflop"]  # PyG merges padding too


def _index(graph):
    from gnnagg.bench.aggr import make_graph

    return make_graph({k: graph[k] for k in ("kind", "nodes", "edges", "seed", "hub")
                       if k in graph})


def test_bench_aggr_rejects_bad_options(capsys):
    assert main(["bench", "aggr", "--nodes", "0", "--in-process"]) == 2
    assert "--nodes must be >= 1" in capsys.readouterr().err


def _run(args, env=None, timeout=60):
    import os

    full = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "gnnagg", *args], capture_output=True,
                          text=True, timeout=timeout, env=full)


def test_help_is_fast_and_shows_defaults():
    # --help imports no runner's heavy dependencies (torch, PyG): see
    # tests/test_layering.py and each runner's test; here the defaults.
    proc = _run(["run", "citation", "--help"])
    assert proc.returncode == 0
    assert "(default: dagnn)" in proc.stdout and "(default: Cora)" in proc.stdout
    proc = _run(["bench", "aggr", "--help"])
    assert proc.returncode == 0 and "(default:" in proc.stdout


@pytest.mark.parametrize("value", ["abc", "0", "-2"])
def test_bad_thread_count_names_the_variable(value):
    proc = _run(["run", "generalization", "--quick"], env={"GNNAGG_THREADS": value})
    assert proc.returncode == 2
    assert "GNNAGG_THREADS" in proc.stderr and repr(value) in proc.stderr


def test_out_is_checked_before_any_work(tmp_path):
    import os

    folder = tmp_path / "a-folder"
    folder.mkdir()
    proc = _run(["run", "generalization", "--quick", "--out", str(folder)])
    assert proc.returncode == 2 and "is a folder" in proc.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who may write anywhere")
        proc = _run(["run", "generalization", "--quick", "--out", str(locked / "r.json")])
        assert proc.returncode == 2 and "not writable" in proc.stderr
    finally:
        os.chmod(locked, 0o700)


def test_tests_never_use_the_users_cache():
    import os
    from pathlib import Path

    cache = Path(os.environ["GNNAGG_CACHE"]).resolve()
    assert Path.home() / ".cache" not in cache.parents or "gnnagg-test-cache" in str(cache)
