"""PyG 2.8's test/nn/test_compile_conv.py and test_compile_dynamic.py with
gnnagg's aggregators in SAGEConv. PyG compiles with inductor; ``aot_eager``
checks the same tracing without generating kernels (much faster here)."""
import random

import torch

from torch_geometric.nn import SAGEConv
from torch_geometric.testing import get_random_edge_index


def test_compile_conv(ours, name):
    import torch._dynamo as dynamo

    x = torch.randn(10, 16)
    edge_index = torch.randint(0, x.size(0), (2, 40))

    conv = SAGEConv(16, 32, aggr=ours[name](16, 16))

    # Deliberate difference: PyG's SAGEConv with its mean traces without a
    # graph break (0); gnnagg's ragged reduction has graph-dependent loop
    # counts and runs eagerly behind one break, which explain counts in each
    # enclosing frame (2 here; PyG's own GRU/LSTM/LCM give 5-7).
    dynamo.reset()
    explanation = dynamo.explain(conv)(x, edge_index)
    assert explanation.graph_break_count <= 2
    assert {str(b.reason).split('`')[1] for b in explanation.break_reasons} == \
        {'torch.compiler.disable()'}

    out = torch.compile(conv, backend='aot_eager')(x, edge_index)
    assert torch.allclose(conv(x, edge_index), out, atol=1e-6)


def test_dynamic_torch_compile(ours, name):
    torch.manual_seed(0)
    random.seed(0)
    eager = SAGEConv(16, 16, aggr=ours[name](16, 16))
    conv = torch.compile(eager, dynamic=True, backend='aot_eager')

    optimizer = torch.optim.Adam(conv.parameters(), lr=0.01)

    for _ in range(3):
        N = random.randrange(10, 50)
        E = random.randrange(20, 100)

        x = torch.randn(N, 16)
        edge_index = get_random_edge_index(N, N, E)

        optimizer.zero_grad()
        expected = conv(x, edge_index)
        assert torch.allclose(expected, eager(x, edge_index), atol=1e-5)
        expected.mean().backward()
        optimizer.step()
