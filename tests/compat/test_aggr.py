"""PyG 2.8's test/nn/aggr/{test_lcm,test_gru,test_lstm,test_multi}.py and
test_basic.py::test_validate, with gnnagg's aggregators."""
import pytest
import torch

import torch_geometric.typing
from gnnagg.aggr import GRUAggregation, LCMAggregation, LSTMAggregation, resolve
from torch_geometric.nn import MultiAggregation


# test/nn/aggr/test_lcm.py

def test_lcm_aggregation_with_project():
    x = torch.randn(6, 16)
    index = torch.tensor([0, 0, 1, 1, 1, 2])

    aggr = LCMAggregation(16, 32)
    assert str(aggr) == 'LCMAggregation(16, 32, project=True)'

    out = aggr(x, index)
    assert out.size() == (3, 32)


def test_lcm_aggregation_without_project():
    x = torch.randn(5, 16)
    index = torch.tensor([0, 1, 1, 2, 2])

    aggr = LCMAggregation(16, 16, project=False)
    assert str(aggr) == 'LCMAggregation(16, 16, project=False)'

    out = aggr(x, index)
    assert out.size() == (3, 16)


def test_lcm_aggregation_error_handling():
    with pytest.raises(ValueError, match="must be projected"):
        LCMAggregation(16, 32, project=False)


# test/nn/aggr/test_gru.py

def test_gru_aggregation():
    x = torch.randn(6, 16)
    index = torch.tensor([0, 0, 1, 1, 1, 2])

    aggr = GRUAggregation(16, 32)
    assert str(aggr) == 'GRUAggregation(16, 32)'

    out = aggr(x, index)
    assert out.size() == (3, 32)


# test/nn/aggr/test_lstm.py

def test_lstm_aggregation():
    x = torch.randn(6, 16)
    index = torch.tensor([0, 0, 1, 1, 1, 2])

    aggr = LSTMAggregation(16, 32)
    assert str(aggr) == 'LSTMAggregation(16, 32)'

    # Deliberate difference: PyG raises "is not sorted" for an unsorted
    # index; gnnagg accepts any order and keeps each node's neighbours in
    # their given order (a stable sort), so the result equals the sorted
    # input's.
    unsorted = torch.tensor([0, 1, 0, 1, 2, 1])
    perm = torch.argsort(unsorted, stable=True)
    assert torch.allclose(aggr(x, unsorted), aggr(x[perm], unsorted[perm]), atol=1e-6)

    out = aggr(x, index)
    assert out.size() == (3, 32)


# test/nn/aggr/test_basic.py::test_validate, for gnnagg's aggregators

def test_validate(ours, name):
    x = torch.randn(6, 16)
    index = torch.tensor([0, 0, 1, 1, 1, 2])
    ptr = torch.tensor([0, 2, 5, 6])

    aggr = ours[name](16, 16)

    with pytest.raises(ValueError, match="invalid dimension"):
        aggr(x, index, dim=-3)

    with pytest.raises(ValueError, match="invalid 'dim_size'"):
        aggr(x, ptr=ptr, dim_size=2)

    with pytest.raises(ValueError, match="invalid 'dim_size'"):
        aggr(x, index, dim_size=2)


# test/nn/aggr/test_multi.py, members from gnnagg's resolver

@pytest.mark.parametrize('multi_aggr_tuple', [
    (dict(mode='cat'), 3),
    (dict(mode='proj', mode_kwargs=dict(in_channels=16, out_channels=16)), 1),
    (dict(mode='attn', mode_kwargs=dict(in_channels=16, out_channels=16,
                                        num_heads=4)), 1),
    (dict(mode='sum'), 1),
    (dict(mode='mean'), 1),
    (dict(mode='max'), 1),
    (dict(mode='min'), 1),
    (dict(mode='logsumexp'), 1),
    (dict(mode='std'), 1),
    (dict(mode='var'), 1),
])
def test_multi_aggr(multi_aggr_tuple):
    aggr_kwargs, expand = multi_aggr_tuple
    x = torch.randn(7, 16)
    index = torch.tensor([0, 0, 1, 1, 1, 2, 3])
    ptr = torch.tensor([0, 2, 5, 6, 7])

    aggrs = ['mean', 'sum', 'gru']
    aggr = resolve(aggrs, channels=16, **aggr_kwargs)
    assert isinstance(aggr, MultiAggregation)
    aggr.reset_parameters()
    assert str(aggr) == ('MultiAggregation([\n'
                         '  MeanAggregation(),\n'
                         '  SumAggregation(),\n'
                         '  GRUAggregation(16, 16),\n'
                         f"], mode={aggr_kwargs['mode']})")

    out = aggr(x, index)
    assert out.size() == (4, expand * x.size(1))

    if (not torch_geometric.typing.WITH_TORCH_SCATTER
            and not torch_geometric.typing.WITH_PT20):
        with pytest.raises(ImportError, match="requires the 'torch-scatter'"):
            aggr(x, ptr=ptr)
    else:
        assert torch.allclose(out, aggr(x, ptr=ptr), atol=1e-6)

    jit = torch.jit.script(aggr)
    assert torch.allclose(out, jit(x, index), atol=1e-6)


def test_multi_aggr_with_every_learned_aggregator():
    x = torch.randn(7, 16)
    index = torch.tensor([0, 0, 1, 1, 1, 2, 3])
    ptr = torch.tensor([0, 2, 5, 6, 7])

    aggr = resolve(['lcm', 'gru', 'lstm'], channels=16)
    out = aggr(x, index)
    assert out.size() == (4, 3 * 16)
    assert torch.allclose(out, aggr(x, ptr=ptr), atol=1e-6)
    jit = torch.jit.script(aggr)
    assert torch.allclose(out, jit(x, index), atol=1e-5)
