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
from ._fused import row_buffer, step_backward, step_forward
from ._gru import gru_half


def _step_offsets(batch_sizes):
    """Row where each step of a packed batch starts."""
    offsets = [0]
    for b in batch_sizes[:-1]:
        offsets.append(offsets[-1] + b)
    return offsets


#: Rows per GEMM and gate kernel call: a long step is split into blocks of
#: this many rows (independent within a step), consecutive short steps share
#: the input projection's GEMM. Small blocks keep the projections in cache
#: between the GEMM that writes them and the kernel that reads them.
BLOCK_ROWS = 1024


def _units(batch_sizes: List[int]) -> List[List[Tuple[int, int, int]]]:
    """Blocks ``(t, lo, hi)`` (rows ``lo:hi`` of step ``t``), grouped into
    units whose rows are contiguous in the packed order and share one input
    projection GEMM."""
    units: List[List[Tuple[int, int, int]]] = []
    cur: List[Tuple[int, int, int]] = []
    rows = 0
    for t, b in enumerate(batch_sizes):
        if cur and (rows + b > BLOCK_ROWS or b > BLOCK_ROWS):
            units.append(cur)
            cur, rows = [], 0
        if b > BLOCK_ROWS:
            units.extend([[(t, lo, min(lo + BLOCK_ROWS, b))] for lo in range(0, b, BLOCK_ROWS)])
        else:
            cur.append((t, 0, b))
            rows += b
    if cur:
        units.append(cur)
    return units


class _PackedGRU(torch.autograd.Function):
    r"""A single-layer GRU over packed segments with a hand-written backward
    pass (backpropagation through time over the same shrinking batches).

    Takes the rows ``x`` in segment order and the packing (``src_of``, its
    inverse ``pos_of``);
    returns each segment's final state (in packed rank order: the segments
    that end at step ``t`` are ranks ``batch_sizes[t + 1]:batch_sizes[t]``)
    and the hidden state of every packed element. Per block of rows: one GEMM
    projects the inputs (gathered from ``x``), one the hidden states, one
    fused kernel (:mod:`._fused`) applies the gates; the backward pass
    accumulates the weights' gradients block by block."""

    @staticmethod
    def forward(ctx, x, src_of, pos_of, batch_sizes, w_ih, w_hh, b_ih, b_hh, fused):
        ctx.set_materialize_grads(False)
        hs, num = w_hh.size(1), src_of.numel()
        offsets = _step_offsets(batch_sizes)
        # One gather: the rows of short steps are scattered over x.
        data = torch.index_select(x, 0, src_of, out=row_buffer(num, x.size(1), x))
        states = row_buffer(num, hs, x)
        gates = []
        first = min(batch_sizes[0], BLOCK_ROWS) if batch_sizes else 0
        zeros = row_buffer(first, hs, x).zero_()  # the initial state ...
        zero_proj = row_buffer(first, 3 * hs, x).zero_()  # ... and its projection
        w_ih_t, w_hh_t = w_ih.t(), w_hh.t()
        for unit in _units(batch_sizes):
            r0 = offsets[unit[0][0]] + unit[0][1]
            r1 = offsets[unit[-1][0]] + unit[-1][2]
            gi = torch.mm(data[r0:r1], w_ih_t, out=row_buffer(r1 - r0, 3 * hs, x))
            for t, lo, hi in unit:
                a, n = offsets[t] + lo, hi - lo
                if t:
                    hp = states[offsets[t - 1] + lo:offsets[t - 1] + hi]
                    gh = torch.mm(hp, w_hh_t)
                else:
                    hp, gh = zeros[:n], zero_proj[:n]
                # The saved gates come in block-sized pieces, which the allocator
                # recycles between steps (one large buffer would be fresh memory).
                gates.append(step_forward(gi[a - r0:a - r0 + n], gh, hp, b_ih, b_hh,
                                          states[a:a + n], fused=fused and n > 1))
        final = x.new_empty(batch_sizes[0] if batch_sizes else 0, hs)
        for t, b in enumerate(batch_sizes):  # segments of length t + 1 end here
            after = batch_sizes[t + 1] if t + 1 < len(batch_sizes) else 0
            final[after:b] = states[offsets[t] + after:offsets[t] + b]
        ctx.batch_sizes, ctx.fused = batch_sizes, fused
        ctx.save_for_backward(data, src_of, pos_of, w_ih, w_hh, b_ih, b_hh, states, *gates)
        return final, states

    @staticmethod
    def backward(ctx, dfinal, dstates):
        data, src_of, pos_of, w_ih, w_hh, b_ih, b_hh, states, *gates = ctx.saved_tensors
        k = len(gates)
        batch_sizes = ctx.batch_sizes
        hs = w_hh.size(1)
        if dfinal is None:
            dfinal = data.new_zeros(batch_sizes[0] if batch_sizes else 0, hs)
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient
            def plain(data_, *weights):
                st = packed_gru_plain(data_, batch_sizes, *weights)
                return _final_rows(st, batch_sizes), st
            grads = recompute_grads(plain, (data, w_ih, w_hh, b_ih, b_hh),
                                    ctx.needs_input_grad[:1] + ctx.needs_input_grad[4:8],
                                    (dfinal, dstates))
            dx = grads[0].index_select(0, pos_of) if grads[0] is not None else None
            return (dx, None, None, None) + grads[1:] + (None,)
        offsets = _step_offsets(batch_sizes)
        d_data = data.new_empty(data.shape) if ctx.needs_input_grad[0] else None
        dw_ih, dw_hh = torch.zeros_like(w_ih), torch.zeros_like(w_hh)
        db_ih = torch.zeros_like(b_ih) if b_ih is not None else None
        db_hh = torch.zeros_like(b_hh) if b_hh is not None else None
        zeros = row_buffer(min(batch_sizes[0], BLOCK_ROWS) if batch_sizes else 0, hs,
                           data).zero_()
        scratch = row_buffer(zeros.size(0), hs, data)
        # dh[t]: gradient w.r.t. the states of step t; rows below batch_sizes[t + 1]
        # come from step t + 1, the others are final states.
        last = len(batch_sizes) - 1
        dh = {last: row_buffer(batch_sizes[last], hs, data).copy_(dfinal[:batch_sizes[last]])} \
            if batch_sizes else {}
        for unit in reversed(_units(batch_sizes)):
            r0 = offsets[unit[0][0]] + unit[0][1]
            r1 = offsets[unit[-1][0]] + unit[-1][2]
            dgi = row_buffer(r1 - r0, 3 * hs, data) if len(unit) > 1 else None
            for t, lo, hi in reversed(unit):
                a, n = offsets[t] + lo, hi - lo
                g = dh[t][lo:hi]
                if dstates is not None:
                    g = torch.add(g, dstates[a:a + n], out=row_buffer(n, hs, data))
                hp = states[offsets[t - 1] + lo:offsets[t - 1] + hi] if t else zeros[:n]
                if t and t - 1 not in dh:
                    prev = row_buffer(batch_sizes[t - 1], hs, data)
                    prev[batch_sizes[t]:] = dfinal[batch_sizes[t]:batch_sizes[t - 1]]
                    dh[t - 1] = prev
                dprev = dh[t - 1][lo:hi] if t else scratch[:n]
                k -= 1
                dgi_t, dgh = step_backward(g, gates[k], hp, dprev, fused=ctx.fused and n > 1)
                if dgi is None:
                    dgi = dgi_t
                else:
                    dgi[a - r0:a - r0 + n] = dgi_t
                if db_hh is not None:
                    db_hh += dgh.sum(0)
                if t:
                    dw_hh.addmm_(dgh.t(), hp)
                    dprev.addmm_(dgh, w_hh)
                if lo == 0:
                    del dh[t]  # the step's first block is its last one done
            if d_data is not None:
                torch.mm(dgi, w_ih, out=d_data[r0:r1])
            dw_ih.addmm_(dgi.t(), data[r0:r1])
            if db_ih is not None:
                db_ih += dgi.sum(0)
        needs = ctx.needs_input_grad
        dx = d_data.index_select(0, pos_of) if d_data is not None else None
        return (dx, None, None, None, dw_ih if needs[4] else None, dw_hh if needs[5] else None,
                db_ih if needs[6] else None, db_hh if needs[7] else None, None)


def _final_rows(states: Tensor, batch_sizes: List[int]) -> Tensor:
    """Each segment's last state, in packed rank order (plain ops)."""
    offsets = _step_offsets(batch_sizes)
    parts = []
    for t in range(len(batch_sizes) - 1, -1, -1):
        after = batch_sizes[t + 1] if t + 1 < len(batch_sizes) else 0
        parts.append(states[offsets[t] + after:offsets[t] + batch_sizes[t]])
    return torch.cat(parts) if parts else states[:0]  # t descending: ranks ascending


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


def packed_gru(x: Tensor, src_of: Tensor, pos_of: Tensor, batch_sizes: List[int], w_ih: Tensor,
               w_hh: Tensor, b_ih: Optional[Tensor], b_hh: Optional[Tensor],
               fused: bool = False) -> Tuple[Tensor, Tensor]:
    """``(final state of each segment in packed rank order, hidden state of
    every packed element)`` of rows ``x`` packed by ``src_of`` (row ``k``
    of the packing is ``x[src_of[k]]``, row ``i`` of ``x`` is packed row
    ``pos_of[i]``; ``fused``: compiled gate kernels)."""
    return _PackedGRU.apply(x, src_of, pos_of, batch_sizes, w_ih, w_hh, b_ih, b_hh, fused)


def packed_lstm(data: Tensor, batch_sizes: List[int], w_ih: Tensor, w_hh: Tensor,
                b_ih: Optional[Tensor], b_hh: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """Hidden and cell state of every packed element."""
    return _PackedLSTM.apply(data, batch_sizes, w_ih, w_hh, b_ih, b_hh)
