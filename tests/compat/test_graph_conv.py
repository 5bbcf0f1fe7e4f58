"""PyG 2.8's test/nn/conv/test_graph_conv.py with gnnagg's aggregators
passed as ``aggr=``. ``EdgeIndex`` sorted by column makes PyG pass both
``index`` and ``ptr`` to the aggregator (they must agree)."""
import torch

from torch_geometric import EdgeIndex
from torch_geometric.nn import GraphConv
from torch_geometric.utils import to_torch_csc_tensor


def test_graph_conv(ours, name):
    x1 = torch.randn(4, 8)
    x2 = torch.randn(2, 16)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    value = torch.randn(edge_index.size(1))
    adj1 = to_torch_csc_tensor(edge_index, size=(4, 4))
    adj2 = to_torch_csc_tensor(edge_index, value, size=(4, 4))

    conv = GraphConv(8, 32, aggr=ours[name](8, 8))
    assert str(conv) == 'GraphConv(8, 32)'
    out1 = conv(x1, edge_index)
    assert out1.size() == (4, 32)
    assert torch.allclose(conv(x1, edge_index, size=(4, 4)), out1, atol=1e-6)
    assert torch.allclose(conv(x1, adj1.t()), out1, atol=1e-6)

    assert conv(
        x1,
        EdgeIndex(edge_index, sort_order='col', sparse_size=(4, 4)),
    ).allclose(out1, atol=1e-6)

    out2 = conv(x1, edge_index, value)
    assert out2.size() == (4, 32)
    assert torch.allclose(conv(x1, edge_index, value, size=(4, 4)), out2, atol=1e-6)
    assert torch.allclose(conv(x1, adj2.t()), out2, atol=1e-6)

    assert conv(
        x1,
        EdgeIndex(edge_index, sort_order='col', sparse_size=(4, 4)),
        value,
    ).allclose(out2, atol=1e-6)

    jit = torch.jit.script(conv)
    assert torch.allclose(jit(x1, edge_index), out1, atol=1e-6)
    assert torch.allclose(jit(x1, edge_index, size=(4, 4)), out1, atol=1e-6)
    assert torch.allclose(jit(x1, edge_index, value), out2, atol=1e-6)
    assert torch.allclose(jit(x1, edge_index, value, size=(4, 4)), out2, atol=1e-6)

    # Test bipartite message passing:
    adj1 = to_torch_csc_tensor(edge_index, size=(4, 2))
    adj2 = to_torch_csc_tensor(edge_index, value, size=(4, 2))

    conv = GraphConv((8, 16), 32, aggr=ours[name](8, 8))
    assert str(conv) == 'GraphConv((8, 16), 32)'
    out1 = conv((x1, x2), edge_index)
    assert out1.size() == (2, 32)
    assert torch.allclose(conv((x1, x2), edge_index, size=(4, 2)), out1, atol=1e-6)
    assert torch.allclose(conv((x1, x2), adj1.t()), out1, atol=1e-6)

    assert conv(
        (x1, x2),
        EdgeIndex(edge_index, sort_order='col', sparse_size=(4, 2)),
    ).allclose(out1, atol=1e-6)

    out2 = conv((x1, None), edge_index, size=(4, 2))
    assert out2.size() == (2, 32)
    assert torch.allclose(conv((x1, None), adj1.t()), out2, atol=1e-6)

    assert conv(
        (x1, None),
        EdgeIndex(edge_index, sort_order='col', sparse_size=(4, 2)),
    ).allclose(out2, atol=1e-6)

    out3 = conv((x1, x2), edge_index, value)
    assert out3.size() == (2, 32)
    assert torch.allclose(conv((x1, x2), edge_index, value, (4, 2)), out3, atol=1e-6)
    assert torch.allclose(conv((x1, x2), adj2.t()), out3, atol=1e-6)

    assert conv(
        (x1, x2),
        EdgeIndex(edge_index, sort_order='col', sparse_size=(4, 2)),
        value,
    ).allclose(out3, atol=1e-6)

    out4 = conv((x1, None), edge_index, value, size=(4, 2))
    assert out4.size() == (2, 32)
    assert torch.allclose(conv((x1, None), adj2.t()), out4, atol=1e-6)

    assert conv(
        (x1, None),
        EdgeIndex(edge_index, sort_order='col', sparse_size=(4, 2)),
        value,
    ).allclose(out4, atol=1e-6)

    jit = torch.jit.script(conv)
    assert torch.allclose(jit((x1, x2), edge_index), out1, atol=1e-6)
    assert torch.allclose(jit((x1, x2), edge_index, size=(4, 2)), out1, atol=1e-6)
    assert torch.allclose(jit((x1, None), edge_index, size=(4, 2)), out2, atol=1e-6)
    assert torch.allclose(jit((x1, x2), edge_index, value), out3, atol=1e-6)
    assert torch.allclose(jit((x1, x2), edge_index, value, (4, 2)), out3, atol=1e-6)
    assert torch.allclose(jit((x1, None), edge_index, value, (4, 2)), out4, atol=1e-6)


class EdgeGraphConv(GraphConv):
    def message(self, x_j, edge_weight):
        return edge_weight.view(-1, 1) * x_j


def test_inheritance(ours, name):
    x = torch.randn(4, 8)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    edge_weight = torch.rand(4)

    conv = EdgeGraphConv(8, 16, aggr=ours[name](8, 8))
    assert conv(x, edge_index, edge_weight).size() == (4, 16)
