import argparse
import dataclasses
import json
import subprocess
import sys

import pytest
import torch
from torch_geometric.data import Data

from gnnagg import cli
from gnnagg.experiments import citation, node_runs
from gnnagg.experiments.citation import MODELS, config_for, run
from gnnagg.experiments.oversmoothing import analysis, smoothness

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_graph(num_classes=3, per_class=8, features=12, seed=0):
    """Class-dependent sparse features on a graph with mostly intra-class
    edges, and a public split."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(num_classes).repeat_interleave(per_class)
    n = y.numel()
    x = (torch.rand(n, features, generator=g) < 0.15).float()
    x[torch.arange(n), y] = 1.0
    x = x / x.sum(dim=1, keepdim=True)
    src = torch.randint(0, n, (4 * n,), generator=g)
    same = y.view(1, -1) == y[src].view(-1, 1)
    dst = torch.stack([torch.multinomial(row.float(), 1, generator=g) for row in same]).view(-1)
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    for c in range(num_classes):
        idx = (y == c).nonzero().view(-1)
        masks[0][idx[:2]] = True
        masks[1][idx[2:4]] = True
        masks[2][idx[4:]] = True
    return Data(x=x, y=y, edge_index=edge_index, train_mask=masks[0], val_mask=masks[1],
                test_mask=masks[2])


def small_config(model="dagnn", **changes):
    base = dataclasses.replace(citation.defaults_for(model, "Cora"), runs=2, epochs=6,
                               patience=2, hidden=8, K=3, train_per_class=2, val_per_class=2)
    return dataclasses.replace(base, **changes)


def finished(result):
    return [result["finished_runs"][f"run{r}"] for r in range(len(result["runs"]))]


@pytest.fixture
def tiny_data(monkeypatch):
    """The runner loads the tiny graph whatever --dataset says."""
    monkeypatch.setattr(citation, "load_data", lambda c: tiny_graph())


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_reports_the_selected_epoch(model):
    result = run(small_config(model, epochs=12, patience=0), tiny_graph())
    records = finished(result)
    assert result["summary"]["test_acc"]["n"] == 2 and result["complete"]
    for rec in records:
        curve = rec["curve"]
        assert len(curve) == rec["epochs"] == 12
        # The test accuracy reported is the curve's at the epoch of lowest
        # validation loss (the first such epoch).
        losses = [row["val_loss"] for row in curve]
        assert rec["epoch"] == losses.index(min(losses)) + 1
        assert rec["test_acc"] == curve[rec["epoch"] - 1]["test_acc"]
        assert rec["val_loss"] == curve[rec["epoch"] - 1]["val_loss"]
    mean = sum(r["test_acc"] for r in records) / 2
    assert result["summary"]["test_acc"]["mean"] == pytest.approx(mean, abs=1e-12)
    assert [r["test_acc"] for r in result["runs"]] == [r["test_acc"] for r in records]
    json.dumps(result)


def test_dagnn_stopping_rule_on_the_curve():
    result = run(small_config(epochs=40, patience=3, runs=3, lr=0.05), tiny_graph())
    stopped = 0
    for rec in finished(result):
        losses = [row["val_loss"] for row in rec["curve"]]

        def rule(e):  # the authors' test after epoch e (1-based)
            return e > 20 and losses[e - 1] > sum(losses[e - 4:e - 1]) / 3

        if rec["stopped"] == "early_stopping":
            stopped += 1
            assert rule(rec["epochs"])
        assert not any(rule(e) for e in range(1, rec["epochs"]))
    assert stopped >= 1  # the fixture exercises the rule


def test_select_val_acc_and_patience_stopping():
    result = run(small_config("gcn", epochs=30, patience=4, select="val_acc",
                              stopping="patience"), tiny_graph())
    for rec in finished(result):
        accs = [row["val_acc"] for row in rec["curve"]]
        assert rec["epoch"] == accs.index(max(accs)) + 1
        assert rec["test_acc"] == rec["curve"][rec["epoch"] - 1]["test_acc"]
        if rec["stopped"] == "early_stopping":
            assert rec["epochs"] - rec["epoch"] == 4


def test_random_split_and_other_aggregators():
    result = run(small_config(split="random", aggr="mean"), tiny_graph())
    assert result["summary"]["test_acc"]["n"] == 2
    result = run(small_config("sage", aggr="lcm", aggr_width=4, runs=1), tiny_graph())
    assert result["summary"]["test_acc"]["n"] == 1


def test_propagate_timing_comparison():
    result = run(small_config(runs=1, time_propagate_runs=1), tiny_graph())
    slow = result["finished_runs"]["propagate-run0"]
    # Same seed, same protocol, same numbers (up to float rounding).
    assert abs(slow["test_acc"] - result["runs"][0]["test_acc"]) < 1e-6
    assert result["propagate_timing"]["summary"]["seconds_per_run"]["n"] == 1


ARGV = ["run", "citation", "--model", "dagnn", "--runs", "3", "--epochs", "8", "--patience",
        "0", "--hidden", "8", "--K", "2"]


def strip_times(record):
    return {k: v for k, v in record.items() if k not in ("seconds", "cpu_seconds")}


def test_interrupted_experiment_resumes_to_the_same_numbers(tmp_path, tiny_data,
                                                            sigint_at_epoch):
    whole = tmp_path / "whole.json"
    assert cli.main(ARGV + ["--out", str(whole)]) == 0
    path = tmp_path / "cut.json"
    seen = sigint_at_epoch(12)  # run 1's 4th epoch: checkpoints after 3
    assert cli.main(ARGV + ["--out", str(path)]) == 130
    partial = json.loads(path.read_text())
    assert not partial["complete"] and sorted(partial["finished_runs"]) == ["run0"]
    before = seen["epochs"]
    assert cli.main(ARGV + ["--out", str(path)]) == 0
    # Run 0 is not redone; run 1 resumes after its 3rd epoch; run 2 is new.
    assert seen["epochs"] - before == (8 - 3) + 8
    a, b = json.loads(whole.read_text()), json.loads(path.read_text())
    assert b["complete"] and b["summary"]["test_acc"] == a["summary"]["test_acc"]
    for key in ("run0", "run1", "run2"):
        assert strip_times(b["finished_runs"][key]) == strip_times(a["finished_runs"][key])
    assert not any(p.name.startswith(".cut.json") for p in tmp_path.iterdir())


def test_rerun_with_other_options_is_refused(tmp_path, tiny_data, capsys):
    out = str(tmp_path / "r.json")
    argv = ARGV[:5] + ["1", "--epochs", "2", "--hidden", "8", "--out", out]
    assert cli.main(argv) == 0
    assert cli.main(argv + ["--lr", "0.02"]) == 2
    assert "lr: 0.01 then, 0.02 now" in capsys.readouterr().err
    assert cli.main(argv[:5] + ["2"] + argv[6:]) == 0  # more runs: resumed, not refused
    assert sorted(json.loads(open(out).read())["finished_runs"]) == ["run0", "run1"]


@pytest.mark.parametrize("bad, message", [
    (["--lr", "-1"], "--lr must be > 0"),
    (["--runs", "0"], "--runs must be > 0"),
    (["--epochs", "0"], "--epochs must be > 0"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--model", "gat"], "unknown --model 'gat'"),
    (["--dataset", "Nope"], "unknown dataset 'Nope'"),
    (["--split", "fixed"], "unknown --split 'fixed'"),
    (["--stopping", "never"], "unknown --stopping 'never'"),
    (["--aggr", "nope"], "unknown aggregator 'nope'"),
    (["--depths", "0", "--analysis-models", "gcn"], "--depths sweeps num_layers of gcn"),
    (["--model", "gcn", "--time-propagate-runs", "1"], "use --model dagnn"),
])
def test_bad_options_fail_before_data_loads(monkeypatch, capsys, bad, message):
    def no_loading(c):
        raise AssertionError("data loaded before the options were checked")

    monkeypatch.setattr(citation, "load_data", no_loading)
    assert cli.main(["run", "citation"] + bad) == 2
    assert message in capsys.readouterr().err


def test_no_public_split():
    data = tiny_graph()
    del data.train_mask
    with pytest.raises(ValueError, match="no public split"):
        run(small_config(), data)


def test_help_and_bad_numbers_do_not_import_torch():
    code = ("import sys, gnnagg.experiments.citation\n"
            "assert 'torch' not in sys.modules\n"
            "import argparse\n"
            "parser = argparse.ArgumentParser()\n"
            "gnnagg.experiments.citation.add_arguments(parser)\n"
            "try:\n    gnnagg.experiments.citation.main(parser.parse_args(['--lr', '-1']))\n"
            "except ValueError as exc:\n    print(exc, file=sys.stderr)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "from gnnagg.cli import main\n"
            "try:\n    main(['run', 'citation', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "--lr must be > 0" in proc.stderr
    assert "--aggr-width" in proc.stdout and "per model and data set" in proc.stdout


def parse(argv):
    parser = argparse.ArgumentParser()
    citation.add_arguments(parser)
    return parser.parse_args(argv)


def test_config_defaults_and_overrides():
    cfg = config_for(parse(["--dataset", "Cora"]))
    assert (cfg.model, cfg.K, cfg.dropout, cfg.weight_decay, cfg.split, cfg.stopping) == \
        ("dagnn", 10, 0.8, 0.005, "public", "dagnn")
    cfg = config_for(parse(["--dataset", "CiteSeer", "--dropout", "0.3"]))
    assert (cfg.weight_decay, cfg.dropout) == (0.02, 0.3)
    cfg = config_for(parse(["--dataset", "Computers"]))
    assert (cfg.epochs, cfg.patience, cfg.split, cfg.lcc) == (3000, 300, "random", True)
    cfg = config_for(parse(["--model", "gcn", "--dataset", "CS", "--depths", "1", "2"]))
    assert (cfg.hidden, cfg.split, cfg.depths, cfg.patience) == (16, "random", (1, 2), 10)
    assert config_for(parse(["--model", "sage"])).aggr == "mean"
    cfg = config_for(parse(["--dataset", "ogbn-arxiv"]))
    assert (cfg.select, cfg.patience, cfg.normalize_features) == ("val_acc", 0, False)


def test_oversmoothing_analysis_and_plot(tmp_path, monkeypatch):
    # The analysis takes each model's defaults; shorten them for the test.
    for name in ("gcn", "dagnn"):
        spec = MODELS[name]
        monkeypatch.setitem(MODELS, name, dataclasses.replace(
            spec, defaults=dict(spec.defaults, epochs=4, hidden=4), dataset_defaults={}))
    cfg = small_config(depths=(1, 2), analysis_models=("gcn", "dagnn"), runs=1,
                       plot=str(tmp_path / "o.png"))
    out = tmp_path / "o.json"
    result = analysis(cfg, tiny_graph(), out=str(out))
    assert [c["depth"] for c in result["curves"]["dagnn"]] == [1, 2]
    rec = result["finished_runs"]["gcn-num_layers2-run0"]
    assert result["curves"]["gcn"][1]["smv"]["mean"] == rec["smv"]
    assert 0.0 <= rec["smv"] <= 1.0 and rec["test_acc"] == rec["curve"][rec["epoch"] - 1][
        "test_acc"]
    assert (tmp_path / "o.png").stat().st_size > 1000
    # Rerunning resumes: nothing is trained again.
    monkeypatch.setattr(node_runs, "train_run", None)
    assert analysis(cfg, tiny_graph(), out=str(out))["curves"] == result["curves"]


def test_smoothness_metric():
    same = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])
    assert smoothness(same) == pytest.approx(0.0, abs=1e-7)
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert smoothness(opposite) == pytest.approx(1.0)
    # Two orthogonal rows: distance sqrt(2), half of it per pair.
    assert smoothness(torch.eye(2)) == pytest.approx(2 ** 0.5 / 2)
    with pytest.raises(ValueError):
        smoothness(torch.ones(1, 3))


@pytest.mark.data("planetoid")
def test_cora_through_the_command_line(tmp_path):
    out = tmp_path / "cora.json"
    assert cli.main(["run", "citation", "--model", "gcn", "--dataset", "Cora", "--runs", "1",
                     "--epochs", "3", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result["num_nodes"], result["num_edges"]) == (2708, 10556)
    assert result["config"]["hidden"] == 16 and result["complete"]
