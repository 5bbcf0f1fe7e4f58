r"""LCM's whole tree with the GRU pair operator as one autograd function.

Each level of :func:`gnnagg.ops.tree_reduce`'s plan stores the pairs side
by side, so a round's operands are a contiguous block of rows: one GEMM
projects both members of every pair (``[a; b] [W_ih; W_hh]^T``), one fused
kernel applies the gates of ``GRU(a, b)`` and ``GRU(b, a)`` and averages
them, and only the results move (to their rows of the next level, or to the
output when they complete their segment). The backward pass walks the rounds
in reverse with one GEMM for the inputs' gradients and one accumulating the
weights' gradient per block, instead of an autograd node per operation.

Work runs in blocks of :data:`BLOCK_PAIRS` pairs, so that the temporaries
(the projections, the gradients of the projections) stay small and are
reused by the allocator instead of being fresh memory in every round.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ..ops.ragged import TreePlan, tree_reduce
from ._autograd import recompute_grads
from ._fused import pair_backward, pair_forward, row_buffer
from ._gru import gru_pair_plain

#: Pairs per GEMM and gate kernel call: small enough that the projections
#: stay in cache between the GEMM that writes them and the kernel that reads them.
BLOCK_PAIRS = 512


def _blocks(pairs: int) -> List[Tuple[int, int]]:
    return [(c, min(c + BLOCK_PAIRS, pairs)) for c in range(0, pairs, BLOCK_PAIRS)]


def _plain(h: Tensor, weight: Tensor, bias: Optional[Tensor], identity: Tensor,
           plan: TreePlan) -> Tensor:
    three_h = weight.size(0) // 2
    w_ih, w_hh = weight[:three_h], weight[three_h:]
    b_ih, b_hh = (bias[:three_h], bias[three_h:]) if bias is not None else (None, None)
    return tree_reduce(h, lambda a, b: gru_pair_plain(a, b, w_ih, w_hh, b_ih, b_hh),
                       plan=plan, identity=identity)


class _GRUTree(torch.autograd.Function):

    @staticmethod
    def forward(ctx, h, weight, bias, identity, plan, fused):
        hs = h.size(1)
        b_ih, b_hh = (bias[:3 * hs], bias[3 * hs:]) if bias is not None else (None, None)
        out = identity.to(h.dtype).expand(plan.num_segments, hs).clone()
        out.index_copy_(0, plan.single_seg, h.index_select(0, plan.single_src))
        level = torch.index_select(h, 0, plan.leaf_src,
                                   out=row_buffer(plan.leaf_src.numel(), hs, h))
        wt = weight.t()
        levels, saved = [], []
        for rnd in plan.rounds:
            keep = rnd.pairs - rnd.finishing
            merged = row_buffer(rnd.pairs, hs, h)
            for c0, c1 in _blocks(rnd.pairs):
                m, ab = c1 - c0, level[2 * c0:2 * c1]
                # The saved gates come in block-sized pieces, which the allocator
                # recycles between steps (one large buffer would be fresh memory).
                saved.append(pair_forward(torch.mm(ab, wt).view(m, 12 * hs), ab.view(m, 2 * hs),
                                          b_ih, b_hh, merged[c0:c1], fused=fused))
            nxt = row_buffer(rnd.size, hs, h)
            nxt.index_copy_(0, rnd.merged_dst, merged[:keep])
            nxt.index_copy_(0, rnd.carry_dst, level[2 * rnd.pairs:2 * rnd.pairs + rnd.carries])
            out.index_copy_(0, rnd.finished_seg, merged[keep:])
            levels.append(level)
            level = nxt
        ctx.plan, ctx.fused = plan, fused
        ctx.save_for_backward(h, weight, bias, identity, *levels, *saved)
        return out

    @staticmethod
    def backward(ctx, dout):
        plan = ctx.plan
        h, weight, bias, identity, *rest = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a differentiable gradient
            return recompute_grads(lambda *a: _plain(*a, plan), (h, weight, bias, identity),
                                   ctx.needs_input_grad[:4], (dout,)) + (None, None)
        levels, saved = rest[:len(plan.rounds)], rest[len(plan.rounds):]
        dout = dout.contiguous()
        hs = h.size(1)
        dweight = torch.zeros_like(weight)
        dbias = torch.zeros_like(bias) if bias is not None else None
        dnext = row_buffer(0, hs, h)
        k = len(saved)
        for rnd, level in zip(reversed(plan.rounds), reversed(levels)):
            keep = rnd.pairs - rnd.finishing
            grad = row_buffer(rnd.pairs, hs, h)  # of the pairs' results
            torch.index_select(dnext, 0, rnd.merged_dst, out=grad[:keep])
            torch.index_select(dout, 0, rnd.finished_seg, out=grad[keep:])
            dlevel = row_buffer(2 * rnd.pairs + rnd.carries, hs, h)
            torch.index_select(dnext, 0, rnd.carry_dst, out=dlevel[2 * rnd.pairs:])
            blocks = _blocks(rnd.pairs)
            k -= len(blocks)
            for (c0, c1), gates in zip(blocks, saved[k:k + len(blocks)]):
                m, ab = c1 - c0, level[2 * c0:2 * c1]
                d, direct = pair_backward(grad[c0:c1], gates, ab.view(m, 2 * hs),
                                          fused=ctx.fused)
                d = d.view(2 * m, 6 * hs)
                torch.addmm(direct.view(2 * m, hs), d, weight, out=dlevel[2 * c0:2 * c1])
                dweight.addmm_(d.t(), ab)
                if dbias is not None:
                    dbias += d.sum(0)
            dnext = dlevel
        dh = None
        if ctx.needs_input_grad[0]:
            dh = h.new_empty(h.shape)
            dh.index_copy_(0, plan.leaf_src, dnext)  # every element is a leaf ...
            dh.index_copy_(0, plan.single_src, dout.index_select(0, plan.single_seg))  # ... or alone
        didentity = None
        if ctx.needs_input_grad[3]:
            # Always a gradient (exactly zero without empty segments), as
            # DistributedDataParallel wants one for every parameter.
            didentity = dout.index_select(0, plan.empty_seg).sum(0).to(identity.dtype)
        return dh, dweight, dbias, didentity, None, None


def gru_tree(h: Tensor, weight: Tensor, bias: Optional[Tensor], identity: Tensor,
             plan: TreePlan, fused: bool = False) -> Tensor:
    """:func:`gnnagg.ops.tree_reduce` of ``h`` with LCM's GRU pair operator
    (``weight = [W_ih; W_hh]``, ``bias = [b_ih; b_hh]`` or ``None``); empty
    segments get ``identity``. ``fused`` runs the compiled gate kernels."""
    return _GRUTree.apply(h, weight, bias, identity, plan, fused)
