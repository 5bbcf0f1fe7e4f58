"""Poolers (gnnagg.nn.pooling): hand-computed baselines, attention weights,
batch independence, GLOT with any convolution and aggregator (built at the
width the convolution aggregates), the no-edge ablation, the resolvers."""
import pytest
import torch

from gnnagg.nn import (AdaPool, CLSPooling, GLOTPooling, MaxPooling, MeanPooling, POOLINGS,
                       build_token_graph, resolve_conv, resolve_pooling)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_baseline_poolers_hand_computed(dtype, three_sentences):
    x, mask = three_sentences(dtype)
    mean = MeanPooling(2)(x, mask)
    assert torch.allclose(mean, torch.tensor([[0.225, 0.275], [0.05, 1.0], [2.0, 2.0]], dtype=dtype))
    assert torch.equal(MaxPooling(2)(x, mask), torch.tensor([[1.0, 1.0], [0.1, 1.0], [2.0, 2.0]], dtype=dtype))
    assert torch.equal(CLSPooling(2)(x, mask), x[:, 0])
    last = CLSPooling(2, last=True)(x, mask)
    assert torch.equal(last, torch.stack([x[0, 3], x[1, 1], x[2, 0]]))
    # left padding: the first *real* token is taken
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(CLSPooling(2)(x, left), torch.stack([x[0, 1], x[1, 2], x[2, 3]]))


@pytest.mark.parametrize("name", ["glot", "adapool"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_weights_sum_to_one_and_ignore_padding(name, dtype, three_sentences):
    torch.manual_seed(0)
    x, mask = three_sentences(dtype)
    pooler = resolve_pooling(name, 2, **({"hidden_channels": 4, "tau": 0.5} if name == "glot" else {})).to(dtype)
    z, pi = pooler(x, mask, return_attention=True)
    assert z.shape == (3, pooler.out_channels)
    batch = torch.repeat_interleave(torch.arange(3), mask.sum(1))
    assert pi.shape == (int(mask.sum()),)
    sums = torch.zeros(3, dtype=dtype).index_add_(0, batch, pi)
    assert torch.allclose(sums, torch.ones(3, dtype=dtype))
    # changing padding changes nothing
    x2 = x.clone()
    x2[~mask] = -7.0
    assert torch.allclose(pooler(x2, mask), z)


@pytest.mark.parametrize("name", ["glot", "adapool", "mean", "max", "cls"])
def test_sentence_independent_of_batch(name):
    torch.manual_seed(0)
    pooler = resolve_pooling(name, 5, **({"hidden_channels": 4, "tau": 0.0} if name == "glot" else {}))
    x = torch.randn(3, 6, 5)
    mask = torch.arange(6) < torch.tensor([[6], [2], [4]])
    full = pooler(x, mask)
    alone = pooler(x[1:2, :2], mask[1:2, :2])
    assert torch.allclose(full[1:2], alone, atol=1e-6)


def test_glot_permutation_invariant_over_tokens():
    torch.manual_seed(0)
    pooler = GLOTPooling(5, hidden_channels=4, tau=0.2)
    x = torch.randn(2, 7, 5)
    mask = torch.ones(2, 7, dtype=torch.bool)
    perm = torch.randperm(7)
    assert torch.allclose(pooler(x, mask), pooler(x[:, perm], mask), atol=1e-5)


def test_glot_uses_the_graph():
    """With no edges the GNN sees isolated tokens; with edges it does not."""
    torch.manual_seed(0)
    pooler = GLOTPooling(5, hidden_channels=4)
    x = torch.randn(2, 7, 5)
    mask = torch.ones(2, 7, dtype=torch.bool)
    g_none = build_token_graph(x, mask, tau=1.0)
    g_full = build_token_graph(x, mask, tau=-1.0)
    assert g_none.num_edges == 0 and g_full.num_edges == 2 * 7 * 6
    assert not torch.allclose(pooler(x, mask, graph=g_none), pooler(x, mask, graph=g_full))


@pytest.mark.parametrize("conv,aggr", [("GATConv", None), ("gcn", "sum"), ("sage", "lstm"),
                                       ("GraphConv", "lcm"), ("gat", "gru")])
def test_glot_any_conv_and_aggregator(conv, aggr):
    torch.manual_seed(0)
    pooler = GLOTPooling(6, hidden_channels=4, num_layers=2, conv=conv, aggr=aggr, tau=0.0)
    x = torch.randn(3, 5, 6)
    mask = torch.arange(5) < torch.tensor([[5], [3], [1]])
    out = pooler(x, mask)
    assert out.shape == (3, 6 + 2 * 4)
    out.sum().backward()
    assert all(p.grad is not None for p in pooler.parameters() if p.requires_grad)
    pooler.reset_parameters()
    assert conv.lower()[:3] in repr(pooler).lower()


def test_glot_without_jumping_knowledge_and_gradcheck():
    torch.manual_seed(0)
    pooler = GLOTPooling(3, hidden_channels=2, num_layers=1, conv="GCNConv", tau=0.0,
                         jumping_knowledge=False).double()
    assert pooler.out_channels == 2
    x = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    torch.autograd.gradcheck(lambda t: pooler(t, mask, graph=build_token_graph(x.detach(), mask, 0.0)),
                             (x,))


def test_resolvers_and_errors():
    assert isinstance(resolve_pooling("GLOTPooling", 4), GLOTPooling)
    assert isinstance(resolve_pooling("max", 4), MaxPooling)
    ada = AdaPool(4)
    assert resolve_pooling(ada) is ada
    assert resolve_conv("gat").__name__ == "GATConv"
    with pytest.raises(ValueError, match="unknown pooling"):
        resolve_pooling("median", 4)
    with pytest.raises(ValueError, match="needs in_channels"):
        resolve_pooling("mean")
    with pytest.raises(ValueError, match="unknown PyG convolution"):
        GLOTPooling(4, conv="nope")
    with pytest.raises(ValueError, match="unknown aggregator"):
        GLOTPooling(4, aggr="nope")
    with pytest.raises(ValueError, match="expects 4 channels"):
        MeanPooling(4)(torch.randn(2, 3, 5), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no tokens"):
        MeanPooling(4)(torch.randn(2, 3, 4), torch.tensor([[1, 0, 0], [0, 0, 0]]).bool())
    assert repr(GLOTPooling(4, 8, k=3)).startswith("GLOTPooling(4, 8, num_layers=2, conv=GATConv, tau=0.8, k=3")
    with pytest.raises(ValueError, match="edges must be one of"):
        GLOTPooling(4, edges="full")
    assert list(POOLINGS) == ["cls", "mean", "max", "adapool", "glot"]


@pytest.mark.parametrize("conv,conv_kwargs,widths", [
    ("SAGEConv", {}, [6, 4]),            # aggregates its input, transforms after
    ("GraphConv", {}, [6, 4]),
    ("LEConv", {}, [4, 4]),              # aggregates transformed messages
    ("ResGatedGraphConv", {}, [4, 4]),
    ("GATConv", {"heads": 2, "concat": False}, [8, 8]),  # hidden x heads
])
def test_glot_builds_aggregators_at_the_width_the_conv_aggregates(conv, conv_kwargs, widths):
    """LEConv and ResGatedGraphConv aggregate messages of hidden_channels:
    an LCM built at the input width (the old table) fails in forward."""
    torch.manual_seed(0)
    pooler = GLOTPooling(6, hidden_channels=4, num_layers=2, conv=conv, aggr="lcm", tau=0.0,
                         conv_kwargs=conv_kwargs)
    assert [c.aggr_module.in_channels for c in pooler.convs] == widths
    x = torch.randn(3, 5, 6)
    mask = torch.arange(5) < torch.tensor([[5], [3], [1]])
    out = pooler(x, mask)
    assert out.shape == (3, 6 + 2 * 4) and torch.isfinite(out).all()


@pytest.mark.parametrize("conv", ["GATConv", "SAGEConv", "GCNConv"])
def test_glot_without_edges_keeps_every_parameter(conv):
    """edges='none': the same parameters, the same nodes, no edges; on a
    batch whose token graph has edges the output differs from the graph
    version with the same weights, and equals it given the empty graph."""
    torch.manual_seed(0)
    x = torch.randn(2, 7, 5)
    mask = torch.arange(7) < torch.tensor([[7], [4]])
    with_graph = GLOTPooling(5, hidden_channels=4, conv=conv, tau=0.0)
    without = GLOTPooling(5, hidden_channels=4, conv=conv, tau=0.0, edges="none")
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(without) == count(with_graph)
    without.load_state_dict(with_graph.state_dict())
    assert build_token_graph(x, mask, 0.0).num_edges > 0
    assert not torch.allclose(without(x, mask), with_graph(x, mask))
    empty = build_token_graph(x, mask, 1.0)
    assert empty.num_edges == 0
    assert torch.allclose(without(x, mask), with_graph(x, mask, graph=empty), atol=1e-6)
    assert "edges='none'" in repr(without)
