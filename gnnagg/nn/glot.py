r"""GLOT: sentence representations from token graphs over a frozen encoder.

From "Towards Improved Sentence Representations using Token Graphs"
(https://arxiv.org/abs/2603.03389). A frozen language model gives one state
per token; each sentence becomes a graph over its non-padding tokens (an edge
where two states' cosine similarity exceeds :math:`\tau`), a small GNN refines
the states, and an attention readout pools them:

.. math::
    \mathbf{u}_i = [\mathbf{x}_i \,\|\, \mathbf{h}^{(1)}_i \,\|\, \cdots \,\|\,
    \mathbf{h}^{(K)}_i], \qquad
    m_i = \mathbf{v}^{\top} \tanh(\mathbf{W}\mathbf{u}_i + \mathbf{b}), \qquad
    \mathbf{z} = \sum_i \operatorname{softmax}(m)_i \, \mathbf{u}_i .

Every pooler here shares one interface, ``pooler(x, mask) -> (B, out_channels)``
for a padded ``(B, L, d)`` batch and its ``(B, L)`` attention mask, so the
baselines of the paper (:class:`MeanPooling`, :class:`MaxPooling`,
:class:`CLSPooling`, :class:`AdaPool`) swap in through :func:`resolve_pooling`.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional, Tuple, Type, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..aggr import resolve as resolve_aggr
from ..aggr import needs_channels
from ..ops import scatter, softmax

__all__ = [
    "TokenGraph", "build_token_graph", "build_token_graph_loop", "benchmark_token_graph",
    "BF16_MARGIN",
    "TokenPooling", "AttentionReadout", "GLOTPooling", "MeanPooling", "MaxPooling",
    "CLSPooling", "AdaPool", "POOLINGS", "resolve_pooling", "resolve_conv",
]


# Token graphs ###############################################################

class TokenGraph:
    """A batch of token graphs, one per sentence, in PyG's conventions.

    Nodes are the non-padding tokens, sentence after sentence and in token
    order within a sentence (the row-major order of ``x[mask]``).

    Attributes:
        x: ``(N, d)`` token states, gathered from the padded input on first
            access (:class:`GLOTPooling` never reads it: it gathers
            ``x[mask]`` itself, with gradients).
        edge_index: ``(2, E)`` edges ``source -> target`` as global node ids;
            both ends always lie in the same sentence; sorted by target, then
            source.
        edge_weight: ``(E,)`` cosine similarity of the two token states, or
            :obj:`None` when not asked for.
        batch: ``(N,)`` sentence of each node.
        ptr: ``(B + 1,)`` sentence ``b`` owns nodes ``ptr[b]:ptr[b+1]``.
        position: ``(N,)`` each node's position in the padded input.
        padded: the ``(B, L, d)`` input the graphs were built from.
    """

    def __init__(self, padded: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor],
                 batch: Tensor, ptr: Tensor, position: Tensor):
        self.padded = padded
        self.edge_index = edge_index
        self.edge_weight = edge_weight
        self.batch = batch
        self.ptr = ptr
        self.position = position
        self._x: Optional[Tensor] = None

    @property
    def x(self) -> Tensor:
        if self._x is None:
            B, L, d = self.padded.shape
            rows = self.batch * L + self.position
            self._x = self.padded.reshape(B * L, d).index_select(0, rows)
        return self._x

    @property
    def num_graphs(self) -> int:
        return self.ptr.numel() - 1

    @property
    def num_nodes(self) -> int:
        return self.batch.numel()

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_graphs={self.num_graphs}, "
                f"num_nodes={self.num_nodes}, num_edges={self.num_edges})")


def _check_padded(x: Tensor, mask: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a padded (B, L, d) tensor (got shape "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__})")
    if not isinstance(mask, Tensor) or tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"mask must have shape {tuple(x.shape[:2])} (B, L) "
                         f"(got {tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__})")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must be boolean or 0/1 integers")
        mask = mask.bool()
    return mask


def _check_graph_args(tau: Optional[float], k: Optional[int]) -> None:
    if k is None and tau is None:
        raise ValueError("give a threshold tau, a neighbour count k, or both")
    if tau is not None and not -1.0 <= float(tau) <= 1.0:
        raise ValueError(f"tau is a cosine similarity and must lie in [-1, 1] (got {tau})")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be a positive int or None (got {k!r})")


#: Half-width of the band around tau in which the bfloat16 screen of
#: :func:`build_token_graph` recomputes cosines in float32. Rounding both unit
#: vectors to bfloat16 moves their dot product by at most 2u + u^2 (u = 2^-8,
#: Cauchy-Schwarz), float32 accumulation over d <= 4096 terms by < 2.5e-4, and
#: rounding the product to bfloat16 by u |cos| <= 2^-8: 0.012 in all, < 2^-6.
BF16_MARGIN = 2.0 ** -6

PRECISIONS = ("auto", "fp32", "bf16")


def _bf16_screen(precision: str, x: Tensor, k: Optional[int], edge_weights: bool) -> bool:
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


def build_token_graph(x: Tensor, mask: Tensor, tau: Optional[float] = 0.8,
                      k: Optional[int] = None, edge_weights: bool = False,
                      bucket_size: int = 64, precision: str = "auto") -> TokenGraph:
    r"""Token graphs of a padded batch, vectorised over sentences.

    For each sentence, tokens :math:`i \neq j` (both unmasked) are joined when
    their float32 cosine similarity :math:`\cos(\mathbf{x}_i, \mathbf{x}_j)`
    exceeds :math:`\tau`. With ``k``, each token :math:`i` instead receives
    edges from its ``k`` most similar other tokens (fewer in shorter
    sentences; ties broken by position), and ``tau``, when not :obj:`None`,
    additionally drops those at or below the threshold. Threshold graphs are
    symmetric; k-NN graphs need not be. Self-loops are never added (most PyG
    convolutions add their own).

    There is no Python loop over sentences: sentences are sorted by length and
    cut into groups of at most ``bucket_size`` whose lengths differ at most
    twofold; each group is handled by one batched matrix product. The graph
    does not depend on ``bucket_size``.

    With ``precision='bf16'`` a threshold graph is screened with a bfloat16
    product: pairs more than :data:`BF16_MARGIN` (:math:`2^{-6}`) above or
    below :math:`\tau` are decided by it (a bound on its rounding error says
    they are on that side in float32 too), and only the pairs inside that
    band are recomputed in float32. k-NN graphs and edge weights always use
    float32.

    Threshold graphs are exactly those of :func:`build_token_graph_loop`,
    for either ``precision``: two float32 computations of a cosine can
    differ in the last bits (summation order), so the few pairs within that
    rounding of :math:`\tau` (:math:`2(d + 4) \cdot 2^{-24}`) are decided by
    recomputing their sentence's cosines exactly as the loop does. (k-NN
    graphs match the loop up to such near-ties in the ranking.)

    Args:
        x (torch.Tensor): token states, ``(B, L, d)``.
        mask (torch.Tensor): ``(B, L)``, true for real tokens, false for padding.
        tau (float, optional): cosine-similarity threshold. (default: :obj:`0.8`)
        k (int, optional): neighbours per token; :obj:`None` builds a pure
            threshold graph. (default: :obj:`None`)
        edge_weights (bool, optional): also return each edge's cosine
            similarity. (default: :obj:`False`)
        bucket_size (int, optional): sentences per batched product.
            (default: :obj:`64`)
        precision (str, optional): ``'fp32'``, ``'bf16'`` (screen, then
            recheck; threshold graphs only), or ``'auto'``: ``'bf16'`` where
            the device multiplies bfloat16 natively with float32 accumulation
            (see :func:`gnnagg._backend.fast_bf16_matmul`). (default: :obj:`'auto'`)
    """
    mask = _check_padded(x, mask)
    _check_graph_args(tau, k)
    if isinstance(bucket_size, bool) or not isinstance(bucket_size, int) or bucket_size < 1:
        raise ValueError(f"bucket_size must be a positive int (got {bucket_size!r})")
    screen = _bf16_screen(precision, x, k, edge_weights)
    B, L, d = x.shape
    dev = x.device
    with torch.no_grad():
        lengths = mask.sum(1)
        ptr = torch.zeros(B + 1, dtype=torch.long, device=dev)
        torch.cumsum(lengths, 0, out=ptr[1:])
        flat_pos = mask.reshape(-1).nonzero(as_tuple=True)[0]
        N = flat_pos.numel()
        batch = torch.repeat_interleave(torch.arange(B, device=dev), lengths, output_size=N)
        position = flat_pos - batch * L
        buckets = _Buckets(lengths, flat_pos, ptr, bucket_size)
        build = _screened_edges if screen else _fp32_edges
        edges = build(x.detach(), buckets, ptr, flat_pos, tau, k, edge_weights)
        src, dst, weight = _in_sentence_order(buckets.order, B, *edges)
        if weight is not None:
            weight = weight.to(x.dtype)
    return TokenGraph(x, torch.stack([src, dst]), weight, batch, ptr, position)


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


def build_token_graph_loop(x: Tensor, mask: Tensor, tau: Optional[float] = 0.8,
                           k: Optional[int] = None, edge_weights: bool = False) -> TokenGraph:
    """The same graphs as :func:`build_token_graph`, one sentence at a time,
    in float32.

    A plain reference for tests and for :func:`benchmark_token_graph`; use
    :func:`build_token_graph` in models.
    """
    mask = _check_padded(x, mask)
    _check_graph_args(tau, k)
    edges, weights, batches, positions, counts = [], [], [], [], [0]
    offset = 0
    with torch.no_grad():
        for b in range(x.size(0)):
            pos = mask[b].nonzero(as_tuple=True)[0]
            n = pos.numel()
            sim = _sentence_cosines(x[b, pos])
            off_diag = ~torch.eye(n, dtype=torch.bool, device=x.device)
            if k is None:
                adj = off_diag & (sim > tau)
            else:
                adj = torch.zeros_like(off_diag)
                kk = min(k, n - 1)
                if kk > 0:
                    top, idx = sim.masked_fill(~off_diag, float("-inf")).topk(kk, dim=-1)
                    keep = top > (tau if tau is not None else float("-inf"))
                    adj.scatter_(1, idx, keep)
            i, j = adj.nonzero(as_tuple=True)
            edges.append(torch.stack([j, i]) + offset)
            if edge_weights:
                weights.append(sim[i, j])
            batches.append(torch.full((n,), b, dtype=torch.long, device=x.device))
            positions.append(pos)
            offset += n
            counts.append(offset)
    cat = lambda ts, empty: torch.cat(ts, dim=-1) if ts else empty
    return TokenGraph(
        x,
        cat(edges, torch.zeros(2, 0, dtype=torch.long, device=x.device)),
        cat(weights, x.new_zeros(0)).to(x.dtype) if edge_weights else None,
        cat(batches, torch.zeros(0, dtype=torch.long, device=x.device)),
        torch.tensor(counts, dtype=torch.long, device=x.device),
        cat(positions, torch.zeros(0, dtype=torch.long, device=x.device)))


def benchmark_token_graph(x: Tensor, mask: Tensor, tau: Optional[float] = 0.8,
                          k: Optional[int] = None, repeats: int = 5,
                          chunk: Optional[int] = None, precision: str = "auto",
                          bucket_size: int = 64) -> Dict[str, Any]:
    """Time :func:`build_token_graph` against :func:`build_token_graph_loop`
    on the same input, after checking that both give the same graphs.

    Both build ``chunk`` sentences per call (as a training loop does per
    mini-batch); :obj:`None` does all at once. Runs of the two alternate;
    the best of ``repeats`` runs of each is reported, in seconds, for the
    graphs alone and with their node states (``TokenGraph.x``) gathered too.
    """
    mask = _check_padded(x, mask)
    B = x.size(0)
    chunk = chunk or B
    starts = range(0, B, chunk)

    def vectorised(with_x=False):
        gs = [build_token_graph(x[s:s + chunk], mask[s:s + chunk], tau, k,
                                bucket_size=bucket_size, precision=precision) for s in starts]
        return [g.x for g in gs] if with_x else gs

    def loop(with_x=False):
        gs = [build_token_graph_loop(x[s:s + chunk], mask[s:s + chunk], tau, k) for s in starts]
        return [g.x for g in gs] if with_x else gs

    slow = build_token_graph_loop(x, mask, tau, k)
    fast_edges = torch.cat([g.edge_index + int(slow.ptr[s]) for s, g in
                            zip(starts, vectorised())], dim=1)
    if not torch.equal(fast_edges, slow.edge_index):
        raise RuntimeError("vectorised and per-sentence token graphs differ")

    fns = {"vectorised_s": vectorised, "loop_s": loop,
           "vectorised_with_x_s": lambda: vectorised(True), "loop_with_x_s": lambda: loop(True)}
    times: Dict[str, list] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    best = {name: min(ts) for name, ts in times.items()}
    screened = _bf16_screen(precision, x, k, False)
    return {"sentences": B, "max_len": x.size(1), "tokens": int(mask.sum()),
            "edges": slow.num_edges, "tau": tau, "k": k, "chunk": chunk,
            "precision": "bf16" if screened else "fp32", "bucket_size": bucket_size, **best,
            "speedup": best["loop_s"] / best["vectorised_s"],
            "speedup_with_x": best["loop_with_x_s"] / best["vectorised_with_x_s"]}


# Poolers ####################################################################

class TokenPooling(torch.nn.Module):
    """Base class of the poolers: ``forward(x, mask) -> (B, out_channels)``
    for a padded ``(B, L, in_channels)`` batch and its ``(B, L)`` mask.
    Every sentence must hold at least one token."""

    def __init__(self, in_channels: int):
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int (got {in_channels!r})")
        self.in_channels = in_channels
        self.out_channels = in_channels

    def reset_parameters(self) -> None:
        pass

    def _check(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = _check_padded(x, mask)
        if x.size(-1) != self.in_channels:
            raise ValueError(f"{self.__class__.__name__} expects {self.in_channels} "
                             f"channels (got {x.size(-1)})")
        empty = (~mask.any(1)).nonzero(as_tuple=True)[0]
        if empty.numel():
            raise ValueError(f"sentences {empty.tolist()[:10]} have no tokens in mask")
        return mask

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels})"


class MeanPooling(TokenPooling):
    r"""Mean of the token states, :math:`\mathbf{z} = \frac{1}{n}\sum_i \mathbf{x}_i`.

    Args:
        in_channels (int): token state size.
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = self._check(x, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1)


class MaxPooling(TokenPooling):
    r"""Channel-wise maximum of the token states.

    Args:
        in_channels (int): token state size.
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = self._check(x, mask)
        return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)


class CLSPooling(TokenPooling):
    r"""The state of the first real token (``[CLS]`` for BERT-style
    encoders) or, with ``last=True``, of the last one (decoder models).

    Args:
        in_channels (int): token state size.
        last (bool, optional): take the last unmasked token. (default: :obj:`False`)
    """

    def __init__(self, in_channels: int, last: bool = False):
        super().__init__(in_channels)
        self.last = bool(last)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = self._check(x, mask)
        L = mask.size(1)
        pos = torch.arange(L, device=x.device).expand_as(mask)
        if self.last:
            idx = pos.masked_fill(~mask, -1).amax(1)
        else:
            idx = pos.masked_fill(~mask, L).amin(1)
        return x[torch.arange(x.size(0), device=x.device), idx]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, last={self.last})"


class AttentionReadout(torch.nn.Module):
    r"""Additive attention over each sentence's nodes,
    :math:`m_i = \mathbf{v}^{\top}\tanh(\mathbf{W}\mathbf{u}_i + \mathbf{b})`,
    :math:`\pi = \operatorname{softmax}(m)` within the sentence,
    :math:`\mathbf{z} = \sum_i \pi_i \mathbf{u}_i`
    (https://arxiv.org/abs/2603.03389).

    Args:
        in_channels (int): node feature size.
        attention_channels (int): size of :math:`\mathbf{W}`'s output.
    """

    def __init__(self, in_channels: int, attention_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.attention_channels = attention_channels
        self.lin = torch.nn.Linear(in_channels, attention_channels)
        self.score = torch.nn.Linear(attention_channels, 1, bias=False)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.score.reset_parameters()

    def forward(self, u: Tensor, batch: Tensor, num_graphs: int) -> Tuple[Tensor, Tensor]:
        """Pooled ``(num_graphs, in_channels)`` and the ``(N,)`` weights."""
        m = self.score(torch.tanh(self.lin(u))).squeeze(-1)
        pi = softmax(m, batch, dim_size=num_graphs)
        return scatter(pi.unsqueeze(-1) * u, batch, dim=0, dim_size=num_graphs, reduce="sum"), pi

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.attention_channels})"


class AdaPool(TokenPooling):
    r"""Attention pooling of the token states without a graph
    (:class:`AttentionReadout` on :math:`\mathbf{x}`), the AdaPool baseline of
    https://arxiv.org/abs/2603.03389.

    Args:
        in_channels (int): token state size.
        attention_channels (int, optional): attention hidden size.
            (default: :obj:`256`)
    """

    def __init__(self, in_channels: int, attention_channels: int = 256):
        super().__init__(in_channels)
        self.readout = AttentionReadout(in_channels, attention_channels)

    def reset_parameters(self) -> None:
        self.readout.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor, return_attention: bool = False):
        mask = self._check(x, mask)
        batch = torch.repeat_interleave(torch.arange(x.size(0), device=x.device), mask.sum(1))
        z, pi = self.readout(x[mask], batch, x.size(0))
        return (z, pi) if return_attention else z

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.readout.attention_channels})"


def _conv_key(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    return key[:-4] if key.endswith("conv") else key


def resolve_conv(conv: Union[str, Type[torch.nn.Module]]) -> Type[torch.nn.Module]:
    """A PyG convolution class from a name (``'GATConv'``, ``'gat'``,
    ``'sage'``, ...) or a class."""
    if isinstance(conv, type):
        return conv
    if not isinstance(conv, str):
        raise TypeError(f"conv must be a PyG conv name or class (got {type(conv).__name__})")
    import torch_geometric.nn.conv as pyg_conv

    from torch_geometric.nn.conv import MessagePassing

    key = _conv_key(conv)
    for name in pyg_conv.__all__:
        cls = getattr(pyg_conv, name)
        if isinstance(cls, type) and issubclass(cls, MessagePassing) and _conv_key(name) == key:
            return cls
    raise ValueError(f"unknown PyG convolution '{conv}' (try e.g. 'GATConv', 'GCNConv', "
                     f"'SAGEConv', 'GraphConv')")


#: Convolutions that aggregate their *input* features (and transform after),
#: so a channel-taking aggregator must be built with the layer's input size;
#: all others aggregate transformed messages of ``hidden_channels``.
AGGREGATE_INPUT_CONVS = frozenset({"SAGEConv", "GraphConv", "GINConv", "GINEConv",
                                   "LEConv", "ResGatedGraphConv", "SimpleConv"})


class GLOTPooling(TokenPooling):
    r"""GLOT token-graph pooling (https://arxiv.org/abs/2603.03389).

    Builds each sentence's token graph (:func:`build_token_graph`), refines
    the states with ``num_layers`` PyG convolutions and ReLU, concatenates all
    layers (jumping knowledge,
    :math:`\mathbf{u} = [\mathbf{x} \| \mathbf{h}^{(1)} \| \cdots \| \mathbf{h}^{(K)}]`)
    and pools with an :class:`AttentionReadout`. Graph construction is not
    differentiated (the encoder is frozen).

    Args:
        in_channels (int): token state size.
        hidden_channels (int, optional): GNN width. (default: :obj:`256`)
        num_layers (int, optional): GNN layers :math:`K`. (default: :obj:`2`)
        conv (str or type, optional): PyG convolution, by name or class; it
            is called as ``conv(in, out, **conv_kwargs)`` and applied as
            ``conv(x, edge_index)``; its output must have ``out`` channels
            (for ``GATConv`` with several heads pass ``concat=False``).
            (default: :obj:`'GATConv'`)
        aggr (str or Aggregation, optional): neighbourhood aggregator for the
            convolutions, from :func:`gnnagg.aggr.resolve` (a fresh one per
            layer; channel-taking ones get the size of the messages the
            convolution aggregates, see ``AGGREGATE_INPUT_CONVS``); :obj:`None`
            keeps the convolution's own. (default: :obj:`None`)
        tau (float, optional): edge threshold on cosine similarity.
            (default: :obj:`0.8`)
        k (int, optional): k-NN graph instead (see :func:`build_token_graph`).
            (default: :obj:`None`)
        attention_channels (int, optional): readout hidden size; :obj:`None`
            means ``hidden_channels``. (default: :obj:`None`)
        jumping_knowledge (bool, optional): concatenate the input and every
            layer; otherwise read out the last layer only. (default: :obj:`True`)
        dropout (float, optional): dropout after each layer. (default: :obj:`0.0`)
        conv_kwargs (dict, optional): extra arguments of the convolution.
            (default: :obj:`None`)
    """

    def __init__(self, in_channels: int, hidden_channels: int = 256, num_layers: int = 2,
                 conv: Union[str, Type[torch.nn.Module]] = "GATConv",
                 aggr: Optional[Any] = None, tau: Optional[float] = 0.8,
                 k: Optional[int] = None, attention_channels: Optional[int] = None,
                 jumping_knowledge: bool = True, dropout: float = 0.0,
                 conv_kwargs: Optional[Dict[str, Any]] = None):
        super().__init__(in_channels)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int (got {num_layers!r})")
        if not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ValueError(f"hidden_channels must be a positive int (got {hidden_channels!r})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout})")
        _check_graph_args(tau, k)
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.conv_cls = resolve_conv(conv)
        self.aggr = aggr
        self.tau, self.k = tau, k
        self.jumping_knowledge = bool(jumping_knowledge)
        self.dropout = dropout
        self.conv_kwargs = dict(conv_kwargs or {})
        self.convs = torch.nn.ModuleList()
        for layer in range(num_layers):
            kwargs = dict(self.conv_kwargs)
            c_in = in_channels if layer == 0 else hidden_channels
            if aggr is not None:
                if isinstance(aggr, torch.nn.Module) and num_layers > 1:
                    raise ValueError("pass aggr by name or class when num_layers > 1: "
                                     "one module cannot serve several layers")
                c_msg = c_in if self.conv_cls.__name__ in AGGREGATE_INPUT_CONVS else hidden_channels
                kwargs["aggr"] = (resolve_aggr(aggr, in_channels=c_msg, out_channels=c_msg)
                                  if needs_channels(aggr) else resolve_aggr(aggr))
            self.convs.append(self.conv_cls(c_in, hidden_channels, **kwargs))
        self.out_channels = in_channels + num_layers * hidden_channels if jumping_knowledge \
            else hidden_channels
        self.readout = AttentionReadout(self.out_channels, attention_channels or hidden_channels)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        self.readout.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor, graph: Optional[TokenGraph] = None,
                return_attention: bool = False):
        """Pooled ``(B, out_channels)``; with ``return_attention`` also the
        ``(N,)`` readout weights in node order (``x[mask]``'s order).
        ``graph`` reuses graphs built earlier from the same ``x`` and ``mask``."""
        mask = self._check(x, mask)
        if graph is None:
            graph = build_token_graph(x, mask, self.tau, self.k)
        elif graph.num_nodes != int(mask.sum()):
            raise ValueError(f"graph has {graph.num_nodes} nodes but mask {int(mask.sum())} tokens")
        h = x[mask]  # not graph.x: gradients must reach x
        layers = [h]
        for conv in self.convs:
            h = F.relu(conv(h, graph.edge_index))
            h = F.dropout(h, self.dropout, self.training)
            layers.append(h)
        u = torch.cat(layers, dim=-1) if self.jumping_knowledge else h
        z, pi = self.readout(u, graph.batch, graph.num_graphs)
        return (z, pi) if return_attention else z

    def __repr__(self) -> str:
        graph = f"tau={self.tau}" + (f", k={self.k}" if self.k is not None else "")
        aggr = f", aggr={self.aggr!r}" if self.aggr is not None else ""
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"num_layers={self.num_layers}, conv={self.conv_cls.__name__}{aggr}, {graph}, "
                f"jumping_knowledge={self.jumping_knowledge})")


#: Poolers by name, for :func:`resolve_pooling`.
POOLINGS: Dict[str, Type[TokenPooling]] = {
    "glot": GLOTPooling,
    "mean": MeanPooling,
    "max": MaxPooling,
    "cls": CLSPooling,
    "adapool": AdaPool,
}


def resolve_pooling(name: Union[str, TokenPooling], in_channels: Optional[int] = None,
                    **kwargs: Any) -> TokenPooling:
    """A pooler from its name (``'glot'``, ``'mean'``, ``'max'``, ``'cls'``,
    ``'adapool'``) built with ``in_channels`` and ``kwargs``; a module is
    returned as it is.

    Example:
        >>> resolve_pooling('glot', 384, tau=0.6)
    """
    if isinstance(name, TokenPooling):
        if kwargs or in_channels is not None:
            raise TypeError("arguments given with a pooling module")
        return name
    if not isinstance(name, str):
        raise TypeError(f"expected a pooling name or module (got {type(name).__name__})")
    key = name.lower().replace("-", "").replace("_", "")
    if key.endswith("pooling"):
        key = key[:-len("pooling")]
    if key not in POOLINGS:
        raise ValueError(f"unknown pooling '{name}'; known: {sorted(POOLINGS)}")
    if in_channels is None:
        raise ValueError(f"pooling '{name}' needs in_channels")
    return POOLINGS[key](in_channels, **kwargs)
