import pytest
import torch
import torch_geometric.nn.aggr as pyg_aggr

from gnnagg.aggr import GRUAggregation, LSTMAggregation, regularization_loss
from gnnagg.testing import (assert_batch_independent, assert_compiles, assert_gradcheck,
                            check_aggregator, random_segments)

CASES = [(GRUAggregation, pyg_aggr.GRUAggregation, "gru"),
         (LSTMAggregation, pyg_aggr.LSTMAggregation, "lstm")]


@pytest.mark.parametrize("ours_cls, pyg_cls, attr", CASES)
def test_properties(ours_cls, pyg_cls, attr):
    check_aggregator(lambda c: ours_cls(c, c))


@pytest.mark.parametrize("ours_cls, pyg_cls, attr", CASES)
def test_matches_pyg_per_node_alone(ours_cls, pyg_cls, attr):
    torch.manual_seed(0)
    ours = ours_cls(6, 5).eval()
    pyg = pyg_cls(6, 5)
    pyg.load_state_dict(ours.state_dict())  # the same parameter names
    degrees = [3, 10, 1, 0, 7, 16]
    x, index, _ = random_segments(degrees, 6)
    out = ours(x, index, dim_size=len(degrees))
    for i, d in enumerate(degrees):
        if d == 0:
            assert torch.equal(out[i], torch.zeros(5))
            continue
        alone = pyg(x[index == i], torch.zeros(d, dtype=torch.long), dim_size=1)[0]
        assert (alone - out[i]).abs().max() < 1e-5
    with pytest.raises(AssertionError, match="batched vs alone"):
        assert_batch_independent(pyg, x, index, len(degrees))


@pytest.mark.parametrize("ours_cls", [GRUAggregation, LSTMAggregation])
def test_permutation_regulariser(ours_cls):
    torch.manual_seed(0)
    aggr = ours_cls(4, 4, perm_samples=16)
    x, index, _ = random_segments([3, 6], 4)
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


def test_multilayer_and_depth():
    aggr = GRUAggregation(4, 6, num_layers=2)
    x, index, _ = random_segments([2, 0, 5], 4)
    assert aggr(x, index, dim_size=3).shape == (3, 6)
    assert aggr.depth(1000) == 1000
    with pytest.raises(ValueError, match="not supported"):
        GRUAggregation(4, 4, batch_first=True)


def test_gradcheck_and_compile():
    x, index, _ = random_segments([3, 0, 2], 3)
    for cls in (GRUAggregation, LSTMAggregation):
        assert_gradcheck(cls(3, 2), x, index, 3)
        assert_compiles(cls(3, 2), x, index, 3, backend="aot_eager")
