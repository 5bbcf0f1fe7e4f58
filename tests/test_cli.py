import json
import subprocess
import sys

import pytest

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


def test_bench_aggr_small_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "gnnagg", "bench", "aggr", "--nodes", "200", "--edges", "1500",
         "--channels", "8", "--hub-degrees", "120", "--aggrs", "lcm", "gru",
         "--repeats", "1", "--check-nodes", "5", "--threads", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert len(result["cells"]) == 2 * 2 * 2
    assert all("error" not in c for c in result["cells"]), result["cells"]
    for key, check in result["checks"].items():
        assert check["max_abs_diff_gnnagg_vs_pyg_alone"] < 1e-5, key
    uniform_lcm = result["checks"]["uniform/lcm"]
    assert uniform_lcm["max_abs_diff_pyg_batched_vs_alone"] > 1e-3  # PyG's padding shows
    assert "| graph" in proc.stdout


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
