import pytest
import torch
import torch_geometric.nn.aggr as pyg_aggr

from gnnagg.aggr import GRUAggregation, LSTMAggregation, regularization_loss
from gnnagg.testing import (assert_batch_independent, assert_compiles, assert_exportable,
                            assert_func_transforms, assert_gradcheck, assert_gradgradcheck,
                            assert_scriptable, check_aggregator, random_segments)

pytestmark = pytest.mark.usefixtures("one_thread")

CASES = [(GRUAggregation, pyg_aggr.GRUAggregation, "gru"),
         (LSTMAggregation, pyg_aggr.LSTMAggregation, "lstm")]


@pytest.mark.parametrize("ours_cls, pyg_cls, attr", CASES)
def test_properties(ours_cls, pyg_cls, attr, device):
    check_aggregator(lambda c: ours_cls(c, c), device=device)


@pytest.mark.parametrize("ours_cls, pyg_cls, attr", CASES)
def test_matches_pyg_per_node_alone(ours_cls, pyg_cls, attr, device):
    torch.manual_seed(0)
    ours = ours_cls(6, 5).to(device).eval()
    pyg = pyg_cls(6, 5).to(device)
    pyg.load_state_dict(ours.state_dict())  # the same parameter names
    degrees = [3, 10, 1, 0, 7, 16]
    x, index, _ = random_segments(degrees, 6, device=device)
    out = ours(x, index, dim_size=len(degrees))
    for i, d in enumerate(degrees):
        if d == 0:
            assert torch.equal(out[i], torch.zeros(5, device=device))
            continue
        alone = pyg(x[index == i], torch.zeros(d, dtype=torch.long, device=device),
                    dim_size=1)[0]
        assert (alone - out[i]).abs().max() < 1e-5
    with pytest.raises(AssertionError, match="batched vs alone"):
        assert_batch_independent(pyg, x, index, len(degrees))


@pytest.mark.parametrize("ours_cls", [GRUAggregation, LSTMAggregation])
def test_permutation_regulariser(ours_cls, device):
    torch.manual_seed(0)
    aggr = ours_cls(4, 4, perm_samples=16).to(device)
    x, index, _ = random_segments([3, 6], 4, device=device)
    aggr(x, index)
    loss = regularization_loss(torch.nn.Sequential(aggr))
    assert loss.item() > 0
    loss.backward()
    assert aggr.rnn.weight_hh_l0.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="num_layers=1"):
        ours_cls(4, 4, perm_samples=4, num_layers=2)


def test_cell_step_matches_torch():
    """The regulariser's one-step cells are the networks' own cells."""
    torch.manual_seed(0)
    gru = GRUAggregation(3, 4)
    cell = torch.nn.GRUCell(3, 4)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in gru.gru.state_dict().items()})
    x, h = torch.randn(5, 3), torch.randn(5, 4)
    torch.testing.assert_close(gru._cell(x, h), cell(x, h))
    lstm = LSTMAggregation(3, 4)
    lcell = torch.nn.LSTMCell(3, 4)
    lcell.load_state_dict({k.replace("_l0", ""): v for k, v in lstm.lstm.state_dict().items()})
    c = torch.randn(5, 4)
    for a, b in zip(lstm._cell(x, (h, c)), lcell(x, (h, c))):
        torch.testing.assert_close(a, b)


def test_multilayer_and_depth(device):
    aggr = GRUAggregation(4, 6, num_layers=2).to(device)
    x, index, _ = random_segments([2, 0, 5], 4, device=device)
    assert aggr(x, index, dim_size=3).shape == (3, 6)
    assert aggr.depth(1000) == 1000
    with pytest.raises(ValueError, match="not supported"):
        GRUAggregation(4, 4, batch_first=True)


def test_gradcheck_and_compile(device):
    x, index, _ = random_segments([3, 0, 2], 3, device=device)
    for cls in (GRUAggregation, LSTMAggregation):
        assert_gradcheck(cls(3, 2).to(device), x, index, 3)
        # One graph break (explain counts two) where tracing into the packed
        # recurrence gave 17-18 and a recompile per graph.
        assert_compiles(cls(3, 2).to(device), x, index, 3, max_graph_breaks=2)


@pytest.mark.parametrize("make", [lambda: GRUAggregation(3, 2), lambda: LSTMAggregation(3, 2),
                                  lambda: GRUAggregation(3, 2, num_layers=2),
                                  lambda: LSTMAggregation(3, 4, proj_size=2)])
def test_double_backward_and_torch_func(make, device):
    # Fast path: the hand-written backward falls back to plain ops for a
    # higher-order graph; torch.func runs plain ops (torch's packed RNN
    # kernels, used for more layers or a projection, do not support it).
    x, index, _ = random_segments([3, 0, 2, 1], 3, dtype=torch.float64, device=device)
    torch.manual_seed(0)
    aggr = make().to(device).double()
    assert_gradgradcheck(aggr, x, index, 4)
    assert_func_transforms(aggr, x, index, 4, atol=1e-10)


@pytest.mark.parametrize("ours_cls, pyg_cls, attr", CASES)
def test_loads_pyg_and_older_gnnagg_checkpoints(ours_cls, pyg_cls, attr):
    torch.manual_seed(0)
    pyg = pyg_cls(6, 5)
    ours = ours_cls(6, 5)
    ours.load_state_dict(pyg.state_dict())  # strict: the same names
    assert sorted(ours.state_dict()) == sorted(pyg.state_dict())
    x, index, _ = random_segments([4, 1, 7], 6)
    out = ours(x, index, dim_size=3)
    for i in range(3):
        alone = pyg(x[index == i], torch.zeros(int((index == i).sum()), dtype=torch.long))
        torch.testing.assert_close(out[i:i + 1], alone)
    # older gnnagg versions named the module 'rnn'; that name still reaches it.
    old = {k.replace(f"{attr}.", "rnn."): v for k, v in ours.state_dict().items()}
    again = ours_cls(6, 5)
    again.load_state_dict(old)
    torch.testing.assert_close(again(x, index, dim_size=3), out)
    assert ours.rnn is getattr(ours, attr)


def test_lstm_proj_size_gives_pyg_width(device):
    torch.manual_seed(0)
    ours = LSTMAggregation(8, 12, proj_size=4).to(device)
    pyg = pyg_aggr.LSTMAggregation(8, 12, proj_size=4).to(device)
    ours.load_state_dict(pyg.state_dict())
    x, index, _ = random_segments([3, 0, 5], 8, device=device)
    out = ours(x, index, dim_size=3)
    assert out.shape == (3, 4) and torch.equal(out[1], torch.zeros(4, device=device))
    for i in (0, 2):
        alone = pyg(x[index == i], torch.zeros(int((index == i).sum()), dtype=torch.long,
                                               device=device))
        torch.testing.assert_close(out[i:i + 1], alone)
    assert repr(ours) == "LSTMAggregation(8, 12, proj_size=4)"


@pytest.mark.parametrize("make", [lambda: GRUAggregation(5, 4), lambda: LSTMAggregation(5, 4),
                                  lambda: GRUAggregation(5, 4, num_layers=2),
                                  lambda: LSTMAggregation(5, 6, proj_size=3)])
def test_torchscript_and_export(make, device):
    from torch.export import Dim

    aggr = make().to(device)
    x, index, ptr = random_segments([3, 0, 9, 1], 5, device=device)
    assert_scriptable(aggr, x, index, dim_size=4, atol=1e-5)
    assert_scriptable(aggr, x, ptr=ptr, atol=1e-5)
    assert_exportable(aggr, (x, index), {"dim_size": 4}, atol=1e-5)
    aggr.max_num_elements = 9
    x2, _, ptr2 = random_segments([2, 9, 0, 5, 5, 1], 5, seed=1, device=device)
    program = assert_exportable(aggr, (x,), {"ptr": ptr}, atol=1e-5,
                                dynamic_shapes={"x": {0: Dim("E", min=2)},
                                                "ptr": {0: Dim("N", min=3)}},
                                check=[((x2,), {"ptr": ptr2})])
    x3, _, ptr3 = random_segments([10, 1], 5, device=device)
    with pytest.raises(RuntimeError, match="more than max_num_elements=9"):
        program.module()(x3, ptr=ptr3)
