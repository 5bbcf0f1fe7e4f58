import pytest
import torch

from gnnagg.ops import clear_layout_cache, segment_layout
from gnnagg.ops.layout import _CACHE, compact, single_segment_layout
from gnnagg.testing import HostSyncs


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_layout_cache()
    yield
    clear_layout_cache()


def test_layout_of_an_unsorted_index(device):
    index = torch.tensor([2, 0, 2, 4, 0, 2, 2], device=device)
    layout = segment_layout(index, num_elements=7, dim_size=6)
    assert layout.perm.tolist() == [1, 4, 0, 2, 5, 6, 3]  # stable
    assert layout.ptr.tolist() == [0, 2, 2, 6, 6, 7, 7]
    assert layout.counts.tolist() == [2, 0, 4, 0, 1, 0]
    # (size, segments of that size), largest first; empty segments left out.
    assert layout.spectrum == [(4, 1), (2, 1), (1, 1)]
    assert (layout.max_degree, layout.num_nonempty, layout.num_segments) == (4, 3, 6)


def test_spectrum_fits_its_bound_on_a_worst_case_graph():
    # Sizes 1, 2, ..., D use D(D+1)/2 elements: as many distinct sizes as
    # the bound sqrt(2E) + 1 allows.
    sizes = torch.arange(1, 45)
    index = torch.repeat_interleave(torch.arange(44), sizes)
    layout = segment_layout(index, num_elements=index.numel(), dim_size=44)
    assert layout.spectrum == [(d, 1) for d in range(44, 0, -1)]
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(sizes.flip(0), 0)])
    assert segment_layout(ptr=ptr, num_elements=int(ptr[-1])).spectrum == layout.spectrum


def test_sorted_index_needs_no_permutation_and_one_sync(device):
    index = torch.tensor([0, 0, 1, 3], device=device)
    with HostSyncs(device) as syncs:
        layout = segment_layout(index, num_elements=4, dim_size=4)
    assert layout.perm is None and syncs.count == 1
    with HostSyncs(device) as syncs:  # without dim_size the segment count is read first
        segment_layout(index.clone(), num_elements=4)
    assert syncs.count == 2


@pytest.mark.parametrize("index, dim_size, error", [
    ([0, -1, 2], 3, r"'index' contains a negative entry \(-1\)"),
    ([0, 3, 2], 3, r"invalid 'dim_size' \(3\).*'index' contains 3, out of range for dim_size=3"),
    ([[0, 1]], 3, "one-dimensional"),
])
def test_index_errors_name_the_problem(index, dim_size, error, device):
    index = torch.tensor(index, device=device)
    with pytest.raises(ValueError, match=error):
        segment_layout(index, num_elements=index.numel(), dim_size=dim_size)
    with pytest.raises(TypeError, match="integer dtype"):
        segment_layout(torch.zeros(3, device=device), num_elements=3, dim_size=3)


@pytest.mark.parametrize("ptr, n, error", [
    ([1, 2, 3], 3, r"must start at 0 \(got 1\)"),
    ([0, 2, 4], 3, r"must end at the length of the reduced dimension \(3\), got 4"),
    ([0, 2, 1, 3], 3, "non-decreasing"),
])
def test_ptr_errors_name_the_problem(ptr, n, error, device):
    with pytest.raises(ValueError, match=error):
        segment_layout(ptr=torch.tensor(ptr, device=device), num_elements=n)


def test_index_and_ptr_must_agree(device):
    ptr = torch.tensor([0, 2, 2, 5], device=device)
    good = torch.tensor([0, 0, 2, 2, 2], device=device)
    assert segment_layout(good, ptr, 5).perm is None
    with pytest.raises(ValueError, match="element 1 is in segment 2 by 'index' but in "
                                         "segment 0 by 'ptr'"):
        segment_layout(torch.tensor([0, 2, 2, 2, 2], device=device), ptr, 5)
    with pytest.raises(ValueError, match="'index' has 4 entries"):
        segment_layout(good[:4], ptr, 5)


def test_cache_matches_views_and_sees_in_place_changes():
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    first = segment_layout(edge_index[1], num_elements=4, dim_size=2)
    assert segment_layout(edge_index[1], num_elements=4, dim_size=2) is first  # a new view
    assert segment_layout(edge_index[1], num_elements=4, dim_size=3) is not first
    assert segment_layout(edge_index[1].clone(), num_elements=4, dim_size=2) is not first
    edge_index[1, 0] = 1  # in place: the version counter moves
    again = segment_layout(edge_index[1], num_elements=4, dim_size=2)
    assert again is not first and again.counts.tolist() == [1, 3]


def test_cache_is_bounded_and_skips_inference_tensors():
    indices = [torch.tensor([0, i % 2]) for i in range(20)]
    for index in indices:
        segment_layout(index, num_elements=2, dim_size=2)
    assert len(_CACHE._entries) == _CACHE.max_entries == 8
    with torch.inference_mode():
        index = torch.tensor([0, 1])
    clear_layout_cache()
    segment_layout(index, num_elements=2, dim_size=2)
    assert len(_CACHE._entries) == 0


def test_lift_repeats_the_graph_for_a_static_batch(device):
    layout = segment_layout(torch.tensor([1, 0, 1], device=device), num_elements=3, dim_size=3)
    lifted = layout.lift(2)
    assert lifted.perm.tolist() == [1, 0, 2, 4, 3, 5]
    assert lifted.ptr.tolist() == [0, 1, 3, 3, 4, 6, 6]
    assert lifted.spectrum == [(2, 2), (1, 2)]
    assert layout.lift(2) is lifted


def test_single_segment_and_compact(device):
    layout = single_segment_layout(4, 3, device)
    assert layout.ptr.tolist() == [0, 4, 4, 4] and layout.spectrum == [(4, 1)]
    with pytest.raises(ValueError, match="invalid 'dim_size'"):
        single_segment_layout(4, 0, device)
    mask = torch.tensor([False, True, True, False, True], device=device)
    assert compact(mask, 3).tolist() == [1, 2, 4]
    assert compact(mask[:0], 0).tolist() == []


def test_shuffled_perm_stays_within_segments(device):
    index = torch.tensor([2, 0, 2, 1, 0, 2], device=device)
    layout = segment_layout(index, num_elements=6, dim_size=3)
    g = torch.Generator(device=device).manual_seed(0)
    seen = set()
    for _ in range(10):
        perm = layout.shuffled_perm(g)
        assert index[perm].tolist() == [0, 0, 1, 2, 2, 2]
        seen.add(tuple(perm.tolist()))
    assert len(seen) > 1
