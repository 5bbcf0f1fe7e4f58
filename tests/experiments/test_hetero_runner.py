"""Smoke tests of ``gnnagg run hetero`` on a tiny typed graph."""
import dataclasses

import pytest
import torch
from torch_geometric.data import HeteroData

from gnnagg import cli
from gnnagg.experiments.hetero import (MODELS, HeteroConfig, check_config, inductive_edges,
                                       run)


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


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_a_few_epochs(model):
    config = HeteroConfig(model=model, epochs=2, seeds=1, hidden=8, heads=2)
    result = run(config, data=tiny_graph())
    run0 = result["runs"][0]
    assert 1 <= run0["epochs_run"] <= 2
    assert 0.0 <= run0["test_macro_f1"] <= 1.0 and 0.0 <= run0["test_micro_f1"] <= 1.0
    assert result["summary"]["test_macro_f1"]["n"] == 1


def test_latte_inductive_with_proximity_and_recurrent_aggregator():
    config = HeteroConfig(model="latte", epochs=2, seeds=2, hidden=8, inductive=True,
                          proximity=0.5, aggr="gru", order=2)
    result = run(config, data=tiny_graph())
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    assert len(result["runs"][0]["val_loss_history"]) == result["runs"][0]["epochs_run"]


def test_partial_results_after_each_seed():
    seen = []
    config = HeteroConfig(model="rgcn", epochs=1, seeds=3, hidden=8)
    result = run(config, data=tiny_graph(), on_seed=seen.append)
    assert [len(p["runs"]) for p in seen] == [1, 2] and all(p["partial"] for p in seen)
    assert "partial" not in result and len(result["runs"]) == 3


def test_inductive_edges_hide_val_and_test_nodes():
    data = tiny_graph()
    hidden = data["paper"].val_mask | data["paper"].test_mask
    edges = inductive_edges(data, "paper", hidden)
    for (src, _, dst), ei in edges.items():
        if src == "paper":
            assert not hidden[ei[0]].any()
        if dst == "paper":
            assert not hidden[ei[1]].any()
    assert edges["paper", "PA", "author"].size(1) == int((~hidden).sum())


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="unknown model"):
        check_config(HeteroConfig(model="gat"))
    with pytest.raises(ValueError, match="unknown data set"):
        check_config(HeteroConfig(dataset="Cora"))
    with pytest.raises(ValueError, match="divisible"):
        check_config(HeteroConfig(model="han", hidden=10, heads=4))
    with pytest.raises(ValueError, match="order"):
        check_config(dataclasses.replace(HeteroConfig(), order=0))


def test_cli_writes_json(tmp_path, monkeypatch):
    import gnnagg.experiments.hetero as hetero

    monkeypatch.setattr(hetero, "run",
                        lambda config, on_seed=None: run(config, tiny_graph(), on_seed))
    out = tmp_path / "r.json"
    assert cli.main(["run", "hetero", "--model", "rgcn", "--epochs", "1", "--seeds", "1",
                     "--hidden", "8", "--out", str(out)]) == 0
    import json

    result = json.loads(out.read_text())
    assert result["config"]["model"] == "rgcn" and result["config"]["lr"] == 1e-2
    assert len(result["runs"]) == 1
