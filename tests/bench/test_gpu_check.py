"""experiments/gpu/check.sh, the one-command GPU check, end to end on the
CPU in its dry mode (tiny sizes)."""
import importlib.util
import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.usefixtures("one_thread")


def _check_module():
    spec = importlib.util.spec_from_file_location(
        "gpu_check", os.path.join(ROOT, "experiments", "gpu", "check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_check_runs_every_part_and_writes_one_json(tmp_path, monkeypatch):
    # The Python that check.sh runs, in this process (the script adds only
    # PYTHONPATH=.): every part but the tests runs here on tiny sizes.
    out = tmp_path / "check.json"
    check = _check_module()
    code = check.main(["--device", "cpu", "--dry", "--out", str(out)])
    report = json.loads(out.read_text())
    parts = report["parts"]
    assert list(parts) == list(check.PARTS)
    assert (report["device"], report["dry"]) == ("cpu", True)
    assert parts["tests"]["status"] == "ok" and "1 passed" in parts["tests"]["summary"]

    bench = parts["bench"]["result"]
    assert [g["name"] for g in bench["graphs"]] == ["uniform", "power-law (hub 20)"]
    assert len(bench["cells"]) == 2 * 4 * 2 and all("error" not in c for c in bench["cells"])
    for key, checked in bench["checks"].items():
        assert checked["max_abs_diff_gnnagg_vs_pyg_alone"] < 1e-5, key
    assert all(c["gemm"]["gflop"] > 0 for c in bench["cells"]
               if c["aggr"] != "sum" and c["impl"] == "gnnagg")

    hub = parts["hub"]
    assert hub["recurrent_steps"]["gnnagg"]["max_degree"] == 50
    assert hub["recurrent_steps"]["gnnagg"]["forward_us_per_step"] > 0

    token = parts["token_graph"]
    assert token["synthetic_states"] and token["status"] == "ok"
    rows = token["result"]["results"]
    assert [r["chunk"] for r in rows] == [8, 32] and rows[0]["edges"] == rows[1]["edges"] > 0

    ogb = parts["ogb"]
    data = os.environ.get("GNNAGG_DATA")
    if importlib.util.find_spec("ogb") is None or not data or not os.path.isdir(data):
        assert ogb["status"] in ("skipped", "failed")
    else:
        assert ogb["dataset"] == "ogbg-molesol" and ogb["status"] == "ok", ogb
        for aggr in ("sum", "lcm", "gru"):
            assert ogb["runs"][aggr]["best"]["valid_rmse"] > 0
    assert code == (0 if ogb["status"] in ("ok", "skipped") else 1)


def test_check_script_help_and_bad_device():
    script = os.path.join(ROOT, "experiments", "gpu", "check.sh")
    proc = subprocess.run(["bash", script, "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "token_graph" in proc.stdout and "--dry" in proc.stdout
    if not __import__("torch").cuda.is_available():
        check = _check_module()
        assert check.main(["--device", "cuda", "--out", os.devnull]) == 2


def test_ogb_part_is_skipped_with_a_reason_without_the_package(monkeypatch):
    check = _check_module()
    monkeypatch.setattr(check.importlib.util, "find_spec", lambda name: None)
    result = check.part_ogb(type("Args", (), {"dry": True, "device": "cpu",
                                              "ogb_dataset": None})())
    assert result["status"] == "skipped" and "ogb package is not importable" in result["reason"]
