import argparse
import dataclasses
import json

import pytest
import torch
from torch_geometric.data import Data

from gnnagg.experiments import citation
from gnnagg.experiments.citation import (CitationConfig, MODELS, analysis, config_for,
                                         plot_analysis, run, should_stop, smoothness)
from gnnagg.experiments.common import to_jsonable


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


def small_config(**changes):
    base = CitationConfig(runs=2, epochs=6, patience=2, hidden=8, K=3, dropout=0.5,
                          train_per_class=2, val_per_class=2)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_runs_on_a_tiny_graph(model):
    settings = dict(MODELS[model].defaults, epochs=6, hidden=8)
    result = run(small_config(model=model, **settings), tiny_graph())
    summary = result["summary"]
    assert summary["test_acc"]["n"] == 2
    assert 0.0 <= summary["test_acc"]["mean"] <= 1.0
    assert all(1 <= r["epochs"] <= 6 for r in result["runs"])
    json.dumps(to_jsonable(result))


def test_early_stopping_rule():
    falling = [1.0 / (i + 1) for i in range(10)]
    assert not any(should_stop(falling[:i], 10, 3) for i in range(1, 11))
    rising = [1.0, 0.9, 0.8, 0.7, 0.6, 0.65, 0.7]
    # Not before half of the epochs, then as soon as the loss beats the mean.
    assert not should_stop(rising[:6], 12, 3)
    assert should_stop(rising[:7], 12, 3)
    assert not should_stop(rising[:7], 14, 3)
    assert not should_stop(rising, 12, 0)


def test_partial_results_after_every_run():
    partial = []
    result = run(small_config(epochs=3, patience=0), tiny_graph(), on_run=partial.append)
    assert [r["epochs"] for r in result["runs"]] == [3, 3]
    assert [len(p["runs"]) for p in partial] == [1, 2]
    assert [p["complete"] for p in partial] == [False, False] and result["complete"]


def test_random_split_and_aggregator_swap():
    result = run(small_config(split="random", aggr="mean", model="dagnn"), tiny_graph())
    assert result["summary"]["test_acc"]["n"] == 2
    result = run(small_config(model="gcn", aggr="max", hidden=4), tiny_graph())
    assert result["summary"]["test_acc"]["n"] == 2


def test_propagate_timing_comparison():
    result = run(small_config(runs=1, time_propagate_runs=1), tiny_graph())
    timing = result["propagate_timing"]
    assert timing["summary"]["seconds_per_run"]["n"] == 1
    # Same seed, same protocol, same numbers (up to float rounding).
    assert abs(timing["runs"][0]["test_acc"] - result["runs"][0]["test_acc"]) < 1e-6


def test_oversmoothing_analysis_and_plot(tmp_path):
    cfg = small_config(depths=(1, 2), analysis_models=("gcn", "dagnn"), runs=1)
    # The analysis takes each model's defaults; shorten them for the test.
    short = {name: dataclasses.replace(spec, defaults=dict(spec.defaults, epochs=4, hidden=4))
             for name, spec in MODELS.items()}
    original = dict(MODELS)
    MODELS.update(short)
    try:
        result = analysis(cfg, tiny_graph())
    finally:
        MODELS.update(original)
    assert [c["depth"] for c in result["curves"]["dagnn"]] == [1, 2]
    assert all(0.0 <= c["smv"]["mean"] <= 1.0 for cs in result["curves"].values() for c in cs)
    path = plot_analysis(result["curves"], str(tmp_path / "o.png"), "tiny")
    assert (tmp_path / "o.png").stat().st_size > 1000 and path.endswith("o.png")


def test_smoothness_metric():
    same = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])
    assert smoothness(same) == pytest.approx(0.0, abs=1e-7)
    opposite = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert smoothness(opposite) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        smoothness(torch.ones(1, 3))


def parse(argv):
    parser = argparse.ArgumentParser()
    citation.add_arguments(parser)
    return parser.parse_args(argv)


def test_config_defaults_and_overrides():
    cfg = config_for(parse(["--dataset", "Cora"]))
    assert (cfg.model, cfg.K, cfg.dropout, cfg.weight_decay, cfg.split) == \
        ("dagnn", 10, 0.8, 0.005, "public")
    cfg = config_for(parse(["--dataset", "CiteSeer", "--dropout", "0.3"]))
    assert (cfg.weight_decay, cfg.dropout) == (0.02, 0.3)
    cfg = config_for(parse(["--dataset", "Computers"]))
    assert (cfg.epochs, cfg.patience, cfg.split, cfg.lcc) == (3000, 300, "random", True)
    cfg = config_for(parse(["--model", "gcn", "--dataset", "CS", "--depths", "1", "2"]))
    assert (cfg.hidden, cfg.split, cfg.depths) == (16, "random", (1, 2))


def test_bad_config():
    with pytest.raises(ValueError, match="unknown model"):
        run(small_config(model="gat"), tiny_graph())
    with pytest.raises(ValueError, match="unknown split"):
        run(small_config(split="fixed"), tiny_graph())
    data = tiny_graph()
    del data.train_mask
    with pytest.raises(ValueError, match="no public split"):
        run(small_config(), data)
