"""PyG 2.8's test/nn/conv/test_sage_conv.py with gnnagg's aggregators passed
as ``aggr=`` (PyG's own string names keep resolving to PyG's classes inside
PyG's layers, so a user switching passes the module)."""
import pytest
import torch

from gnnagg.aggr import LCMAggregation, LSTMAggregation, resolve
from torch_geometric.nn import SAGEConv
from torch_geometric.testing import assert_module

# Deliberate difference (for GRU and LSTM): they depend on the order of a
# node's neighbours, so an edge permutation changes the output; PyG tests its
# own LSTM with test_edge_permutation=False too. LCM's operator is
# commutative, so the two neighbours per node in these fixtures give the same
# output in either order.
ORDER_FREE_FOR_TWO = {"lcm": True, "gru": False, "lstm": False}


@pytest.mark.parametrize('project', [False, True])
def test_sage_conv(project, ours, name):
    x = torch.randn(4, 8)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])

    aggr = ours[name](8, 8)
    conv = SAGEConv(8, 32, project=project, aggr=aggr)
    assert str(conv) == f'SAGEConv(8, 32, aggr={aggr})'

    out = assert_module(conv, x, edge_index, expected_size=(4, 32),
                        test_edge_permutation=ORDER_FREE_FOR_TWO[name])

    # PyG runs these only in its full test; they are cheap here.
    jit = torch.jit.script(conv)
    assert torch.allclose(jit(x, edge_index), out, atol=1e-6)
    assert torch.allclose(jit(x, edge_index, size=(4, 4)), out, atol=1e-6)

    # Test bipartite message passing:
    x1 = torch.randn(4, 8)
    x2 = torch.randn(2, 16)

    aggr = ours[name](8, 8)
    conv = SAGEConv((8, 16), 32, project=project, aggr=aggr)
    assert str(conv) == f'SAGEConv((8, 16), 32, aggr={aggr})'

    out1 = assert_module(conv, (x1, x2), edge_index, expected_size=(2, 32),
                         test_edge_permutation=ORDER_FREE_FOR_TWO[name])
    out2 = assert_module(conv, (x1, None), edge_index, size=(4, 2),
                         expected_size=(2, 32),
                         test_edge_permutation=ORDER_FREE_FOR_TWO[name])

    jit = torch.jit.script(conv)
    assert torch.allclose(jit((x1, x2), edge_index), out1, atol=1e-6)
    assert torch.allclose(jit((x1, x2), edge_index, size=(4, 2)), out1, atol=1e-6)
    assert torch.allclose(jit((x1, None), edge_index, size=(4, 2)), out2, atol=1e-6)


def test_lstm_aggr_sage_conv():
    x = torch.randn(4, 8)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])

    aggr = LSTMAggregation(8, 8)
    conv = SAGEConv(8, 32, aggr=aggr)
    assert str(conv) == f'SAGEConv(8, 32, aggr={aggr})'

    assert_module(conv, x, edge_index, expected_size=(4, 32),
                  test_edge_permutation=False)

    edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 1, 0]])
    # Deliberate difference: PyG raises "'index' tensor is not sorted";
    # gnnagg accepts any edge order and keeps each node's neighbours in their
    # given order, as if the edges had been sorted stably by destination.
    perm = torch.argsort(edge_index[1], stable=True)
    assert torch.allclose(conv(x, edge_index), conv(x, edge_index[:, perm]), atol=1e-6)


def test_mlp_sage_conv():
    # PyG's MLPAggregation has no gnnagg counterpart; LCM with an MLP pair
    # operator is gnnagg's MLP-based learned aggregator.
    x = torch.randn(4, 8)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])

    conv = SAGEConv(
        in_channels=8,
        out_channels=32,
        aggr=LCMAggregation(8, 8, operator='mlp'),
    )

    out = conv(x, edge_index)
    assert out.size() == (4, 32)


@pytest.mark.parametrize('aggr_kwargs', [
    dict(mode='cat'),
    dict(mode='proj', mode_kwargs=dict(in_channels=8, out_channels=16)),
    dict(mode='attn', mode_kwargs=dict(in_channels=8, out_channels=16,
                                       num_heads=4)),
    dict(mode='sum'),
])
def test_multi_aggr_sage_conv(aggr_kwargs):
    x = torch.randn(4, 8)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])

    aggr_kwargs['aggrs_kwargs'] = [{}, {}, {}, dict(learn=True, t=1), {}]
    aggr = resolve(['mean', 'max', 'sum', 'softmax', 'lcm'], channels=8, **aggr_kwargs)
    conv = SAGEConv(8, 32, aggr=aggr)

    assert_module(conv, x, edge_index, expected_size=(4, 32))


def test_compile_multi_aggr_sage_conv():
    import torch._dynamo as dynamo

    x = torch.randn(4, 8)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])

    conv = SAGEConv(
        in_channels=8,
        out_channels=32,
        aggr=resolve(['mean', 'sum', 'min', 'max', 'std', 'lcm'], channels=8),
    )

    # Deliberate difference: PyG's reductions trace without a graph break;
    # gnnagg's ragged reductions have graph-dependent loop counts and run
    # eagerly behind one break instead of being recompiled for every graph
    # (explain counts that break once per enclosing frame: 4 here).
    dynamo.reset()
    explanation = dynamo.explain(conv)(x, edge_index)
    reasons = {str(b.reason) for b in explanation.break_reasons}
    assert len(reasons) == 1 and '_run_eagerly' in reasons.pop()

    # PyG compiles with inductor; aot_eager checks the same tracing faster.
    compiled_conv = torch.compile(conv, backend='aot_eager')

    expected = conv(x, edge_index)
    out = compiled_conv(x, edge_index)
    assert torch.allclose(out, expected, atol=1e-6)
