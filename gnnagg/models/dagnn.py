"""DAGNN: an MLP, then deep propagation with adaptive hop weights."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch_geometric.nn.aggr import Aggregation

from ..nn.dagnn import DAGNNProp
from ..utils import quiet_csr


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout with masks cut from random 16-bit words.

    Drawing 16 random bits per element is about five times cheaper on CPU
    than PyTorch's Bernoulli kernel, which dominates a DAGNN epoch on dense
    bag-of-words features (Amazon Computers: 3.7M non-zeros). The keep
    probability is ``1 - p`` rounded to a multiple of ``2 ** -16``.
    """
    if not training or p == 0.0:
        return x
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1) (got {p})")
    n = x.numel()
    bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64,
                         device=x.device).view(torch.int16)[:n].view(x.shape)
    threshold = round(p * 65536) - 32768
    keep = (bits >= threshold).to(x.dtype)
    return x * keep.mul_(65536.0 / (65536 - round(p * 65536)))


def to_sparse_csr(x: Tensor) -> Tensor:
    """``x.to_sparse_csr()`` without PyTorch's beta notice, which would
    otherwise break into a progress bar."""
    with quiet_csr():
        return x.to_sparse_csr()


def _csr_transpose(x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """The CSR structure of ``x.t()`` and the permutation of ``x``'s values
    into it, so ``x.t()`` with new values costs one gather."""
    crow, col = x.crow_indices(), x.col_indices()
    n_rows, n_cols = x.shape
    row = torch.repeat_interleave(torch.arange(n_rows, device=col.device), crow.diff())
    perm = torch.argsort(col * n_rows + row)
    t_crow = torch.zeros(n_cols + 1, dtype=crow.dtype, device=crow.device)
    t_crow[1:] = torch.cumsum(torch.bincount(col, minlength=n_cols), 0)
    return t_crow, row[perm].to(col.dtype), perm


class _SparseLinear(torch.autograd.Function):
    """``x @ weight.t()`` for a constant CSR ``x``; the weight gradient
    ``(x.t() @ grad).t()`` uses a precomputed transpose structure (PyTorch's
    own backward converts and sorts ``x`` in every step)."""

    @staticmethod
    def forward(ctx, x: Tensor, x_t: Tuple[Tensor, Tensor, Tensor], weight: Tensor) -> Tensor:
        with quiet_csr():
            ctx.x_t = torch.sparse_csr_tensor(x_t[0], x_t[1], x.values()[x_t[2]],
                                              (x.size(1), x.size(0)), check_invariants=False)
        return x @ weight.t()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        return None, None, (ctx.x_t @ grad).t()


def sparse_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout on the stored values of a sparse COO or CSR matrix.

    Dropping a zero leaves it zero, so this draws from the same distribution
    as dense dropout on ``x.to_dense()`` at a fraction of the cost.
    """
    if not training or p == 0.0:
        return x
    # The structure is x's own, valid already: no invariant checks.
    if x.layout == torch.sparse_csr:
        with quiet_csr():
            return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(),
                                           dropout(x.values(), p, True), x.shape,
                                           check_invariants=False)
    if x.layout == torch.sparse_coo:
        x = x.coalesce()
        return torch.sparse_coo_tensor(x.indices(), dropout(x.values(), p, True),
                                       x.shape, is_coalesced=True, check_invariants=False)
    raise TypeError(f"sparse_dropout expects a sparse COO or CSR tensor (got {x.layout})")


class DAGNN(torch.nn.Module):
    r"""The Deep Adaptive Graph Neural Network from the
    `"Towards Deeper Graph Neural Networks"
    <https://arxiv.org/abs/2007.09296>`_ paper (Liu, Gao & Ji, KDD 2020).

    Transformation and propagation are decoupled:

    .. math::
        \mathbf{Z} = \mathrm{MLP}(\mathbf{X}), \qquad
        \mathbf{Y} = \mathrm{log\_softmax}\left(
        \mathrm{DAGNNProp}_K(\mathbf{Z})\right)

    The MLP applies dropout to its input and to every hidden layer, ReLU
    activations and (optionally) batch normalisation; its output has one
    channel per class, so the :class:`~gnnagg.nn.DAGNNProp` layer propagates
    class scores over ``K`` hops and mixes them with learned per-node hop
    weights.

    Node features may be dense or a sparse COO/CSR tensor; sparse
    bag-of-words features (Cora: 1.3% non-zeros) make the first layer about
    twenty times faster.

    Args:
        in_channels (int): Size of each input sample.
        hidden_channels (int): Size of each hidden sample.
        out_channels (int): Number of classes.
        K (int): Number of propagation hops.
        dropout (float, optional): Dropout probability of the hidden
            layers. (default: :obj:`0.5`)
        input_dropout (float, optional): Dropout probability of the input
            features; :obj:`None` uses ``dropout``. (default: :obj:`None`)
        num_layers (int, optional): Number of linear layers of the MLP.
            (default: :obj:`2`)
        batch_norm (bool, optional): Batch normalisation after each hidden
            linear layer (the authors' ogbn-arxiv model). (default: :obj:`False`)
        aggr (str or Aggregation, optional): Neighbour aggregation of the
            propagation, see :class:`~gnnagg.nn.DAGNNProp`.
            (default: :obj:`"sum"`)
        **kwargs (optional): Further arguments of
            :class:`~gnnagg.nn.DAGNNProp` (``cached``, ``sparse``, ...).
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 K: int, dropout: float = 0.5, input_dropout: Optional[float] = None,
                 num_layers: int = 2, batch_norm: bool = False,
                 aggr: Union[str, Aggregation] = "sum", **kwargs):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be at least 1 (got {num_layers})")
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            if p is not None and not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1) (got {p})")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.input_dropout = dropout if input_dropout is None else input_dropout
        sizes = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.lins = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = torch.nn.ModuleList(
            torch.nn.BatchNorm1d(hidden_channels) if batch_norm else torch.nn.Identity()
            for _ in range(num_layers - 1))
        self.prop = DAGNNProp(out_channels, K, aggr=aggr, **kwargs)
        self._x_t_of: Optional[Tensor] = None
        self._x_t: Optional[Tuple[Tensor, Tensor, Tensor]] = None
        self.reset_parameters()

    def reset_parameters(self):
        for lin in self.lins:
            lin.reset_parameters()
        for norm in self.norms:
            if hasattr(norm, "reset_parameters"):
                norm.reset_parameters()
        self.prop.reset_parameters()

    def transform(self, x: Tensor) -> Tensor:
        """The MLP part, :math:`\\mathbf{Z} = \\mathrm{MLP}(\\mathbf{X})`."""
        first = self.lins[0]
        if x.layout == torch.strided:
            x = first(dropout(x, self.input_dropout, self.training))
        elif x.layout == torch.sparse_csr:
            x_t = self._transpose_of(x)
            x = sparse_dropout(x, self.input_dropout, self.training)
            x = _SparseLinear.apply(x, x_t, first.weight) + first.bias
        elif x.layout == torch.sparse_coo:
            x = sparse_dropout(x, self.input_dropout, self.training)
            x = torch.sparse.mm(x, first.weight.t()) + first.bias
        else:
            raise TypeError(f"unsupported feature layout {x.layout}")
        for lin, norm in zip(self.lins[1:], self.norms):
            x = F.relu(norm(x))
            x = dropout(x, self.dropout, self.training)
            x = lin(x)
        return x

    def _transpose_of(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        # Features are fixed in transductive training: transpose them once.
        # The cache holds the matrix it was computed for and compares by
        # identity; an address (data_ptr) would match a later matrix that
        # reuses the memory of a freed one, and the index tensors of a CSR
        # matrix have no version counter of their own to catch in-place
        # changes. A new matrix object costs one more transpose.
        if self._x_t_of is not x:
            self._x_t = _csr_transpose(x)
            self._x_t_of = x
        return self._x_t

    def logits(self, x: Tensor, edge_index: Tensor,
               edge_weight: Optional[Tensor] = None) -> Tensor:
        """The class scores before the softmax (the propagated output)."""
        if x.dim() != 2 or x.size(-1) != self.in_channels:
            raise ValueError(f"expected x of shape [num_nodes, {self.in_channels}] "
                             f"(got {tuple(x.shape)})")
        return self.prop(self.transform(x), edge_index, edge_weight)

    def forward(self, x: Tensor, edge_index: Tensor,
                edge_weight: Optional[Tensor] = None) -> Tensor:
        return F.log_softmax(self.logits(x, edge_index, edge_weight), dim=-1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"{self.out_channels}, K={self.prop.K}, num_layers={len(self.lins)})")
