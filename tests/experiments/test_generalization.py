import dataclasses
import json

import pytest
import torch

from gnnagg.cli import main as cli_main
from gnnagg.experiments import generalization as gen

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = ["--seeds", "0", "--epochs", "2", "--train-sets", "64", "--val-sets", "16",
        "--test-sets", "8", "--test-sizes", "4", "8", "--train-sizes", "2", "3",
        "--val-size", "4", "--channels", "8", "--batch-size", "32", "--bits", "3"]


def test_smoke_writes_json_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "gen.json"
    cli_main(["run", "generalization", "--tasks", "second_min", "parity",
              "--aggregators", "sum", "pyg_lcm", "lcm_assoc", "gru",
              *TINY, "--out", str(out)])
    result = json.loads(out.read_text())
    png = tmp_path / "gen.png"
    assert result["plot"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    summary = result["summary"]
    assert set(summary) == {"second_min", "parity"}
    for task in summary.values():
        assert set(task) == {"sum", "pyg_lcm", "lcm_assoc", "gru"}
        for s in task.values():
            for size in ("4", "8"):
                assert 0.0 <= s["test"][size]["mean"] <= 1.0 and s["test"][size]["n"] == 1
            assert s["epoch_time_s"]["n"] == 2 and s["epoch_time_s"]["mean"] > 0
    depth = summary["second_min"]
    assert depth["sum"]["depth"] == {"3": 1, "4": 1, "8": 1}
    assert depth["lcm_assoc"]["depth"] == {"3": 2, "4": 2, "8": 3}
    assert depth["pyg_lcm"]["depth"]["8"] == 3 and depth["gru"]["depth"]["8"] == 8
    run = result["runs"]["parity"]["lcm_assoc"][0]
    assert len(run["loss"]) == 2 and 1 <= run["best_epoch"] <= 2
    assert "| aggregator" in capsys.readouterr().out


def tiny_config(**kwargs):
    base = dict(seeds=(0,), epochs=1, train_sets=32, val_sets=8, test_sets=8, test_sizes=(4,),
                train_sizes=(2, 3), val_size=4, channels=8, bits=3)
    return gen.GeneralizationConfig(**{**base, **kwargs})


def test_same_seed_same_result():
    cfg = tiny_config()
    data = gen.make_data("max", cfg)
    a = gen.train_one("max", "lcm_assoc", 1, cfg, data)
    b = gen.train_one("max", "lcm_assoc", 1, cfg, data)
    assert a["loss"] == b["loss"] and a["test"] == b["test"]


def test_cosine_schedule_changes_training_and_lcm_leaves_are_tanh():
    cfg = tiny_config(epochs=3, train_sets=64)
    data = gen.make_data("max", cfg)
    const = gen.train_one("max", "lcm", 0, cfg, data)
    cosine = gen.train_one("max", "lcm", 0, dataclasses.replace(cfg, lr_schedule="cosine"), data)
    assert const["loss"][:2] == cosine["loss"][:2] and const["loss"][2] != cosine["loss"][2]
    lcm = gen.AGGREGATORS["lcm"].build(8, cfg)
    assert lcm.activation == "tanh" and not lcm.project
    assert "lcm_relu" not in gen.DEFAULT_AGGREGATORS


def test_max_aggregator_learns_max():
    # A task the max aggregator solves by construction: training must show it.
    cfg = gen.GeneralizationConfig(epochs=6, train_sets=1024, val_sets=64, test_sets=64,
                                   test_sizes=(32,), channels=32, bits=3, lr=1e-2)
    data = gen.make_data("max", cfg)
    res = gen.train_one("max", "max", 0, cfg, data)
    assert res["test"][32] >= 0.9


@pytest.mark.parametrize("override, message", [
    (dict(aggregators=("sum", "median_of_means")), "unknown aggregators"),
    (dict(tasks=("nope",)), "unknown task"),
    (dict(train_sizes=(16, 2)), "train-sizes"),
    (dict(encoding="onehot"), "encoding"),
    (dict(epochs=0), "epochs"),
    (dict(lr_schedule="step"), "lr-schedule"),
])
def test_bad_config(override, message):
    cfg = gen.GeneralizationConfig(**override)
    with pytest.raises(ValueError, match=message):
        gen.validate(cfg)


def test_paper_check_is_computed_not_assumed():
    ms = lambda m: {"mean": m, "std": 0.0, "n": 1}
    summary = {"second_min": {
        "lcm": {"test": {32: ms(0.95), 64: ms(0.9)}},
        "sum": {"test": {32: ms(0.5), 64: ms(0.75)}},
        "max": {"test": {32: ms(0.1), 64: ms(0.1)}},
    }}
    check = gen.paper_check(summary)
    assert check["lcm_at_32_ge_90"] and not check["margin_ge_20_points"]
    assert check["margin_over_sum_mean_max"][64] == pytest.approx(0.15)


def test_merge_runs(tmp_path):
    pytest.importorskip("matplotlib")
    for task in ("max", "parity"):
        cli_main(["run", "generalization", "--tasks", task, "--aggregators", "sum", "lcm",
                  *TINY, "--out", str(tmp_path / f"{task}.json")])
    cli_main(["run", "generalization", "--tasks", "max", "--aggregators", "sum", "lcm",
              *TINY[2:], "--seeds", "1", "--out", str(tmp_path / "max1.json")])
    cli_main(["run", "generalization", "--from-json", str(tmp_path / "max.json"),
              str(tmp_path / "max1.json"), str(tmp_path / "parity.json"),
              "--out", str(tmp_path / "all.json")])
    merged = json.loads((tmp_path / "all.json").read_text())
    assert set(merged["summary"]) == {"max", "parity"}
    assert merged["summary"]["parity"] == json.loads((tmp_path / "parity.json").read_text())["summary"]["parity"]
    one = [json.loads((tmp_path / f).read_text())["summary"]["max"]["lcm"]["test"]["8"]["mean"]
           for f in ("max.json", "max1.json")]
    pooled = merged["summary"]["max"]["lcm"]["test"]["8"]
    assert pooled["n"] == 2 and pooled["mean"] == pytest.approx(sum(one) / 2)
    assert (tmp_path / "all.png").exists() and set(merged["tables"]) == {"max", "parity"}
    with pytest.raises(FileNotFoundError, match="no such file"):
        gen.merge([str(tmp_path / "missing.json")])


def test_constant_baseline():
    from collections import Counter

    cfg = gen.GeneralizationConfig(bits=1, test_sizes=(2, 6), test_sets=200)
    base = gen.constant_baseline("max", cfg)
    for size in (2, 6):
        y = gen.make_data("max", cfg)["test"][size].y.tolist()
        assert base[size] == Counter(y).most_common(1)[0][1] / len(y)
    assert base[6] > base[2] > 0.5  # a set of 1-bit integers rarely lacks a 1


def test_interrupted_run_keeps_finished_runs(tmp_path, monkeypatch):
    cfg = tiny_config(tasks=("max",), aggregators=("sum", "mean"))
    real = gen.train_one

    def fail_on_mean(task, name, *args):
        if name == "mean":
            raise KeyboardInterrupt
        return real(task, name, *args)

    monkeypatch.setattr(gen, "train_one", fail_on_mean)
    path = tmp_path / "out.json.runs-so-far.json"
    with pytest.raises(KeyboardInterrupt):
        gen.run(cfg, progress_path=str(path))
    kept = json.loads(path.read_text())
    assert list(kept["runs"]["max"]) == ["sum"] and len(kept["runs"]["max"]["sum"]) == 1
    monkeypatch.setattr(gen, "train_one", real)
    gen.run(cfg, progress_path=str(path))
    assert not path.exists()
