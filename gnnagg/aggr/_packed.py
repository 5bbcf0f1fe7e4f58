"""Single-layer GRU and LSTM over packed (time-major, shrinking) batches.

Two ``autograd.Function`` subclasses with hand-written backward passes
(backpropagation through time over the same shrinking batches); when a
higher-order graph is asked for, their backward passes differentiate the same
arithmetic in plain ops (:func:`packed_gru_plain`, :func:`packed_lstm_plain`;
see :mod:`gnnagg.aggr._autograd`).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._autograd import recompute_grads
from ._gru import gru_half, gru_half_backward


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
        ctx.save_for_backward(data, w_ih, w_hh, b_ih, b_hh, states, r_all, z_all, n_all, hn_all)
        return states

    @staticmethod
    def backward(ctx, dstates):
        data, w_ih, w_hh, b_ih, b_hh, states, r_all, z_all, n_all, hn_all = ctx.saved_tensors
        batch_sizes = ctx.batch_sizes
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient
            grads = recompute_grads(
                lambda *a: packed_gru_plain(a[0], batch_sizes, *a[1:]),
                (data, w_ih, w_hh, b_ih, b_hh), ctx.needs_input_grad[:1] + ctx.needs_input_grad[2:],
                (dstates,))
            return (grads[0], None) + grads[1:]
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
        ctx.save_for_backward(data, w_ih, w_hh, b_ih, b_hh, h_all, c_all, acts)
        return h_all, c_all

    @staticmethod
    def backward(ctx, dh_all, dc_all):
        data, w_ih, w_hh, b_ih, b_hh, h_all, c_all, acts = ctx.saved_tensors
        batch_sizes = ctx.batch_sizes
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient
            grads = recompute_grads(
                lambda *a: packed_lstm_plain(a[0], batch_sizes, *a[1:]),
                (data, w_ih, w_hh, b_ih, b_hh), ctx.needs_input_grad[:1] + ctx.needs_input_grad[2:],
                (dh_all, dc_all))
            return (grads[0], None) + grads[1:]
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


def packed_gru_plain(data: Tensor, batch_sizes: List[int], w_ih: Tensor, w_hh: Tensor,
                     b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Tensor:
    """:class:`_PackedGRU`'s forward in plain differentiable ops."""
    hs = w_hh.size(1)
    if not batch_sizes:
        return data.new_zeros(0, hs)
    gi = F.linear(data, w_ih, b_ih)
    h = data.new_zeros(batch_sizes[0], hs)
    states: List[Tensor] = []
    off = 0
    for b in batch_sizes:
        h = gru_half(gi[off:off + b], F.linear(h[:b], w_hh, b_hh), h[:b])[0]
        states.append(h)
        off += b
    return torch.cat(states)


def packed_lstm_plain(data: Tensor, batch_sizes: List[int], w_ih: Tensor, w_hh: Tensor,
                      b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """:class:`_PackedLSTM`'s forward in plain differentiable ops."""
    hs = w_hh.size(1)
    if not batch_sizes:
        return data.new_zeros(0, hs), data.new_zeros(0, hs)
    gates_in = F.linear(data, w_ih, b_ih)
    if b_hh is not None:
        gates_in = gates_in + b_hh
    h = data.new_zeros(batch_sizes[0], hs)
    c = data.new_zeros(batch_sizes[0], hs)
    hs_out: List[Tensor] = []
    cs_out: List[Tensor] = []
    off = 0
    for b in batch_sizes:
        i, f, g, o = (gates_in[off:off + b] + h[:b] @ w_hh.t()).chunk(4, 1)
        c = torch.sigmoid(f) * c[:b] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs_out.append(h)
        cs_out.append(c)
        off += b
    return torch.cat(hs_out), torch.cat(cs_out)


def packed_gru(data: Tensor, batch_sizes: List[int], w_ih: Tensor, w_hh: Tensor,
               b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Tensor:
    """Hidden state of every packed element."""
    return _PackedGRU.apply(data, batch_sizes, w_ih, w_hh, b_ih, b_hh)


def packed_lstm(data: Tensor, batch_sizes: List[int], w_ih: Tensor, w_hh: Tensor,
                b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """Hidden and cell state of every packed element."""
    return _PackedLSTM.apply(data, batch_sizes, w_ih, w_hh, b_ih, b_hh)
