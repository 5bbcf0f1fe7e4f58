"""Learnable commutative monoid aggregation."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import GRUCell, Linear, Parameter

from ..ops.ragged import tree_depth, tree_plan, tree_reduce
from ._gru import gru_half, gru_half_backward
from .base import SegmentAggregation, full_precision


class GRUPairOperator(torch.nn.Module):
    r"""A commutative binary operator from a GRU cell, as in PyG's
    ``LCMAggregation``: :math:`a \oplus b = \tfrac12(\mathrm{GRU}(a, b) +
    \mathrm{GRU}(b, a))`, with the first argument the cell's input and the
    second its hidden state. Commutative by construction."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.cell = GRUCell(channels, channels)

    def reset_parameters(self) -> None:
        self.cell.reset_parameters()

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        c = self.cell
        weight = torch.cat([c.weight_ih, c.weight_hh])
        bias = torch.cat([c.bias_ih, c.bias_hh]) if c.bias else None
        return _GRUPair.apply(a, b, weight, bias)


class _GRUPair(torch.autograd.Function):
    r"""``(GRUCell(a, b) + GRUCell(b, a)) / 2`` with a hand-written backward:
    one GEMM per side gives the input and hidden projections of both
    arguments, and the backward pass needs no autograd graph per gate."""

    @staticmethod
    def forward(ctx, a, b, weight, bias):
        three_h = weight.size(0) // 2
        pa = torch.addmm(bias, a, weight.t()) if bias is not None else a @ weight.t()
        pb = torch.addmm(bias, b, weight.t()) if bias is not None else b @ weight.t()
        ab, s_ab = gru_half(pa[:, :three_h], pb[:, three_h:], b)
        ba, s_ba = gru_half(pb[:, :three_h], pa[:, three_h:], a)
        ctx.save_for_backward(a, b, weight, *s_ab, *s_ba)
        ctx.has_bias = bias is not None
        return (ab + ba) / 2

    @staticmethod
    def backward(ctx, grad):
        a, b, weight, *saved = ctx.saved_tensors
        grad = grad / 2
        three_h = weight.size(0) // 2
        dpa = grad.new_empty(a.size(0), 2 * three_h)
        dpb = grad.new_empty(b.size(0), 2 * three_h)
        # a is the input of GRU(a, b) and the hidden state of GRU(b, a).
        db_direct = gru_half_backward(grad, b, saved[:4], dpa[:, :three_h], dpb[:, three_h:])
        da_direct = gru_half_backward(grad, a, saved[4:], dpb[:, :three_h], dpa[:, three_h:])
        da = torch.addmm(da_direct, dpa, weight)
        db = torch.addmm(db_direct, dpb, weight)
        dweight = dpa.t() @ a
        dweight.addmm_(dpb.t(), b)
        dbias = (dpa.sum(0) + dpb.sum(0)) if ctx.has_bias else None
        return da, db, dweight, dbias


class MLPPairOperator(torch.nn.Module):
    r"""A commutative binary operator from an MLP over symmetric features:
    :math:`a \oplus b = \mathrm{MLP}([a + b, a \odot b])`. Commutative by
    construction since both features are."""

    def __init__(self, channels: int, hidden: Optional[int] = None) -> None:
        super().__init__()
        hidden = hidden or 2 * channels
        self.lin1 = Linear(2 * channels, hidden)
        self.lin2 = Linear(hidden, channels)

    def reset_parameters(self) -> None:
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.lin2(torch.relu(self.lin1(torch.cat([a + b, a * b], dim=-1))))


OPERATORS = {"gru": GRUPairOperator, "mlp": MLPPairOperator}
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "none": lambda h: h}


class LCMAggregation(SegmentAggregation):
    r"""The learnable commutative monoid aggregation from the
    `"Learnable Commutative Monoids for Graph Neural Networks"
    <https://arxiv.org/abs/2212.08541>`_ paper (Ong & Veličković, 2022):
    a learned binary operator :math:`\oplus` that is commutative by
    construction, applied to each neighbourhood as a balanced binary tree of
    depth :math:`\lceil \log_2 d \rceil`:

    .. math::
        \mathbf{h}_i = \bigoplus_{j \in \mathcal{N}(i)} \sigma(\mathbf{W}\mathbf{x}_j + \mathbf{b}),
        \qquad \bigoplus_{\emptyset} = \mathbf{e} \text{ (learned identity)}

    Unlike PyG's ``LCMAggregation``, neighbourhoods are reduced as ragged
    segments (:func:`gnnagg.ops.tree_reduce`): no padding ever enters the
    operator, so a node's output does not depend on what else is in the
    batch, work and memory grow with the number of edges, and the index need
    not be sorted. With ``operator='gru'`` and the same weights, each node's
    output equals PyG's ``LCMAggregation`` applied to that node alone.

    The operator is exactly commutative but only approximately associative,
    so the output depends on the order of neighbours (neighbours are paired
    in their given order): it is **not** permutation invariant. The optional
    associativity regulariser (``assoc_samples > 0``) adds
    :math:`\mathbb{E}\,\|(a \oplus b) \oplus c - a \oplus (b \oplus c)\|^2`
    over triples sampled from the elements of each training batch to
    :attr:`reg_loss` (collect it with :func:`gnnagg.aggr.regularization_loss`);
    ``shuffle=True`` pairs neighbours in a random order while training.

    Args:
        in_channels (int): Size of each input element.
        out_channels (int): Size of each output.
        project (bool, optional): Apply :math:`\sigma(\mathbf{W}\cdot+\mathbf{b})`
            (a linear map and ``activation``) before reducing; required when
            ``in_channels != out_channels``. (default: :obj:`True`)
        activation (str, optional): The leaf nonlinearity :math:`\sigma`:
            ``'relu'``, ``'tanh'`` or ``'none'``; :obj:`None` means ``'relu'``
            with ``project`` (as PyG) and ``'none'`` without. ``'tanh'`` keeps
            the leaves in :math:`(-1, 1)`, the range of the GRU operator's
            outputs, so every level of the tree lives in the same box and
            trees deeper than those seen in training feed the operator inputs
            of the scale it was trained on; with unbounded leaves the scale of
            a state depends on its depth. (default: :obj:`None`)
        operator (str, optional): ``'gru'`` (PyG's pair operator) or ``'mlp'``
            (:class:`MLPPairOperator`). (default: :obj:`"gru"`)
        learn_identity (bool, optional): Learn the value of empty
            neighbourhoods (initialised at 0); else it is 0.
            (default: :obj:`True`)
        assoc_samples (int, optional): Triples per training forward pass for
            the associativity regulariser; 0 turns it off. (default: :obj:`0`)
        shuffle (bool, optional): Random neighbour order while training.
            (default: :obj:`False`)
    """

    permutation_invariant = False

    def __init__(self, in_channels: int, out_channels: int, project: bool = True,
                 operator: str = "gru", learn_identity: bool = True,
                 assoc_samples: int = 0, shuffle: bool = False,
                 activation: Optional[str] = None) -> None:
        super().__init__(shuffle=shuffle)
        if in_channels != out_channels and not project:
            raise ValueError(f"LCMAggregation needs project=True when in_channels "
                             f"({in_channels}) != out_channels ({out_channels})")
        if operator not in OPERATORS:
            raise ValueError(f"unknown operator '{operator}' (expected one of {sorted(OPERATORS)})")
        if activation is None:
            activation = "relu" if project else "none"
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation '{activation}' (expected one of "
                             f"{sorted(ACTIVATIONS)})")
        if assoc_samples < 0:
            raise ValueError(f"assoc_samples must be >= 0 (got {assoc_samples})")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.project = project
        self.operator_name = operator
        self.activation = activation
        self.assoc_samples = assoc_samples
        self.lin = Linear(in_channels, out_channels) if project else None
        self.op = OPERATORS[operator](out_channels)
        if learn_identity:
            self.identity = Parameter(torch.zeros(out_channels))
        else:
            self.register_buffer("identity", torch.zeros(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.lin is not None:
            self.lin.reset_parameters()
        self.op.reset_parameters()
        with torch.no_grad():
            self.identity.zero_()

    @full_precision
    def forward(self, x: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
                dim_size: Optional[int] = None, dim: int = -2,
                max_num_elements: Optional[int] = None) -> Tensor:
        seg = self.segments(x, index, ptr, dim_size, dim)
        h = seg.x
        if h.size(1) != self.in_channels:
            raise ValueError(f"LCMAggregation expects {self.in_channels} input channels, "
                             f"got {h.size(1)} (input shape {tuple(x.shape)})")
        if self.lin is not None:
            h = self.lin(h)
        h = ACTIVATIONS[self.activation](h)
        if self.training and self.assoc_samples > 0 and h.size(0) > 0:
            self.reg_loss = self.associativity_loss(h, self.assoc_samples)
        else:
            self.reg_loss = None
        out = tree_reduce(h, self.op, plan=tree_plan(seg.ptr), identity=self.identity)
        return self.unflatten(out, seg, self.out_channels)

    def associativity_loss(self, elements: Tensor, num_samples: int) -> Tensor:
        r""":math:`\mathbb{E}\,\|(a \oplus b) \oplus c - a \oplus (b \oplus c)\|^2`
        over ``num_samples`` triples drawn from the rows of ``elements``."""
        idx = torch.randint(elements.size(0), (3, num_samples), device=elements.device)
        a, b, c = elements[idx[0]], elements[idx[1]], elements[idx[2]]
        left = self.op(self.op(a, b), c)
        right = self.op(a, self.op(b, c))
        return (left - right).pow(2).sum(-1).mean()

    def depth(self, max_degree: int) -> int:
        return tree_depth(max_degree)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"project={self.project}, operator='{self.operator_name}', "
                f"activation='{self.activation}')")
