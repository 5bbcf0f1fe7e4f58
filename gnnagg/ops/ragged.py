r"""Ragged (variable-length) segments without padding.

* :func:`tree_reduce` reduces every segment with a binary operator in
  :math:`\lceil \log_2 d_{\max} \rceil` rounds, as a balanced binary tree.
* :func:`pack_segments` lays segments out as a
  :class:`torch.nn.utils.rnn.PackedSequence`, so that a recurrent network runs
  over every segment with a batch that shrinks as short segments end.
* :func:`sort_segments` and :func:`shuffle_within_segments` put elements into
  segment order (stable) or a random order within each segment.

Segments are given by a CSR ``ptr`` over elements sorted by segment;
:func:`sort_segments` turns any COO ``index`` into that form. The plans
(the integer side of the kernels) are built from a
:class:`~gnnagg.ops.layout.SegmentLayout` with at most one device sync and
kept with it (:func:`build_tree_plan`, :func:`build_pack_plan`).
"""
from __future__ import annotations

from typing import Callable, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from .checks import check_dim_size
from .layout import SegmentLayout, compact, segment_layout
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
    layout = segment_layout(index, None, index.numel() if isinstance(index, Tensor) else None,
                            check_dim_size(dim_size))
    perm = layout.perm
    if shuffle and layout.num_elements > 1:
        perm = layout.shuffled_perm(generator)
    return perm, layout.ptr, layout.num_segments


def shuffle_within_segments(ptr: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """A permutation of ``range(ptr[-1])`` that keeps every element inside
    its CSR segment and orders each segment uniformly at random."""
    index = ptr_to_index(ptr)
    perm, _, _ = sort_segments(index, ptr.numel() - 1, generator, shuffle=True)
    return perm if perm is not None else torch.arange(index.numel(), device=ptr.device)


class TreeRound(NamedTuple):
    """One round of :func:`tree_reduce`. Its level holds ``2 * pairs``
    paired rows (pair ``j`` is rows ``2j, 2j + 1``; the last ``finishing``
    pairs complete their segment), then ``carries`` rows that move up
    unchanged (the odd last element of a segment)."""
    pairs: int
    finishing: int
    carries: int
    merged_dst: Tensor    # next-level row of each continuing pair's result
    finished_seg: Tensor  # segment completed by each finishing pair
    carry_dst: Tensor     # next-level row of each carried row
    size: int             # rows of the next level


class TreePlan(NamedTuple):
    """The integer side of :func:`tree_reduce` for one grouping."""
    leaf_src: Tensor      # element (in segment order) of each first-level row
    single_src: Tensor    # the element of each one-element segment ...
    single_seg: Tensor    # ... and that segment
    empty_seg: Tensor     # segments without elements
    rounds: List[TreeRound]
    num_segments: int


def _round_sizes(spectrum: List[Tuple[int, int]], r: int) -> Tuple[int, int, int]:
    """(continuing pairs, finishing pairs, carries) of round ``r``: a segment
    of ``d`` elements has ``ceil(d / 2^r)`` of them left then."""
    cont = fin = carry = 0
    for d, m in spectrum:
        c = -(-d >> r)
        if c >= 3:
            cont += m * (c // 2)
            carry += m * (c % 2)
        elif c == 2:
            fin += m
    return cont, fin, carry


def build_tree_plan(layout: SegmentLayout) -> TreePlan:
    """:func:`tree_plan` of a :class:`~gnnagg.ops.layout.SegmentLayout`,
    built on its device without a sync (the sizes come from the spectrum).

    Level ``r`` lays out, for every segment with ``c >= 2`` elements left,
    its pairs ``(0, 1), (2, 3), ...`` side by side (segments with more than
    two elements first, then those that finish), then the odd last elements
    of the former; a segment's merged pair ``k`` and its carried element
    become its elements ``k`` and ``c // 2`` of the next level.
    """
    counts, dev = layout.counts, layout.ptr.device
    s, e = counts.numel(), layout.num_elements
    depth = tree_depth(layout.max_degree)
    sizes = [_round_sizes(layout.spectrum, r) for r in range(depth + 1)]
    segs = torch.arange(s, device=dev)
    levels = []
    for r, (cont, fin, _) in enumerate(sizes):
        c = (counts + ((1 << r) - 1)) >> r
        half = c // 2
        is_cont, is_fin = c >= 3, c == 2
        odd = is_cont & (c % 2 == 1)
        cont_pairs = torch.where(is_cont, half, 0)
        base = torch.where(is_cont, _exclusive_cumsum(cont_pairs),
                           cont + _exclusive_cumsum(is_fin.long()))
        carry_row = 2 * (cont + fin) + _exclusive_cumsum(odd.long())
        levels.append((half, cont_pairs, is_fin, odd, base, carry_row))

    def row(level, seg: Tensor, k: Tensor) -> Tensor:
        half, _, _, _, base, carry_row = level
        return torch.where(k < 2 * half[seg], 2 * base[seg] + k, carry_row[seg])

    n0 = 2 * (sizes[0][0] + sizes[0][1]) + sizes[0][2]
    seg = torch.repeat_interleave(segs, counts, output_size=e)
    k = torch.arange(e, device=dev) - layout.ptr[:-1][seg]
    dst = torch.where(counts[seg] >= 2, row(levels[0], seg, k), n0)
    leaf_src = torch.empty(n0 + 1, dtype=torch.long, device=dev).scatter_(
        0, dst, torch.arange(e, device=dev))[:n0]
    singles = sum(m for d, m in layout.spectrum if d == 1)
    single_seg = compact(counts == 1, singles)
    rounds: List[TreeRound] = []
    for r in range(depth):
        (cont, fin, carry), nxt = sizes[r], sizes[r + 1]
        half, cont_pairs, is_fin, odd, _, _ = levels[r]
        pair_seg = torch.repeat_interleave(segs, cont_pairs, output_size=cont)
        q = torch.arange(cont, device=dev) - _exclusive_cumsum(cont_pairs)[pair_seg]
        carry_seg = compact(odd, carry)
        rounds.append(TreeRound(
            cont + fin, fin, carry, row(levels[r + 1], pair_seg, q), compact(is_fin, fin),
            row(levels[r + 1], carry_seg, half[carry_seg]), 2 * (nxt[0] + nxt[1]) + nxt[2]))
    return TreePlan(leaf_src, layout.ptr[:-1][single_seg], single_seg,
                    compact(counts == 0, s - layout.num_nonempty), rounds, s)


def tree_plan(ptr: Tensor) -> TreePlan:
    """The index arithmetic of :func:`tree_reduce` for CSR boundaries
    ``ptr`` (integers only; one device sync, none for a cached ``ptr``).

    In every round, each segment with ``c`` elements pairs its elements
    ``(0, 1), (2, 3), ...``; an odd last element is carried up unchanged and
    placed after the pair results, as in PyG's ``LCMAggregation`` applied to
    one node alone.
    """
    return segment_layout(ptr=ptr).plan("tree", build_tree_plan)


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
        if ptr is None and index is None:
            raise ValueError("one of 'ptr', 'index' or 'plan' must be given")
        layout = segment_layout(index, ptr, x.size(0), dim_size)
        if layout.perm is not None:
            raise ValueError("tree_reduce needs 'index' sorted by segment "
                             "(use sort_segments first)")
        plan = layout.plan("tree", build_tree_plan)
    width = x.size(1)
    if identity is None:
        out = x.new_zeros(plan.num_segments, width)
    else:
        out = identity.to(x.dtype).expand(plan.num_segments, width)
    out = out.index_copy(0, plan.single_seg, x.index_select(0, plan.single_src))
    level = x.index_select(0, plan.leaf_src)
    for rnd in plan.rounds:
        pairs = level[:2 * rnd.pairs].view(rnd.pairs, 2, width)
        merged = op(pairs[:, 0], pairs[:, 1])
        keep = rnd.pairs - rnd.finishing
        nxt = merged.new_empty(rnd.size, width)
        nxt.index_copy_(0, rnd.merged_dst, merged[:keep])
        level = nxt.index_copy_(0, rnd.carry_dst,
                                level[2 * rnd.pairs:2 * rnd.pairs + rnd.carries])
        out = out.index_copy(0, rnd.finished_seg, merged[keep:])
    return out


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


class PackPlan(NamedTuple):
    """The integer side of a recurrence over packed segments."""
    src_of: Tensor          # element (in segment order) of each packed row
    pos_of: Tensor          # packed row of each element (the inverse)
    batch_sizes: List[int]  # rows of each step (on the host)
    nodes: Tensor           # non-empty segments, longest first
    lengths: Tensor         # their lengths
    last: Tensor            # packed row of each one's last element
    num_segments: int


def build_pack_plan(layout: SegmentLayout) -> PackPlan:
    """:func:`pack_layout` of a :class:`~gnnagg.ops.layout.SegmentLayout`
    without a device sync: the step sizes come from its degree spectrum."""
    counts, dev = layout.counts, layout.ptr.device
    s, e = counts.numel(), layout.num_elements
    # Steps d' <= t < d (d' the next smaller size) advance every segment of size >= d.
    batch_sizes: List[int] = []
    running = 0
    for i, (d, m) in enumerate(layout.spectrum):
        running += m
        below = layout.spectrum[i + 1][0] if i + 1 < len(layout.spectrum) else 0
        batch_sizes.extend([running] * (d - below))
    batch_sizes.reverse()
    order = torch.argsort(counts, descending=True, stable=True)
    nonempty = layout.num_nonempty
    nodes = order[:nonempty]
    rank = torch.empty_like(order).scatter_(0, order, torch.arange(s, device=dev))
    ascending = counts.index_select(0, order.flip(0))
    steps = torch.arange(layout.max_degree, device=dev)
    sizes = s - torch.searchsorted(ascending, steps, right=True)  # segments longer than t
    offsets = _exclusive_cumsum(sizes)
    seg = torch.repeat_interleave(torch.arange(s, device=dev), counts, output_size=e)
    dest = offsets[torch.arange(e, device=dev) - layout.ptr[:-1][seg]] + rank[seg]
    src_of = torch.empty_like(dest).scatter_(0, dest, torch.arange(e, device=dev))
    lengths = counts.index_select(0, nodes)
    last = offsets[lengths - 1] + torch.arange(nonempty, device=dev) if nonempty else lengths
    return PackPlan(src_of, dest, batch_sizes, nodes, lengths, last, s)


def pack_segments(x: Tensor, ptr: Tensor) -> Packed:
    """Lay out the CSR segments of ``x`` (``(E, F)``) as a PackedSequence.

    Segments are sorted by length, longest first (stable); step ``t`` holds
    element ``t`` of every segment longer than ``t``. Empty segments are left
    out (``nodes`` lists the segments that are in). No padding is created.
    """
    plan = segment_layout(ptr=ptr, num_elements=x.size(0)).plan("pack", build_pack_plan)
    return Packed(PackedSequence(x.index_select(0, plan.src_of),
                                 torch.tensor(plan.batch_sizes, dtype=torch.long)),
                  plan.nodes, plan.num_segments)
