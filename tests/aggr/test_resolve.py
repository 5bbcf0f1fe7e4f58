import pytest
import torch
import torch_geometric.nn.aggr as pyg_aggr

from gnnagg.aggr import (GRUAggregation, LCMAggregation, LSTMAggregation, aggregator_class,
                         needs_channels, resolve)


@pytest.mark.parametrize("name, cls", [
    ("lcm", LCMAggregation), ("LCMAggregation", LCMAggregation), ("gru", GRUAggregation),
    ("lstm", LSTMAggregation), ("lstm_aggregation", LSTMAggregation),
])
def test_gnnagg_names_first(name, cls):
    aggr = resolve(name, in_channels=4, out_channels=4)
    assert type(aggr) is cls
    assert aggregator_class(name) is cls and needs_channels(name)


@pytest.mark.parametrize("name, cls", [
    ("sum", pyg_aggr.SumAggregation), ("add", pyg_aggr.SumAggregation),
    ("max", pyg_aggr.MaxAggregation), ("softmax", pyg_aggr.SoftmaxAggregation),
    ("mean", pyg_aggr.MeanAggregation),
])
def test_pyg_names_second(name, cls):
    assert type(resolve(name)) is cls
    assert aggregator_class(name) is cls and not needs_channels(name)


def test_modules_and_classes():
    module = pyg_aggr.MeanAggregation()
    assert resolve(module) is module
    assert isinstance(resolve(LCMAggregation, in_channels=2, out_channels=2), LCMAggregation)
    with pytest.raises(TypeError, match="not an Aggregation"):
        resolve(torch.nn.Linear)
    with pytest.raises(TypeError, match="keyword arguments"):
        resolve(module, in_channels=3)
    with pytest.raises(ValueError, match="unknown aggregator 'nope'"):
        resolve("nope")
    with pytest.raises(TypeError):
        resolve(3)


@pytest.mark.parametrize("name", ["lcm", "gru", "lstm"])
def test_learned_aggregators_under_bf16_autocast(name):
    # Inside a bf16 autocast region the learned aggregators run in float32:
    # same output as without autocast, and gradients reach the input.
    torch.manual_seed(0)
    aggr = resolve(name, in_channels=8, out_channels=8)
    lin = torch.nn.Linear(8, 8)
    x = torch.randn(20, 8, requires_grad=True)
    index = torch.tensor([0] * 7 + [1] * 3 + [3] * 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = lin(x)
        assert h.dtype == torch.bfloat16
        out = aggr(h, index, dim_size=4)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, aggr(h.detach().float(), index, dim_size=4))
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
