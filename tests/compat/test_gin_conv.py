"""PyG 2.8's test/nn/conv/test_gin_conv.py with gnnagg's aggregators passed
as ``aggr=``. The fixtures give every node at most two neighbours; GRU and
LSTM depend on their order, so each comparison below keeps the edge order."""
import torch
from torch.nn import Linear as Lin
from torch.nn import ReLU
from torch.nn import Sequential as Seq

from torch_geometric.nn import GINConv, GINEConv
from torch_geometric.utils import to_torch_csc_tensor


def test_gin_conv(ours, name):
    x1 = torch.randn(4, 16)
    x2 = torch.randn(2, 16)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    adj1 = to_torch_csc_tensor(edge_index, size=(4, 4))

    nn = Seq(Lin(16, 32), ReLU(), Lin(32, 32))
    conv = GINConv(nn, train_eps=True, aggr=ours[name](16, 16))
    assert str(conv) == (
        'GINConv(nn=Sequential(\n'
        '  (0): Linear(in_features=16, out_features=32, bias=True)\n'
        '  (1): ReLU()\n'
        '  (2): Linear(in_features=32, out_features=32, bias=True)\n'
        '))')
    out = conv(x1, edge_index)
    assert out.size() == (4, 32)
    assert torch.allclose(conv(x1, edge_index, size=(4, 4)), out, atol=1e-6)
    assert torch.allclose(conv(x1, adj1.t()), out, atol=1e-6)

    jit = torch.jit.script(conv)
    assert torch.allclose(jit(x1, edge_index), out, atol=1e-6)
    assert torch.allclose(jit(x1, edge_index, size=(4, 4)), out, atol=1e-6)

    # Test bipartite message passing:
    adj1 = to_torch_csc_tensor(edge_index, size=(4, 2))

    out1 = conv((x1, x2), edge_index)
    assert out1.size() == (2, 32)
    assert torch.allclose(conv((x1, x2), edge_index, (4, 2)), out1, atol=1e-6)
    assert torch.allclose(conv((x1, x2), adj1.t()), out1, atol=1e-6)

    out2 = conv((x1, None), edge_index, (4, 2))
    assert out2.size() == (2, 32)
    assert torch.allclose(conv((x1, None), adj1.t()), out2, atol=1e-6)

    assert torch.allclose(jit((x1, x2), edge_index), out1, atol=1e-6)
    assert torch.allclose(jit((x1, x2), edge_index, size=(4, 2)), out1, atol=1e-6)
    assert torch.allclose(jit((x1, None), edge_index, size=(4, 2)), out2, atol=1e-6)


def test_gine_conv(ours, name):
    x1 = torch.randn(4, 16)
    x2 = torch.randn(2, 16)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    value = torch.randn(edge_index.size(1), 16)

    nn = Seq(Lin(16, 32), ReLU(), Lin(32, 32))
    conv = GINEConv(nn, train_eps=True, aggr=ours[name](16, 16))
    assert str(conv) == (
        'GINEConv(nn=Sequential(\n'
        '  (0): Linear(in_features=16, out_features=32, bias=True)\n'
        '  (1): ReLU()\n'
        '  (2): Linear(in_features=32, out_features=32, bias=True)\n'
        '))')
    out = conv(x1, edge_index, value)
    assert out.size() == (4, 32)
    assert torch.allclose(conv(x1, edge_index, value, size=(4, 4)), out, atol=1e-6)

    jit = torch.jit.script(conv)
    assert torch.allclose(jit(x1, edge_index, value), out, atol=1e-6)
    assert torch.allclose(jit(x1, edge_index, value, size=(4, 4)), out, atol=1e-6)

    # Test bipartite message passing:
    out1 = conv((x1, x2), edge_index, value)
    assert out1.size() == (2, 32)
    assert torch.allclose(conv((x1, x2), edge_index, value, (4, 2)), out1, atol=1e-6)

    out2 = conv((x1, None), edge_index, value, (4, 2))
    assert out2.size() == (2, 32)

    assert torch.allclose(jit((x1, x2), edge_index, value), out1, atol=1e-6)
    assert torch.allclose(jit((x1, x2), edge_index, value, size=(4, 2)), out1, atol=1e-6)
    assert torch.allclose(jit((x1, None), edge_index, value, size=(4, 2)), out2, atol=1e-6)


def test_gine_conv_edge_dim(ours, name):
    x = torch.randn(4, 16)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    edge_attr = torch.randn(edge_index.size(1), 8)

    nn = Seq(Lin(16, 32), ReLU(), Lin(32, 32))
    conv = GINEConv(nn, train_eps=True, edge_dim=8, aggr=ours[name](16, 16))
    out = conv(x, edge_index, edge_attr)
    assert out.size() == (4, 32)

    nn = Lin(16, 32)
    conv = GINEConv(nn, train_eps=True, edge_dim=8, aggr=ours[name](16, 16))
    out = conv(x, edge_index, edge_attr)
    assert out.size() == (4, 32)


def test_static_gin_conv(ours, name):
    x = torch.randn(3, 4, 16)
    edge_index = torch.tensor([[0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0]])

    nn = Seq(Lin(16, 32), ReLU(), Lin(32, 32))
    conv = GINConv(nn, train_eps=True, aggr=ours[name](16, 16))
    out = conv(x, edge_index)
    assert out.size() == (3, 4, 32)
    # Every graph of the static batch is aggregated on its own.
    assert torch.allclose(out[1], conv(x[1], edge_index), atol=1e-6)


def test_static_gine_conv(ours, name):
    x = torch.randn(3, 4, 16)
    edge_index = torch.tensor([[0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0]])
    edge_attr = torch.randn(edge_index.size(1), 16)

    nn = Seq(Lin(16, 32), ReLU(), Lin(32, 32))
    conv = GINEConv(nn, train_eps=True, aggr=ours[name](16, 16))
    out = conv(x, edge_index, edge_attr)
    assert out.size() == (3, 4, 32)
