import json

import pytest

pytest.importorskip("transformers")

from gnnagg.cli import main as cli_main  # noqa: E402
from gnnagg.text import save_tiny_bert  # noqa: E402

SST = ["the film was good", "a bad film", "good good film", "the film was bad",
       "a good cat", "the bad dog", "good", "bad", "the dog was good", "a cat was bad"]


def write_glue(root):
    (root / "glue" / "SST-2").mkdir(parents=True)
    (root / "glue" / "RTE").mkdir(parents=True)
    for split in ("train", "dev"):
        rows = ["sentence\tlabel"] + [f"{s}\t{int('good' in s)}" for s in SST]
        (root / "glue" / "SST-2" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        rows = ["index\tsentence1\tsentence2\tlabel"] + [
            f"{i}\t{s}\tthe film\t{'entailment' if i % 2 else 'not_entailment'}"
            for i, s in enumerate(SST)]
        (root / "glue" / "RTE" / f"{split}.tsv").write_text("\n".join(rows) + "\n")
        rows = ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                "sentence2\tscore"] + [f"{i}\tg\tf\ty\to\ts\ts\t{s}\tthe film\t{i / 2:.1f}"
                                        for i, s in enumerate(SST)]
        (root / "glue" / "STS-B").mkdir(exist_ok=True)
        (root / "glue" / "STS-B" / f"{split}.tsv").write_text("\n".join(rows) + "\n")


WORDS = " ".join(SST + ["the film"]).split() + ["the", "a"] + \
    "blue green river mountain table window garden music paper light not never without " \
    "excluding folder includes package contains report lists box holds this order has " \
    "apples files photos tickets letters keys books coins".split()


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


@pytest.mark.parametrize("task,pooling,seeds,metric", [
    ("sst2", "all", 2, "accuracy"), ("rte", "glot,mean", 1, "accuracy"),
    ("stsb", "mean", 1, "spearman")])
def test_glue_smoke(env, task, pooling, seeds, metric):
    tmp, bert = env
    out = tmp / f"{task}.json"
    argv = ["run", "glot", "--task", task, "--model", str(bert), "--seeds", str(seeds),
            "--pair", "sbert" if task == "rte" else "concat",
            "--epochs", "2", "--pooling", pooling, "--max-length", "16", "--hidden", "8",
            "--attention", "8", "--tau", "0.0", "--val-fraction", "0.2", "--out", str(out)]
    assert cli_main(argv) == 0
    result = json.loads(out.read_text())
    entry = result["results"][task]
    expected = ["cls", "mean", "max", "adapool", "glot"] if pooling == "all" else pooling.split(",")
    assert list(entry) == expected
    for pooler in entry.values():
        assert pooler["metric"] == metric and pooler["eval"]["n"] == seeds
        assert -1.0 <= pooler["eval"]["mean"] <= 1.0
        assert [len(r["curve"]) for r in pooler["runs"]] == [2] * seeds
        assert all(r["best_epoch"] in (1, 2) for r in pooler["runs"])
    assert result["sizes"][task] == {"train": 8, "val": 2, "dev": 10}
    assert all(f"| {name}" in result["table"] for name in expected)


def test_stress_smoke_and_pooling_choice(env):
    tmp, bert = env
    out = tmp / "stress.json"
    argv = ["run", "glot", "--task", "stress", "--model", str(bert), "--pooling", "glot,mean",
            "--seeds", "1", "--epochs", "1", "--stress-train", "20", "--stress-test", "10",
            "--stress-length", "12", "--ratios", "0.2", "0.5", "--hidden", "8", "--knn", "3",
            "--out", str(out)]
    assert cli_main(argv) == 0
    result = json.loads(out.read_text())
    assert list(result["results"]) == ["stress@0.2", "stress@0.5"]
    assert list(result["results"]["stress@0.5"]) == ["glot", "mean"]


def test_graph_bench_and_errors(env, capsys):
    tmp, bert = env
    assert cli_main(["run", "glot", "--task", "graph-bench", "--model", str(bert),
                     "--max-length", "16", "--bench-repeats", "1", "--tau", "0.0"]) == 0
    assert "speedup" in capsys.readouterr().out
    for argv, match in ((["--task", "sst2", "--pooling", "median"], "unknown pooling"),
                        (["--task", "rte", "--pair", "diff"], "unknown --pair"),
                        (["--task", "qnli"], "unknown task")):
        assert cli_main(["run", "glot", *argv]) == 2
        assert match in capsys.readouterr().err
