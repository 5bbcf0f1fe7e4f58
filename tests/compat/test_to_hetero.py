"""PyG 2.8's test/nn/test_to_hetero_transformer.py, the parts that involve
the aggregation, with gnnagg's aggregators inside the converted models."""
from typing import Tuple

import torch
from torch import Tensor
from torch.nn import Linear

from torch_geometric.nn import SAGEConv, to_hetero


def _graph():
    torch.manual_seed(0)
    x_dict = {
        'paper': torch.randn(100, 16),
        'author': torch.randn(100, 16),
    }
    edge_index_dict = {
        ('paper', 'cites', 'paper'):
        torch.randint(100, (2, 200), dtype=torch.long),
        ('paper', 'written_by', 'author'):
        torch.randint(100, (2, 200), dtype=torch.long),
        ('author', 'writes', 'paper'):
        torch.randint(100, (2, 200), dtype=torch.long),
    }
    return x_dict, edge_index_dict


class Net2(torch.nn.Module):
    def __init__(self, make):
        super().__init__()
        self.lin1 = Linear(16, 16)
        self.conv1 = SAGEConv(16, 32, aggr=make(16, 16))
        self.lin2 = Linear(32, 32)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = self.lin1(x).relu_()
        x = self.conv1(x, edge_index).relu_()
        x = self.lin2(x)
        return x


def test_to_hetero_basic(ours, name):
    x_dict, edge_index_dict = _graph()
    metadata = list(x_dict.keys()), list(edge_index_dict.keys())

    for aggr in ['sum', 'mean', 'min', 'max', 'mul']:
        model = Net2(ours[name])
        aggr_params = sum(p.numel() for p in model.conv1.aggr_module.parameters())
        model = to_hetero(model, metadata, aggr=aggr, debug=False)
        # PyG's 5824 with mean aggregation, plus one gnnagg aggregator per
        # relation (each relation gets its own copy).
        assert sum(p.numel() for p in model.parameters()) == 5824 + 3 * aggr_params

        out1 = model(x_dict, edge_index_dict)
        assert isinstance(out1, dict) and len(out1) == 2
        assert out1['paper'].size() == (100, 32)
        assert out1['author'].size() == (100, 32)


class Net4(torch.nn.Module):
    def __init__(self, make):
        super().__init__()
        self.conv1 = SAGEConv(16, 16, aggr=make(16, 16))
        self.conv2 = SAGEConv(16, 16, aggr=make(16, 16))
        self.lin1 = Linear(3 * 16, 32)

    def forward(self, x0: Tensor, edge_index: Tensor) -> Tensor:
        x1 = self.conv1(x0, edge_index).relu_()
        x2 = self.conv2(x1, edge_index).relu_()
        return self.lin1(torch.cat([x0, x1, x2], dim=-1))


def test_to_hetero_on_static_graphs(ours, name):
    x_dict = {
        'paper': torch.randn(4, 100, 16),
        'author': torch.randn(4, 100, 16),
    }
    edge_index_dict = {
        ('paper', 'written_by', 'author'): torch.randint(100, (2, 200)),
        ('author', 'writes', 'paper'): torch.randint(100, (2, 200)),
    }

    metadata = list(x_dict.keys()), list(edge_index_dict.keys())
    model = to_hetero(Net4(ours[name]), metadata, debug=False)
    out_dict = model(x_dict, edge_index_dict)

    assert len(out_dict) == 2
    assert out_dict['paper'].size() == (4, 100, 32)
    assert out_dict['author'].size() == (4, 100, 32)


class GraphLevelGNN(torch.nn.Module):
    def __init__(self, make):
        super().__init__()
        self.conv = SAGEConv(16, 32)
        self.pool = make(32, 32)
        self.lin = Linear(32, 64)

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor) -> Tensor:
        x = self.conv(x, edge_index)
        x = self.pool(x, batch)
        x = self.lin(x)
        return x


def test_graph_level_to_hetero(ours, name):
    # PyG pools with MeanAggregation; here the readout is gnnagg's learned one.
    x_dict = {
        'paper': torch.randn(100, 16),
        'author': torch.randn(100, 16),
    }
    edge_index_dict = {
        ('paper', 'written_by', 'author'):
        torch.randint(100, (2, 200), dtype=torch.long),
        ('author', 'writes', 'paper'):
        torch.randint(100, (2, 200), dtype=torch.long),
    }
    batch_dict = {
        'paper': torch.zeros(100, dtype=torch.long),
        'author': torch.zeros(100, dtype=torch.long),
    }

    metadata = list(x_dict.keys()), list(edge_index_dict.keys())

    model = GraphLevelGNN(ours[name])
    model = to_hetero(model, metadata, aggr='mean', debug=False)
    out = model(x_dict, edge_index_dict, batch_dict)
    assert out.size() == (1, 64)


def test_to_hetero_model_trains(ours, name):
    x_dict, edge_index_dict = _graph()
    metadata = list(x_dict.keys()), list(edge_index_dict.keys())
    model = to_hetero(Net2(ours[name]), metadata, aggr='sum', debug=False)
    out: Tuple[Tensor, ...] = tuple(model(x_dict, edge_index_dict).values())
    sum(o.sum() for o in out).backward()
    grads = [p.grad for n, p in model.named_parameters() if 'aggr_module' in n]
    assert len(grads) > 0 and all(g is not None for g in grads)
