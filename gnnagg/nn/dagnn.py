"""DAGNN's propagation with adaptive hop weights (Liu, Gao & Ji, KDD 2020)."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.aggr import Aggregation, SumAggregation
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from ..aggr.resolve import resolve
from ..utils import quiet_csr


class _FixedSpMM(torch.autograd.Function):
    """``adj @ h`` for a constant sparse CSR ``adj``, differentiable in ``h``.

    PyTorch's own autograd for CSR products also prepares a gradient for the
    sparse matrix, which makes a K-hop backward pass about ten times slower
    on Cora; with the transpose cached, the backward pass is one more CSR
    product.
    """

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, h: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return adj @ h

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        return None, None, ctx.adj_t @ grad


class DAGNNProp(MessagePassing):
    r"""The propagation and adaptive adjustment of DAGNN from the
    `"Towards Deeper Graph Neural Networks"
    <https://arxiv.org/abs/2007.09296>`_ paper (Liu, Gao & Ji, KDD 2020).

    .. math::
        \mathbf{H}_0 = \mathbf{X}, \qquad
        \mathbf{H}_k = \hat{\mathbf{A}} \mathbf{H}_{k-1}
        \quad (k = 1, \ldots, K), \qquad
        \hat{\mathbf{A}} = \hat{\mathbf{D}}^{-1/2} (\mathbf{A} + \mathbf{I})
        \hat{\mathbf{D}}^{-1/2}

        \mathbf{S} = \sigma\left( [\mathbf{H}_0, \ldots, \mathbf{H}_K]
        \mathbf{s} + b \right), \qquad
        \mathbf{x}'_i = \sum_{k=0}^{K} S_{ik} \, \mathbf{h}_{k,i}

    Every node scores each of its ``K + 1`` hop representations with one
    learned projection and keeps their score-weighted sum (the scores are
    not normalised across hops). The layer has no weights besides
    :math:`\mathbf{s}` and :math:`b`, so input and output sizes agree.

    The normalised adjacency is computed once and cached (the citation
    benchmarks are transductive). With the default ``aggr='sum'`` each hop
    is one product with a cached ``torch.sparse_csr`` matrix; any other
    aggregator from :func:`gnnagg.aggr.resolve` replaces the weighted sum
    :math:`\sum_j \hat{a}_{ij} \mathbf{h}_j` over the messages
    :math:`\hat{a}_{ij} \mathbf{h}_j` and runs through
    :meth:`MessagePassing.propagate` (one shared aggregator for all hops).
    Which make sense: ``'sum'`` is the paper; ``'mean'`` divides by the
    in-degree a second time (a smoothing operator with smaller
    eigenvalues, so deep hops shrink towards zero); ``'max'``/``'min'``
    keep per-channel extremes of the weighted messages (not a linear
    smoother, so the over-smoothing argument of the paper no longer
    holds); ``'softmax'`` and learnable aggregators (``'lcm'``, ``'gru'``,
    ``'lstm'``, ``'deep_sets'``...) add weights shared by all hops
    (``'gru'``/``'lstm'`` are not permutation invariant).

    Args:
        in_channels (int): Size of each node representation (the number of
            classes in DAGNN).
        K (int): Number of propagation hops.
        aggr (str or Aggregation, optional): The neighbour aggregation, any
            name or module :func:`gnnagg.aggr.resolve` accepts; aggregators
            with channels get ``in_channels`` for both sizes.
            (default: :obj:`"sum"`)
        cached (bool, optional): Keep the normalised adjacency of the last
            graph and reuse it while the same ``edge_index`` (and
            ``edge_weight``) tensor objects come in, unchanged in place, with
            as many nodes, dtype and device. (default: :obj:`True`)
        add_self_loops (bool, optional): Add self-loops before normalising.
            (default: :obj:`True`)
        normalize (bool, optional): Apply the symmetric GCN normalisation;
            if :obj:`False`, ``edge_weight`` (or ones) is used as it is.
            (default: :obj:`True`)
        sparse (bool, optional): Use the sparse-matrix fast path when the
            aggregation is a plain sum; :obj:`False` runs ``propagate`` for
            every hop (the same numbers, for timing comparisons).
            (default: :obj:`True`)
        **kwargs (optional): Additional arguments of
            :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)`, edge indices
          :math:`(2, |\mathcal{E}|)` (source, target), optional edge weights
          :math:`(|\mathcal{E}|)`
        - **output:** node features :math:`(|\mathcal{V}|, F)`
    """

    def __init__(self, in_channels: int, K: int,
                 aggr: Union[str, Aggregation] = "sum", cached: bool = True,
                 add_self_loops: bool = True, normalize: bool = True,
                 sparse: bool = True, **kwargs):
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f"in_channels must be a positive int (got {in_channels!r})")
        if not isinstance(K, int) or K < 0:
            raise ValueError(f"K must be a non-negative int (got {K!r})")
        super().__init__(aggr=resolve(aggr, channels=in_channels), **kwargs)
        self.in_channels = in_channels
        self.K = K
        self.cached = cached
        self.add_self_loops = add_self_loops
        self.normalize = normalize
        self.sparse = sparse
        self.proj = torch.nn.Linear(in_channels, 1)
        self._cache_key: Optional[tuple] = None
        self._cached_edges: Optional[Tuple[Tensor, Tensor]] = None
        self._cached_csr: Optional[Tuple[Tensor, Tensor]] = None
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.proj.reset_parameters()
        self._cache_key = None
        self._cached_edges = None
        self._cached_csr = None

    # Normalisation ###########################################################

    @staticmethod
    def _key(x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor]) -> tuple:
        # The key holds the tensors themselves (compared by identity), not
        # their addresses: a freed edge_index whose memory is reused by
        # another graph's must not find the old graph's normalisation.
        # The version counters catch in-place changes.
        return (edge_index, edge_index._version, edge_weight,
                None if edge_weight is None else edge_weight._version,
                x.size(0), x.dtype, x.device)

    def _cache_hit(self, key: tuple) -> bool:
        old = self._cache_key
        return (self.cached and old is not None and self._cached_edges is not None
                and old[0] is key[0] and old[2] is key[2] and old[1] == key[1]
                and old[3:] == key[3:])

    def normalized_edges(self, x: Tensor, edge_index: Tensor,
                         edge_weight: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """The edges and weights of :math:`\\hat{\\mathbf{A}}` (cached)."""
        if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise TypeError("DAGNNProp expects edge_index as a [2, num_edges] tensor "
                            f"(got {type(edge_index).__name__} "
                            f"{tuple(getattr(edge_index, 'shape', ()))})")
        if edge_weight is not None and edge_weight.shape != (edge_index.size(1),):
            raise ValueError(f"edge_weight must have shape [{edge_index.size(1)}] "
                             f"(got {tuple(edge_weight.shape)})")
        key = self._key(x, edge_index, edge_weight)
        if self._cache_hit(key):
            return self._cached_edges
        num_nodes = x.size(0)
        if edge_index.numel() and int(edge_index.max()) >= num_nodes:
            raise ValueError(f"edge_index refers to node {int(edge_index.max())} but x "
                             f"has only {num_nodes} rows")
        if self.normalize:
            ei, ew = gcn_norm(edge_index, edge_weight, num_nodes, improved=False,
                              add_self_loops=self.add_self_loops, dtype=x.dtype)
        else:
            ei, ew = edge_index, edge_weight
            if ew is None:
                ew = torch.ones(ei.size(1), dtype=x.dtype, device=x.device)
            if self.add_self_loops:
                loops = torch.arange(num_nodes, device=ei.device)
                ei = torch.cat([ei, torch.stack([loops, loops])], dim=1)
                ew = torch.cat([ew, ew.new_ones(num_nodes)])
        self._cache_key = key if self.cached else None
        self._cached_edges = (ei, ew)
        self._cached_csr = None
        return ei, ew

    def _csr(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tuple[Tensor, Tensor]:
        if self._cached_csr is not None:
            return self._cached_csr
        n = x.size(0)
        # A[target, source]: row i of A @ H sums the messages into node i.
        # normalized_edges checked the indices against n.
        adj = torch.sparse_coo_tensor(edge_index.flip(0), edge_weight.detach(), (n, n),
                                      check_invariants=False).coalesce()
        with quiet_csr():
            pair = (adj.to_sparse_csr(), adj.t().coalesce().to_sparse_csr())
        if self.cached:
            self._cached_csr = pair
        return pair

    # Propagation #############################################################

    def uses_sparse_path(self, edge_weight: Optional[Tensor] = None) -> bool:
        """Whether hops run as cached sparse-matrix products."""
        return (self.sparse and type(self.aggr_module) is SumAggregation
                and not (edge_weight is not None and edge_weight.requires_grad))

    def hops(self, x: Tensor, edge_index: Tensor,
             edge_weight: Optional[Tensor] = None) -> Tensor:
        """All hop representations :math:`[\\mathbf{H}_0, \\ldots,
        \\mathbf{H}_K]` stacked as a ``[num_nodes, K + 1, F]`` tensor."""
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(f"expected x of shape [num_nodes, {self.in_channels}] "
                             f"(got {tuple(x.shape)})")
        ei, ew = self.normalized_edges(x, edge_index, edge_weight)
        out = [x]
        h = x
        if self.uses_sparse_path(edge_weight):
            adj, adj_t = self._csr(x, ei, ew)
            for _ in range(self.K):
                h = _FixedSpMM.apply(adj, adj_t, h)
                out.append(h)
        else:
            for _ in range(self.K):
                h = self.propagate(ei, x=h, edge_weight=ew)
                out.append(h)
        return torch.stack(out, dim=1)

    def scores(self, hops: Tensor) -> Tensor:
        """The retainment scores :math:`\\mathbf{S}`, ``[num_nodes, K + 1]``."""
        return torch.sigmoid(self.proj(hops)).squeeze(-1)

    def forward(self, x: Tensor, edge_index: Tensor,
                edge_weight: Optional[Tensor] = None) -> Tensor:
        hops = self.hops(x, edge_index, edge_weight)
        return (self.scores(hops).unsqueeze(-1) * hops).sum(dim=1)

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, K={self.K}, "
                f"aggr={self.aggr_module})")
