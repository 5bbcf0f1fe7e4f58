"""A model trained with PyG's LCM/GRU/LSTM aggregators moves to gnnagg's
by loading its checkpoint (strict): the parameter names are PyG's."""
import io

import pytest
import torch
import torch_geometric.nn.aggr as pyg_aggr
from torch.nn import Linear, ReLU, Sequential
from torch_geometric.nn import GINConv, SAGEConv

import gnnagg.aggr

PYG = {"lcm": pyg_aggr.LCMAggregation, "gru": pyg_aggr.GRUAggregation,
       "lstm": pyg_aggr.LSTMAggregation}


class Net(torch.nn.Module):
    def __init__(self, make):
        super().__init__()
        self.conv1 = SAGEConv(8, 16, aggr=make(8, 8))
        mlp = Sequential(Linear(16, 16), ReLU(), Linear(16, 4))
        self.conv2 = GINConv(mlp, train_eps=True, aggr=make(16, 16))

    def forward(self, x, edge_index):
        return self.conv2(self.conv1(x, edge_index).relu(), edge_index)


def regular_graph(num_nodes: int, degree: int, seed: int = 0):
    """Every node has ``degree`` in-neighbours; edges sorted by destination
    (PyG's recurrent aggregators require it)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.stack([torch.randperm(num_nodes, generator=g)[:degree]
                       for _ in range(num_nodes)]).view(-1)
    dst = torch.arange(num_nodes).repeat_interleave(degree)
    return torch.stack([src, dst])


def pyg_trained_checkpoint(name: str):
    torch.manual_seed(0)
    model = Net(PYG[name])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, edge_index = torch.randn(12, 8), regular_graph(12, 3)
    for _ in range(3):
        opt.zero_grad()
        model(x, edge_index).pow(2).mean().backward()
        opt.step()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    return model.eval(), buffer


@pytest.mark.parametrize("degree", [1, 3, 4])
def test_pyg_checkpoint_gives_pyg_output_without_padding(name, ours, degree):
    pyg_model, checkpoint = pyg_trained_checkpoint(name)
    model = Net(ours[name]).eval()
    model.load_state_dict(torch.load(checkpoint, weights_only=True))  # strict
    x, edge_index = torch.randn(10, 8), regular_graph(10, degree, seed=1)
    # Equal degrees: PyG pads nothing, so the outputs agree.
    torch.testing.assert_close(model(x, edge_index), pyg_model(x, edge_index),
                               atol=1e-5, rtol=1e-4)


def test_pyg_padded_output_is_reproduced_per_node_alone(name, ours):
    pyg_model, checkpoint = pyg_trained_checkpoint(name)
    model = Net(ours[name]).eval()
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    mine, theirs = model.conv1.aggr_module, pyg_model.conv1.aggr_module
    degrees = torch.tensor([3, 1, 6, 0, 2])
    index = torch.repeat_interleave(torch.arange(5), degrees)
    x = torch.randn(int(degrees.sum()), 8)
    out = mine(x, index, dim_size=5)
    padded = theirs(x, index, dim_size=5)
    assert not torch.allclose(out, padded, atol=1e-4)  # PyG's padding leaks in
    for i in range(5):
        if degrees[i] == 0:  # PyG fails on a node alone without neighbours
            expected = mine.identity.detach().view(1, -1) if name == "lcm" else torch.zeros(1, 8)
        else:
            expected = theirs(x[index == i], torch.zeros(int(degrees[i]), dtype=torch.long),
                              dim_size=1)
        torch.testing.assert_close(out[i:i + 1], expected, atol=1e-5, rtol=1e-4)


def test_gnnagg_checkpoint_loads_into_pyg(name, ours):
    # The other way round works too, except for LCM's extra identity.
    model = Net(ours[name])
    pyg_model = Net(PYG[name])
    state = model.state_dict()
    if name == "lcm":
        state = {k: v for k, v in state.items() if not k.endswith("identity")}
    pyg_model.load_state_dict(state)


def test_swap_keeps_nothing_but_the_layout():
    # swap_aggregators builds fresh aggregators; a checkpoint then loads.
    pyg_model, checkpoint = pyg_trained_checkpoint("gru")
    model = Net(PYG["gru"])
    gnnagg.swap_aggregators(model, "gru")
    assert isinstance(model.conv1.aggr_module, gnnagg.aggr.GRUAggregation)
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    x, edge_index = torch.randn(10, 8), regular_graph(10, 3, seed=2)
    torch.testing.assert_close(model.eval()(x, edge_index), pyg_model(x, edge_index),
                               atol=1e-5, rtol=1e-4)
