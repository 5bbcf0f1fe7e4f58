import warnings

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn.aggr import MaxAggregation, MeanAggregation, SumAggregation

from gnnagg.aggr import AggregatorCostWarning, LCMAggregation, Projected
from gnnagg.models import GCN, GIN, SGC, APPNPNet, GraphSAGE
from gnnagg.models.node import layer_aggregator

pytestmark = pytest.mark.usefixtures("one_thread")

# A directed graph (source row 0, target row 1) with an isolated node 5.
EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 3, 0, 4],
                           [1, 0, 2, 3, 1, 3, 2]])
N = 6


def adjacency(n=N, edge_index=EDGE_INDEX):
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[1], edge_index[0]] = 1.0  # a[target, source]
    return a


def gcn_matrix():
    a = adjacency() + torch.eye(N, dtype=torch.float64)
    d = a.sum(dim=1).pow(-0.5)
    return d.view(-1, 1) * a * d.view(1, -1)


ALL = {
    "gcn": lambda **kw: GCN(5, 8, 3, **kw),
    "sage": lambda **kw: GraphSAGE(5, 8, 3, **kw),
    "gin": lambda **kw: GIN(5, 8, 3, **kw),
    "appnp": lambda **kw: APPNPNet(5, 8, 3, K=3, **kw),
    "sgc": lambda **kw: SGC(5, 3, K=2, **kw),
}


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("aggr", ["sum", "mean", "max", "lcm"])
def test_logits_shape_and_every_aggregator(name, aggr):
    torch.manual_seed(0)
    model = ALL[name](aggr=aggr).eval()
    x = torch.randn(N, 5)
    out = model(x, EDGE_INDEX)
    assert out.shape == (N, 3) and torch.isfinite(out).all()
    torch.testing.assert_close(model.logits(x, EDGE_INDEX), out)
    # forward gives logits, not log-probabilities.
    assert not torch.allclose(out.exp().sum(dim=-1), torch.ones(N))


def test_gcn_layer_matches_the_dense_formula():
    torch.manual_seed(1)
    model = GCN(4, 8, 3, num_layers=1, dropout=0.0).double()
    x = torch.randn(N, 4, dtype=torch.float64)
    conv = model.convs[0]
    expected = gcn_matrix() @ x @ conv.lin.weight.t() + conv.bias
    torch.testing.assert_close(model(x, EDGE_INDEX), expected)


def test_sgc_matches_the_dense_formula_and_caches_only_fixed_aggregations():
    torch.manual_seed(2)
    model = SGC(4, 3, K=2).double()
    x = torch.randn(N, 4, dtype=torch.float64)
    lin = model.conv.lin
    expected = gcn_matrix() @ gcn_matrix() @ x @ lin.weight.t() + lin.bias
    torch.testing.assert_close(model(x, EDGE_INDEX), expected)
    assert model.conv.cached and SGC(4, 3, aggr="max").conv.cached
    learned = SGC(4, 3, aggr="lcm")
    assert not learned.conv.cached
    # SGC aggregates its input features: the LCM is as wide as the input.
    assert learned.conv.aggr_module.in_channels == 4
    with pytest.raises(ValueError, match="cannot cache"):
        SGC(4, 3, aggr="lcm", cached=True)


def test_sage_mean_matches_the_dense_formula():
    torch.manual_seed(3)
    model = GraphSAGE(4, 8, 3, num_layers=1, dropout=0.0).double()
    x = torch.randn(N, 4, dtype=torch.float64)
    a = adjacency()
    mean = (a @ x) / a.sum(dim=1, keepdim=True).clamp(min=1)
    conv = model.convs[0]
    expected = conv.lin_l(mean) + conv.lin_r(x)
    torch.testing.assert_close(model(x, EDGE_INDEX), expected)
    assert isinstance(conv.aggr_module, MeanAggregation)


def test_gin_layer_matches_the_dense_formula():
    torch.manual_seed(4)
    model = GIN(4, 8, 3, num_layers=1, dropout=0.0).double()
    x = torch.randn(N, 4, dtype=torch.float64)
    conv = model.convs[0]
    torch.testing.assert_close(model(x, EDGE_INDEX), conv.nn(x + adjacency() @ x))


def test_appnp_matches_the_dense_formula():
    torch.manual_seed(5)
    model = APPNPNet(4, 8, 3, K=3, alpha=0.2, dropout=0.0).double()
    x = torch.randn(N, 4, dtype=torch.float64)
    z0 = model.lins[1](F.relu(model.lins[0](x)))
    z = z0
    for _ in range(3):
        z = 0.8 * gcn_matrix() @ z + 0.2 * z0
    torch.testing.assert_close(model(x, EDGE_INDEX), z)


def test_gcn_with_lcm_trains_outside_a_runner():
    """Cora's sizes: 1,433 bag-of-words features, 7 classes, aggr='lcm'."""
    torch.manual_seed(6)
    n = 42
    y = torch.arange(7).repeat(6)
    x = (torch.rand(n, 1433) < 0.01).float()
    x[torch.arange(n), y] = 1.0
    src = torch.randint(0, n, (160,))
    edge_index = torch.stack([src, (src + 7 * torch.randint(1, 4, (160,))) % n])  # same class
    torch.manual_seed(0)
    model = GCN(1433, 16, 7, aggr="lcm")
    assert all(isinstance(c.aggr_module, LCMAggregation) for c in model.convs)
    assert [c.aggr_module.in_channels for c in model.convs] == [16, 7]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, edge_index), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_aggr_width_projects_wide_learned_aggregators_only():
    with warnings.catch_warnings():
        warnings.simplefilter("error", AggregatorCostWarning)
        model = GraphSAGE(1433, 16, 7, aggr="lcm", aggr_width=32)
    first, second = (c.aggr_module for c in model.convs)
    assert isinstance(first, Projected) and first.width == 32 and first.in_channels == 1433
    assert isinstance(second, LCMAggregation) and second.in_channels == 16  # not wider than 32
    assert sum(p.numel() for p in first.parameters()) < 200_000
    # Fixed aggregators are never projected.
    assert isinstance(GraphSAGE(1433, 16, 7, aggr="max", aggr_width=32).convs[0].aggr_module,
                      MaxAggregation)


def test_every_layer_gets_its_own_aggregator():
    shared = LCMAggregation(8, 8)
    model = GIN(8, 8, 3, num_layers=3, aggr=shared, aggr_kwargs=None)
    modules = [c.aggr_module for c in model.convs]
    assert len({id(m) for m in modules}) == 3 and all(m is not shared for m in modules)
    model = GCN(5, 8, 3, aggr="lcm")
    assert model.convs[0].aggr_module is not model.convs[1].aggr_module


def test_lists_of_aggregators():
    agg = layer_aggregator(["sum", "lcm"], "SAGEConv", 100, 8, aggr_width=16,
                           aggr_kwargs={"mode": "mean"})
    sum_, lcm = agg.aggrs
    assert isinstance(sum_, SumAggregation) and isinstance(lcm, Projected) and lcm.width == 16
    with pytest.raises(ValueError, match="aggrs_kwargs"):
        layer_aggregator(["sum", "lcm"], "SAGEConv", 8, 8, aggr_kwargs={"aggrs_kwargs": [{}]})


def test_batch_norm_reset_parameters_and_repr():
    torch.manual_seed(7)
    model = GCN(5, 8, 3, num_layers=3, batch_norm=True)
    assert [type(n).__name__ for n in model.norms] == ["BatchNorm1d", "BatchNorm1d"]
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert repr(model) == "GCN(5, 8, 3, num_layers=3, aggr=SumAggregation())"
    assert repr(SGC(5, 3)) == "SGC(5, 3, K=2, aggr=SumAggregation(), cached=True)"


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_layers"):
        GCN(5, 8, 3, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        GraphSAGE(5, 8, 3, dropout=1.0)
    with pytest.raises(ValueError, match="aggr_width"):
        GIN(5, 8, 3, aggr="lcm", aggr_width=0)
    with pytest.raises(ValueError, match="unknown aggregator"):
        APPNPNet(5, 8, 3, aggr="no-such")
    with pytest.raises(ValueError, match="K"):
        SGC(5, 3, K=-1)
    with pytest.raises(TypeError, match="already built"):
        GCN(5, 8, 3, aggr=MaxAggregation(), aggr_kwargs={"x": 1})
