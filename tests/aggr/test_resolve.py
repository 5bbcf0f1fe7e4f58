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
