"""torch.export of PyG layers with gnnagg's aggregators (PyG's own GRU,
LSTM and LCM aggregations do not export: their padding needs the largest
degree as a Python int). The exported program is checked on a second graph
of the same size with another structure."""
import torch

from torch_geometric.nn import SAGEConv


def test_export_sage_conv(ours, name):
    torch.manual_seed(0)
    conv = SAGEConv(8, 16, aggr=ours[name](8, 8)).eval()
    x = torch.randn(6, 8)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 1, 2], [0, 0, 1, 1, 1, 2, 3, 3]])
    program = torch.export.export(conv, (x, edge_index))
    assert torch.allclose(program.module()(x, edge_index), conv(x, edge_index), atol=1e-6)

    other = torch.tensor([[5, 4, 3, 2, 1, 0, 0, 1], [2, 2, 2, 2, 0, 5, 4, 4]])
    assert torch.allclose(program.module()(x, other), conv(x, other), atol=1e-6)
