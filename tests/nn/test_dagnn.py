import subprocess
import sys

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


def test_learned_aggregator_gets_the_layer_width():
    layer = DAGNNProp(5, K=2, aggr="lcm")
    assert (layer.aggr_module.in_channels, layer.aggr_module.out_channels) == (5, 5)


def _alias(t):
    """A new tensor object over ``t``'s memory with a version counter of its
    own: what a new tensor looks like when the allocator hands it the
    memory of a freed one."""
    return torch.empty(0, dtype=t.dtype).set_(t.untyped_storage(), 0, t.shape, t.stride())


def test_normalisation_cache_is_not_fooled_by_reused_memory():
    torch.manual_seed(8)
    layer = DAGNNProp(3, K=2)
    x = torch.randn(N, 3)
    buf = EDGE_INDEX.clone().add_(0)  # version 1, as an alias made by set_() will have
    layer(x, buf)
    # Another graph in the same memory, with the same shape and version
    # number as the cached one: an address-based key would match it.
    other = torch.tensor([[0, 2, 5, 4, 1, 3, 3], [5, 0, 2, 2, 4, 0, 5]])
    _alias(buf).copy_(other)
    new = _alias(buf)
    assert new.data_ptr() == buf.data_ptr() and new._version == buf._version
    torch.testing.assert_close(layer(x, new), dense_reference(x, other, 2, layer.proj))


def test_feature_transpose_cache_is_not_fooled_by_reused_memory():
    torch.manual_seed(9)
    model = DAGNN(6, 8, 3, K=2, dropout=0.0).double()
    x1 = torch.rand(N, 6, dtype=torch.float64) * (torch.rand(N, 6) < 0.4)
    x2 = torch.rand(N, 6, dtype=torch.float64) * (torch.rand(N, 6) < 0.4)
    x2[0, :] = 1.0  # another sparsity pattern, possibly another number of non-zeros
    s1 = x1.to_sparse_csr()
    model(s1, EDGE_INDEX).sum().backward()
    model.zero_grad()
    # A second matrix of the same shape whose index tensors sit where the
    # first one's were (as after freeing it): same addresses, other structure.
    crow, col = s1.crow_indices(), s1.col_indices()
    s2 = x2.to_sparse_csr()
    nnz = s2.col_indices().numel()
    col_buf = torch.empty(max(nnz, col.numel()), dtype=col.dtype)
    col_buf[:col.numel()] = col
    s1_again = torch.sparse_csr_tensor(crow, col_buf[:col.numel()], s1.values(), s1.shape,
                                       check_invariants=False)
    model(s1_again, EDGE_INDEX).sum().backward()
    model.zero_grad()
    _alias(crow).copy_(s2.crow_indices())
    col_buf[:nnz] = s2.col_indices()
    reused = torch.sparse_csr_tensor(crow, col_buf[:nnz], s2.values(), s2.shape,
                                     check_invariants=False)
    assert reused.crow_indices().data_ptr() == s1_again.crow_indices().data_ptr()
    assert reused.col_indices().data_ptr() == s1_again.col_indices().data_ptr()
    model(reused, EDGE_INDEX).sum().backward()
    sparse_grad = model.lins[0].weight.grad.clone()
    model.zero_grad()
    model(x2, EDGE_INDEX).sum().backward()
    torch.testing.assert_close(sparse_grad, model.lins[0].weight.grad)


def test_feature_transpose_follows_new_values_at_the_same_structure():
    torch.manual_seed(10)
    model = DAGNN(6, 8, 3, K=2, dropout=0.0).double()
    x = torch.rand(N, 6, dtype=torch.float64) * (torch.rand(N, 6) < 0.4)
    model(x.to_sparse_csr(), EDGE_INDEX).sum().backward()
    model.zero_grad()
    x = x * 3.0 + x.ne(0) * 0.5  # same pattern, other values
    model(x.to_sparse_csr(), EDGE_INDEX).sum().backward()
    sparse_grad = model.lins[0].weight.grad.clone()
    model.zero_grad()
    model(x, EDGE_INDEX).sum().backward()
    torch.testing.assert_close(sparse_grad, model.lins[0].weight.grad)


def test_no_sparse_warnings_during_training():
    """PyTorch warns once per process about sparse tensors (CSR support in
    beta, invariant checks implicitly off); in a fresh process training on
    sparse features must warn about nothing, so no progress bar is broken."""
    code = (
        "import warnings\n"
        "import torch\n"
        "from gnnagg.models.dagnn import DAGNN, to_sparse_csr\n"
        "warnings.simplefilter('error')\n"
        "x = torch.rand(6, 5) * (torch.rand(6, 5) < 0.4)\n"
        "ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])\n"
        "model = DAGNN(5, 8, 3, K=2, dropout=0.5)\n"
        "for features in (to_sparse_csr(x), x.to_sparse(), x):\n"
        "    model(features, ei).sum().backward()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
