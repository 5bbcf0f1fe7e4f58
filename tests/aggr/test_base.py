"""What SegmentAggregation does for every gnnagg aggregator: input layouts
and the errors a user gets for bad input."""
import pytest
import torch

from gnnagg.aggr import GRUAggregation, LCMAggregation, LSTMAggregation
from gnnagg.testing import random_segments

pytestmark = pytest.mark.usefixtures("one_thread")

MAKERS = [lambda c: LCMAggregation(c, c), lambda c: GRUAggregation(c, c),
          lambda c: LSTMAggregation(c, c)]


@pytest.mark.parametrize("make", MAKERS)
def test_index_and_ptr_both_given(make, device):
    aggr = make(3).to(device).eval()
    x, index, ptr = random_segments([2, 0, 3], 3, device=device)
    # Agreeing (as PyG passes them for CSR inputs): the same output.
    torch.testing.assert_close(aggr(x, index, ptr=ptr), aggr(x, ptr=ptr))
    # Disagreeing: an error naming the first element they disagree on,
    # where index used to win silently.
    with pytest.raises(ValueError, match=r"'index' and 'ptr' disagree: element 1 is in "
                                         r"segment 2 by 'index' but in segment 0 by 'ptr'"):
        aggr(x, torch.tensor([0, 2, 2, 2, 2], device=device), ptr=ptr)


@pytest.mark.parametrize("make", MAKERS)
def test_dtype_mismatch_names_both_dtypes(make):
    aggr = make(3)
    x, index, _ = random_segments([2, 3], 3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"torch.float32 parameters but got torch.float64 "
                                        r"input.*aggr.to\(torch.float64\)"):
        aggr(x, index)
    assert aggr.double()(x, index).dtype == torch.float64


@pytest.mark.parametrize("make", MAKERS)
def test_pyg_error_phrases(make, device):
    # PyG users' code matches on these phrases (PyG's test_basic.py::test_validate).
    aggr = make(4).to(device)
    x, index, ptr = random_segments([2, 3, 1], 4, device=device)
    with pytest.raises(ValueError, match="invalid 'dim_size'"):
        aggr(x, ptr=ptr, dim_size=2)
    with pytest.raises(ValueError, match=r"invalid 'dim_size'.*contains 2, out of range"):
        aggr(x, index, dim_size=2)
    with pytest.raises(ValueError, match="invalid dimension"):
        aggr(x, index, dim=-3)


@pytest.mark.parametrize("make", MAKERS)
def test_static_graph_input(make, device):
    # (batch, E, F) messages with dim=-2, as node_dim=-2 layers pass them on
    # static graphs: every batch entry is reduced on its own.
    torch.manual_seed(0)
    aggr = make(4).to(device).eval()
    x = torch.randn(2, 3, 6, 4, device=device)
    index = torch.tensor([1, 1, 0, 3, 1, 0], device=device)
    out = aggr(x, index, dim_size=4)
    assert out.shape == (2, 3, 4, 4)
    torch.testing.assert_close(out[1, 2], aggr(x[1, 2], index, dim_size=4))
    ptr = torch.tensor([0, 2, 6], device=device)
    torch.testing.assert_close(aggr(x, ptr=ptr)[0, 1], aggr(x[0, 1], ptr=ptr))
    assert aggr(x[:0], index, dim_size=4).shape == (0, 3, 4, 4)  # an empty batch


def test_max_num_elements_is_validated_and_never_drops_eagerly():
    with pytest.raises(ValueError, match="positive int"):
        GRUAggregation(3, 3, max_num_elements=0)
    aggr = LCMAggregation(3, 3, max_num_elements=2).eval()
    x, index, _ = random_segments([5], 3)
    twin = LCMAggregation(3, 3).eval()
    twin.load_state_dict(aggr.state_dict())
    torch.testing.assert_close(aggr(x, index), twin(x, index))
    # The call's bound is not used eagerly either.
    torch.testing.assert_close(aggr(x, index, max_num_elements=1), twin(x, index))


@pytest.mark.parametrize("make", MAKERS)
def test_at_most_one_host_sync_per_call_and_none_once_cached(make, device):
    # On a GPU every host read of a device value waits for the device. The
    # grouping (validation, sort, tree or packing plan) costs one transfer
    # and is cached for the index tensor: the layers of one model (each
    # sees a fresh view edge_index[1]) and later steps read nothing back.
    from gnnagg.ops import clear_layout_cache
    from gnnagg.testing import HostSyncs

    clear_layout_cache()
    torch.manual_seed(0)
    layers = [make(4).to(device) for _ in range(3)]
    x, index, _ = random_segments([3, 0, 5, 1, 2, 7], 4, device=device)
    edge_index = torch.stack([torch.arange(index.numel(), device=device), index])
    counts = []
    for step in range(2):
        for layer in layers:
            with HostSyncs(device) as syncs:
                layer(x, edge_index[1], dim_size=6).sum().backward()
            counts.append(syncs.count)
    assert counts == [1, 0, 0, 0, 0, 0], counts
    # Changing the index in place is seen (its version counter moves).
    with torch.no_grad():
        edge_index[1, :3] = torch.tensor([5, 5, 5], device=device)
    with HostSyncs(device) as syncs:
        out = layers[0].eval()(x, edge_index[1], dim_size=6)
    assert syncs.count == 1
    alone = layers[0](x[edge_index[1] == 5], torch.zeros(10, dtype=torch.long, device=device))
    torch.testing.assert_close(out[5:], alone)


@pytest.mark.parametrize("make", MAKERS)
def test_ptr_input_syncs_once(make, device):
    from gnnagg.ops import clear_layout_cache
    from gnnagg.testing import HostSyncs

    clear_layout_cache()
    aggr = make(4).to(device)
    x, _, ptr = random_segments([3, 0, 5, 1], 4, device=device)
    for expected in (1, 0):
        with HostSyncs(device) as syncs:
            aggr(x, ptr=ptr).sum().backward()
        assert syncs.count == expected, syncs.events


def test_host_sync_counter_counts_what_would_sync():
    from gnnagg.testing import HostSyncs

    t = torch.arange(5)
    with HostSyncs() as syncs:
        int(t.max())
        t.nonzero()
        bool((t > 2).any())
        t[t > 2]
        t.tolist()
        torch.repeat_interleave(t, t)
        torch.repeat_interleave(t, t, output_size=10)  # size known: no sync
        t.cumsum(0)
    assert syncs.count == 6, syncs.events
    assert torch.Tensor.tolist is not None and t.tolist() == [0, 1, 2, 3, 4]  # restored
