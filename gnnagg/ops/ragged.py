r"""Ragged (variable-length) segments without padding.

* :func:`tree_reduce` reduces every segment with a binary operator in
  :math:`\lceil \log_2 d_{\max} \rceil` rounds, as a balanced binary tree.
* :func:`pack_segments` lays segments out as a
  :class:`torch.nn.utils.rnn.PackedSequence`, so that a recurrent network runs
  over every segment with a batch that shrinks as short segments end.
* :func:`sort_segments` and :func:`shuffle_within_segments` put elements into
  segment order (stable) or a random order within each segment.

Segments are given by a CSR ``ptr`` over elements sorted by segment;
:func:`sort_segments` turns any COO ``index`` into that form.
"""
from __future__ import annotations

from typing import Callable, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from .checks import check_dim_size, check_index, check_ptr
from .scatter import ptr_to_index


def _exclusive_cumsum(x: Tensor) -> Tensor:
    return torch.cumsum(x, 0) - x


def sort_segments(index: Tensor, dim_size: Optional[int] = None,
                  generator: Optional[torch.Generator] = None,
                  shuffle: bool = False) -> Tuple[Optional[Tensor], Tensor, int]:
    """Order that groups elements by segment, and the CSR pointer.

    Returns ``(perm, ptr, dim_size)``: ``index[perm]`` is sorted (``perm`` is
    ``None`` when ``index`` already is and no shuffle is asked for). The sort
    is stable, so neighbours keep their given order within a segment, unless
    ``shuffle`` asks for a uniformly random order within every segment.
    """
    index = check_index(index, index.numel(), check_dim_size(dim_size))
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() > 0 else 0
    perm: Optional[Tensor] = None
    if shuffle and index.numel() > 1:
        rand = torch.randperm(index.numel(), device=index.device, generator=generator) \
            if generator is not None else torch.randperm(index.numel(), device=index.device)
        perm = rand[torch.argsort(index[rand], stable=True)]
    elif index.numel() > 1 and bool((index[1:] < index[:-1]).any()):
        perm = torch.argsort(index, stable=True)
    counts = torch.bincount(index, minlength=dim_size)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    return perm, ptr, dim_size


def shuffle_within_segments(ptr: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """A permutation of ``range(ptr[-1])`` that keeps every element inside
    its CSR segment and orders each segment uniformly at random."""
    index = ptr_to_index(ptr)
    perm, _, _ = sort_segments(index, ptr.numel() - 1, generator, shuffle=True)
    return perm if perm is not None else torch.arange(index.numel(), device=ptr.device)


class TreeRound(NamedTuple):
    left: Tensor       # position of each pair's left element (right = left + 1)
    carry: Tensor      # position of each odd segment's last element
    merged_dst: Tensor  # new position of each pair's result
    carry_dst: Tensor  # new position of each carried element
    size: int          # elements after the round


class TreePlan(NamedTuple):
    rounds: List[TreeRound]
    nonempty: Tensor   # segments with at least one element
    num_segments: int


def tree_plan(ptr: Tensor) -> TreePlan:
    """The index arithmetic of :func:`tree_reduce`, integers only.

    In every round, each segment with ``c`` elements pairs its elements
    ``(0, 1), (2, 3), ...``; an odd last element is carried up unchanged and
    placed after the pair results, as in PyG's ``LCMAggregation`` applied to
    one node alone.
    """
    counts = ptr[1:] - ptr[:-1]
    num_segments = counts.numel()
    device = ptr.device
    rounds: List[TreeRound] = []
    c = counts
    while c.numel() > 0 and int(c.max()) > 1:
        start = _exclusive_cumsum(c)
        pairs = c // 2
        odd = c % 2
        new_c = pairs + odd
        new_start = _exclusive_cumsum(new_c)
        pair_seg = torch.repeat_interleave(torch.arange(num_segments, device=device), pairs)
        k = torch.arange(pair_seg.numel(), device=device) - _exclusive_cumsum(pairs)[pair_seg]
        left = start[pair_seg] + 2 * k
        odd_seg = odd.nonzero().view(-1)
        carry = start[odd_seg] + c[odd_seg] - 1
        rounds.append(TreeRound(left, carry, new_start[pair_seg] + k,
                                new_start[odd_seg] + pairs[odd_seg], int(new_c.sum())))
        c = new_c
    return TreePlan(rounds, (counts > 0).nonzero().view(-1), num_segments)


def tree_reduce(x: Tensor, op: Callable[[Tensor, Tensor], Tensor],
                ptr: Optional[Tensor] = None, index: Optional[Tensor] = None,
                dim_size: Optional[int] = None, identity: Optional[Tensor] = None,
                plan: Optional[TreePlan] = None) -> Tensor:
    r"""Reduce every segment of ``x`` with a binary operator as a balanced tree.

    ``op(a, b)`` takes two ``(P, F)`` tensors of paired elements and returns
    ``(P, F)``. Each segment of length :math:`d` is reduced in
    :math:`\lceil \log_2 d \rceil` rounds (all segments in parallel, one
    batched call of ``op`` per round); ``op`` only ever sees real elements of
    one segment, never padding.

    Args:
        x (Tensor): ``(E, F)`` elements, grouped by segment.
        op (callable): the batched binary operator.
        ptr (Tensor, optional): CSR boundaries of the segments.
        index (Tensor, optional): sorted segment of each element, if no ``ptr``.
        dim_size (int, optional): number of segments, with ``index``.
        identity (Tensor, optional): ``(F,)`` value of empty segments.
            (default: zeros)
        plan (TreePlan, optional): a precomputed :func:`tree_plan` of ``ptr``.

    Returns:
        ``(num_segments, F)``.
    """
    if x.dim() != 2:
        raise ValueError(f"tree_reduce expects a 2-D input (E, F), got shape {tuple(x.shape)}")
    if plan is None:
        if ptr is None:
            if index is None:
                raise ValueError("one of 'ptr', 'index' or 'plan' must be given")
            index = check_index(index, x.size(0), check_dim_size(dim_size))
            if index.numel() > 1 and bool((index[1:] < index[:-1]).any()):
                raise ValueError("tree_reduce needs 'index' sorted by segment "
                                 "(use sort_segments first)")
            if dim_size is None:
                dim_size = int(index.max()) + 1 if index.numel() > 0 else 0
            counts = torch.bincount(index, minlength=dim_size)
            ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        ptr = check_ptr(ptr, x.size(0))
        plan = tree_plan(ptr)
    for rnd in plan.rounds:
        merged = op(x.index_select(0, rnd.left), x.index_select(0, rnd.left + 1))
        nxt = merged.new_empty(rnd.size, merged.size(1))
        nxt.index_copy_(0, rnd.merged_dst, merged)
        x = nxt.index_copy_(0, rnd.carry_dst, x.index_select(0, rnd.carry))
    # Now exactly one element per non-empty segment, in segment order.
    if identity is None:
        out = x.new_zeros(plan.num_segments, x.size(1))
    else:
        out = identity.to(x.dtype).expand(plan.num_segments, x.size(1))
    if plan.nonempty.numel() == plan.num_segments:
        return x
    return out.index_copy(0, plan.nonempty, x)


def tree_depth(max_degree: int) -> int:
    """Rounds :func:`tree_reduce` needs for segments of up to ``max_degree``."""
    return 0 if max_degree <= 1 else (int(max_degree) - 1).bit_length()


class Packed(NamedTuple):
    sequence: PackedSequence  # time-major, batch shrinking as segments end
    nodes: Tensor             # segment of each packed batch row (longest first)
    num_segments: int


def pack_layout(ptr: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The index arithmetic of :func:`pack_segments` (integers only;
    TorchScript-compatible): ``(src_of, batch_sizes, nodes)``, where packed
    row ``k`` is element ``src_of[k]``, ``batch_sizes`` is on the CPU (as
    ``PackedSequence`` requires) and ``nodes`` lists the non-empty segments,
    longest first."""
    counts = ptr[1:] - ptr[:-1]
    num_segments = counts.numel()
    order = torch.argsort(counts, descending=True, stable=True)
    num_nonempty = int((counts > 0).sum())
    nodes = order[:num_nonempty]
    if num_nonempty == 0:
        return (torch.zeros(0, dtype=torch.long, device=ptr.device),
                torch.zeros(0, dtype=torch.long), nodes)
    max_len = int(counts[nodes[0]])
    # batch_sizes[t] = number of segments longer than t.
    hist = torch.bincount(counts, minlength=max_len + 1)
    batch_sizes = num_segments - torch.cumsum(hist, 0)[:max_len]
    rank = torch.empty_like(order)
    rank[order] = torch.arange(num_segments, device=ptr.device)
    seg = ptr_to_index(ptr)
    pos_in_seg = torch.arange(seg.numel(), device=ptr.device) - ptr[:-1][seg]
    offsets = _exclusive_cumsum(batch_sizes)
    dest = offsets[pos_in_seg] + rank[seg]
    src_of = torch.empty_like(dest)
    src_of[dest] = torch.arange(dest.numel(), device=ptr.device)
    return src_of, batch_sizes.cpu(), nodes


def pack_segments(x: Tensor, ptr: Tensor) -> Packed:
    """Lay out the CSR segments of ``x`` (``(E, F)``) as a PackedSequence.

    Segments are sorted by length, longest first (stable); step ``t`` holds
    element ``t`` of every segment longer than ``t``. Empty segments are left
    out (``nodes`` lists the segments that are in). No padding is created.
    """
    src_of, batch_sizes, nodes = pack_layout(ptr)
    return Packed(PackedSequence(x.index_select(0, src_of), batch_sizes), nodes,
                  ptr.numel() - 1)
