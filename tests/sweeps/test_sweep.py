import dataclasses
import json

import pytest
import torch
from torch_geometric.data import Data

import gnnagg
from gnnagg.cli import main as cli_main
from gnnagg.experiments.sweep import BUDGETS, DEFAULT_BENCHMARKS, build_tasks, parse_aggr
from gnnagg.sweeps import NodeTask, SweepResult, run_grid

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_graph(seed=0, n_per_class=10, classes=3, features=8):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    n = y.numel()
    x = torch.rand(n, features, generator=g) + torch.nn.functional.one_hot(y, features) * 2
    src = torch.randint(0, n, (4 * n,), generator=g)
    dst = torch.randint(0, n, (4 * n,), generator=g)
    keep = y[src] == y[dst]
    edge_index = torch.stack([src[keep], dst[keep]])
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    for c in range(classes):
        idx = (y == c).nonzero().view(-1)
        masks[0][idx[:3]] = True
        masks[1][idx[3:6]] = True
        masks[2][idx[6:]] = True
    return Data(x=x, y=y, edge_index=edge_index, train_mask=masks[0], val_mask=masks[1],
                test_mask=masks[2])


TASKS_FILE = '''
import torch
from gnnagg.sweeps import NodeTask
from tests_sweep_graph import tiny_graph

TASKS = [NodeTask(dataset=tiny_graph(0), model="sage", name="tiny-a", hidden=8, epochs=4,
                  patience=0),
         NodeTask(dataset=tiny_graph(1), model="gcn", name="tiny-b", hidden=8, epochs=4,
                  patience=0)]
'''


def test_parse_aggr():
    assert parse_aggr("lcm") == "lcm"
    assert parse_aggr("sum+max") == ["sum", "max"]


def test_sweep_with_a_pyg_model_and_the_table(tmp_path):
    from torch_geometric.nn import GraphSAGE

    data = tiny_graph()
    result = gnnagg.sweep(lambda: GraphSAGE(8, 8, 2, 3), data, aggrs=["sum", "mean", "lcm"],
                          seeds=2, epochs=3, patience=0, out_dir=str(tmp_path))
    assert isinstance(result, SweepResult)
    assert len(result.cells) == 6
    summary = result.summary()["custom"]
    for aggr in ("sum", "mean", "lcm"):
        tests = [c["test"] for c in result.cells if c["aggr"] == aggr]
        assert summary[aggr]["test"]["mean"] == pytest.approx(sum(tests) / 2)
        for cell in (c for c in result.cells if c["aggr"] == aggr):
            # The reported metric is the curve's value at the selected epoch.
            assert cell["test"] == cell["curve"][cell["best_epoch"] - 1]["test_acc"]
            assert cell["val"] == max(r["val_acc"] for r in cell["curve"])
    ranks = sorted(summary[a]["rank"] for a in summary)
    assert ranks == [1, 2, 3]
    best = min(summary, key=lambda a: summary[a]["rank"])
    assert summary[best]["test"]["mean"] == max(s["test"]["mean"] for s in summary.values())
    table = result.markdown()
    assert "| lcm" in table and "(1)" in table and "s/epoch" in table
    assert result.heatmap(str(tmp_path / "h.png")) and (tmp_path / "h.png").stat().st_size > 0
    # A second call finds every cell on disk and trains nothing.
    again = gnnagg.sweep(lambda: GraphSAGE(8, 8, 2, 3), data, aggrs=["sum", "mean", "lcm"],
                         seeds=2, epochs=3, patience=0, out_dir=str(tmp_path))
    assert [c["test"] for c in again.cells] == [c["test"] for c in result.cells]


def test_one_argument_builder_gets_the_aggregator():
    from torch_geometric.nn import SAGEConv

    seen = []

    class Net(torch.nn.Module):
        def __init__(self, aggr):
            super().__init__()
            seen.append(aggr)
            self.conv = SAGEConv(8, 3, aggr=gnnagg.aggr.resolve(aggr, channels=8))

        def forward(self, x, edge_index):
            return self.conv(x, edge_index)

    result = gnnagg.sweep(Net, tiny_graph(), aggrs=["max", ["sum", "mean"]], seeds=1, epochs=2)
    assert seen == ["max", ["sum", "mean"]]
    assert [c["aggr"] for c in result.cells] == ["max", "sum+mean"]


def test_a_changed_budget_is_a_new_cell(tmp_path):
    data = tiny_graph()
    a = run_grid([NodeTask(dataset=data, model="sage", name="t", hidden=8, epochs=2)], ["sum"],
                 [0], str(tmp_path))
    b = run_grid([NodeTask(dataset=data, model="sage", name="t", hidden=8, epochs=3)], ["sum"],
                 [0], str(tmp_path))
    assert a.cells[0]["epochs"] == 2 and b.cells[0]["epochs"] == 3
    assert len(list((tmp_path / "cells").rglob("*.json"))) == 2


def _write_tasks(tmp_path, monkeypatch):
    (tmp_path / "tests_sweep_graph.py").write_text(
        "import torch\nfrom torch_geometric.data import Data\n" +
        __import__("inspect").getsource(tiny_graph))
    (tmp_path / "bench.py").write_text(TASKS_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{tmp_path / 'bench.py'}:TASKS"


def test_interrupted_sweep_resumes_without_redoing_cells(tmp_path, monkeypatch, sigint_at_epoch):
    spec = _write_tasks(tmp_path, monkeypatch)
    argv = ["run", "sweep", "--aggrs", "sum", "lcm", "--benchmarks", spec, "--seeds", "1"]
    reference = tmp_path / "ref"
    assert cli_main(argv + ["--out-dir", str(reference)]) == 0
    out = tmp_path / "run"
    seen = sigint_at_epoch(7)  # the second cell's third epoch (4 epochs per cell)
    assert cli_main(argv + ["--out-dir", str(out)]) == 130
    finished = sorted((out / "cells").rglob("*.json"))
    assert len(finished) == 1
    stamp = finished[0].stat().st_mtime_ns
    before = seen["epochs"]
    assert cli_main(argv + ["--out-dir", str(out)]) == 0
    # 3 cells left, the interrupted one from its last checkpoint (epoch 2 done).
    assert seen["epochs"] - before == 2 + 4 + 4
    assert finished[0].stat().st_mtime_ns == stamp
    got = json.loads((out / "sweep.json").read_text())["cells"]
    want = json.loads((reference / "sweep.json").read_text())["cells"]
    assert [(c["task"], c["aggr"], c["test"], c["val"], c["best_epoch"]) for c in got] == \
        [(c["task"], c["aggr"], c["test"], c["val"], c["best_epoch"]) for c in want]
    assert (out / "sweep.md").read_text().count("tiny-") >= 2 and (out / "sweep.png").exists()


@pytest.mark.data("planetoid", "ogb", "gtn")
def test_quick_preset_grid_on_tiny_sizes(tmp_path):
    tasks = build_tasks(list(DEFAULT_BENCHMARKS), "quick", 16)
    kinds = [type(t).__name__ for t in tasks]
    assert kinds.count("SetTask") == 4 and kinds.count("NodeTask") == 6
    assert kinds.count("GraphTask") == 3 and kinds.count("HeteroTask") == 1
    tiny = {"SetTask": dict(train_sets=64, val_sets=16, test_sets=16, test_size=32, epochs=1),
            "NodeTask": dict(epochs=1, hidden=8), "GraphTask": dict(epochs=1, subset=16, eval_subset=512, hidden=8),
            "HeteroTask": dict(epochs=1, hidden=8)}
    tasks = [dataclasses.replace(t, **tiny[type(t).__name__]) for t in tasks]
    result = run_grid(tasks, ["sum", "lcm"], [0], str(tmp_path))
    assert len(result.cells) == len(tasks) * 2
    names = {t.name.split("/")[0]: t.name for t in tasks}
    assert result.metrics[names["ogbg-molesol"]] == "rmse"
    assert result.higher[names["ogbg-molesol"]] is False
    assert result.metrics[names["ogbg-molhiv"]] == "rocauc"
    for cell in result.cells:
        assert cell["epochs"] == 1 and cell["best_epoch"] == 1


def test_bad_options_fail_before_training(tmp_path, capsys):
    for argv, match in ((["--aggrs", "lcn"], "unknown aggregator"),
                        (["--benchmarks", "Coraa/sage"], "unknown dataset"),
                        (["--seeds", "0"], "--seeds"),
                        (["--benchmarks", "ACM/han"], "LATTE")):
        assert cli_main(["run", "sweep", "--out-dir", str(tmp_path), *argv]) == 2
        assert match in capsys.readouterr().err


def test_quick_and_full_budgets_fixed():
    assert set(BUDGETS) == {"quick", "full"}
    assert BUDGETS["full"]["set"]["test_size"] == 512


def test_input_projection_narrows_what_every_aggregator_sees():
    data = tiny_graph(0, features=8)
    seen = []

    class Recording(torch.nn.Module):  # a sum that records the message width
        def forward(self, x, index=None, ptr=None, dim_size=None, dim=-2):
            seen.append(x.size(-1))
            return torch.zeros(dim_size, x.size(-1)).index_add_(0, index, x)

    task = NodeTask(dataset=data, model="gin", name="p", hidden=6, input_projection=3)
    model = task.build("sum")
    for conv in model.model.convs:
        conv.aggr_module = Recording()
    out = model(data.x, data.edge_index)
    assert out.shape == (30, 3) and seen[0] == 3  # GIN's first layer aggregates its input
    assert model.lin.in_features == 8 and model.lin.out_features == 3
    plain = NodeTask(dataset=data, model="gin", name="p", hidden=6).build("sum")
    assert plain.convs[0].nn[0].in_features == 8  # no projection unless asked
    assert BUDGETS["quick"]["node"]["input_projection"] == 32


def test_ties_share_a_rank():
    def cell(aggr, test):
        return dict(task="t", aggr=aggr, seed=0, metric="acc", test=test, val=test,
                    best_epoch=1, epochs=1, seconds_per_epoch=0.1, peak_memory_mb=1.0,
                    parameters=10, curve=[])
    result = SweepResult(cells=[cell("a", 0.5), cell("b", 0.7), cell("c", 0.5), cell("d", 0.2)],
                         tasks=["t"], aggrs=["a", "b", "c", "d"], higher={"t": True},
                         metrics={"t": "acc"})
    ranks = {a: r["rank"] for a, r in result.summary()["t"].items()}
    assert ranks == {"b": 1, "a": 2, "c": 2, "d": 4}
    metric_table = result.markdown().split("Cost per cell")[0]
    rows = {line.split("|")[1].strip(): line for line in metric_table.splitlines()
            if line.startswith("| ") and not line.startswith("| aggregator")}
    assert "50.0 ± 0.0 (2=)" in rows["a"] and "**70.0 ± 0.0** (1)" in rows["b"]
    assert "20.0 ± 0.0 (4)" in rows["d"]
