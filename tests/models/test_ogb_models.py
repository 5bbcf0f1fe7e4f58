import pytest
import torch

from gnnagg.aggr import GRUAggregation, LCMAggregation
from gnnagg.models.ogb import GRAPH_MODELS, OGBGINConv, OGBGraphModel, OGBNodeModel
from torch_geometric.nn.aggr import MaxAggregation, SumAggregation


def molecules():
    """Three tiny molecules (4, 3 and 1 atoms; the last has no bonds) with
    atom/bond codes inside OGB's feature ranges."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (8, 9), generator=gen)
    src = torch.tensor([0, 1, 1, 2, 2, 3, 4, 5, 5, 6])
    dst = torch.tensor([1, 0, 2, 1, 3, 2, 5, 4, 6, 5])
    edge_attr = torch.randint(0, 2, (10, 3), generator=gen)
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2])
    return x, torch.stack([src, dst]), edge_attr, batch


def small(model="gin", **kwargs):
    torch.manual_seed(0)
    kwargs = {"num_layers": 2, "hidden_channels": 8, **GRAPH_MODELS[model], **kwargs}
    return OGBGraphModel(2, **kwargs).eval()


@pytest.mark.parametrize("model", sorted(GRAPH_MODELS))
@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "lcm", "gru"])
def test_every_model_takes_every_aggregator(model, aggr):
    net = small(model, aggr=aggr)
    out = net(*molecules(), num_graphs=3)
    assert out.shape == (3, 2) and torch.isfinite(out).all()
    out.sum().backward()


@pytest.mark.parametrize("aggr, cls", [("sum", SumAggregation), ("max", MaxAggregation),
                                       ("lcm", LCMAggregation), ("gru", GRUAggregation)])
def test_aggregator_is_swapped_in_every_layer(aggr, cls):
    net = small("gin-virtual", aggr=aggr, num_layers=3)
    mods = [conv.aggr_module for conv in net.convs]
    assert all(type(m) is cls for m in mods)
    assert len({id(m) for m in mods}) == 3  # one aggregator per layer


def test_module_aggregator_is_copied_per_layer():
    proto = LCMAggregation(8, 8)
    net = small(aggr=proto)
    assert all(isinstance(c.aggr_module, LCMAggregation) and c.aggr_module is not proto
               for c in net.convs)


def test_gin_layer_matches_formula():
    torch.manual_seed(0)
    conv = OGBGINConv(4).eval()
    with torch.no_grad():
        conv.eps.fill_(0.25)
    x = torch.randn(3, 4)
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 2]])  # 1->0, 2->0, 0->2
    edge_attr = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 1]])
    e = conv.bond_encoder(edge_attr)
    agg = torch.stack([torch.relu(x[1] + e[0]) + torch.relu(x[2] + e[1]),
                       torch.zeros(4), torch.relu(x[0] + e[2])])
    expected = conv.mlp(1.25 * x + agg)
    torch.testing.assert_close(conv(x, edge_index, edge_attr), expected)


@pytest.mark.parametrize("model", ["gin", "gin-virtual", "gcn-virtual"])
def test_prediction_independent_of_batch(model):
    net = small(model)
    x, edge_index, edge_attr, batch = molecules()
    together = net(x, edge_index, edge_attr, batch, 3)
    alone = net(x[:4], edge_index[:, :6], edge_attr[:6], batch[:4], 1)
    torch.testing.assert_close(together[:1], alone)


def test_virtual_node_changes_the_prediction():
    a = small("gin")(*molecules(), num_graphs=3)
    b = small("gin-virtual")
    with torch.no_grad():
        b.vn_embedding.weight.fill_(1.0)
    assert not torch.allclose(a, b(*molecules(), num_graphs=3))


def test_jk_sum_and_reset():
    net = small(jk="sum")
    out = net(*molecules(), num_graphs=3)
    net.reset_parameters()
    assert out.shape == (3, 2)
    assert "aggr=" in repr(net)


@pytest.mark.parametrize("kwargs, match", [({"conv": "gat"}, "unknown conv"),
                                           ({"jk": "max"}, "unknown jk"),
                                           ({"num_layers": 1}, "num_layers"),
                                           ({"dropout": 1.0}, "dropout"),
                                           ({"aggr": "nope"}, "unknown aggregator")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OGBGraphModel(1, **kwargs)


@pytest.mark.parametrize("conv", ["gcn", "sage"])
@pytest.mark.parametrize("aggr", ["sum", "lcm"])
def test_node_model(conv, aggr):
    torch.manual_seed(0)
    net = OGBNodeModel(5, 3, conv=conv, aggr=aggr, hidden_channels=8)
    x = torch.randn(6, 5)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 1], [1, 0, 3, 2, 5, 4, 2]])
    out = net(x, edge_index)
    assert out.shape == (6, 3)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(6))
    with pytest.raises(ValueError, match="unknown conv"):
        OGBNodeModel(5, 3, conv="gat")
