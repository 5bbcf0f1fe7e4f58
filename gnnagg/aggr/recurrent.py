"""Recurrent (GRU, LSTM) aggregation over each node's neighbour sequence."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.ragged import pack_segments
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

    def __init__(self, in_channels: int, out_channels: int, shuffle: bool = False,
                 perm_samples: int = 0, **kwargs) -> None:
        super().__init__(shuffle=shuffle)
        if kwargs.get("batch_first") or kwargs.get("bidirectional"):
            raise ValueError("batch_first and bidirectional are not supported")
        if perm_samples < 0:
            raise ValueError(f"perm_samples must be >= 0 (got {perm_samples})")
        if perm_samples > 0 and kwargs.get("num_layers", 1) != 1:
            raise ValueError("the permutation-invariance regulariser needs num_layers=1")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.perm_samples = perm_samples
        self.rnn = self.rnn_cls(in_channels, out_channels, **kwargs)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.rnn.reset_parameters()

    def forward(self, x: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
                dim_size: Optional[int] = None, dim: int = -2,
                max_num_elements: Optional[int] = None) -> Tensor:
        seg = self.segments(x, index, ptr, dim_size, dim)
        if seg.x.size(1) != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects {self.in_channels} input "
                             f"channels, got {seg.x.size(1)} (input shape {tuple(x.shape)})")
        out = seg.x.new_zeros(seg.dim_size, self.out_channels)
        self.reg_loss = None
        packed = pack_segments(seg.x, seg.ptr)
        if packed.nodes.numel() > 0:
            states, final = self.rnn(packed.sequence)
            last = self._hidden(final)[-1]
            out = out.index_copy(0, packed.nodes, last)
            if self.training and self.perm_samples > 0:
                self.reg_loss = self.permutation_loss(packed.sequence.data, states.data, final)
        return self.unflatten(out, seg, self.out_channels)

    @staticmethod
    def _hidden(final):
        return final

    def _cell(self, x: Tensor, state):
        raise NotImplementedError

    def _sample_states(self, states: Tensor, final, idx: Tensor):
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
        return f"{type(self).__name__}({self.in_channels}, {self.out_channels})"


class GRUAggregation(_RecurrentAggregation):
    r"""GRU aggregation: a :class:`torch.nn.GRU` over each node's neighbours,
    as in `"Graph Neural Networks with Adaptive Readouts"
    <https://arxiv.org/abs/2211.04952>`_ and the recurrent baselines of
    `"Learnable Commutative Monoids for Graph Neural Networks"
    <https://arxiv.org/abs/2212.08541>`_, without padding.

    .. math::
        \mathbf{h}_i = \mathrm{GRU}\big(\mathbf{x}_{j_1}, \ldots, \mathbf{x}_{j_{d_i}}\big)_{d_i}

    With the same weights (``rnn`` has the parameter names of PyG's
    ``gru``), each node's output equals PyG's ``GRUAggregation`` applied to
    that node alone.

    Args:
        in_channels (int): Size of each input element.
        out_channels (int): Size of each output (the hidden size).
        shuffle (bool, optional): Random neighbour order while training.
            (default: :obj:`False`)
        perm_samples (int, optional): Sampled pairs for the
            permutation-invariance regulariser; 0 turns it off.
            (default: :obj:`0`)
        **kwargs (optional): Further arguments of :class:`torch.nn.GRU`
            (e.g. ``num_layers``).
    """
    rnn_cls = torch.nn.GRU

    def _cell(self, x: Tensor, h: Tensor) -> Tensor:
        r = self.rnn
        gi = F.linear(x, r.weight_ih_l0, getattr(r, "bias_ih_l0", None))
        gh = F.linear(h, r.weight_hh_l0, getattr(r, "bias_hh_l0", None))
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        reset = torch.sigmoid(i_r + h_r)
        update = torch.sigmoid(i_z + h_z)
        new = torch.tanh(i_n + reset * h_n)
        return (1 - update) * new + update * h

    def _sample_states(self, states: Tensor, final, n: int) -> Tensor:
        # States the GRU reached on this batch, and the initial state.
        pool = torch.cat([states.new_zeros(1, states.size(1)), states])
        return pool[torch.randint(pool.size(0), (n,), device=states.device)]


class LSTMAggregation(_RecurrentAggregation):
    r"""LSTM aggregation: a :class:`torch.nn.LSTM` over each node's
    neighbours, as in GraphSAGE (`"Inductive Representation Learning on
    Large Graphs" <https://arxiv.org/abs/1706.02216>`_), without padding.
    The output is the last layer's final hidden state :math:`\mathbf{h}`.

    With the same weights (``rnn`` has the parameter names of PyG's
    ``lstm``), each node's output equals PyG's ``LSTMAggregation`` applied
    to that node alone.

    Args:
        in_channels (int): Size of each input element.
        out_channels (int): Size of each output (the hidden size).
        shuffle (bool, optional): Random neighbour order while training.
            (default: :obj:`False`)
        perm_samples (int, optional): Sampled pairs for the
            permutation-invariance regulariser; 0 turns it off. States are
            drawn from the final (h, c) of this batch's nodes and the
            initial state. (default: :obj:`0`)
        **kwargs (optional): Further arguments of :class:`torch.nn.LSTM`.
    """
    rnn_cls = torch.nn.LSTM

    @staticmethod
    def _hidden(final):
        return final[0]

    def _cell(self, x: Tensor, state: Tuple[Tensor, Tensor]) -> Tuple[Tensor, Tensor]:
        r = self.rnn
        h, c = state
        gates = F.linear(x, r.weight_ih_l0, getattr(r, "bias_ih_l0", None)) + \
            F.linear(h, r.weight_hh_l0, getattr(r, "bias_hh_l0", None))
        i, f, g, o = gates.chunk(4, -1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def _sample_states(self, states: Tensor, final, n: int):
        h, c = final[0][-1], final[1][-1]
        zero = h.new_zeros(1, h.size(1))
        hp, cp = torch.cat([zero, h]), torch.cat([zero, c])
        idx = torch.randint(hp.size(0), (n,), device=h.device)
        return hp[idx], cp[idx]

    def _output(self, state) -> Tensor:
        return state[0]
