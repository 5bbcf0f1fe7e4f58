"""Swapping aggregators in existing PyG models (the first thing users do)."""
import pytest
import torch
from torch_geometric.data import HeteroData
from torch_geometric.nn import (GeneralConv, GINConv, GraphConv, HeteroConv, SAGEConv,
                                to_hetero)

from gnnagg import swap_aggregators
from gnnagg.aggr import GRUAggregation, LCMAggregation

EDGE_INDEX = torch.tensor([[0, 1, 2, 3, 4, 0, 2, 5], [1, 0, 1, 1, 2, 5, 5, 4]])  # unsorted


class Net(torch.nn.Module):
    def __init__(self, conv1, conv2):
        super().__init__()
        self.conv1, self.conv2 = conv1, conv2

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


def make(layer):
    mlp = lambda i, o: torch.nn.Sequential(torch.nn.Linear(i, o), torch.nn.ReLU(), torch.nn.Linear(o, o))
    return {
        "SAGEConv": lambda: Net(SAGEConv(5, 8), SAGEConv(8, 3)),
        "GraphConv": lambda: Net(GraphConv(5, 8), GraphConv(8, 3)),
        "GINConv": lambda: Net(GINConv(mlp(5, 8)), GINConv(mlp(8, 3))),
        "GeneralConv": lambda: Net(GeneralConv(5, 8), GeneralConv(8, 3)),
    }[layer]()


def train_steps(model, x, edge_index, steps=3):
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = model(x, edge_index).pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("layer", ["SAGEConv", "GraphConv", "GINConv", "GeneralConv"])
@pytest.mark.parametrize("aggr", ["lcm", "gru", "lstm", "max"])
def test_swap_in_homogeneous_models(layer, aggr):
    torch.manual_seed(0)
    model = make(layer)
    x = torch.randn(6, 5)
    before = model(x, EDGE_INDEX)
    replaced = swap_aggregators(model, aggr)
    assert sorted(replaced) == ["conv1", "conv2"]
    assert all(type(m).__name__ != "SumAggregation" or aggr == "sum" for m in
               (model.conv1.aggr_module, model.conv2.aggr_module))
    after = model(x, EDGE_INDEX)
    assert after.shape == before.shape
    losses = train_steps(model, x, EDGE_INDEX)
    assert all(torch.isfinite(torch.tensor(losses)))
    # The new aggregator's parameters train.
    params = list(model.conv1.aggr_module.parameters())
    if params:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params)


def test_pass_aggregator_directly_as_aggr():
    conv = SAGEConv(4, 6, aggr=LCMAggregation(4, 4))
    out = conv(torch.randn(6, 4), EDGE_INDEX)
    assert out.shape == (6, 6)
    conv = GraphConv(4, 6, aggr=GRUAggregation(4, 4))
    assert conv(torch.randn(6, 4), EDGE_INDEX).shape == (6, 6)


def test_swap_with_example_probe_and_filter():
    torch.manual_seed(0)
    model = make("SAGEConv")
    x = torch.randn(6, 5)
    replaced = swap_aggregators(model, "lcm", example=(x, EDGE_INDEX),
                                filter=lambda name, layer: name == "conv2")
    assert list(replaced) == ["conv2"]
    assert isinstance(model.conv2.aggr_module, LCMAggregation)
    assert model.conv2.aggr_module.in_channels == 8
    with pytest.raises(TypeError, match="not a module instance"):
        swap_aggregators(model, LCMAggregation(8, 8))


def test_swap_unknown_layer_asks_for_example():
    from torch_geometric.nn import MessagePassing

    class Custom(MessagePassing):
        def forward(self, x, edge_index):
            return self.propagate(edge_index, x=x)

    model = Net(Custom(), Custom())
    with pytest.raises(ValueError, match="pass example="):
        swap_aggregators(model, "gru")
    swap_aggregators(model, "gru", example=(torch.randn(6, 3), EDGE_INDEX))
    assert model(torch.randn(6, 3), EDGE_INDEX).shape == (6, 3)


def hetero_data():
    data = HeteroData()
    data["paper"].x = torch.randn(5, 4)
    data["author"].x = torch.randn(3, 4)
    data["author", "writes", "paper"].edge_index = torch.tensor([[0, 1, 2, 2, 0], [0, 1, 2, 4, 4]])
    data["paper", "rev_writes", "author"].edge_index = torch.tensor([[0, 1, 2, 4, 4], [0, 1, 2, 2, 0]])
    data["paper", "cites", "paper"].edge_index = torch.tensor([[0, 1, 3], [1, 2, 4]])
    return data


def test_swap_in_to_hetero_model():
    torch.manual_seed(0)
    data = hetero_data()
    model = to_hetero(Net(SAGEConv((-1, -1), 8), SAGEConv((-1, -1), 3)), data.metadata(), aggr="sum")
    model(data.x_dict, data.edge_index_dict)  # initialise lazy layers
    replaced = swap_aggregators(model, "lcm", example=(data.x_dict, data.edge_index_dict))
    assert len(replaced) == 2 * len(data.edge_types)
    out = model(data.x_dict, data.edge_index_dict)
    assert out["paper"].shape == (5, 3) and out["author"].shape == (3, 3)
    out["paper"].sum().backward()


def test_swap_in_heteroconv():
    torch.manual_seed(0)
    data = hetero_data()
    conv = HeteroConv({et: GraphConv(4, 6) for et in data.edge_types}, aggr="sum")
    replaced = swap_aggregators(conv, "gru")
    assert len(replaced) == len(data.edge_types)
    out = conv(data.x_dict, data.edge_index_dict)
    assert out["paper"].shape == (5, 6)
    out["paper"].sum().backward()


class SecondMinimum(torch.nn.Module):
    """The model of PyG's examples/lcm_aggr_2nd_min.py: an encoder, PyG's
    LCMAggregation called as a bare module on (x, batch), a decoder."""

    def __init__(self, channels=8, bits=4):
        super().__init__()
        import torch_geometric.nn.aggr as pyg_aggr

        self.encoder = torch.nn.Sequential(torch.nn.Linear(bits, channels), torch.nn.GELU())
        self.aggr = pyg_aggr.LCMAggregation(channels, channels, project=False)
        self.decoder = torch.nn.Linear(channels, bits)

    def forward(self, x, batch):
        return self.decoder(self.aggr(self.encoder(x), batch))


@pytest.mark.parametrize("aggr, cls", [("lcm", LCMAggregation), ("gru", GRUAggregation)])
def test_swap_a_bare_aggregation_module(aggr, cls):
    # It used to return {} silently: the aggregation is not inside a
    # MessagePassing layer.
    torch.manual_seed(0)
    model = SecondMinimum()
    old = model.aggr
    replaced = swap_aggregators(model, aggr)
    assert list(replaced) == ["aggr"] and replaced.previous["aggr"] is old
    assert isinstance(model.aggr, cls) and model.aggr.in_channels == 8
    x, batch = torch.randint(0, 2, (10, 4)).float(), torch.tensor([0] * 4 + [1] * 6)
    out = model(x, batch)
    assert out.shape == (2, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in model.aggr.parameters())
    # The PyG-style constructor argument reaches the new aggregator.
    model = SecondMinimum()
    swap_aggregators(model, "lcm", project=False)
    assert model.aggr.project is False


class NoMessagePassing(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x):
        return self.lin(x)


@pytest.mark.parametrize("aggr,error,match", [
    ("lcn", ValueError, "did you mean 'lcm'"),
    ("", ValueError, "empty"),
    (None, TypeError, "aggregator name"),
    (42, TypeError, "aggregator name"),
])
def test_bad_aggregator_is_named_before_anything_changes(aggr, error, match):
    # Checked before the model is looked at: also on a model without layers.
    for model in (NoMessagePassing(), torch.nn.Sequential(SAGEConv(4, 4))):
        before = [type(m.aggr_module) for m in model.modules() if hasattr(m, "aggr_module")]
        with pytest.raises(error, match=match):
            swap_aggregators(model, aggr)
        after = [type(m.aggr_module) for m in model.modules() if hasattr(m, "aggr_module")]
        assert before == after


def test_model_without_any_aggregation_is_refused():
    with pytest.raises(ValueError, match="no message-passing layer"):
        swap_aggregators(NoMessagePassing(), "lcm")


def test_result_names_old_and_new_modules():
    model = torch.nn.Sequential(SAGEConv(4, 4, aggr="mean"), SAGEConv(4, 4, aggr="mean"))
    result = swap_aggregators(model, "lcm")
    assert sorted(result) == ["0", "1"]
    assert all(type(m).__name__ == "LCMAggregation" for m in result.values())
    assert all(type(m).__name__ == "MeanAggregation" for m in result.previous.values())
    assert "MeanAggregation() -> LCMAggregation" in repr(result)
    assert model[0].aggr_module is result["0"]


def test_width_projects_wide_messages_and_warns_without_it():
    import warnings

    from gnnagg.aggr import AggregatorCostWarning, Projected

    model = torch.nn.Sequential(SAGEConv(1433, 16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        swap_aggregators(model, "lcm")
    assert any(issubclass(w.category, AggregatorCostWarning) and "1433" in str(w.message)
               for w in caught)
    model = torch.nn.Sequential(SAGEConv(1433, 16))
    swap_aggregators(model, "lcm", width=64)
    assert isinstance(model[0].aggr_module, Projected)
    assert sum(p.numel() for p in model[0].aggr_module.parameters()) < 300_000
    x, edge_index = torch.randn(5, 1433), torch.tensor([[0, 1, 2], [1, 2, 3]])
    assert model[0](x, edge_index).shape == (5, 16)
