"""Learnable commutative monoid aggregation."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import GRUCell, Linear, Parameter

from ..ops.layout import SegmentLayout, segment_layout
from ..ops.ragged import build_tree_plan, tree_depth, tree_reduce
from ._autograd import plain_autograd_required, recompute_grads
from ._fused import fusion_wanted
from ._gru import gru_half, gru_half_backward, gru_pair_plain
from ._lcm_tree import gru_tree
from .base import SegmentAggregation


class GRUPairOperator(GRUCell):
    r"""A commutative binary operator from a GRU cell, as in PyG's
    ``LCMAggregation``: :math:`a \oplus b = \tfrac12(\mathrm{GRU}(a, b) +
    \mathrm{GRU}(b, a))`, with the first argument the cell's input and the
    second its hidden state. Commutative by construction.

    It is a :class:`torch.nn.GRUCell` (same parameters and names), so that
    :class:`LCMAggregation` holds it where PyG holds its ``gru_cell``.
    """

    __jit_unused_properties__ = ["cell"]

    def __init__(self, channels: int, bias: bool = True) -> None:
        super().__init__(channels, channels, bias=bias)

    @property
    def cell(self) -> GRUCell:
        """The cell itself (older gnnagg versions held it as ``.cell``)."""
        return self

    @torch.jit.unused  # scripted LCM calls gru_pair_plain on the weights instead
    def forward(self, a: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        if torch.compiler.is_compiling() or plain_autograd_required():
            return gru_pair_plain(a, b, self.weight_ih, self.weight_hh, self.bias_ih,
                                  self.bias_hh)
        weight = torch.cat([self.weight_ih, self.weight_hh])
        bias = torch.cat([self.bias_ih, self.bias_hh]) if self.bias else None
        return _GRUPair.apply(a, b, weight, bias)


def _gru_pair_stacked(a: Tensor, b: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    three_h = weight.size(0) // 2
    return gru_pair_plain(a, b, weight[:three_h], weight[three_h:],
                          bias[:three_h] if bias is not None else None,
                          bias[three_h:] if bias is not None else None)


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
        ctx.save_for_backward(a, b, weight, bias, *s_ab, *s_ba)
        return (ab + ba) / 2

    @staticmethod
    def backward(ctx, grad):
        a, b, weight, bias, *saved = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient
            return recompute_grads(_gru_pair_stacked, (a, b, weight, bias),
                                   ctx.needs_input_grad, (grad,))
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
        dbias = (dpa.sum(0) + dpb.sum(0)) if bias is not None else None
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


#: Pair operators by name, with the attribute that holds each in
#: :class:`LCMAggregation` (PyG's ``gru_cell`` for the GRU operator).
OPERATORS = {"gru": GRUPairOperator, "mlp": MLPPairOperator}
OPERATOR_ATTRIBUTES = {"gru": "gru_cell", "mlp": "mlp"}
ACTIVATIONS = ("relu", "tanh", "none")


def _rounds(bound: int) -> int:
    """Tree rounds for segments of up to ``bound`` elements (scriptable
    :func:`gnnagg.ops.tree_depth`)."""
    rounds = 0
    while (1 << rounds) < bound:
        rounds += 1
    return rounds


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
        max_num_elements (int, optional): Bound on the neighbourhood size,
            used only by ``torch.export`` (see :class:`SegmentAggregation`).
            (default: :obj:`None`)

    Parameters have PyG's names (``lin``, ``gru_cell``), so a PyG checkpoint
    loads unchanged, strict loading included; ``identity`` is the one extra
    parameter (a PyG checkpoint leaves it at its current value, 0 when
    fresh). With ``operator='mlp'`` the operator is ``mlp``. Checkpoints of
    older gnnagg versions (``op.cell.*``, ``op.*``) load too.
    """

    permutation_invariant = False
    __jit_unused_properties__ = ["op"]

    def __init__(self, in_channels: int, out_channels: int, project: bool = True,
                 operator: str = "gru", learn_identity: bool = True,
                 assoc_samples: int = 0, shuffle: bool = False,
                 activation: Optional[str] = None,
                 max_num_elements: Optional[int] = None) -> None:
        super().__init__(shuffle=shuffle, max_num_elements=max_num_elements)
        if in_channels != out_channels and not project:
            raise ValueError(f"LCMAggregation: inputs must be projected (project=True) when "
                             f"in_channels ({in_channels}) != out_channels ({out_channels})")
        if operator not in OPERATORS:
            raise ValueError(f"unknown operator '{operator}' (expected one of {sorted(OPERATORS)})")
        default_activation = "relu" if project else "none"
        if activation is None:
            activation = default_activation
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
        self.learn_identity = learn_identity
        self.assoc_samples = assoc_samples
        self._default_activation = default_activation
        self.lin = Linear(in_channels, out_channels) if project else None
        self._op_attribute = OPERATOR_ATTRIBUTES[operator]
        setattr(self, self._op_attribute, OPERATORS[operator](out_channels))
        if learn_identity:
            self.identity = Parameter(torch.zeros(out_channels))
        else:
            self.register_buffer("identity", torch.zeros(out_channels))
        self.reset_parameters()

    @property
    def op(self) -> torch.nn.Module:
        """The pair operator (``gru_cell`` or ``mlp``)."""
        return getattr(self, self._op_attribute)

    def __setattr__(self, name: str, value) -> None:
        # ``aggr.op = module`` replaces the operator where it lives
        # (nn.Module would otherwise register a second module named 'op').
        if name == "op":
            name = self._op_attribute
        super().__setattr__(name, value)

    def reset_parameters(self) -> None:
        if self.lin is not None:
            self.lin.reset_parameters()
        self.op.reset_parameters()
        with torch.no_grad():
            self.identity.zero_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Older gnnagg checkpoints held the operator as 'op' (the GRU cell as
        # 'op.cell'); PyG's have no identity, which then keeps its value.
        old = prefix + ("op.cell." if self.operator_name == "gru" else "op.")
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + self._op_attribute + "." + key[len(old):]] = state_dict.pop(key)
        if prefix + "identity" not in state_dict:
            state_dict[prefix + "identity"] = self.identity.detach().clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def leaves(self, x: Tensor) -> Tensor:
        r""":math:`\sigma(\mathbf{W}\mathbf{x} + \mathbf{b})`, the leaves of the tree."""
        if self.lin is not None:
            x = self.lin(x)
        if self.activation == "relu":
            return torch.relu(x)
        if self.activation == "tanh":
            return torch.tanh(x)
        return x

    def reduce_segments(self, x: Tensor, ptr: Tensor,
                        layout: Optional[SegmentLayout] = None) -> Tensor:
        h = self.leaves(x)
        if self.training and self.assoc_samples > 0 and h.size(0) > 0:
            self.reg_loss = self.associativity_loss(h, self.assoc_samples)
        else:
            self.reg_loss = None
        if layout is None:
            layout = segment_layout(ptr=ptr, num_elements=x.size(0))
        plan = layout.plan("tree", build_tree_plan)
        # The identity takes part even without empty segments (with an exact
        # zero gradient then), as DistributedDataParallel wants a gradient for
        # every parameter in every step.
        op = self.op
        if type(op) is GRUPairOperator and not (op._forward_hooks or op._forward_pre_hooks) \
                and not plain_autograd_required():
            weight = torch.cat([op.weight_ih, op.weight_hh])
            bias = torch.cat([op.bias_ih, op.bias_hh]) if op.bias else None
            return gru_tree(h, weight, bias, self.identity, plan, fusion_wanted(h.size(0)))
        return tree_reduce(h, op, plan=plan, identity=self.identity)

    def _reduce_bounded(self, x: Tensor, ptr: Tensor, bound: int) -> Tensor:
        return self._tree_in_place(self.leaves(x), ptr, _rounds(bound))

    def _reduce_script(self, x: Tensor, ptr: Tensor) -> Tensor:
        counts = ptr[1:] - ptr[:-1]
        bound = int(counts.max()) if counts.numel() > 0 else 0
        return self._tree_in_place(self.leaves(x), ptr, _rounds(bound))

    def _pair(self, a: Tensor, b: Tensor) -> Tensor:
        """The operator in plain ops (static-shape and TorchScript paths)."""
        if hasattr(self, "gru_cell"):
            c = self.gru_cell
            return gru_pair_plain(a, b, c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh)
        return self.mlp(a, b)

    def _tree_in_place(self, h: Tensor, ptr: Tensor, rounds: int) -> Tensor:
        """The tree with static shapes: in round r the element at position
        ``p`` (a multiple of ``2^(r+1)``) of a segment merges with the one at
        ``p + 2^r`` when that exists, which pairs exactly as
        :func:`gnnagg.ops.tree_reduce` does; every row takes part in every
        round and ``torch.where`` keeps the merges that exist. Costs
        ``rounds`` operator calls per element instead of about one."""
        num, channels = ptr.numel() - 1, h.size(1)
        counts = ptr[1:] - ptr[:-1]
        identity = self.identity.to(h.dtype).expand(num, channels)
        if h.size(0) == 0:
            return identity + h.sum() * 0
        rows = torch.arange(h.size(0), device=h.device)
        seg = torch.searchsorted(ptr[1:], rows, right=True)
        pos = rows - ptr[:-1].index_select(0, seg)
        count = counts.index_select(0, seg)
        stride = 1
        for _ in range(rounds):
            partner = (rows + stride).clamp(max=h.size(0) - 1)
            merge = (pos % (2 * stride) == 0) & (pos + stride < count)
            h = torch.where(merge.unsqueeze(1), self._pair(h, h.index_select(0, partner)), h)
            stride *= 2
        first = h.index_select(0, ptr[:-1].clamp(max=h.size(0) - 1))
        return torch.where((counts > 0).unsqueeze(1), first, identity)

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
        # PyG's repr, plus the options that differ from their defaults.
        extra = [f"{name}={value!r}" for name, value, default in (
            ("operator", self.operator_name, "gru"),
            ("activation", self.activation, self._default_activation),
            ("learn_identity", self.learn_identity, True),
            ("assoc_samples", self.assoc_samples, 0),
            ("shuffle", self.shuffle, False),
            ("max_num_elements", self.max_num_elements, None)) if value != default]
        return (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                f"project={self.project}" + "".join(", " + e for e in extra) + ")")
