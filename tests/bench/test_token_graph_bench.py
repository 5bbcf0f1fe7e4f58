"""``gnnagg bench token-graph`` on tiny SST-2 files and a tiny random BERT.

(Not ``test_token_graph.py``: tests/nn has that basename, and the test
folders are not packages.)"""
import json

import pytest
import torch

from gnnagg.bench.token_graph import benchmark_token_graph
from gnnagg.nn import build_token_graph_loop

pytestmark = pytest.mark.usefixtures("one_thread")

SST = ["the film was good", "a bad film", "good good film", "the film was bad", "a good cat",
       "the bad dog", "good", "bad", "the dog was good", "a cat was bad"]


def test_benchmark_checks_agreement_then_times(device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 9, 6, generator=gen).to(device)
    mask = (torch.arange(9) < torch.tensor([9, 1, 4, 0, 7, 2, 5]).unsqueeze(1)).to(device)
    r = benchmark_token_graph(x, mask, tau=0.1, repeats=2, chunk=3, precision="fp32")
    assert r["edges"] == build_token_graph_loop(x, mask, 0.1).num_edges > 0
    assert (r["sentences"], r["tokens"], r["chunk"], r["precision"]) == (7, 28, 3, "fp32")
    assert r["device"] == str(x.device)
    assert all(r[k] > 0 for k in ("vectorised_s", "loop_s", "speedup", "speedup_with_x"))
    with pytest.raises(ValueError, match="repeats"):
        benchmark_token_graph(x, mask, repeats=0)


def test_bench_command_on_a_tiny_encoder(tmp_path, monkeypatch, capsys):
    pytest.importorskip("transformers")
    from gnnagg.cli import main
    from gnnagg.text import save_tiny_bert

    (tmp_path / "glue" / "SST-2").mkdir(parents=True)
    rows = ["sentence\tlabel"] + [f"{s}\t{int('good' in s)}" for s in SST]
    (tmp_path / "glue" / "SST-2" / "dev.tsv").write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    bert = save_tiny_bert(tmp_path / "bert", " ".join(SST).split())
    out = tmp_path / "bench.json"
    assert main(["bench", "token-graph", "--model", str(bert), "--max-length", "16",
                 "--tau", "0.0", "--repeats", "1", "--batch-size", "4", "--device", "cpu",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["results"]
    assert [(r["chunk"], r["precision"]) for r in rows] == [(10, "fp32"), (10, "bf16"),
                                                           (4, "fp32"), (4, "bf16")]
    # [CLS] w1 .. wn [SEP]: one token per word plus two
    assert rows[0]["tokens"] == sum(len(s.split()) + 2 for s in SST)
    assert len({r["edges"] for r in rows}) == 1 and rows[0]["edges"] > 0
    assert "| per call" in capsys.readouterr().out
    assert rows[0]["device"] == "cpu"
    assert main(["bench", "token-graph", "--task", "nope"]) == 2
    assert "unknown GLUE task" in capsys.readouterr().err
    assert main(["bench", "token-graph", "--device", "tpu:0"]) == 2
    assert "--device 'tpu:0'" in capsys.readouterr().err
