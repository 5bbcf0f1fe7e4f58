"""Recurrent (GRU, LSTM) aggregation over each node's neighbour sequence."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..ops.ragged import pack_segments
from ._gru import gru_half_backward
from .base import SegmentAggregation, full_precision


def _step_offsets(batch_sizes):
    """Row where each step of a packed batch starts."""
    offsets = [0]
    for b in batch_sizes[:-1]:
        offsets.append(offsets[-1] + b)
    return offsets


class _PackedGRU(torch.autograd.Function):
    r"""A single-layer GRU over a packed (time-major, shrinking) batch with a
    hand-written backward pass (backpropagation through time over the same
    shrinking batches). Returns the hidden state of every element; the input
    projection of all elements is one GEMM, each step one GEMM and a few
    in-place element-wise operations."""

    @staticmethod
    def forward(ctx, data, batch_sizes, w_ih, w_hh, b_ih, b_hh):
        num, hs = data.size(0), w_hh.size(1)
        gi = torch.addmm(b_ih, data, w_ih.t()) if b_ih is not None else data @ w_ih.t()
        states = data.new_empty(num, hs)
        r_all, z_all, n_all, hn_all = (data.new_empty(num, hs) for _ in range(4))
        h_prev = data.new_zeros(batch_sizes[0] if batch_sizes else 0, hs)
        off = 0
        for b in batch_sizes:
            sl = slice(off, off + b)
            gh = torch.addmm(b_hh, h_prev[:b], w_hh.t()) if b_hh is not None else h_prev[:b] @ w_hh.t()
            gi_t = gi[sl]
            r, z, n = r_all[sl], z_all[sl], n_all[sl]
            torch.sigmoid(torch.add(gi_t[:, :hs], gh[:, :hs]), out=r)
            torch.sigmoid(torch.add(gi_t[:, hs:2 * hs], gh[:, hs:2 * hs]), out=z)
            hn_all[sl] = gh[:, 2 * hs:]
            torch.tanh(torch.addcmul(gi_t[:, 2 * hs:], r, gh[:, 2 * hs:]), out=n)
            torch.lerp(n, h_prev[:b], z, out=states[sl])
            h_prev = states[sl]
            off += b
        ctx.batch_sizes = batch_sizes
        ctx.has_bias = (b_ih is not None, b_hh is not None)
        ctx.save_for_backward(data, w_ih, w_hh, states, r_all, z_all, n_all, hn_all)
        return states

    @staticmethod
    def backward(ctx, dstates):
        data, w_ih, w_hh, states, r_all, z_all, n_all, hn_all = ctx.saved_tensors
        batch_sizes = ctx.batch_sizes
        num, hs = data.size(0), w_hh.size(1)
        dgi = data.new_empty(num, 3 * hs)
        dgh = data.new_empty(num, 3 * hs)
        h_prev_all = data.new_zeros(num, hs)
        dh = data.new_zeros(batch_sizes[0] if batch_sizes else 0, hs)
        offsets = _step_offsets(batch_sizes)
        for t in range(len(batch_sizes) - 1, -1, -1):
            b, off = batch_sizes[t], offsets[t]
            sl = slice(off, off + b)
            if t > 0:
                h_prev = states[offsets[t - 1]:offsets[t - 1] + b]
                h_prev_all[sl] = h_prev
            else:
                h_prev = h_prev_all[sl]  # the zero initial state
            g = dstates[sl] + dh[:b]
            r, z, n, h_n = r_all[sl], z_all[sl], n_all[sl], hn_all[sl]
            dgi_t, dgh_t = dgi[sl], dgh[sl]
            direct = gru_half_backward(g, h_prev, (r, z, n, h_n), dgi_t, dgh_t)
            if t > 0:
                dh[:b] = torch.addmm(direct, dgh_t, w_hh)
        d_data = dgi @ w_ih if ctx.needs_input_grad[0] else None
        dw_ih = dgi.t() @ data if ctx.needs_input_grad[2] else None
        dw_hh = dgh.t() @ h_prev_all if ctx.needs_input_grad[3] else None
        db_ih = dgi.sum(0) if ctx.has_bias[0] and ctx.needs_input_grad[4] else None
        db_hh = dgh.sum(0) if ctx.has_bias[1] and ctx.needs_input_grad[5] else None
        return d_data, None, dw_ih, dw_hh, db_ih, db_hh


class _PackedLSTM(torch.autograd.Function):
    r"""A single-layer LSTM over a packed batch with a hand-written backward
    pass, like :class:`_PackedGRU`. Returns the hidden and cell states of
    every element."""

    @staticmethod
    def forward(ctx, data, batch_sizes, w_ih, w_hh, b_ih, b_hh):
        num, hs = data.size(0), w_hh.size(1)
        gates_in = torch.addmm(b_ih, data, w_ih.t()) if b_ih is not None else data @ w_ih.t()
        if b_hh is not None:
            gates_in += b_hh
        h_all, c_all = data.new_empty(num, hs), data.new_empty(num, hs)
        acts = data.new_empty(num, 4 * hs)  # activated i, f, g, o
        h_prev = data.new_zeros(batch_sizes[0] if batch_sizes else 0, hs)
        c_prev = data.new_zeros(batch_sizes[0] if batch_sizes else 0, hs)
        off = 0
        for b in batch_sizes:
            sl = slice(off, off + b)
            pre = torch.addmm(gates_in[sl], h_prev[:b], w_hh.t())
            a = acts[sl]
            torch.sigmoid(pre[:, :2 * hs], out=a[:, :2 * hs])
            torch.tanh(pre[:, 2 * hs:3 * hs], out=a[:, 2 * hs:3 * hs])
            torch.sigmoid(pre[:, 3 * hs:], out=a[:, 3 * hs:])
            i, f, g, o = a.chunk(4, 1)
            c = c_all[sl]
            torch.mul(f, c_prev[:b], out=c)
            c.addcmul_(i, g)
            torch.mul(o, torch.tanh(c), out=h_all[sl])
            h_prev, c_prev = h_all[sl], c
            off += b
        ctx.batch_sizes = batch_sizes
        ctx.has_bias = (b_ih is not None, b_hh is not None)
        ctx.save_for_backward(data, w_ih, w_hh, h_all, c_all, acts)
        return h_all, c_all

    @staticmethod
    def backward(ctx, dh_all, dc_all):
        data, w_ih, w_hh, h_all, c_all, acts = ctx.saved_tensors
        batch_sizes = ctx.batch_sizes
        num, hs = data.size(0), w_hh.size(1)
        dgates = data.new_empty(num, 4 * hs)
        h_prev_all = data.new_zeros(num, hs)
        first = batch_sizes[0] if batch_sizes else 0
        dh, dc = data.new_zeros(first, hs), data.new_zeros(first, hs)
        zeros = data.new_zeros(first, hs)
        offsets = _step_offsets(batch_sizes)
        for t in range(len(batch_sizes) - 1, -1, -1):
            b, off = batch_sizes[t], offsets[t]
            sl = slice(off, off + b)
            prev = slice(offsets[t - 1], offsets[t - 1] + b) if t > 0 else None
            if prev is not None:
                h_prev_all[sl] = h_all[prev]
            c_prev = c_all[prev] if prev is not None else zeros[:b]
            i, f, g, o = acts[sl].chunk(4, 1)
            tc = torch.tanh(c_all[sl])
            gh = dh[:b] if dh_all is None else dh_all[sl] + dh[:b]
            gc = dc[:b] if dc_all is None else dc_all[sl] + dc[:b]
            gc = gc + gh * o * (1 - tc * tc)
            d = dgates[sl]
            di, df, dg, do = d.chunk(4, 1)
            torch.mul(gc, g, out=di)
            di.mul_(i).mul_(1 - i)
            torch.mul(gc, c_prev, out=df)
            df.mul_(f).mul_(1 - f)
            torch.mul(gc, i, out=dg)
            dg.mul_(1 - g * g)
            torch.mul(gh, tc, out=do)
            do.mul_(o).mul_(1 - o)
            if t > 0:
                dh[:b] = d @ w_hh
                dc[:b] = gc * f
        d_data = dgates @ w_ih if ctx.needs_input_grad[0] else None
        dw_ih = dgates.t() @ data if ctx.needs_input_grad[2] else None
        dw_hh = dgates.t() @ h_prev_all if ctx.needs_input_grad[3] else None
        dbias = dgates.sum(0) if any(ctx.has_bias) else None
        db_ih = dbias if ctx.has_bias[0] and ctx.needs_input_grad[4] else None
        db_hh = dbias if ctx.has_bias[1] and ctx.needs_input_grad[5] else None
        return d_data, None, dw_ih, dw_hh, db_ih, db_hh


def _packed_last(states: Tensor, batch_sizes: Tensor, lengths: Tensor) -> Tensor:
    """Rows of the packed ``states`` at each segment's last step: the
    segment of rank k with length L ends at step L - 1, row k."""
    offsets = (torch.cumsum(batch_sizes, 0) - batch_sizes).to(lengths.device)
    last = offsets[lengths - 1] + torch.arange(lengths.numel(), device=lengths.device)
    return states.index_select(0, last)


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

    @full_precision
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
            lengths = (seg.ptr[1:] - seg.ptr[:-1]).index_select(0, packed.nodes)
            states, final = self._run(packed, lengths)
            out = out.index_copy(0, packed.nodes, self._hidden(final)[-1])
            if self.training and self.perm_samples > 0:
                self.reg_loss = self.permutation_loss(packed.sequence.data, states, final)
        return self.unflatten(out, seg, self.out_channels)

    def _run(self, packed, lengths):
        """(packed hidden states of every step, final state as nn.RNN gives it)."""
        states, final = self.rnn(packed.sequence)
        return states.data, final

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

    def _run(self, packed, lengths):
        r = self.rnn
        if r.num_layers != 1:
            return super()._run(packed, lengths)
        seq = packed.sequence
        batch_sizes = seq.batch_sizes.tolist()
        states = _PackedGRU.apply(seq.data, batch_sizes, r.weight_ih_l0, r.weight_hh_l0,
                                  getattr(r, "bias_ih_l0", None), getattr(r, "bias_hh_l0", None))
        return states, _packed_last(states, seq.batch_sizes, lengths).unsqueeze(0)

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

    def _run(self, packed, lengths):
        r = self.rnn
        if r.num_layers != 1 or r.proj_size:
            return super()._run(packed, lengths)
        seq = packed.sequence
        h_all, c_all = _PackedLSTM.apply(seq.data, seq.batch_sizes.tolist(), r.weight_ih_l0,
                                         r.weight_hh_l0, getattr(r, "bias_ih_l0", None),
                                         getattr(r, "bias_hh_l0", None))
        final = (_packed_last(h_all, seq.batch_sizes, lengths).unsqueeze(0),
                 _packed_last(c_all, seq.batch_sizes, lengths).unsqueeze(0))
        return h_all, final

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
