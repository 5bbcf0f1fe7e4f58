import argparse
import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
import torch

from gnnagg.cli import main as cli_main
from gnnagg.experiments import generalization as gen
from gnnagg.experiments import generalization_merge as merging
from gnnagg.experiments import generalization_suite as suite

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--seeds", "0", "--epochs", "2", "--train-sets", "64", "--val-sets", "16",
        "--test-sets", "8", "--test-sizes", "4", "8", "--train-sizes", "2", "3",
        "--val-size", "4", "--channels", "8", "--batch-size", "32", "--bits", "3"]


def tiny_config(**kwargs):
    base = dict(seeds=(0,), epochs=1, train_sets=32, val_sets=8, test_sets=8, test_sizes=(4,),
                train_sizes=(2, 3), val_size=4, channels=8, bits=3)
    return gen.GeneralizationConfig(**{**base, **kwargs})


def check_selected_epoch(record):
    """The reported validation accuracy is the curve's at the selected epoch,
    and that epoch is the first best one."""
    vals = [row["val_acc"] for row in record["curve"]]
    assert record["val"] == vals[record["best_epoch"] - 1]
    assert record["best_epoch"] == vals.index(max(vals)) + 1


def test_tiny_run_writes_json_plot_and_summary(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "gen.json"
    assert cli_main(["run", "generalization", "--tasks", "second_min", "parity",
                     "--aggregators", "sum", "max", "pyg_lcm", "lcm", "gru",
                     *TINY, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["complete"] and result["experiment"] == "generalization"
    png = tmp_path / "gen.png"
    assert result["plot"] == str(png) and png.read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(tmp_path)) == ["gen.json", "gen.png"]  # no side files left
    runs = result["finished_runs"]
    assert list(runs) == [f"{t}/{a}/0" for t in ("second_min", "parity")
                          for a in ("sum", "max", "pyg_lcm", "lcm", "gru")]
    for key, rec in runs.items():
        check_selected_epoch(rec)
        assert len(rec["curve"]) == 2 and set(rec["test"]) == {"4", "8"}
        s = result["summary"][rec["task"]][rec["aggregator"]]
        assert s["val"]["mean"] == rec["val"] and s["val"]["n"] == 1
        assert s["test"]["8"]["mean"] == rec["test"]["8"]
        assert s["epoch_time_s"]["n"] == 2
    depth = result["summary"]["second_min"]
    assert depth["sum"]["depth"] == {"3": 1, "4": 1, "8": 1}
    assert depth["lcm"]["depth"] == {"3": 2, "4": 2, "8": 3}
    assert depth["pyg_lcm"]["depth"]["8"] == 3 and depth["gru"]["depth"]["8"] == 8
    printed = capsys.readouterr().out
    assert "| aggregator" in printed
    tail = printed.strip().splitlines()[-3:]
    for line, task in zip(tail, ("second_min", "parity")):
        acc = {a: 100 * result["summary"][task][a]["test"]["8"]["mean"]
               for a in ("sum", "max", "lcm")}
        best = max(("sum", "max"), key=lambda a: acc[a])
        assert line.startswith(f"{task} at size 8 (trained on sizes 2-3): LCM {acc['lcm']:.1f}%")
        assert f"best of sum/max {acc[best]:.1f}% ({best})" in line
        assert line.endswith(f"LCM vs the best of sum/max: {acc['lcm'] - acc[best]:+.1f} points.")
    assert tail[2] == f"Results: {out}; plot: {png}"
    assert result["headline"] == tail[:2]


def test_quick_preset():
    parser = argparse.ArgumentParser()
    gen.add_arguments(parser)
    args = parser.parse_args(["--quick"])
    cfg = gen.config_from_args(dataclasses.replace(gen.GeneralizationConfig(), **gen.QUICK), args)
    assert cfg.tasks == ("parity",) and cfg.seeds == (0,)
    assert set(cfg.aggregators) == {"sum", "mean", "max", "gru", "lcm", "pyg_lcm"}
    assert cfg.train_sizes == (2, 16) and max(cfg.test_sizes) == 512
    gen.validate(cfg)
    # the preset leaves the full run's defaults alone
    assert gen.GeneralizationConfig().tasks == tuple(gen.TASKS) and \
        gen.GeneralizationConfig().seeds == (0, 1, 2)
    assert gen.DEFAULT_THREADS is None or gen.DEFAULT_THREADS >= 1


def test_task_table_matches_the_data_sets():
    from gnnagg.datasets.synthetic import TASKS

    assert gen.TASKS == {name: task.min_size for name, task in TASKS.items()}


def test_fit_with_cosine_per_step_and_validation_monitor(monkeypatch):
    import gnnagg.train

    seen = {}
    real = gnnagg.train.fit

    def spy(model, optimizer, *args, **kwargs):
        result = real(model, optimizer, *args, **kwargs)
        seen.update(kwargs, lr=optimizer.param_groups[0]["lr"], steps=len(kwargs["train_data"]))
        return result

    monkeypatch.setattr(gnnagg.train, "fit", spy)
    cfg = tiny_config(epochs=2, train_sets=64, batch_size=16, lr_schedule="cosine")
    rec = gen.train_one("max", "lcm", 0, cfg, gen.make_data("max", cfg))
    assert seen["monitor"] == "val_acc" and seen["scheduler_per_step"] and seen["steps"] == 4
    assert seen["lr"] == pytest.approx(0.0, abs=1e-12)  # decayed over all 8 steps
    check_selected_epoch(rec)


def test_lcm_specs():
    from torch_geometric.nn.aggr import LCMAggregation as PyGLCM

    from gnnagg.models import SetModel

    cfg = tiny_config()
    build = lambda name: SetModel(3, 8, 1, aggr=gen.AGGREGATORS[name].aggr(),
                                  aggr_kwargs=gen.AGGREGATORS[name].kwargs(8, cfg)).aggr
    lcm = build("lcm")
    assert lcm.activation == "tanh" and not lcm.project and lcm.assoc_samples == 0
    assert build("lcm_assoc").assoc_samples == cfg.assoc_samples
    assert type(build("pyg_lcm")) is PyGLCM and type(build("lcm")) is not PyGLCM
    assert "lcm_relu" not in gen.DEFAULT_AGGREGATORS


def test_max_aggregator_learns_max():
    # A task the max aggregator solves by construction: training must show it.
    cfg = gen.GeneralizationConfig(epochs=6, train_sets=1024, val_sets=64, test_sets=64,
                                   test_sizes=(32,), channels=32, bits=3, lr=1e-2)
    rec = gen.train_one("max", "max", 0, cfg, gen.make_data("max", cfg))
    assert rec["test"]["32"] >= 0.9


@pytest.mark.parametrize("override, message", [
    (dict(aggregators=("sum", "median_of_means")), "unknown --aggregators 'median_of_means'"),
    (dict(tasks=("nope",)), "unknown --tasks 'nope'"),
    (dict(seeds=(0, 0)), "--seeds needs distinct values"),
    (dict(train_sizes=(16, 2)), "train-sizes"),
    (dict(tasks=("second_min",), train_sizes=(1, 4)), "second_min needs sets of at least 2"),
    (dict(encoding="onehot"), "encoding"),
    (dict(epochs=0), "--epochs must be > 0"),
    (dict(lr=-1.0), "--lr must be > 0"),
    (dict(bits=17), "--bits"),
    (dict(lr_schedule="step"), "lr-schedule"),
])
def test_bad_config(override, message):
    with pytest.raises(ValueError, match=message):
        gen.validate(gen.GeneralizationConfig(**override))


def test_bad_option_fails_before_any_data(monkeypatch, capsys):
    monkeypatch.setattr(gen, "make_data", lambda *a, **k: pytest.fail("data made"))
    assert cli_main(["run", "generalization", "--quick", "--lr", "-1"]) == 2
    assert "--lr must be > 0" in capsys.readouterr().err


def test_help_does_not_import_torch():
    code = ("import sys\nfrom gnnagg.cli import main\ntry:\n    main(['run', 'generalization', "
            "'--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'torch_geometric', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--quick" in out.stdout and out.stdout.strip().splitlines()[-1] == "[]"


def test_baseline_is_the_most_frequent_label():
    cfg = gen.GeneralizationConfig(bits=1, test_sizes=(2, 6), test_sets=200, tasks=("max",))
    base = suite.baselines(cfg, gen.make_data)["max"]
    for size in (2, 6):
        y = torch.cat([b.y for b in gen.make_data("max", cfg, train=False)["test"][size]]).tolist()
        assert base[str(size)] == Counter(y).most_common(1)[0][1] / len(y)
    assert base["6"] > base["2"] > 0.5  # a set of 1-bit integers rarely lacks a 1


TWO = ["run", "generalization", "--tasks", "parity", "--aggregators", "sum", "lcm", *TINY]


def test_interrupted_run_resumes_to_the_same_numbers(tmp_path, sigint_at_epoch, monkeypatch):
    ref = tmp_path / "ref.json"
    assert cli_main([*TWO, "--out", str(ref), "--plot", str(tmp_path / "ref.png")]) == 0
    out = tmp_path / "out.json"
    seen = sigint_at_epoch(4)  # the second run's second epoch (two epochs each)
    assert cli_main([*TWO, "--out", str(out)]) == 130
    partial = json.loads(out.read_text())
    assert not partial["complete"] and list(partial["finished_runs"]) == ["parity/sum/0"]
    assert not (tmp_path / "out.json.runs-so-far.json").exists()

    trained = []
    real = gen.train_one
    monkeypatch.setattr(gen, "train_one", lambda *a, **k: trained.append(a[1]) or real(*a, **k))
    assert cli_main([*TWO, "--out", str(out)]) == 0
    assert trained == ["lcm"] and seen["epochs"] == 5  # sum kept; lcm resumed at epoch 2
    done, want = json.loads(out.read_text()), json.loads(ref.read_text())
    assert done["complete"] and list(done["finished_runs"]) == list(want["finished_runs"])
    for key, rec in done["finished_runs"].items():
        other = want["finished_runs"][key]
        for field in ("val", "best_epoch", "test"):
            assert rec[field] == other[field], (key, field)
        assert [r["loss"] for r in rec["curve"]] == [r["loss"] for r in other["curve"]]
    assert done["summary"]["parity"]["lcm"]["test"] == want["summary"]["parity"]["lcm"]["test"]
    assert not (tmp_path / ".out.json.checkpoints").exists()


def test_from_json_merges_finished_partial_and_old_files(tmp_path, sigint_at_epoch, capsys):
    pytest.importorskip("matplotlib")
    sigint_at_epoch(3)  # the lcm run of the first file: only sum is finished
    partial = tmp_path / "partial.json"
    assert cli_main([*TWO, "--out", str(partial)]) == 130
    seed1 = tmp_path / "seed1.json"
    assert cli_main([*TWO[:-len(TINY)], *TINY[2:], "--seeds", "1", "--out", str(seed1)]) == 0
    # the runner's old form, as the removed OUT.runs-so-far.json held it (no wall_time_s)
    rec = json.loads(seed1.read_text())["finished_runs"]["parity/lcm/1"]
    old = tmp_path / "old.json"
    cfg = dict(json.loads(seed1.read_text())["config"], seeds=[2], tasks=["max"])
    old.write_text(json.dumps({"config": cfg, "runs": {"max": {"lcm": [rec]}}}))

    merged_path = tmp_path / "all.json"
    assert cli_main(["run", "generalization", "--from-json", str(partial), str(seed1), str(old),
                     "--out", str(merged_path)]) == 0
    merged = json.loads(merged_path.read_text())
    assert sorted(merged["finished_runs"]) == ["max/lcm/2", "parity/lcm/1", "parity/sum/0",
                                               "parity/sum/1"]
    pooled = merged["summary"]["parity"]["sum"]["test"]["8"]
    sums = [merged["finished_runs"][f"parity/sum/{s}"]["test"]["8"] for s in (0, 1)]
    assert pooled["n"] == 2 and pooled["mean"] == pytest.approx(sum(sums) / 2)
    assert merged["summary"]["max"]["lcm"]["test"]["8"]["mean"] == rec["test"]["8"]
    assert (tmp_path / "all.png").exists() and set(merged["tables"]) == {"parity", "max"}
    assert capsys.readouterr().out.strip().endswith(f"plot: {tmp_path / 'all.png'}")

    def fails(*paths, out=str(tmp_path / "x.json")):
        code = cli_main(["run", "generalization", "--from-json", *map(str, paths), "--out", out])
        return code, capsys.readouterr().err

    assert fails(seed1, seed1)[1].count("parity/sum/1 is in both") == 1
    assert "one of the --from-json inputs" in fails(seed1, out=str(seed1))[1]
    assert "holds an unfinished run" in fails(seed1, out=str(partial))[1]
    assert fails(tmp_path / "missing.json") == (
        2, f"gnnagg run generalization: error: --from-json file {tmp_path / 'missing.json'} "
           f"does not exist\n(GNNAGG_DEBUG=1 shows where)\n")


def test_rerun_adds_runs_and_refuses_other_options(tmp_path, capsys):
    out = str(tmp_path / "out.json")
    assert cli_main([*TWO[:6], *TINY, "--out", out]) == 0  # sum only
    first = json.loads(open(out).read())["finished_runs"]["parity/sum/0"]
    assert cli_main([*TWO, "--out", out]) == 0  # adds lcm, keeps sum
    printed = capsys.readouterr().out
    assert "[1/2] sum parity seed 0" in printed and "finished in an earlier session" in printed
    done = json.loads(open(out).read())
    assert list(done["finished_runs"]) == ["parity/sum/0", "parity/lcm/0"]
    assert done["finished_runs"]["parity/sum/0"] == first
    assert cli_main([*TWO, "--epochs", "3", "--out", out]) == 2
    assert "epochs: 2 then, 3 now" in capsys.readouterr().err
    assert json.loads(open(out).read()) == done  # untouched


def test_old_merged_files_get_their_seeds_back():
    # an old --from-json result: each merged file's options in "configs", runs in that order
    cfg = lambda seeds, aggrs: {"tasks": ["max"], "aggregators": aggrs, "seeds": seeds}
    part = {"config": cfg([0], ["sum"]), "configs": {"a": cfg([0], ["sum", "lcm"]),
                                                     "b": cfg([1, 2], ["sum"])},
            "runs": {"max": {"sum": ["s0", "s1", "s2"], "lcm": ["l0"]}}}
    assert merging._old_runs(part) == {"max/sum/0": "s0", "max/sum/1": "s1", "max/sum/2": "s2",
                                      "max/lcm/0": "l0"}
    part["configs"] = {}  # seeds not recorded for every run: numbered in order
    assert list(merging._old_runs(part)) == ["max/sum/0", "max/sum/1", "max/sum/2", "max/lcm/0"]
