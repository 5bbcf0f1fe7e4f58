import json
import subprocess
import sys

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
