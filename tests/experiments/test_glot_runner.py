"""The GLOT runner on tiny GLUE files and a tiny random BERT: reported
numbers are the curve's at the selected epoch, GLUE's metrics per task, the
trivial-baseline row (hand-computed), the recipes, the no-edge ablation,
interruption and resumption, and options refused before any data is read."""
import json
import subprocess
import sys

import pytest

pytest.importorskip("transformers")

from gnnagg.cli import main as cli_main  # noqa: E402
from gnnagg.text import save_tiny_bert  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SST = ["the film was good", "a bad film", "good good film", "the film was bad",
       "a good cat", "the bad dog", "good", "bad", "the dog was good", "a cat was bad"]
# RTE labels, 1 = not_entailment. --val-fraction 0.2 holds out rows 4 and 6
# (numpy's default_rng(0).permutation(10)[:2]): training keeps five 1s and
# three 0s, so the majority class is 1; validation is (1, 0), dev six 1s of 10.
RTE_TRAIN = [1, 1, 0, 1, 1, 0, 0, 1, 0, 1]
RTE_DEV = [1, 1, 1, 0, 1, 0, 1, 0, 1, 0]


def write_glue(root):
    glue = root / "glue"
    for folder in ("SST-2", "RTE", "STS-B", "CoLA"):
        (glue / folder).mkdir(parents=True)
    for split, rte in (("train", RTE_TRAIN), ("dev", RTE_DEV)):
        rows = ["sentence\tlabel"] + [f"{s}\t{int('good' in s)}" for s in SST]
        (glue / "SST-2" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        rows = ["index\tsentence1\tsentence2\tlabel"] + [
            f"{i}\t{s}\tthe film\t{'not_entailment' if y else 'entailment'}"
            for i, (s, y) in enumerate(zip(SST, rte))]
        (glue / "RTE" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        rows = ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                "sentence2\tscore"] + [f"{i}\tg\tf\ty\to\ts\ts\t{s}\tthe film\t{i / 2:.1f}"
                                        for i, s in enumerate(SST)]
        (glue / "STS-B" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        rows = [f"src\t{int('bad' not in s)}\t\t{s}" for s in SST]
        (glue / "CoLA" / f"{split}.tsv").write_text("\n".join(rows) + "\n")


WORDS = " ".join(SST + ["the film"]).split() + ["the", "a"]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("bert"), WORDS)


@pytest.fixture
def env(tmp_path, monkeypatch, bert):
    write_glue(tmp_path / "data")
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GNNAGG_QUIET", "1")
    return tmp_path, bert


def run(env, task, *extra, out="r.json"):
    tmp, bert = env
    argv = ["run", "glot", "--task", task, "--model", str(bert), "--max-length", "16",
            "--hidden", "8", "--attention", "8", "--tau", "0.0", "--val-fraction", "0.2",
            *extra, "--out", str(tmp / out)]
    code = cli_main(argv)
    return code, (json.loads((tmp / out).read_text()) if code == 0 else None)


def assert_reported_is_the_curves_at_the_selected_epoch(result, task, split="dev"):
    entry = result["results"][task]
    for name, pooler in entry["poolers"].items():
        for run_ in pooler["runs"]:
            curve = result["finished_runs"][f"{task}/{name}/{run_['seed']}"]["curve"]
            main = entry["metrics"][0]
            best = max(range(len(curve)), key=lambda e: (curve[e][f"val_{main}"], -e))
            assert run_["best_epoch"] == best + 1
            for m in entry["metrics"]:
                assert run_["eval"][m] == curve[best][f"{split}_{m}"]
                assert run_["val"][m] == curve[best][f"val_{m}"]
        for m in entry["metrics"]:
            assert pooler["eval"][m]["mean"] == pytest.approx(
                sum(r["eval"][m] for r in pooler["runs"]) / len(pooler["runs"]))


@pytest.mark.parametrize("task,pooling,metrics", [
    ("sst2", "all", ["accuracy"]), ("cola", "mean", ["mcc", "accuracy"]),
    ("stsb", "mean,glot", ["spearman", "pearson"])])
def test_glue_metrics_and_the_selected_epoch(env, task, pooling, metrics):
    code, result = run(env, task, "--seeds", "2", "--epochs", "2", "--pooling", pooling)
    assert code == 0 and result["complete"]
    entry = result["results"][task]
    expected = ["cls", "mean", "max", "adapool", "glot"] if pooling == "all" else pooling.split(",")
    assert list(entry["poolers"]) == expected and entry["metrics"] == metrics
    assert entry["sizes"] == {"train": 8, "val": 2, "dev": 10}
    assert all(len(p["runs"]) == 2 for p in entry["poolers"].values())
    assert_reported_is_the_curves_at_the_selected_epoch(result, task)
    assert f"| {task} {metrics[0]}* (dev)" in result["table"]
    if task == "stsb":  # the mean predictor correlates with nothing
        assert entry["baseline"] == {"predictor": "training mean",
                                     "val": {"spearman": 0.0, "pearson": 0.0},
                                     "eval": {"spearman": 0.0, "pearson": 0.0}}
        assert "| training mean" in result["table"]
    if task == "cola":
        assert entry["baseline"]["eval"]["mcc"] == 0.0


def test_pair_task_accuracy_f1_baseline_and_recipe(env):
    code, result = run(env, "rte", "--seeds", "1", "--pooling", "glot,mean", "--epochs", "3",
                       "--patience", "1")
    assert code == 0
    entry = result["results"]["rte"]
    assert entry["metrics"] == ["accuracy", "f1"]
    # majority training class 1 (not_entailment): val (1, 0), dev six 1s of 10
    assert entry["baseline"] == {"predictor": "majority class",
                                 "val": {"accuracy": 0.5, "f1": pytest.approx(2 / 3)},
                                 "eval": {"accuracy": 0.6, "f1": pytest.approx(0.75)}}
    table = result["table"]
    assert "rte accuracy* (dev)" in table and "rte f1 (dev)" in table
    assert [c.strip() for c in table.splitlines()[-1].split("|")[1:4]] == \
        ["majority class", "60.00", "75.00"]
    assert_reported_is_the_curves_at_the_selected_epoch(result, "rte")
    # the pair recipe fills what was not given; patience 1 stops after a worse epoch
    assert result["config"]["pair"] == "sbert" and result["config"]["lr"] == 1e-3
    for name in ("glot", "mean"):
        r = result["finished_runs"][f"rte/{name}/0"]
        assert r["stopped"] == ("early_stopping" if r["epochs"] < 3 else "max_epochs")
        assert r["epochs"] - r["best_epoch"] <= 1


def test_no_graph_ablation_keeps_the_parameters(env):
    _, graph = run(env, "rte", "--seeds", "1", "--pooling", "glot", "--epochs", "1", out="g.json")
    code, none = run(env, "rte", "--seeds", "1", "--pooling", "glot", "--epochs", "1",
                     "--graph", "none", out="n.json")
    assert code == 0 and none["config"]["graph"] == "none"
    a, b = graph["finished_runs"]["rte/glot/0"], none["finished_runs"]["rte/glot/0"]
    assert a["parameters"] == b["parameters"] > 0
    assert a["curve"][0]["loss"] != b["curve"][0]["loss"]  # tau 0: the graph has edges


def test_pair_head_and_class_weights_options(env):
    """Mean pooling has no parameters: the head alone, 2 classes x (4 or 2)
    sentence vectors of 16 + 2 biases; class weights change the loss."""
    def first(*extra, out):
        code, r = run(env, "rte", "--seeds", "1", "--pooling", "mean", "--epochs", "1", *extra,
                      out=out)
        assert code == 0
        return r["finished_runs"]["rte/mean/0"]
    sbert, concat = first(out="s.json"), first("--pair", "concat", out="c.json")
    weighted = first("--class-weights", out="w.json")
    assert (sbert["parameters"], concat["parameters"]) == (2 * 4 * 16 + 2, 2 * 2 * 16 + 2)
    assert weighted["parameters"] == sbert["parameters"]
    assert weighted["curve"][0]["loss"] != sbert["curve"][0]["loss"]


def test_interrupted_run_resumes_to_the_same_numbers(env, sigint_at_epoch, capsys):
    args = ("--seeds", "2", "--epochs", "2", "--pooling", "glot,mean")
    code, clean = run(env, "rte", *args, out="clean.json")
    assert code == 0
    seen = sigint_at_epoch(4)  # the second epoch of glot's seed 1
    tmp, bert = env
    argv = ["run", "glot", "--task", "rte", "--model", str(bert), "--max-length", "16",
            "--hidden", "8", "--attention", "8", "--tau", "0.0", "--val-fraction", "0.2",
            *args, "--out", str(tmp / "resumed.json")]
    assert cli_main(argv) == 130
    partial = json.loads((tmp / "resumed.json").read_text())
    assert not partial["complete"] and list(partial["finished_runs"]) == ["rte/glot/0"]
    assert cli_main(argv) == 0
    assert seen["epochs"] == 4 + 1 + 2 * 2  # finished runs and epochs are not redone
    resumed = json.loads((tmp / "resumed.json").read_text())
    for key, r in clean["finished_runs"].items():
        s = resumed["finished_runs"][key]
        assert (s["best_epoch"], s["val"], s["eval"]) == (r["best_epoch"], r["val"], r["eval"])
        assert [row["loss"] for row in s["curve"]] == [row["loss"] for row in r["curve"]]
    # another learning rate on the same file is refused, naming it
    capsys.readouterr()
    assert cli_main(argv[:-2] + ["--lr", "0.1", "--out", str(tmp / "resumed.json")]) == 2
    assert "lr: 0.001 then, 0.1 now" in capsys.readouterr().err


def test_bad_options_fail_before_any_data_is_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path / "nothing-here"))
    for argv, match in ((["--task", "sst2", "--pooling", "median"], "unknown --pooling"),
                        (["--task", "rte", "--pair", "diff"], "unknown --pair"),
                        (["--task", "sst2", "--pair", "sbert"], "sentence-pair tasks"),
                        (["--task", "stsb", "--class-weights"], "classification"),
                        (["--task", "qnli2"], "unknown --task"),
                        (["--task", "graph-bench"], "gnnagg bench token-graph"),
                        (["--lr", "-1"], "--lr must be > 0"),
                        (["--patience", "-1"], "--patience must be >= 0"),
                        (["--graph", "full"], "unknown --graph"),
                        (["--pooling", "glot", "--conv", "nope"], "unknown PyG convolution"),
                        (["--val-fraction", "1"], "--val-fraction")):
        assert cli_main(["run", "glot", *argv]) == 2
        assert match in capsys.readouterr().err


def test_help_does_not_import_torch():
    code = ("import sys\nfrom gnnagg.cli import main\ntry:\n    main(['run', 'glot', '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    text = " ".join(out.stdout.split())
    assert "(default: 3; pair tasks 30)" in text and "(default: sbert (pair tasks))" in text
    assert text.endswith("False")
