import pytest
import torch

from gnnagg.ops import (build_pack_plan, pack_segments, segment_layout, shuffle_within_segments,
                        sort_segments, tree_depth, tree_plan, tree_reduce)
from gnnagg.ops.ragged import pack_layout


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


@pytest.mark.parametrize("degrees", [[3, 0, 1, 9, 2], [0, 0], [1], [16, 17, 5, 0, 1], [],
                                     [2, 3, 6, 7, 1, 2, 33]])
def test_tree_reduce_matches_per_segment_reference(degrees, device):
    degrees_t = torch.tensor(degrees, dtype=torch.long)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), degrees_t.cumsum(0)]).to(device)
    x = torch.randn(int(ptr[-1]), 2, dtype=torch.float64, device=device) / 4
    identity = torch.tensor([-5.0, 7.0], dtype=torch.float64, device=device)
    out = tree_reduce(x, non_associative, ptr=ptr, identity=identity)
    assert out.shape == (len(degrees), 2)
    for i, d in enumerate(degrees):
        seg = [row for row in x[ptr[i]:ptr[i + 1]]]
        expected = identity if d == 0 else pyg_style_tree(seg, non_associative)
        torch.testing.assert_close(out[i], expected)


def test_tree_reduce_never_sees_padding_and_uses_log_depth(device):
    degrees = torch.tensor([1000, 3, 0, 1, 2], device=device)
    ptr = torch.cat([degrees.new_zeros(1), degrees.cumsum(0)])
    x = torch.arange(1, int(ptr[-1]) + 1, dtype=torch.float64, device=device).unsqueeze(1)
    segment_of = torch.repeat_interleave(torch.arange(5, device=device), degrees)
    calls = []

    def op(a, b):
        calls.append(a.size(0))
        assert torch.all(a != 0) and torch.all(b != 0), "padding entered the operator"
        return a + b  # sums stay positive, so any zero would be padding

    out = tree_reduce(x, op, ptr=ptr)
    assert len(calls) == tree_depth(1000) == 10
    expected = torch.zeros(5, 1, dtype=torch.float64, device=device).index_add_(0, segment_of, x)
    torch.testing.assert_close(out, expected)
    # Total work is linear in the number of elements: d - 1 merges per segment.
    assert sum(calls) == int((degrees - 1).clamp(min=0).sum())


def test_tree_reduce_by_index_and_errors(device):
    x = torch.randn(5, 3, device=device)
    index = torch.tensor([0, 0, 2, 2, 2], device=device)
    by_index = tree_reduce(x, torch.add, index=index, dim_size=4)
    by_ptr = tree_reduce(x, torch.add, ptr=torch.tensor([0, 2, 2, 5, 5], device=device))
    torch.testing.assert_close(by_index, by_ptr)
    with pytest.raises(ValueError, match="sorted"):
        tree_reduce(x, torch.add, index=torch.tensor([2, 0, 0, 2, 2], device=device))
    with pytest.raises(ValueError, match="2-D"):
        tree_reduce(torch.randn(5, device=device), torch.add, index=index)
    with pytest.raises(ValueError, match="one of"):
        tree_reduce(x, torch.add)


def test_tree_reduce_gradcheck(device):
    ptr = torch.tensor([0, 3, 3, 8], device=device)
    x = torch.randn(8, 2, dtype=torch.float64, device=device, requires_grad=True)
    torch.autograd.gradcheck(lambda v: tree_reduce(v, non_associative, ptr=ptr), (x,))


def test_tree_depth(device):
    assert [tree_depth(d) for d in [0, 1, 2, 3, 4, 5, 8, 9, 1000]] == [0, 0, 1, 2, 2, 3, 3, 4, 10]
    plan = tree_plan(torch.tensor([0, 5, 6], device=device))
    # Segment 0 (5 elements): pairs (0,1), (2,3), carry 4; then (01, 23), carry 4; then
    # (0123, 4). Segment 1 (one element) goes straight to the output.
    assert [(r.pairs, r.finishing, r.carries, r.size) for r in plan.rounds] == \
        [(2, 0, 1, 3), (1, 0, 1, 2), (1, 1, 0, 0)]
    assert plan.leaf_src.tolist() == [0, 1, 2, 3, 4] and plan.single_src.tolist() == [5]


def test_pack_segments_layout(device):
    ptr = torch.tensor([0, 0, 3, 4, 9], device=device)
    x = torch.arange(9.0, device=device).unsqueeze(1)
    packed = pack_segments(x, ptr)
    assert packed.nodes.tolist() == [3, 1, 2]
    assert packed.sequence.batch_sizes.tolist() == [3, 2, 2, 1, 1]
    # Step t holds element t of each segment still running, longest first.
    assert packed.sequence.data.view(-1).tolist() == [4, 0, 3, 5, 1, 6, 2, 7, 8]


@pytest.mark.parametrize("seed", range(4))
def test_pack_plan_matches_the_scriptable_layout(seed, device):
    g = torch.Generator().manual_seed(seed)
    degrees = torch.randint(0, 9, (30,), generator=g) * torch.randint(0, 2, (30,), generator=g)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), degrees.cumsum(0)]).to(device)
    plan = segment_layout(ptr=ptr, num_elements=int(ptr[-1])).plan("pack", build_pack_plan)
    src_of, batch_sizes, nodes = pack_layout(ptr)
    assert plan.batch_sizes == batch_sizes.tolist()
    assert torch.equal(plan.src_of, src_of) and torch.equal(plan.nodes, nodes)
    assert torch.equal(plan.src_of[plan.pos_of], torch.arange(int(ptr[-1]), device=device))
    assert torch.equal(plan.lengths, degrees.to(device)[nodes])


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
