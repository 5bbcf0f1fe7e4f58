import pytest
import torch

from gnnagg.aggr import GRUAggregation, LCMAggregation, resolve
from gnnagg.models.ogb import GRAPH_MODELS, OGBGCNConv, OGBGINConv, OGBGraphModel, OGBNodeModel
from torch_geometric.nn.aggr import MaxAggregation, MultiAggregation, SumAggregation

pytestmark = pytest.mark.usefixtures("one_thread")


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
@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "lcm", "gru", "powermean",
                                  ["sum", "max"], ["mean", "lcm"]])
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


def test_gin_with_a_list_adds_the_self_term_to_each_aggregate():
    """GIN's update per aggregator, concatenated: the MLP takes 2 x channels."""
    torch.manual_seed(0)
    conv = OGBGINConv(4, aggr=["sum", "max"]).eval()
    assert isinstance(conv.aggr_module, MultiAggregation) and conv.mlp[0].in_features == 8
    with torch.no_grad():
        conv.eps.fill_(0.5)
    x = torch.randn(3, 4)
    edge_index = torch.tensor([[1, 2, 0], [0, 0, 2]])  # 1->0, 2->0, 0->2
    edge_attr = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 1]])
    e = conv.bond_encoder(edge_attr)
    m = [torch.relu(x[1] + e[0]), torch.relu(x[2] + e[1]), torch.relu(x[0] + e[2])]
    summed = torch.stack([m[0] + m[1], torch.zeros(4), m[2]])
    maxed = torch.stack([torch.maximum(m[0], m[1]), torch.zeros(4), m[2]])
    expected = conv.mlp(torch.cat([1.5 * x + summed, 1.5 * x + maxed], dim=-1))
    torch.testing.assert_close(conv(x, edge_index, edge_attr), expected)


def test_gcn_projects_a_list_back_and_refuses_a_wider_module():
    conv = OGBGCNConv(8, aggr=["sum", "max"])
    assert conv.aggr_module.mode == "proj" and conv.aggr_module.get_out_channels(8) == 8
    with pytest.raises(ValueError, match="outputs 16 channels"):
        OGBGCNConv(8, aggr=resolve(["sum", "max"]))


def test_aggr_kwargs_reach_every_layer():
    net = small(aggr="lcm", aggr_kwargs={"operator": "mlp", "project": False}, num_layers=3)
    for conv in net.convs:
        agg = conv.aggr_module
        assert (agg.operator_name, agg.project, agg.in_channels) == ("mlp", False, 8)
    assert net(*molecules(), num_graphs=3).shape == (3, 2)
    with pytest.raises(TypeError, match="already built"):
        small(aggr=LCMAggregation(8, 8), aggr_kwargs={"operator": "mlp"})


def test_residual_adds_each_layer_input():
    """h1 = h0 + relu(bn(conv(h0))), h2 = h1 + bn(conv(h1)) (eval: no dropout),
    then mean pooling and the head."""
    net = small(residual=True)
    x, edge_index, edge_attr, batch = molecules()
    h0 = net.atom_encoder(x)
    h1 = h0 + torch.relu(net.norms[0](net.convs[0](h0, edge_index, edge_attr)))
    h2 = h1 + net.norms[1](net.convs[1](h1, edge_index, edge_attr))
    pooled = torch.stack([h2[batch == g].mean(0) for g in range(3)])
    torch.testing.assert_close(net(x, edge_index, edge_attr, batch, 3), net.head(pooled))
    plain = small(residual=False)
    assert not torch.allclose(plain(x, edge_index, edge_attr, batch, 3),
                              net(x, edge_index, edge_attr, batch, 3))


def test_residual_virtual_node_model_trains():
    net = small("gin-virtual", residual=True).train()
    out = net(*molecules(), num_graphs=3)
    out.sum().backward()
    assert net.vn_mlps[0][0].weight.grad is not None and "residual=True" in repr(net)


@pytest.mark.parametrize("pooling, width", [("lcm", 8), (["mean", "max"], 16), ("sum", 8)])
def test_pooling_takes_any_aggregator(pooling, width):
    net = small(pooling=pooling)
    assert net.head.in_features == width
    assert net(*molecules(), num_graphs=3).shape == (3, 2)


@pytest.mark.parametrize("conv, widths", [("sage", [5, 8, 8]), ("gcn", [8, 8, 3])])
def test_node_model_aggregates_at_the_message_width(conv, widths):
    """SAGE aggregates its input, GCN its transformed output
    (gnnagg.aggr.message_channels)."""
    net = OGBNodeModel(5, 3, conv=conv, aggr="lcm", hidden_channels=8)
    assert [c.aggr_module.in_channels for c in net.convs] == widths
    listed = OGBNodeModel(5, 3, conv=conv, aggr=["sum", "lcm"], hidden_channels=8)
    out = listed(torch.randn(6, 5), torch.tensor([[0, 1, 2, 3, 4, 5, 1], [1, 0, 3, 2, 5, 4, 2]]))
    assert out.shape == (6, 3) and torch.isfinite(out).all()
