import pytest
import torch
from torch.autograd import gradcheck

from gnnagg.models.dagnn import DAGNN, dropout, sparse_dropout
from gnnagg.nn.dagnn import DAGNNProp
from gnnagg.swap import swap_aggregators

# A small directed graph (source row 0, target row 1) with an isolated
# node 5: the adjacency is not symmetric, so a backward pass that used
# A instead of A^T would be caught.
EDGE_INDEX = torch.tensor([[0, 1, 1, 2, 3, 0, 4],
                           [1, 0, 2, 3, 1, 3, 2]])
N = 6


def dense_reference(x, edge_index, K, proj, reduce="sum"):
    """DAGNN's propagation written out with dense matrices."""
    n = x.size(0)
    a = torch.zeros(n, n, dtype=x.dtype)
    a[edge_index[1], edge_index[0]] = 1.0  # a[target, source]
    a = a + torch.eye(n, dtype=x.dtype)
    deg = a.sum(dim=1)  # in-degree incl. self-loop, as gcn_norm
    a_hat = deg.pow(-0.5).view(-1, 1) * a * deg.pow(-0.5).view(1, -1)
    hops = [x]
    for _ in range(K):
        h = a_hat @ hops[-1]
        if reduce == "mean":
            h = h / (a != 0).sum(dim=1, keepdim=True)
        hops.append(h)
    hops = torch.stack(hops, dim=1)
    scores = torch.sigmoid(hops @ proj.weight.t() + proj.bias)
    return (scores * hops).sum(dim=1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sparse", [True, False])
def test_matches_dense_reference(dtype, sparse):
    torch.manual_seed(0)
    layer = DAGNNProp(4, K=3, sparse=sparse).to(dtype)
    x = torch.randn(N, 4, dtype=dtype)
    expected = dense_reference(x, EDGE_INDEX, 3, layer.proj)
    assert layer.uses_sparse_path() is sparse
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(layer(x, EDGE_INDEX), expected, atol=tol, rtol=tol)
    # The cached normalisation gives the same result on the second call.
    torch.testing.assert_close(layer(x, EDGE_INDEX), expected, atol=tol, rtol=tol)


def test_mean_aggregation_matches_reference():
    torch.manual_seed(1)
    layer = DAGNNProp(3, K=2, aggr="mean").double()
    x = torch.randn(N, 3, dtype=torch.float64)
    assert not layer.uses_sparse_path()
    torch.testing.assert_close(layer(x, EDGE_INDEX),
                               dense_reference(x, EDGE_INDEX, 2, layer.proj, reduce="mean"))


def test_sparse_and_propagate_paths_agree_in_gradients():
    torch.manual_seed(2)
    fast = DAGNNProp(3, K=4).double()
    slow = DAGNNProp(3, K=4, sparse=False).double()
    slow.load_state_dict(fast.state_dict())
    x1 = torch.randn(N, 3, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    w = torch.randn(N, 3, dtype=torch.float64)
    (fast(x1, EDGE_INDEX) * w).sum().backward()
    (slow(x2, EDGE_INDEX) * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    torch.testing.assert_close(fast.proj.weight.grad, slow.proj.weight.grad)


def test_gradcheck_sparse_path():
    torch.manual_seed(3)
    layer = DAGNNProp(2, K=2).double()
    x = torch.randn(N, 2, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: layer(t, EDGE_INDEX), (x,), fast_mode=True)


def test_scores_are_not_normalised_across_hops():
    layer = DAGNNProp(2, K=2)
    with torch.no_grad():
        layer.proj.weight.zero_()
        layer.proj.bias.fill_(10.0)  # every score ~ 1
    x = torch.randn(N, 2)
    hops = layer.hops(x, EDGE_INDEX)
    assert hops.shape == (N, 3, 2)
    torch.testing.assert_close(layer(x, EDGE_INDEX), hops.sum(dim=1), atol=1e-3, rtol=1e-3)


def test_graph_without_edges_keeps_features():
    layer = DAGNNProp(2, K=5)
    x = torch.randn(4, 2)
    hops = layer.hops(x, torch.empty(2, 0, dtype=torch.long))
    for k in range(6):
        torch.testing.assert_close(hops[:, k], x)


def test_cache_follows_a_new_graph():
    torch.manual_seed(4)
    layer = DAGNNProp(3, K=2)
    x = torch.randn(N, 3)
    layer(x, EDGE_INDEX)
    other = torch.tensor([[0, 2, 5], [5, 0, 2]])
    torch.testing.assert_close(layer(x, other), dense_reference(x, other, 2, layer.proj))


def test_learnable_aggregators_train():
    torch.manual_seed(5)
    for aggr in ["softmax", "lcm"]:
        layer = DAGNNProp(3, K=2, aggr=aggr)
        x = torch.randn(N, 3, requires_grad=True)
        layer(x, EDGE_INDEX).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_swap_aggregators_changes_the_path():
    model = DAGNN(5, 8, 3, K=2, dropout=0.0)
    x = torch.randn(N, 5)
    assert model.prop.uses_sparse_path()
    swap_aggregators(model, "max", example=(x, EDGE_INDEX))
    assert not model.prop.uses_sparse_path()
    assert model(x, EDGE_INDEX).shape == (N, 3)


def test_bad_input():
    with pytest.raises(ValueError, match="K"):
        DAGNNProp(3, K=-1)
    with pytest.raises(ValueError, match="in_channels"):
        DAGNNProp(0, K=2)
    with pytest.raises(ValueError, match="unknown aggregator"):
        DAGNNProp(3, K=2, aggr="no-such-aggregator")
    layer = DAGNNProp(3, K=2)
    with pytest.raises(ValueError, match="shape"):
        layer(torch.randn(N, 4), EDGE_INDEX)
    with pytest.raises(TypeError, match="edge_index"):
        layer(torch.randn(N, 3), EDGE_INDEX.t())
    with pytest.raises(ValueError, match="node 4"):
        layer(torch.randn(4, 3), EDGE_INDEX)
    with pytest.raises(ValueError, match="dropout"):
        DAGNN(5, 8, 3, K=2, dropout=1.0)


def test_model_sparse_and_dense_features_agree():
    torch.manual_seed(6)
    model = DAGNN(8, 16, 3, K=3, dropout=0.5).double().eval()
    x = torch.rand(N, 8, dtype=torch.float64) * (torch.rand(N, 8) < 0.3)
    dense = model(x, EDGE_INDEX)
    torch.testing.assert_close(model(x.to_sparse_csr(), EDGE_INDEX), dense)
    torch.testing.assert_close(model(x.to_sparse(), EDGE_INDEX), dense)
    torch.testing.assert_close(dense.exp().sum(dim=-1), torch.ones(N, dtype=torch.float64))
    # Weight gradients of the sparse first layer match the dense ones.
    model.train()
    model.input_dropout = model.dropout = 0.0
    model(x, EDGE_INDEX).sum().backward()
    expected = model.lins[0].weight.grad.clone()
    model.zero_grad()
    model(x.to_sparse_csr(), EDGE_INDEX).sum().backward()
    torch.testing.assert_close(model.lins[0].weight.grad, expected)


def test_model_reset_parameters_and_repr():
    model = DAGNN(8, 16, 3, K=4, batch_norm=True, num_layers=3)
    before = [p.detach().clone() for p in model.parameters()]
    model.reset_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert repr(model) == "DAGNN(8, 16, 3, K=4, num_layers=3)"
    assert repr(model.prop) == "DAGNNProp(3, K=4, aggr=SumAggregation())"


def test_dropout_rates():
    torch.manual_seed(7)
    x = torch.ones(200_000)
    for p in [0.2, 0.5, 0.8]:
        y = dropout(x, p, True)
        assert abs(float((y == 0).float().mean()) - p) < 0.005
        assert abs(float(y.mean()) - 1.0) < 0.02
    assert dropout(x, 0.8, False) is x
    s = torch.ones(50, 40).to_sparse_csr()
    kept = sparse_dropout(s, 0.5, True).values()
    assert kept.numel() == 2000 and 0.4 < float((kept == 0).float().mean()) < 0.6
