r"""Token graphs: one graph per sentence over a frozen encoder's token states.

From "Towards Improved Sentence Representations using Token Graphs"
(GLOT, https://arxiv.org/abs/2603.03389): each sentence of a padded
``(B, L, d)`` batch becomes a graph over its non-padding tokens, with an edge
:math:`j \to i` where the cosine similarity of the two states exceeds
:math:`\tau` (or from each token's :math:`k` most similar tokens):

.. math::
    \mathcal{E} = \{(j, i) : i \neq j,\ \cos(\mathbf{x}_i, \mathbf{x}_j) > \tau\}.

:func:`build_token_graph` is vectorised over sentences;
:func:`build_token_graph_loop` builds the same graphs one sentence at a time
(the reference of the tests and of ``gnnagg bench token-graph``);
:func:`empty_token_graph` has the same nodes and no edges (the no-graph
ablation of :class:`gnnagg.nn.GLOTPooling`). The poolers of
:mod:`gnnagg.nn.pooling` read these graphs.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ._token_edges import (BF16_MARGIN, PRECISIONS, _Buckets, _fp32_edges, _in_sentence_order,
                           _screened_edges, _sentence_cosines, uses_bf16_screen)

__all__ = ["TokenGraph", "build_token_graph", "build_token_graph_loop", "empty_token_graph",
           "check_padded", "check_graph_args", "uses_bf16_screen", "BF16_MARGIN", "PRECISIONS"]


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


def check_padded(x: Tensor, mask: Tensor) -> Tensor:
    """The boolean mask of a padded ``(B, L, d)`` batch; an error naming the
    shape or dtype that is wrong otherwise."""
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


def check_graph_args(tau: Optional[float], k: Optional[int]) -> None:
    """``tau`` in [-1, 1] and/or ``k`` a positive int (at least one given)."""
    if k is None and tau is None:
        raise ValueError("give a threshold tau, a neighbour count k, or both")
    if tau is not None and not -1.0 <= float(tau) <= 1.0:
        raise ValueError(f"tau is a cosine similarity and must lie in [-1, 1] (got {tau})")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be a positive int or None (got {k!r})")


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
    mask = check_padded(x, mask)
    check_graph_args(tau, k)
    if isinstance(bucket_size, bool) or not isinstance(bucket_size, int) or bucket_size < 1:
        raise ValueError(f"bucket_size must be a positive int (got {bucket_size!r})")
    screen = uses_bf16_screen(precision, x, k, edge_weights)
    with torch.no_grad():
        lengths, ptr, flat_pos, batch, position = _nodes(mask)
        buckets = _Buckets(lengths, flat_pos, ptr, bucket_size)
        build = _screened_edges if screen else _fp32_edges
        edges = build(x.detach(), buckets, ptr, flat_pos, tau, k, edge_weights)
        src, dst, weight = _in_sentence_order(buckets.order, x.size(0), *edges)
        if weight is not None:
            weight = weight.to(x.dtype)
    return TokenGraph(x, torch.stack([src, dst]), weight, batch, ptr, position)


def _nodes(mask: Tensor):
    """``(lengths, ptr, flat_pos, batch, position)`` of the real tokens of a
    boolean ``(B, L)`` mask; ``flat_pos`` indexes ``mask.reshape(-1)``."""
    B, L = mask.shape
    lengths = mask.sum(1)
    ptr = torch.zeros(B + 1, dtype=torch.long, device=mask.device)
    torch.cumsum(lengths, 0, out=ptr[1:])
    flat_pos = mask.reshape(-1).nonzero(as_tuple=True)[0]
    batch = torch.repeat_interleave(torch.arange(B, device=mask.device), lengths,
                                    output_size=flat_pos.numel())
    return lengths, ptr, flat_pos, batch, flat_pos - batch * L


def empty_token_graph(x: Tensor, mask: Tensor) -> TokenGraph:
    """The nodes of :func:`build_token_graph` (the real tokens, in the same
    order) without any edge: the "no graph" ablation, in which a GNN sees
    every token alone (with its self-loop, where the convolution adds one)."""
    mask = check_padded(x, mask)
    with torch.no_grad():
        _, ptr, _, batch, position = _nodes(mask)
    return TokenGraph(x, torch.zeros(2, 0, dtype=torch.long, device=x.device), None, batch, ptr,
                      position)


def build_token_graph_loop(x: Tensor, mask: Tensor, tau: Optional[float] = 0.8,
                           k: Optional[int] = None, edge_weights: bool = False) -> TokenGraph:
    """The same graphs as :func:`build_token_graph`, one sentence at a time,
    in float32.

    A plain reference for tests and for ``gnnagg bench token-graph``; use
    :func:`build_token_graph` in models.
    """
    mask = check_padded(x, mask)
    check_graph_args(tau, k)
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

