"""The vectorised edge kernels behind :func:`gnnagg.nn.build_token_graph`:
sentences bucketed by length, one batched cosine product per bucket
(float32, or a bfloat16 screen with a float32 recheck near tau), and the
decisions at exact ties taken as the per-sentence reference loop takes them.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


#: Half-width of the band around tau in which the bfloat16 screen of
#: :func:`build_token_graph` recomputes cosines in float32. Rounding both unit
#: vectors to bfloat16 moves their dot product by at most 2u + u^2 (u = 2^-8,
#: Cauchy-Schwarz), float32 accumulation over d <= 4096 terms by < 2.5e-4, and
#: rounding the product to bfloat16 by u |cos| <= 2^-8: 0.012 in all, < 2^-6.
BF16_MARGIN = 2.0 ** -6

PRECISIONS = ("auto", "fp32", "bf16")


def uses_bf16_screen(precision: str, x: Tensor, k: Optional[int] = None,
                     edge_weights: bool = False) -> bool:
    """Whether :func:`build_token_graph` screens ``x``'s pairs in bfloat16."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} (got {precision!r})")
    if k is not None or edge_weights or x.size(-1) > 4096:
        return False  # k-NN ranks and edge weights need every fp32 cosine
    if precision == "auto":
        from .._backend import fast_bf16_matmul

        return fast_bf16_matmul(x.device)
    return precision == "bf16"


def _sentence_cosines(h: Tensor) -> Tensor:
    """One sentence's ``(n, n)`` float32 cosines, computed as the reference
    loop computes them (it calls this)."""
    hn = F.normalize(h.detach().float(), dim=-1)
    return hn @ hn.t()


def _tie_band(d: int) -> float:
    """Two float32 computations of the cosine of the same two d-dimensional
    vectors (different summation orders) differ by at most about
    2 d 2^-24; pairs this close to tau are decided by :func:`_sentence_cosines`."""
    return 2.0 * (d + 4) * 2.0 ** -24


def _decide_as_the_loop(x_rows: Tensor, flat_pos: Tensor, ptr: Tensor, sentence: Tensor,
                        i: Tensor, j: Tensor, tau: float) -> Tensor:
    """``cos(i, j) > tau`` for a few pairs (local rows ``i``, ``j`` of
    ``sentence``), bit for bit as the per-sentence loop decides it."""
    out = torch.empty(sentence.numel(), dtype=torch.bool, device=sentence.device)
    for b in sentence.unique().tolist():
        at = (sentence == b).nonzero(as_tuple=True)[0]
        sim = _sentence_cosines(x_rows.index_select(0, flat_pos[ptr[b]:ptr[b + 1]]))
        out[at] = sim[i[at], j[at]] > tau
    return out


class _Buckets:
    """Non-empty sentences sorted by length (``order``), in groups of at most
    ``bucket_size`` whose lengths differ at most twofold (from 8 sentences
    on): a batched product per group wastes little on padding.
    Group ``g`` holds slots ``bounds[g]:bounds[g+1]`` of ``order`` and is
    ``longest[g]`` tokens long; ``rows[p, r]`` is the row of ``x.view(B * L, d)``
    holding slot ``p``'s ``r``-th real token (its last one past its end, where
    ``pad`` is true), whatever the padding side."""

    def __init__(self, lengths: Tensor, flat_pos: Tensor, ptr: Tensor, bucket_size: int):
        order = torch.argsort(lengths, stable=True)
        self.order = order[lengths.index_select(0, order) > 0]
        S = self.order.numel()
        n = lengths.index_select(0, self.order)
        sizes = n.tolist()
        # a group also closes where lengths double: padding a 10-token
        # sentence to 40 costs 16 times its own product
        self.bounds, first = [0], 0
        for p, size in enumerate(sizes):
            if p - first == bucket_size or (p - first >= 8 and size > 2 * sizes[first]):
                self.bounds.append(p)
                first = p
        if S:
            self.bounds.append(S)
        self.longest = [sizes[end - 1] for end in self.bounds[1:]]
        ranks = torch.arange(self.longest[-1] if S else 0, device=lengths.device)
        self.pad = ranks >= n.unsqueeze(1)
        node = ptr.index_select(0, self.order).unsqueeze(1) + torch.minimum(ranks, (n - 1).unsqueeze(1))
        self.rows = flat_pos[node]

    def __iter__(self):
        """``(first slot, last slot + 1, length)`` of each group."""
        return iter(zip(self.bounds[:-1], self.bounds[1:], self.longest))

    def states(self, x_rows: Tensor, p0: int, p1: int, l: int) -> Tensor:
        return x_rows.index_select(0, self.rows[p0:p1, :l].reshape(-1)).view(p1 - p0, l, -1)


def _in_sentence_order(order: Tensor, B: int, src: Tensor, dst: Tensor,
                       weight: Optional[Tensor], slot: Tensor):
    """Reorders edges listed slot by slot (``slot[e]`` indexes ``order``; each
    slot's edges are contiguous and already sorted by target, then source)
    into sentence order, without a sort."""
    per_slot = torch.bincount(slot, minlength=order.numel())
    per_sentence = torch.zeros(B, dtype=per_slot.dtype, device=slot.device)
    per_sentence[order] = per_slot
    shift = (per_sentence.cumsum(0) - per_sentence).index_select(0, order) - (per_slot.cumsum(0) - per_slot)
    pos = shift.index_select(0, slot) + torch.arange(slot.numel(), device=slot.device)

    def put(c):
        if c is None:
            return None
        out = torch.empty_like(c)
        out[pos] = c
        return out
    return put(src), put(dst), put(weight)


def _fp32_edges(xd, buckets, ptr, flat_pos, tau, k, edge_weights):
    """Edges of every group from a float32 product, slot by slot: ``(source,
    target, weight or None, slot)``."""
    B, L, d = xd.shape
    x_rows = xd.reshape(B * L, d)
    src_parts, dst_parts, slot_parts, w_parts = [], [], [], []
    for p0, p1, l in buckets:
        h = F.normalize(buckets.states(x_rows, p0, p1, l).float(), dim=-1)
        tok = ~buckets.pad[p0:p1, :l]
        valid = tok.unsqueeze(2) & tok.unsqueeze(1)
        valid.diagonal(dim1=1, dim2=2).fill_(False)
        sim = torch.bmm(h, h.transpose(1, 2))
        if k is None:
            adj = valid & (sim > tau)
            tb, ti, tj = (valid & ((sim - tau).abs() <= _tie_band(d))).nonzero(as_tuple=True)
            if tb.numel():
                adj[tb, ti, tj] = _decide_as_the_loop(
                    x_rows, flat_pos, ptr, buckets.order[p0:p1].index_select(0, tb), ti, tj, tau)
        else:
            adj = torch.zeros_like(valid)
            kk = min(k, l - 1)
            if kk > 0:
                top, idx = sim.masked_fill(~valid, float("-inf")).topk(kk, dim=-1)
                keep = top > (tau if tau is not None else float("-inf"))
                adj.scatter_(2, idx, keep)
        bb, i, j = adj.nonzero(as_tuple=True)  # token j -> token i
        base = ptr.index_select(0, buckets.order[p0:p1])[bb]
        src_parts.append(base + j)
        dst_parts.append(base + i)
        slot_parts.append(bb + p0)
        if edge_weights:
            w_parts.append(sim[bb, i, j])
    cat = lambda ts, empty: torch.cat(ts) if ts else empty
    empty = torch.zeros(0, dtype=torch.long, device=xd.device)
    weight = cat(w_parts, xd.new_zeros(0, dtype=torch.float)) if edge_weights else None
    return cat(src_parts, empty), cat(dst_parts, empty), weight, cat(slot_parts, empty)


def _screened_edges(xd, buckets, ptr, flat_pos, tau, k, edge_weights):
    """Threshold edges from a bfloat16 screen with a float32 recheck of the
    pairs within :data:`BF16_MARGIN` of ``tau`` (see :func:`build_token_graph`)."""
    dev = xd.device
    B, L, d = xd.shape
    x_rows = xd.reshape(B * L, d)
    tau = float(tau)
    nan = float("nan")
    sizes = [(p1 - p0) * l * l for p0, p1, l in buckets]
    # the bf16 cosines of every group, one after the other; padding pairs
    # and the diagonal hold NaN, which passes no comparison
    cos = torch.empty(sum(sizes), dtype=torch.float32, device=dev)
    at = 0
    for (p0, p1, l), size in zip(buckets, sizes):
        h = buckets.states(x_rows, p0, p1, l)
        hb = h.to(torch.bfloat16)
        block = cos[at:at + size].view(-1, l, l)
        block.copy_(torch.bmm(hb, hb.transpose(1, 2)))
        inv = torch.linalg.vector_norm(h.float(), dim=-1).clamp_min_(1e-12).reciprocal_()
        inv.masked_fill_(buckets.pad[p0:p1, :l], nan)
        block.mul_(inv.unsqueeze(2)).mul_(inv.unsqueeze(1))
        block.diagonal(dim1=1, dim2=2).fill_(nan)
        at += size
    flat = (cos > tau - BF16_MARGIN).nonzero(as_tuple=True)[0]
    value = cos.index_select(0, flat)
    # flat index -> (slot of `order`, row i, column j)
    slot_len = torch.repeat_interleave(
        torch.tensor(buckets.longest, dtype=torch.long, device=dev),
        torch.tensor([p1 - p0 for p0, p1, _ in buckets], dtype=torch.long, device=dev),
        output_size=buckets.order.numel())
    slot_end = torch.cumsum(slot_len * slot_len, 0)
    slot = torch.searchsorted(slot_end, flat, right=True)
    r = flat - (slot_end - slot_len * slot_len).index_select(0, slot)
    width = slot_len.index_select(0, slot)
    i = torch.div(r, width, rounding_mode="floor")
    base = ptr.index_select(0, buckets.order.index_select(0, slot))
    j = r - i * width
    dst = base + i
    src = base + j
    unsure = (value <= tau + BF16_MARGIN).nonzero(as_tuple=True)[0]
    if unsure.numel():
        keep = value > tau + BF16_MARGIN
        # float32 cosines of the pairs in the band, normalised as the loop
        # does; in chunks: small temporaries are reused by the allocator,
        # large ones page-fault
        step = max(1, 2 ** 19 // d)
        ties = []
        for at in range(0, unsure.numel(), step):
            part = unsure[at:at + step]
            a = x_rows.index_select(0, flat_pos.index_select(0, dst.index_select(0, part)))
            b = x_rows.index_select(0, flat_pos.index_select(0, src.index_select(0, part)))
            cos_ab = torch.linalg.vecdot(F.normalize(a.float(), dim=-1), F.normalize(b.float(), dim=-1))
            keep[part] = cos_ab > tau
            ties.append(part[(cos_ab - tau).abs() <= _tie_band(d)])
        tie = torch.cat(ties)
        if tie.numel():
            keep[tie] = _decide_as_the_loop(
                x_rows, flat_pos, ptr, buckets.order.index_select(0, slot.index_select(0, tie)),
                i.index_select(0, tie), j.index_select(0, tie), tau)
        src, dst, slot = src[keep], dst[keep], slot[keep]
    return src, dst, None, slot
