"""PyG 2.8's test/nn/test_resolver.py (the aggregation part), with
``gnnagg.aggr.resolve`` in place of ``aggregation_resolver``."""
import pytest
import torch

import torch_geometric
from gnnagg.aggr import GRUAggregation, LCMAggregation, LSTMAggregation, resolve


@pytest.mark.parametrize('aggr_tuple', [
    (torch_geometric.nn.MeanAggregation, 'mean'),
    (torch_geometric.nn.SumAggregation, 'sum'),
    (torch_geometric.nn.SumAggregation, 'add'),
    (torch_geometric.nn.MaxAggregation, 'max'),
    (torch_geometric.nn.MinAggregation, 'min'),
    (torch_geometric.nn.MulAggregation, 'mul'),
    (torch_geometric.nn.VarAggregation, 'var'),
    (torch_geometric.nn.StdAggregation, 'std'),
    (torch_geometric.nn.SoftmaxAggregation, 'softmax'),
    (torch_geometric.nn.PowerMeanAggregation, 'powermean'),
])
def test_aggregation_resolver(aggr_tuple):
    aggr_module, aggr_repr = aggr_tuple
    assert isinstance(resolve(aggr_module()), aggr_module)
    assert isinstance(resolve(aggr_repr), aggr_module)


@pytest.mark.parametrize('aggr_tuple', [
    (LCMAggregation, 'lcm'), (GRUAggregation, 'gru'), (LSTMAggregation, 'lstm'),
])
def test_aggregation_resolver_learned(aggr_tuple):
    # The same names give gnnagg's classes (PyG's give PyG's); positional
    # arguments reach the constructor as with PyG's resolver.
    aggr_module, aggr_repr = aggr_tuple
    module = aggr_module(8, 8)
    assert resolve(module) is module
    assert isinstance(resolve(aggr_repr, 8, 8), aggr_module)
    assert isinstance(resolve(aggr_repr, channels=8), aggr_module)


def test_multi_aggregation_resolver():
    aggr = resolve(None)
    assert aggr is None

    aggr = resolve(['sum', 'mean', None])
    assert isinstance(aggr, torch_geometric.nn.MultiAggregation)
    assert len(aggr.aggrs) == 3
    assert isinstance(aggr.aggrs[0], torch_geometric.nn.SumAggregation)
    assert isinstance(aggr.aggrs[1], torch_geometric.nn.MeanAggregation)
    assert aggr.aggrs[2] is None


def test_resolved_learned_aggregator_trains():
    aggr = resolve(['sum', 'lcm'], channels=4)
    out = aggr(torch.randn(5, 4), torch.tensor([0, 0, 1, 1, 1]))
    out.sum().backward()
    assert out.size() == (2, 8)
    assert aggr.aggrs[1].gru_cell.weight_ih.grad is not None
