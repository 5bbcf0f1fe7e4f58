"""Recurrent (GRU, LSTM) aggregation over each node's neighbour sequence."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

from ..ops.layout import SegmentLayout, segment_layout
from ..ops.ragged import PackPlan, build_pack_plan, pack_layout
from ._autograd import plain_autograd_required
from ._fused import fusion_wanted
from ._gru import gru_cell, lstm_cell
from ._packed import packed_gru, packed_lstm
from .base import SegmentAggregation


class _RecurrentAggregation(SegmentAggregation):
    r"""Runs a recurrent network over each node's neighbours, in their given
    order (or a random order while training, with ``shuffle=True``), and
    returns the final hidden state of the last layer.

    Neighbourhoods are packed as ragged sequences
    (:func:`gnnagg.ops.pack_segments`): the recurrence steps over all nodes
    at once with a batch that shrinks as shorter neighbourhoods end, so no
    padding enters it, work grows with the number of edges, and a node's
    output does not depend on the rest of the batch. Nodes without neighbours
    get zeros (the initial state). The result depends on the order of
    neighbours: **not** permutation invariant.

    The regulariser of Cohen-Karlik et al., `"Regularizing towards
    permutation invariance in recurrent models"
    <https://arxiv.org/abs/2010.13055>`_ (NeurIPS 2020), is available with
    ``perm_samples > 0``: it penalises
    :math:`\mathbb{E}\,\|f(f(s, x_1), x_2) - f(f(s, x_2), x_1)\|^2`, where
    :math:`f` is one step of the (single-layer) cell, :math:`x_1, x_2` are
    elements of the batch and :math:`s` is a state the network reached on
    it; the term is stored in :attr:`reg_loss` after each training forward.
    """

    rnn_cls: type = torch.nn.RNNBase
    #: Name of the recurrent module: PyG's (``gru``/``lstm``), so that PyG's
    #: checkpoints load unchanged.
    rnn_name: str = "rnn"
    __jit_unused_properties__ = ["rnn"]

    def __init__(self, in_channels: int, out_channels: int, shuffle: bool = False,
                 perm_samples: int = 0, max_num_elements: Optional[int] = None,
                 **kwargs: Any) -> None:
        super().__init__(shuffle=shuffle, max_num_elements=max_num_elements)
        if kwargs.get("batch_first") or kwargs.get("bidirectional"):
            raise ValueError("batch_first and bidirectional are not supported")
        if perm_samples < 0:
            raise ValueError(f"perm_samples must be >= 0 (got {perm_samples})")
        if perm_samples > 0 and kwargs.get("num_layers", 1) != 1:
            raise ValueError("the permutation-invariance regulariser needs num_layers=1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.perm_samples = perm_samples
        self.rnn_kwargs: Dict[str, Any] = dict(kwargs)
        #: Width of the output: the hidden size, or LSTM's ``proj_size``.
        self.out_width: int = kwargs.get("proj_size", 0) or out_channels
        setattr(self, self.rnn_name, self.rnn_cls(in_channels, out_channels, **kwargs))
        self.reset_parameters()

    @property
    def rnn(self) -> torch.nn.RNNBase:
        """The recurrent module (``gru`` or ``lstm``; the name of older gnnagg versions)."""
        return getattr(self, self.rnn_name)

    def reset_parameters(self) -> None:
        self.rnn.reset_parameters()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # older gnnagg versions called the recurrent module 'rnn'; PyG calls it gru/lstm.
        old = prefix + "rnn."
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + self.rnn_name + "." + key[len(old):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _layer_weights(self, layer: int) -> List[Optional[Tensor]]:
        r = self.rnn
        return [getattr(r, f"{name}_l{layer}", None)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")]

    def reduce_segments(self, x: Tensor, ptr: Tensor,
                        layout: Optional[SegmentLayout] = None) -> Tensor:
        out = x.new_zeros(ptr.numel() - 1, self.out_width)
        self.reg_loss = None
        if layout is None:
            layout = segment_layout(ptr=ptr, num_elements=x.size(0))
        plan = layout.plan("pack", build_pack_plan)
        if plan.nodes.numel() == 0:
            return out
        states, final = self._run(x, plan)
        out = out.index_copy(0, plan.nodes, self._hidden(final)[-1])
        if self.training and self.perm_samples > 0:
            data = x.index_select(0, plan.src_of)
            self.reg_loss = self.permutation_loss(data, states, final)
        return out

    def _run(self, x: Tensor, plan: PackPlan):
        """(packed hidden states of every step, final state as nn.RNN gives
        it, in packed rank order) of the rows ``x`` (in segment order)."""
        data = x.index_select(0, plan.src_of)
        if plain_autograd_required():
            return self._run_plain(data, plan)
        batch_sizes = torch.tensor(plan.batch_sizes, dtype=torch.long)
        states, final = self.rnn(PackedSequence(data, batch_sizes))
        return states.data, final

    def _run_plain(self, data: Tensor, plan: PackPlan):
        """:meth:`_run` in plain differentiable ops, layer by layer (under
        ``torch.func`` transforms, which torch's packed RNN kernels do not
        support)."""
        steps = plan.batch_sizes
        inp, outs = data, []
        for layer in range(self.rnn.num_layers):
            weights = self._layer_weights(layer)
            state = self._zero_state(data, steps[0])
            outs: List = []
            off = 0
            for b in steps:
                state = self._cell(inp[off:off + b], self._head(state, b), weights)
                outs.append(state)
                off += b
            inp = self._between_layers(torch.cat([self._output(o) for o in outs]), layer)
        return inp, self._final(outs, plan)

    def _between_layers(self, h: Tensor, layer: int) -> Tensor:
        """torch.nn.GRU/LSTM's dropout on the outputs of all but the last layer."""
        if layer + 1 < self.rnn.num_layers and self.rnn.dropout > 0:
            return F.dropout(h, self.rnn.dropout, self.training)
        return h

    @staticmethod
    def _final(outs: List, plan: PackPlan):
        """Each segment's last state from the per-step states, shaped as
        torch.nn.GRU's final state of one layer."""
        return torch.cat(outs).index_select(0, plan.last).unsqueeze(0)

    @staticmethod
    def _head(state, b: int):
        return state[:b]

    def _reduce_bounded(self, x: Tensor, ptr: Tensor, bound: int) -> Tensor:
        """Every segment steps ``bound`` times; a finished segment keeps its
        state (``torch.where``), so no padding enters the recurrence."""
        num_layers = self.rnn.num_layers
        weights = [self._layer_weights(layer) for layer in range(num_layers)]
        state = [self._zero_state(x, ptr.numel() - 1) for _ in range(num_layers)]
        if x.size(0) == 0:
            return self._output(state[-1])
        counts = (ptr[1:] - ptr[:-1]).unsqueeze(1)
        for t in range(bound):
            active = counts > t
            inp = x.index_select(0, (ptr[:-1] + t).clamp(max=x.size(0) - 1))
            for layer in range(num_layers):
                new = self._cell(inp, state[layer], weights[layer])
                state[layer] = self._where(active, new, state[layer])
                inp = self._between_layers(self._output(state[layer]), layer)
        return self._output(state[-1])

    @staticmethod
    def _hidden(final):
        return final

    def _zero_state(self, x: Tensor, n: int):
        raise NotImplementedError

    def _cell(self, x: Tensor, state, weights: Optional[List[Optional[Tensor]]] = None):
        raise NotImplementedError

    @staticmethod
    def _where(mask: Tensor, new, old):
        return torch.where(mask, new, old)

    def _sample_states(self, states: Tensor, final, n: int):
        raise NotImplementedError

    def _output(self, state) -> Tensor:
        return state

    def permutation_loss(self, inputs: Tensor, states: Tensor, final, num_samples: Optional[int] = None) -> Tensor:
        num_samples = num_samples or self.perm_samples
        dev = inputs.device
        pair = torch.randint(inputs.size(0), (2, num_samples), device=dev)
        x1, x2 = inputs[pair[0]], inputs[pair[1]]
        s = self._sample_states(states, final, num_samples)
        a = self._cell(x2, self._cell(x1, s))
        b = self._cell(x1, self._cell(x2, s))
        return (self._output(a) - self._output(b)).pow(2).sum(-1).mean()

    def depth(self, max_degree: int) -> int:
        return int(max_degree)

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in (("shuffle", self.shuffle),
                                                    ("perm_samples", self.perm_samples))
                        if v)
        extra += "".join(f", {k}={v!r}" for k, v in self.rnn_kwargs.items())
        if self.max_num_elements is not None:
            extra += f", max_num_elements={self.max_num_elements}"
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels}{extra})"


class GRUAggregation(_RecurrentAggregation):
    r"""GRU aggregation: a :class:`torch.nn.GRU` over each node's neighbours,
    as in `"Graph Neural Networks with Adaptive Readouts"
    <https://arxiv.org/abs/2211.04952>`_ and the recurrent baselines of
    `"Learnable Commutative Monoids for Graph Neural Networks"
    <https://arxiv.org/abs/2212.08541>`_, without padding.

    .. math::
        \mathbf{h}_i = \mathrm{GRU}\big(\mathbf{x}_{j_1}, \ldots, \mathbf{x}_{j_{d_i}}\big)_{d_i}

    The module is named ``gru``, as in PyG, so PyG's checkpoints load
    unchanged (and gnnagg's older ones, which said ``rnn``); with the same
    weights, each node's output equals PyG's ``GRUAggregation`` applied to
    that node alone.

    Args:
        in_channels (int): Size of each input element.
        out_channels (int): Size of each output (the hidden size).
        shuffle (bool, optional): Random neighbour order while training.
            (default: :obj:`False`)
        perm_samples (int, optional): Sampled pairs for the
            permutation-invariance regulariser; 0 turns it off.
            (default: :obj:`0`)
        max_num_elements (int, optional): Bound on the neighbourhood size,
            used only by ``torch.export`` (see :class:`SegmentAggregation`).
            (default: :obj:`None`)
        **kwargs (optional): Further arguments of :class:`torch.nn.GRU`
            (e.g. ``num_layers``).
    """
    rnn_cls = torch.nn.GRU
    rnn_name = "gru"

    def _run(self, x: Tensor, plan: PackPlan):
        r = self.rnn
        if r.num_layers != 1 or plain_autograd_required():
            return super()._run(x, plan)
        w_ih, w_hh, b_ih, b_hh, _ = self._layer_weights(0)
        final, states = packed_gru(x, plan.src_of, plan.pos_of, plan.batch_sizes, w_ih, w_hh,
                                   b_ih, b_hh, fusion_wanted(x.size(0)))
        return states, final.unsqueeze(0)

    def _reduce_script(self, x: Tensor, ptr: Tensor) -> Tensor:
        out = x.new_zeros(ptr.numel() - 1, self.out_width)
        src_of, batch_sizes, nodes = pack_layout(ptr)
        if nodes.numel() == 0:
            return out
        _, final = self.gru(PackedSequence(x.index_select(0, src_of), batch_sizes, None, None))
        return out.index_copy(0, nodes, final[-1])

    def _zero_state(self, x: Tensor, n: int) -> Tensor:
        return x.new_zeros(n, self.out_channels)

    def _cell(self, x: Tensor, h: Tensor, weights: Optional[List[Optional[Tensor]]] = None) -> Tensor:
        w_ih, w_hh, b_ih, b_hh, _ = weights or self._layer_weights(0)
        return gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)

    def _sample_states(self, states: Tensor, final, n: int) -> Tensor:
        # States the GRU reached on this batch, and the initial state.
        pool = torch.cat([states.new_zeros(1, states.size(1)), states])
        return pool[torch.randint(pool.size(0), (n,), device=states.device)]


class LSTMAggregation(_RecurrentAggregation):
    r"""LSTM aggregation: a :class:`torch.nn.LSTM` over each node's
    neighbours, as in GraphSAGE (`"Inductive Representation Learning on
    Large Graphs" <https://arxiv.org/abs/1706.02216>`_), without padding.
    The output is the last layer's final hidden state :math:`\mathbf{h}`
    (``proj_size`` wide when given, as in PyG).

    The module is named ``lstm``, as in PyG, so PyG's checkpoints load
    unchanged (and gnnagg's older ones, which said ``rnn``); with the same
    weights, each node's output equals PyG's ``LSTMAggregation`` applied to
    that node alone.

    Args:
        in_channels (int): Size of each input element.
        out_channels (int): Size of each output (the hidden size).
        shuffle (bool, optional): Random neighbour order while training.
            (default: :obj:`False`)
        perm_samples (int, optional): Sampled pairs for the
            permutation-invariance regulariser; 0 turns it off. States are
            drawn from the final (h, c) of this batch's nodes and the
            initial state. (default: :obj:`0`)
        max_num_elements (int, optional): Bound on the neighbourhood size,
            used only by ``torch.export``. (default: :obj:`None`)
        **kwargs (optional): Further arguments of :class:`torch.nn.LSTM`
            (e.g. ``num_layers``, ``proj_size``).
    """
    rnn_cls = torch.nn.LSTM
    rnn_name = "lstm"

    def _run(self, x: Tensor, plan: PackPlan):
        r = self.rnn
        if r.num_layers != 1 or r.proj_size or plain_autograd_required():
            return super()._run(x, plan)
        w_ih, w_hh, b_ih, b_hh, _ = self._layer_weights(0)
        data = x.index_select(0, plan.src_of)
        h_all, c_all = packed_lstm(data, plan.batch_sizes, w_ih, w_hh, b_ih, b_hh)
        return h_all, (h_all.index_select(0, plan.last).unsqueeze(0),
                       c_all.index_select(0, plan.last).unsqueeze(0))

    def _reduce_script(self, x: Tensor, ptr: Tensor) -> Tensor:
        out = x.new_zeros(ptr.numel() - 1, self.out_width)
        src_of, batch_sizes, nodes = pack_layout(ptr)
        if nodes.numel() == 0:
            return out
        _, final = self.lstm(PackedSequence(x.index_select(0, src_of), batch_sizes, None, None))
        return out.index_copy(0, nodes, final[0][-1])

    @staticmethod
    def _hidden(final):
        return final[0]

    @staticmethod
    def _final(outs: List, plan: PackPlan):
        return tuple(torch.cat([o[i] for o in outs]).index_select(0, plan.last).unsqueeze(0)
                     for i in (0, 1))

    @staticmethod
    def _head(state, b: int):
        return state[0][:b], state[1][:b]

    def _zero_state(self, x: Tensor, n: int) -> Tuple[Tensor, Tensor]:
        return x.new_zeros(n, self.out_width), x.new_zeros(n, self.out_channels)

    def _cell(self, x: Tensor, state: Tuple[Tensor, Tensor],
              weights: Optional[List[Optional[Tensor]]] = None) -> Tuple[Tensor, Tensor]:
        w_ih, w_hh, b_ih, b_hh, w_hr = weights or self._layer_weights(0)
        return lstm_cell(x, state[0], state[1], w_ih, w_hh, b_ih, b_hh, w_hr)

    @staticmethod
    def _where(mask: Tensor, new, old):
        return torch.where(mask, new[0], old[0]), torch.where(mask, new[1], old[1])

    def _sample_states(self, states: Tensor, final, n: int):
        h, c = final[0][-1], final[1][-1]
        hp = torch.cat([h.new_zeros(1, h.size(1)), h])
        cp = torch.cat([c.new_zeros(1, c.size(1)), c])
        idx = torch.randint(hp.size(0), (n,), device=h.device)
        return hp[idx], cp[idx]

    def _output(self, state) -> Tensor:
        return state[0]
