import json
import subprocess
import sys

import pytest
import torch

from gnnagg.cli import main as cli
from gnnagg.datasets.store import MissingDataError

pytestmark = pytest.mark.usefixtures("one_thread")
needs_ogb = pytest.mark.data("ogb")  # the offline OGB copies

TINY = ["--model", "gin", "--batch-size", "8", "--num-layers", "2", "--hidden-channels", "16",
        "--subset", "24"]


@pytest.fixture(scope="module")
def molesol():
    from gnnagg.datasets.ogb import load_graph_dataset

    return load_graph_dataset("ogbg-molesol")


class BinaryStandIn:
    """molesol with its solubility thresholded at the median: a binary task
    that OGB's ogbg-molhiv Evaluator (ROC-AUC) scores, without processing
    molhiv's 41,127 molecules in a test."""

    def __init__(self, esol):
        from torch_geometric.data import Data

        d = esol._data
        self._data = Data(x=d.x, edge_index=d.edge_index, edge_attr=d.edge_attr,
                          y=(d.y > d.y.median()).float())
        self.slices, self.num_tasks, self.task_type = esol.slices, 1, "binary classification"
        self._esol = esol

    def get_idx_split(self):
        return self._esol.get_idx_split()


def read(path):
    return json.loads(path.read_text())


def strip(curve):
    return [{k: v for k, v in row.items() if not k.endswith("seconds")} for row in curve]


@needs_ogb
@pytest.mark.parametrize("dataset, metric, table", [("ogbg-molesol", "rmse", "RMSE"),
                                                    ("ogbg-molhiv", "rocauc", "ROC-AUC (%)")])
def test_reported_metric_is_the_curve_at_the_selected_epoch(molesol, tmp_path, monkeypatch,
                                                            capsys, dataset, metric, table):
    from gnnagg.experiments import ogb

    if dataset == "ogbg-molhiv":
        monkeypatch.setattr(ogb, "_loaders", lambda: {"ogbg": lambda name: BinaryStandIn(molesol)})
    out = tmp_path / "r.json"
    assert cli(["run", "ogb", "--dataset", dataset, *TINY, "--runs", "2", "--epochs", "4",
                "--out", str(out)]) == 0
    result = read(out)
    assert result["complete"] and result["metric"] == metric
    assert result["monitor"] == f"valid_{metric}"
    pick = max if metric == "rocauc" else min  # RMSE: lower is better
    for record in result["runs"]:
        valid = [row[f"valid_{metric}"] for row in record["curve"]]
        assert record["best_epoch"] == valid.index(pick(valid)) + 1
        assert record["best"] == record["curve"][record["best_epoch"] - 1]
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    summary = result["summary"][f"test_{metric}"]
    tests = [r["best"][f"test_{metric}"] for r in result["runs"]]
    assert summary["n"] == 2 and summary["mean"] == pytest.approx(sum(tests) / 2, abs=1e-12)
    # One scale per metric, named: RMSE as is, ROC-AUC in percent.
    scale, digits = (1, 3) if metric == "rmse" else (100, 2)
    shown = f"{summary['mean'] * scale:.{digits}f} +- {summary['std'] * scale:.{digits}f}"
    assert f"test {table}" in result["table"] and shown in result["table"]
    assert result["table"] in capsys.readouterr().out


@needs_ogb
def test_interrupted_experiment_resumes_to_the_same_numbers(molesol, tmp_path,
                                                            sigint_at_epoch):
    argv = ["run", "ogb", "--dataset", "ogbg-molesol", *TINY, "--aggr", "lcm", "--runs", "2",
            "--epochs", "2"]
    assert cli(argv + ["--out", str(tmp_path / "whole.json")]) == 0
    whole = read(tmp_path / "whole.json")

    seen = sigint_at_epoch(2 + 2)  # at the start of seed 1's second epoch
    out = tmp_path / "b.json"
    assert cli(argv + ["--out", str(out)]) == 130
    partial = read(out)
    assert not partial["complete"] and list(partial["finished_runs"]) == ["seed=0"]
    assert (tmp_path / ".b.json.checkpoints" / "seed=1.pt").exists()
    assert cli(argv + ["--out", str(out)]) == 0
    assert seen["epochs"] == 4 + 1  # only seed 1's second epoch was trained again
    resumed = read(out)
    assert resumed["finished_runs"]["seed=0"] == partial["finished_runs"]["seed=0"]  # not redone
    for a, b in zip(whole["runs"], resumed["runs"]):
        assert strip(a["curve"]) == strip(b["curve"]) and a["best"]["test_rmse"] == \
            b["best"]["test_rmse"]
    assert resumed["summary"] == whole["summary"]
    assert not (tmp_path / ".b.json.checkpoints").exists()


@needs_ogb
def test_rerun_adds_seeds_and_refuses_other_options(molesol, tmp_path, capsys):
    from gnnagg.train import engine

    out = tmp_path / "r.json"
    argv = ["run", "ogb", "--dataset", "ogbg-molesol", *TINY, "--epochs", "1", "--out", str(out)]
    assert cli(argv + ["--runs", "1"]) == 0
    first = read(out)["finished_runs"]["seed=0"]
    calls = []
    real = engine._set_epoch
    engine._set_epoch = lambda data, epoch: (calls.append(epoch), real(data, epoch))
    try:
        assert cli(argv + ["--runs", "2"]) == 0  # only the new seed trains
    finally:
        engine._set_epoch = real
    assert calls == [0] and read(out)["finished_runs"]["seed=0"] == first
    capsys.readouterr()
    assert cli(argv + ["--runs", "2", "--lr", "0.01"]) == 2
    assert "lr: 0.001 then, 0.01 now" in capsys.readouterr().err
    assert cli(argv[:-2] + ["--epochs", "2", "--out", str(out)]) == 2
    assert "epochs: 1 then, 2 now" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "ogbg-foo"], "unknown OGB data set 'ogbg-foo'; OGB's graph and node "
                                "property prediction sets are: ogbg-code2"),
    (["--dataset", "ogbg-molesl"], "did you mean ogbg-molesol"),
    (["--dataset", "molhiv"], "ogbn-arxiv"),
    (["--dataset", "ogbg-ppa"], "ogbg-ppa (multiclass classification) is not supported"),
    (["--dataset", "ogbn-proteins"], "ogbn-proteins is not supported"),
    (["--lr", "-1"], "--lr must be > 0"),
    (["--dropout", "1"], "--dropout must be in [0, 1)"),
    (["--model", "sage"], "unknown --model 'sage'"),
    (["--jk", "max"], "unknown --jk 'max'"),
    (["--aggr", "sum,nope"], "unknown aggregator 'nope'"),
    (["--batch-size", "30", "--world-size", "4"], "divisible by --world-size"),
    (["--dataset", "ogbn-arxiv", "--model", "gcn", "--jk", "sum", "--world-size", "2"],
     "--jk, --world-size: only for graph property prediction"),
    (["--dataset", "ogbn-arxiv", "--model", "gcn", "--batch-size", "64", "--pooling", "max"],
     "--batch-size, --pooling: only for graph"),
    (["--checkpoint-dir", "ckpt"], "give --out too"),
    (["--device", "gpu0"], "device 'gpu0'"),
])
def test_bad_options_fail_before_any_data_work(monkeypatch, capsys, argv, message):
    from gnnagg.experiments import ogb

    def no_data():
        raise AssertionError("data was loaded")

    monkeypatch.setattr(ogb, "_loaders", no_data)
    assert cli(["run", "ogb", *argv]) == 2
    assert message in capsys.readouterr().err


def test_help_and_unknown_names_import_no_torch():
    code = ("import sys, contextlib, io\n"
            "from gnnagg.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as f:\n"
            "    try:\n"
            "        main(['run', 'ogb', '--help'])\n"
            "    except SystemExit as e:\n"
            "        assert e.code == 0\n"
            "assert '--checkpoint-dir' in f.getvalue() and '(default: 0.001)' in f.getvalue()\n"
            "from gnnagg.experiments.ogb import OGBConfig, dataset_info\n"
            "assert dataset_info('ogbg-molfreesolv')['eval metric'] == 'rmse'\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_node_task_on_a_stand_in_with_amp_and_resumption(tmp_path, monkeypatch,
                                                         sigint_at_epoch):
    """ogbn sets are not offline: the node path runs on a tiny stand-in with
    ogbn-arxiv's name (and Evaluator), in bfloat16, interrupted and resumed."""
    from torch_geometric.data import Data

    from gnnagg.experiments import ogb

    class StandIn:
        def __init__(self):
            gen = torch.Generator().manual_seed(0)
            y = torch.arange(30) % 3
            x = torch.nn.functional.one_hot(y, 3).float() + 0.1 * torch.randn(30, 3, generator=gen)
            ring = torch.arange(30)
            self.data = Data(x=x, edge_index=torch.stack([ring, (ring + 1) % 30]),
                             y=y.view(-1, 1))

        def __getitem__(self, i):
            return self.data

        def get_idx_split(self):
            p = torch.randperm(30, generator=torch.Generator().manual_seed(1))
            return {"train": p[:18], "valid": p[18:24], "test": p[24:]}

    monkeypatch.setattr(ogb, "_loaders", lambda: {"ogbn": lambda name: StandIn()})
    argv = ["run", "ogb", "--dataset", "ogbn-arxiv", "--model", "sage", "--aggr", "mean",
            "--runs", "2", "--epochs", "30", "--lr", "0.05", "--num-layers", "2",
            "--hidden-channels", "16", "--amp"]
    assert cli(argv + ["--out", str(tmp_path / "whole.json")]) == 0
    whole = read(tmp_path / "whole.json")
    assert whole["metric"] == "acc" and whole["summary"]["test_acc"]["n"] == 2
    assert whole["summary"]["valid_acc"]["mean"] > 0.6  # separable features: learnt
    assert "valid accuracy (%)" in whole["table"]
    for record in whole["runs"]:
        valid = [row["valid_acc"] for row in record["curve"]]
        assert record["best"]["valid_acc"] == max(valid)
        assert record["best"] == record["curve"][valid.index(max(valid))]
    sigint_at_epoch(30 + 15)  # seed 1's epoch 15
    ckpt = tmp_path / "ckpt"
    argv += ["--out", str(tmp_path / "b.json"), "--checkpoint-dir", str(ckpt)]
    assert cli(argv) == 130 and (ckpt / "seed=1.pt").exists()
    assert cli(argv) == 0
    resumed = read(tmp_path / "b.json")
    assert [strip(r["curve"]) for r in resumed["runs"]] == [strip(r["curve"]) for r in whole["runs"]]
    assert not (ckpt / "seed=1.pt").exists()


@needs_ogb
def test_fast_loader_equals_pyg_loader(molesol):
    from torch_geometric.loader import DataLoader

    from gnnagg.datasets.ogb import FastGraphLoader

    ids = torch.tensor([5, 0, 17, 3, 900, 11])
    fast = list(FastGraphLoader(molesol, ids, batch_size=4))
    ref = list(DataLoader(molesol[ids], batch_size=4))
    assert len(fast) == len(ref) == 2
    for a, b in zip(fast, ref):
        assert a.num_graphs == b.num_graphs
        for key in ("x", "edge_index", "edge_attr", "y", "batch", "ptr"):
            assert torch.equal(a[key], b[key]), key


def test_missing_data_names_files(tmp_path, monkeypatch):
    import ogb.graphproppred.dataset_pyg as pyg_ds

    from gnnagg.datasets.ogb import load_graph_dataset

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(pyg_ds, "decide_download", offline)
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingDataError) as info:
        load_graph_dataset("ogbg-molfreesolv")
    message = str(info.value)
    assert "ogb/ogbg_molfreesolv/raw/node-feat.csv.gz" in message
    assert str(tmp_path / "empty") in message
