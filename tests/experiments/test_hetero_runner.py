"""``gnnagg run hetero`` on a tiny typed graph (the GTN loader is replaced)."""
import json
import subprocess
import sys

import pytest
import torch
from torch_geometric.data import HeteroData

import gnnagg.experiments.hetero as hetero
from gnnagg import cli
from gnnagg.experiments.hetero import MODELS, HeteroConfig, run, validate

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_graph(seed=0):
    g = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["paper"].x = (torch.rand(12, 6, generator=g) > 0.5).float().to_sparse()
    data["author"].x = (torch.rand(8, 6, generator=g) > 0.5).float().to_sparse()
    data["subject"].x = torch.eye(3, 6)
    pa = torch.stack([torch.arange(12), torch.randint(0, 8, (12,), generator=g)])
    ps = torch.stack([torch.arange(12), torch.arange(12) % 3])
    data["paper", "PA", "author"].edge_index = pa
    data["author", "AP", "paper"].edge_index = pa.flip(0)
    data["paper", "PS", "subject"].edge_index = ps
    data["subject", "SP", "paper"].edge_index = ps.flip(0)
    data["paper"].y = torch.arange(12) % 3
    split = torch.arange(12) % 4
    data["paper"].train_mask = split < 2
    data["paper"].val_mask = split == 2
    data["paper"].test_mask = split == 3
    data.target_node_type = "paper"
    data.num_classes = 3
    return data


@pytest.fixture(autouse=True)
def tiny_data(monkeypatch):
    loaded = []
    monkeypatch.setattr(hetero, "load_data", lambda name: loaded.append(name) or tiny_graph())
    return loaded


def small(**kwargs):
    options = dict(epochs=3, seeds=1, hidden=8, patience=0)
    options.update(kwargs)
    return HeteroConfig(**options)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_reported_scores_are_the_curve_at_the_selected_epoch(model):
    config = small(model=model, seeds=2, monitor="val_macro_f1" if model == "rgcn" else "val_loss")
    result = run(config)
    records = [result["finished_runs"][f"ACM/seed{s}"] for s in (0, 1)]
    for record in records:
        row = record["curve"][record["best_epoch"] - 1]
        assert len(record["curve"]) == record["epochs"] == 3
        for key in ("test_macro_f1", "test_micro_f1", "val_macro_f1", "val_loss"):
            assert record[key] == row[key]
        best = min if config.monitor == "val_loss" else max
        assert row[config.monitor] == best(r[config.monitor] for r in record["curve"])
    summary = result["summary"]["ACM"]
    assert summary["test_macro_f1"]["mean"] == pytest.approx(
        sum(r["test_macro_f1"] for r in records) / 2)
    assert ("attention" in summary) == (model == "latte")


@pytest.mark.parametrize("options", [
    dict(features="tfidf", edge_threshold=0.5, proximity=0.5, negatives=1),
    dict(features="row", edge_weight="message", layer_pooling="max", input_projection=False),
    dict(edge_weight="none", cumulative=True, inductive=True, decay_biases=False, aggr="gru"),
    dict(order=1, heads=1, layer_pooling="last", init="torch"),
    dict(num_neighbors=(2, -1), inductive=True),
])
def test_latte_options_run(options):
    result = run(small(**options))
    record = result["finished_runs"]["ACM/seed0"]
    assert 0.0 <= record["test_macro_f1"] <= 1.0
    layers = record["attention"]
    assert len(layers) == options.get("order", 2)
    for means in layers.values():
        assert sum(means.values()) == pytest.approx(1.0)
        assert list(means)[-1] == "self"


def test_sampled_training_draws_around_the_training_nodes_every_epoch(monkeypatch):
    import gnnagg.datasets.transforms as transforms

    calls, real = [], transforms.sample_neighbors

    def spy(edges, sizes, seeds, fanouts, generator=None):
        calls.append((edges, seeds, tuple(fanouts)))
        return real(edges, sizes, seeds, fanouts, generator)

    monkeypatch.setattr(transforms, "sample_neighbors", spy)
    data = tiny_graph()
    record = run(small(model="sage", num_neighbors=(3, 2), inductive=True))["finished_runs"]
    assert len(calls) == record["ACM/seed0"]["epochs"] == 3  # one draw per epoch (full batch)
    train, hidden = data["paper"].train_mask, data["paper"].val_mask | data["paper"].test_mask
    for edges, seeds, fanouts in calls:
        assert fanouts == (3, 2) and torch.equal(seeds["paper"], train.nonzero().view(-1))
        # drawn from the inductive training graph: no validation or test paper
        assert not hidden[edges["author", "AP", "paper"][1]].any()
    # the authors' protocol: validation and test nodes predicted on their own samples
    calls.clear()
    run(small(model="sage", num_neighbors=(3, 2), sampled_evaluation=True))
    split = {name: data["paper"][f"{name}_mask"].nonzero().view(-1).tolist()
             for name in ("train", "val", "test")}
    drawn = [[n for n, idx in split.items() if seeds["paper"].tolist() == idx][0]
             for _, seeds, _ in calls]
    assert drawn == ["train", "val", "test"] * 3


def test_plot_is_written(tmp_path):
    plot = tmp_path / "attention.png"
    assert cli.main(["run", "hetero", "--epochs", "2", "--seeds", "2", "--hidden", "8",
                     "--dataset", "ACM", "imdb", "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_interrupted_run_resumes_to_the_same_numbers(tmp_path, sigint_at_epoch, tiny_data):
    argv = ["run", "hetero", "--epochs", "3", "--seeds", "2", "--hidden", "8", "--patience", "0",
            "--proximity", "0.5", "--num-neighbors", "2", "1"]  # both draw random numbers
    reference = tmp_path / "reference.json"
    assert cli.main(argv + ["--out", str(reference)]) == 0
    out = tmp_path / "r.json"
    seen = sigint_at_epoch(5)  # seed 0 has 3 epochs; stop at the 2nd epoch of seed 1
    assert cli.main(argv + ["--out", str(out)]) == 130
    partial = json.loads(out.read_text())
    assert list(partial["finished_runs"]) == ["ACM/seed0"] and not partial["complete"]
    assert cli.main(argv + ["--out", str(out)]) == 0
    assert seen["epochs"] == 5 + 2  # seed 0 not redone, seed 1 resumed after its epoch 1
    want = json.loads(reference.read_text())["finished_runs"]
    got = json.loads(out.read_text())["finished_runs"]
    for key in want:
        for k in ("test_macro_f1", "test_micro_f1", "val_loss", "best_epoch", "attention"):
            assert got[key][k] == want[key][k], (key, k)
        assert [r["loss"] for r in got[key]["curve"]] == [r["loss"] for r in want[key]["curve"]]


def test_changed_options_are_refused(tmp_path, capsys):
    out = str(tmp_path / "r.json")
    argv = ["run", "hetero", "--model", "rgcn", "--epochs", "1", "--seeds", "1", "--hidden", "8"]
    assert cli.main(argv + ["--out", out]) == 0
    assert cli.main(argv + ["--out", out, "--lr", "0.5"]) == 2
    assert "lr" in capsys.readouterr().err
    assert cli.main(argv + ["--out", out, "--seeds", "2"]) == 0  # more seeds resume


@pytest.mark.parametrize("argv,message", [
    (["--lr", "-1"], "--lr"),
    (["--dataset", "Cora"], "--dataset"),
    (["--heads", "3"], "divisible"),
    (["--edge-threshold", "2"], "--edge-threshold"),
    (["--model", "han", "--plot", "x.png"], "--plot"),
    (["--aggr", "nonsense"], "unknown aggregator"),
    (["--features", "binary"], "--features"),
    (["--model", "gat"], "--model"),
    (["--num-neighbors", "25", "0"], "--num-neighbors"),
    (["--sampled-evaluation"], "needs --num-neighbors"),
])
def test_bad_options_fail_before_any_data(argv, message, capsys, tiny_data):
    assert cli.main(["run", "hetero", *argv]) == 2
    assert message in capsys.readouterr().err
    assert tiny_data == []


def test_model_defaults_and_dataset_names():
    from gnnagg.datasets.gtn import GTN_DATASETS

    assert set(hetero.DATASETS) == set(GTN_DATASETS)
    args = cli._entry_parser("run", "hetero")[1].parse_args(["--model", "han", "--dataset", "dblp"])
    config = hetero.config_from(args)
    assert (config.lr, config.hidden, config.heads, config.dataset) == (5e-3, 64, 8, ("DBLP",))
    validate(config)


def test_results_table_assembles_files(tmp_path):
    from pathlib import Path

    files = []
    for model, extra in (("latte", ["--order", "1"]), ("latte", ["--inductive"]), ("rgcn", [])):
        files.append(str(tmp_path / f"{model}{len(files)}.json"))
        assert cli.main(["run", "hetero", "--model", model, "--epochs", "1", "--seeds", "2",
                         "--hidden", "8", "--dataset", "ACM", "DBLP", *extra,
                         "--out", files[-1]]) == 0
    script = Path(__file__).parents[2] / "experiments" / "hetero" / "table.py"
    out = subprocess.run([sys.executable, str(script), *files], capture_output=True, text=True,
                         check=True).stdout
    rows = [line.split("|")[1:3] for line in out.splitlines() if line.startswith("| LATTE")
            or line.startswith("| RGCN")]
    assert [(a.strip(), b.strip()) for a, b in rows[:3]] == [
        ("LATTE-1", "transductive"), ("RGCN", "transductive"), ("LATTE-2", "inductive")]
    assert "(n=2)" in out and "IMDB" not in out.splitlines()[0]
    ablation = subprocess.run([sys.executable, str(script), "--ablation", *files],
                              capture_output=True, text=True, check=True).stdout
    assert "IMDB" not in ablation  # a column per data set found in the files
    imdb = str(tmp_path / "imdb.json")
    assert cli.main(["run", "hetero", "--epochs", "1", "--seeds", "1", "--hidden", "8",
                     "--dataset", "IMDB", "--out", imdb]) == 0
    header = subprocess.run([sys.executable, str(script), "--ablation", imdb, files[0]],
                            capture_output=True, text=True, check=True).stdout.splitlines()[0]
    assert [c.strip() for c in header.split("|")[2:-1:2]] == [
        "ACM validation Macro-F1", "DBLP validation Macro-F1", "IMDB validation Macro-F1"]
    row = next(line for line in ablation.splitlines() if line.startswith("| latte0"))
    summary = json.loads(Path(files[0]).read_text())["summary"]["DBLP"]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    # DBLP validation, then test Macro-F1 (mean +- std over the 2 seeds)
    assert cells[3].startswith("{:.2f} +- {:.2f} (n=2)".format(
        100 * summary["val_macro_f1"]["mean"], 100 * summary["val_macro_f1"]["std"]))
    assert cells[4] == "{:.2f} +- {:.2f}".format(
        100 * summary["test_macro_f1"]["mean"], 100 * summary["test_macro_f1"]["std"])


def test_attention_plot_draws_one_panel_per_data_set(tmp_path):
    from pathlib import Path

    script = Path(__file__).parents[2] / "experiments" / "hetero" / "table.py"
    files = []
    for dataset in ("ACM", "DBLP"):  # settings chosen per data set: one file each
        files.append(str(tmp_path / f"latte-2-{dataset}.json"))
        assert cli.main(["run", "hetero", "--epochs", "1", "--seeds", "1", "--hidden", "8",
                         "--dataset", dataset, "--out", files[-1]]) == 0
    png = tmp_path / "attention.png"
    out = subprocess.run([sys.executable, str(script), "--attention", str(png), *files],
                         capture_output=True, text=True, check=True).stdout
    assert f"wrote {png}" in out and png.stat().st_size > 0
    refused = subprocess.run([sys.executable, str(script), "--attention", str(png), files[0]
                              .replace("latte-2-ACM", "missing")], capture_output=True, text=True)
    assert refused.returncode != 0


def test_help_does_not_import_torch():
    code = ("import sys\nfrom gnnagg.cli import main\ntry:\n    main(['run', 'hetero', '--help'])\n"
            "except SystemExit:\n    pass\nprint('TORCH', 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "TORCH False" in out.stdout and "--edge-threshold" in out.stdout
