import pytest
import torch

from gnnagg.ops import (pack_segments, shuffle_within_segments, sort_segments, tree_depth,
                        tree_plan, tree_reduce)


def pyg_style_tree(values, op):
    """PyG's LCM pairing on one segment: pairs (0,1), (2,3), ...; an odd last
    element moves up unchanged and is placed after the pair results."""
    while len(values) > 1:
        nxt = [op(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


def non_associative(a, b):
    return 2 * a + 3 * b + a * b  # neither associative nor commutative: order shows


@pytest.mark.parametrize("degrees", [[3, 0, 1, 9, 2], [0, 0], [1], [16, 17, 5, 0, 1], []])
def test_tree_reduce_matches_per_segment_reference(degrees):
    degrees_t = torch.tensor(degrees, dtype=torch.long)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), degrees_t.cumsum(0)])
    x = torch.randn(int(ptr[-1]), 2, dtype=torch.float64) / 4
    identity = torch.tensor([-5.0, 7.0], dtype=torch.float64)
    out = tree_reduce(x, non_associative, ptr=ptr, identity=identity)
    assert out.shape == (len(degrees), 2)
    for i, d in enumerate(degrees):
        seg = [row for row in x[ptr[i]:ptr[i + 1]]]
        expected = identity if d == 0 else pyg_style_tree(seg, non_associative)
        torch.testing.assert_close(out[i], expected)


def test_tree_reduce_never_sees_padding_and_uses_log_depth():
    degrees = torch.tensor([1000, 3, 0, 1, 2])
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), degrees.cumsum(0)])
    x = torch.arange(1, int(ptr[-1]) + 1, dtype=torch.float64).unsqueeze(1)  # all non-zero
    segment_of = torch.repeat_interleave(torch.arange(5), degrees)
    calls = []

    def op(a, b):
        calls.append(a.size(0))
        assert torch.all(a != 0) and torch.all(b != 0), "padding entered the operator"
        return a + b  # sums stay positive, so any zero would be padding

    out = tree_reduce(x, op, ptr=ptr)
    assert len(calls) == tree_depth(1000) == 10
    expected = torch.zeros(5, 1, dtype=torch.float64).index_add_(0, segment_of, x)
    torch.testing.assert_close(out, expected)
    # Total work is linear in the number of elements: d - 1 merges per segment.
    assert sum(calls) == int((degrees - 1).clamp(min=0).sum())


def test_tree_reduce_by_index_and_errors():
    x = torch.randn(5, 3)
    index = torch.tensor([0, 0, 2, 2, 2])
    by_index = tree_reduce(x, torch.add, index=index, dim_size=4)
    by_ptr = tree_reduce(x, torch.add, ptr=torch.tensor([0, 2, 2, 5, 5]))
    torch.testing.assert_close(by_index, by_ptr)
    with pytest.raises(ValueError, match="sorted"):
        tree_reduce(x, torch.add, index=torch.tensor([2, 0, 0, 2, 2]))
    with pytest.raises(ValueError, match="2-D"):
        tree_reduce(torch.randn(5), torch.add, index=index)
    with pytest.raises(ValueError, match="one of"):
        tree_reduce(x, torch.add)


def test_tree_reduce_gradcheck():
    ptr = torch.tensor([0, 3, 3, 8])
    x = torch.randn(8, 2, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda v: tree_reduce(v, non_associative, ptr=ptr), (x,))


def test_tree_depth():
    assert [tree_depth(d) for d in [0, 1, 2, 3, 4, 5, 8, 9, 1000]] == [0, 0, 1, 2, 2, 3, 3, 4, 10]
    assert len(tree_plan(torch.tensor([0, 5, 6])).rounds) == 3


def test_pack_segments_layout():
    ptr = torch.tensor([0, 0, 3, 4, 9])
    x = torch.arange(9.0).unsqueeze(1)
    packed = pack_segments(x, ptr)
    assert packed.nodes.tolist() == [3, 1, 2]
    assert packed.sequence.batch_sizes.tolist() == [3, 2, 2, 1, 1]
    # Step t holds element t of each segment still running, longest first.
    assert packed.sequence.data.view(-1).tolist() == [4, 0, 3, 5, 1, 6, 2, 7, 8]


def test_sort_and_shuffle_keep_segments():
    index = torch.tensor([2, 0, 2, 1, 0, 2])
    perm, ptr, n = sort_segments(index)
    assert n == 3 and ptr.tolist() == [0, 2, 3, 6]
    assert index[perm].tolist() == [0, 0, 1, 2, 2, 2]
    assert perm.tolist() == [1, 4, 3, 0, 2, 5]  # stable within a segment
    g = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        p = shuffle_within_segments(ptr, generator=g)
        assert sorted(p.tolist()) == list(range(6))
        assert torch.equal(torch.repeat_interleave(torch.arange(3), ptr.diff())[p],
                           torch.tensor([0, 0, 1, 2, 2, 2]))
        seen.add(tuple(p.tolist()))
    assert len(seen) > 1
