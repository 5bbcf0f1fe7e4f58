import pytest
import torch
import torch_geometric.nn.aggr as pyg_aggr

from gnnagg.aggr import LCMAggregation, regularization_loss
from gnnagg.testing import (assert_batch_independent, assert_compiles, assert_exportable,
                            assert_func_transforms, assert_gradcheck, assert_gradgradcheck,
                            assert_scriptable, check_aggregator, random_segments)

pytestmark = pytest.mark.usefixtures("one_thread")


def pyg_twin(ours: LCMAggregation) -> pyg_aggr.LCMAggregation:
    """PyG's LCMAggregation with our weights (GRU pair operator)."""
    pyg = pyg_aggr.LCMAggregation(ours.in_channels, ours.out_channels, project=ours.project)
    if ours.project:
        pyg.lin.load_state_dict(ours.lin.state_dict())
    pyg.gru_cell.load_state_dict(ours.gru_cell.state_dict())
    return pyg


@pytest.mark.parametrize("operator", ["gru", "mlp"])
def test_properties(operator, device):
    check_aggregator(lambda c: LCMAggregation(c, c, operator=operator), device=device)


def test_operator_is_exactly_commutative(device):
    for operator in ["gru", "mlp"]:
        aggr = LCMAggregation(4, 4, operator=operator).to(device)
        a, b = torch.randn(10, 4, device=device), torch.randn(10, 4, device=device)
        assert torch.equal(aggr.op(a, b), aggr.op(b, a))


def test_matches_pyg_per_node_alone(device):
    torch.manual_seed(0)
    ours = LCMAggregation(6, 5).to(device).eval()
    pyg = pyg_twin(ours).to(device)
    degrees = [3, 10, 1, 0, 7, 16]
    x, index, _ = random_segments(degrees, 6, device=device)
    out = ours(x, index, dim_size=len(degrees))
    for i, d in enumerate(degrees):
        if d == 0:
            torch.testing.assert_close(out[i], ours.identity.detach())
            continue
        alone = pyg(x[index == i], torch.zeros(d, dtype=torch.long, device=device),
                    dim_size=1)[0]
        assert (alone - out[i]).abs().max() < 1e-5


def test_pyg_is_batch_dependent_but_ours_is_not(device):
    """The failure the assertion exists for: PyG pads every neighbourhood to
    the largest degree in the batch and lets the zeros into the operator."""
    torch.manual_seed(0)
    ours = LCMAggregation(4, 4).to(device).eval()
    x, index, _ = random_segments([3, 10], 4, device=device)
    assert_batch_independent(ours, x, index, 2)
    with pytest.raises(AssertionError, match="batched vs alone"):
        assert_batch_independent(pyg_twin(ours).to(device), x, index, 2)


def test_unprojected_and_channel_errors():
    aggr = LCMAggregation(4, 4, project=False)
    x, index, _ = random_segments([2, 3], 4)
    assert aggr(x, index).shape == (2, 4)
    with pytest.raises(ValueError, match="project=True"):
        LCMAggregation(4, 5, project=False)
    with pytest.raises(ValueError, match="expects 4 input channels"):
        aggr(torch.randn(5, 3), index)
    with pytest.raises(TypeError, match="floating point"):
        aggr(torch.ones(5, 4, dtype=torch.long), index)
    with pytest.raises(ValueError, match="unknown operator"):
        LCMAggregation(4, 4, operator="xor")


def test_learned_identity_gets_gradient(device):
    aggr = LCMAggregation(3, 3).to(device)
    out = aggr(torch.randn(2, 3, device=device), torch.tensor([0, 0], device=device), dim_size=3)
    out.sum().backward()
    assert aggr.identity.grad is not None and aggr.identity.grad.abs().sum() > 0


def test_associativity_regulariser(device):
    torch.manual_seed(0)
    aggr = LCMAggregation(4, 4, assoc_samples=32).to(device)
    model = torch.nn.Sequential(aggr)
    x, index, _ = random_segments([3, 5], 4, device=device)
    aggr(x, index)
    loss = regularization_loss(model)
    assert loss.item() > 0 and loss.requires_grad
    loss.backward()
    assert aggr.gru_cell.weight_hh.grad.abs().sum() > 0
    aggr.eval()
    aggr(x, index)
    assert regularization_loss(model).item() == 0.0  # only while training
    # An associative operator (a sum) has no associativity loss.
    class Add(torch.nn.Module):
        def forward(self, a, b):
            return a + b

    aggr.op = Add()
    assert aggr.associativity_loss(torch.randn(10, 4, device=device), 16).item() < 1e-10


def test_shuffle_only_in_training(device):
    torch.manual_seed(0)
    aggr = LCMAggregation(4, 4, shuffle=True).to(device)
    x, index, _ = random_segments([12], 4, device=device)
    aggr.eval()
    assert torch.equal(aggr(x, index), aggr(x, index))
    aggr.train()
    outs = {tuple(aggr(x, index).detach().view(-1).tolist()) for _ in range(5)}
    assert len(outs) > 1


def test_depth_and_repr():
    aggr = LCMAggregation(4, 8)
    assert [aggr.depth(d) for d in (1, 2, 16, 17, 1000)] == [0, 1, 4, 5, 10]
    assert repr(aggr) == "LCMAggregation(4, 8, project=True)"  # PyG's repr
    assert repr(LCMAggregation(4, 4, operator="mlp", activation="tanh")) == \
        "LCMAggregation(4, 4, project=True, operator='mlp', activation='tanh')"
    assert LCMAggregation(4, 4, project=False).activation == "none"


def test_tanh_leaves_keep_every_tree_level_bounded(device):
    # With leaves in (-1, 1) each GRU merge is a convex mix of tanh values and
    # its arguments, so even a 4096-element tree stays inside the box.
    torch.manual_seed(0)
    aggr = LCMAggregation(8, 8, project=False, activation="tanh").to(device)
    x = 50 * torch.randn(4096, 8, device=device)
    zeros = torch.zeros(4096, dtype=torch.long, device=device)
    out = aggr(x, zeros)
    assert out.abs().max() < 1
    expected = LCMAggregation(8, 8, project=False).to(device)
    expected.load_state_dict(aggr.state_dict())
    torch.testing.assert_close(out, expected(torch.tanh(x), zeros))
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        LCMAggregation(8, 8, activation="gelu")


def test_multidimensional_messages(device):
    aggr = LCMAggregation(6, 6).to(device)
    x = torch.randn(5, 2, 3, device=device)  # e.g. (edges, heads, channels)
    out = aggr(x, torch.tensor([0, 0, 1, 1, 1], device=device), dim=0)
    assert out.shape == (2, 2, 3)
    with pytest.raises(ValueError, match="first dimension"):
        aggr(torch.randn(2, 5, 2, 3, device=device), torch.tensor([0, 1, 1, 1, 1], device=device),
             dim=1)


def test_static_graph_batches_reduce_independently(device):
    # PyG's node_dim=-2 layers on a static graph pass (batch, E, F) messages.
    torch.manual_seed(0)
    aggr = LCMAggregation(6, 4).to(device).eval()
    x = torch.randn(3, 5, 6, device=device)
    index = torch.tensor([2, 0, 2, 2, 0], device=device)
    out = aggr(x, index, dim_size=4)
    assert out.shape == (3, 4, 4)
    for b in range(3):
        torch.testing.assert_close(out[b], aggr(x[b], index, dim_size=4))
    ptr = torch.tensor([0, 2, 2, 5], device=device)
    torch.testing.assert_close(aggr(x, ptr=ptr)[1], aggr(x[1], ptr=ptr))


def test_gradcheck_and_compile(device):
    x, index, _ = random_segments([3, 0, 2], 3, device=device)
    assert_gradcheck(LCMAggregation(3, 3).to(device), x, index, 3)
    # The ragged tree runs eagerly behind one graph break (two in explain's
    # count); before, tracing into it gave 14 breaks and a recompile per graph.
    assert_compiles(LCMAggregation(3, 3).to(device), x, index, 3, max_graph_breaks=2)


@pytest.mark.parametrize("operator", ["gru", "mlp"])
def test_double_backward_and_torch_func(operator, device):
    # The hand-written backward falls back to plain ops when a higher-order
    # graph is asked for, and torch.func transforms run the plain path.
    x, index, _ = random_segments([3, 0, 2, 1], 3, dtype=torch.float64, device=device)
    torch.manual_seed(0)
    aggr = LCMAggregation(3, 3, operator=operator, activation="tanh").to(device).double()
    assert_gradgradcheck(aggr, x, index, 4)
    assert_func_transforms(aggr, x, index, 4, atol=1e-10)


def test_double_backward_gives_the_plain_ops_gradient(device):
    # A gradient penalty: d/dW |d out / d x|^2 through the fast path equals
    # the same quantity computed without the hand-written backward.
    from gnnagg.aggr.lcm import gru_pair_plain

    torch.manual_seed(0)
    a = torch.randn(5, 4, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(5, 4, dtype=torch.float64, device=device)
    op = LCMAggregation(4, 4).to(device).double().gru_cell
    weights = [op.weight_ih, op.weight_hh, op.bias_ih, op.bias_hh]

    def penalty(fn):
        (g,) = torch.autograd.grad(fn(a, b).pow(2).sum(), a, create_graph=True)
        return torch.autograd.grad(g.pow(2).sum(), weights)

    for fast, plain in zip(penalty(op), penalty(lambda a_, b_: gru_pair_plain(a_, b_, *weights))):
        torch.testing.assert_close(fast, plain)


def test_identity_takes_part_in_every_forward(device):
    # DistributedDataParallel (default find_unused_parameters=False) needs a
    # gradient for every parameter in every step, also when no node is
    # isolated; it is exactly zero then.
    aggr = LCMAggregation(3, 3).to(device)
    x = torch.randn(4, 3, device=device)
    aggr(x, torch.tensor([0, 0, 1, 2], device=device), dim_size=3).sum().backward()
    assert aggr.identity.grad is not None
    assert torch.equal(aggr.identity.grad, torch.zeros(3, device=device))
    aggr.zero_grad()
    aggr(x, torch.tensor([0, 0, 1, 1], device=device), dim_size=3).sum().backward()
    torch.testing.assert_close(aggr.identity.grad, torch.ones(3, device=device))


def test_loads_pyg_and_older_gnnagg_checkpoints():
    torch.manual_seed(0)
    pyg = pyg_aggr.LCMAggregation(6, 5)
    ours = LCMAggregation(6, 5)
    with torch.no_grad():
        ours.identity.fill_(0.5)
    ours.load_state_dict(pyg.state_dict())  # strict; PyG has no identity
    torch.testing.assert_close(ours.identity, torch.full((5,), 0.5))
    x, index, _ = random_segments([4, 1, 7], 6)
    for i in range(3):
        alone = pyg(x[index == i], torch.zeros(int((index == i).sum()), dtype=torch.long))
        torch.testing.assert_close(ours(x, index, dim_size=3)[i:i + 1], alone)
    # older gnnagg versions held the operator as 'op' (the GRU cell as 'op.cell').
    old = {k.replace("gru_cell.", "op.cell."): v for k, v in ours.state_dict().items()}
    again = LCMAggregation(6, 5)
    again.load_state_dict(old)
    torch.testing.assert_close(again(x, index), ours(x, index))
    mlp = LCMAggregation(6, 5, operator="mlp")
    old = {k.replace("mlp.", "op."): v for k, v in mlp.state_dict().items()}
    LCMAggregation(6, 5, operator="mlp").load_state_dict(old)
    assert sorted(mlp.state_dict())[:2] == ["identity", "lin.bias"]
    # The operator keeps its old access paths.
    assert ours.op is ours.gru_cell and ours.op.cell is ours.gru_cell


@pytest.mark.parametrize("operator", ["gru", "mlp"])
def test_torchscript(operator, device):
    x, index, ptr = random_segments([3, 0, 9, 1], 5, device=device)
    aggr = LCMAggregation(5, 4, operator=operator).to(device)
    assert_scriptable(aggr, x, index, dim_size=4, atol=1e-5)
    assert_scriptable(aggr, x, ptr=ptr, atol=1e-5)


def test_export_with_static_and_dynamic_shapes(device):
    from torch.export import Dim

    x, index, ptr = random_segments([3, 0, 9, 1], 5, device=device)
    aggr = LCMAggregation(5, 4).to(device)
    with torch.no_grad():
        aggr.identity.fill_(0.25)
    assert_exportable(aggr, (x, index), {"dim_size": 4}, atol=1e-5)
    # A degree bound makes the number of elements and segments dynamic.
    aggr.max_num_elements = 9
    x2, index2, ptr2 = random_segments([2, 9, 0, 5, 5, 1], 5, seed=1, device=device)
    program = assert_exportable(aggr, (x,), {"ptr": ptr}, atol=1e-5,
                                dynamic_shapes={"x": {0: Dim("E", min=2)},
                                                "ptr": {0: Dim("N", min=3)}},
                                check=[((x2,), {"ptr": ptr2})])
    x3, _, ptr3 = random_segments([10, 1], 5, device=device)
    with pytest.raises(RuntimeError, match="more than max_num_elements=9"):
        program.module()(x3, ptr=ptr3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    from gnnagg.aggr import GRUAggregation, LSTMAggregation

    x, index, _ = random_segments([3, 0, 40, 1], 8)
    for cls in (LCMAggregation, GRUAggregation, LSTMAggregation):
        torch.manual_seed(0)
        cpu = cls(8, 8)
        gpu = cls(8, 8).cuda()
        gpu.load_state_dict(cpu.state_dict())
        out = gpu(x.cuda(), index.cuda(), dim_size=4)
        out.sum().backward()
        torch.testing.assert_close(out.cpu(), cpu(x, index, dim_size=4), atol=1e-5, rtol=1e-4)
