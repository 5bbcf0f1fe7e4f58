"""Cell arithmetic shared by the LCM pair operator and the recurrent
aggregators: GRU gates with a hand-written backward, and plain
(differentiable, ``torch.func``-friendly) GRU and LSTM cell steps."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def gru_half(gi: Tensor, gh: Tensor, h: Tensor):
    """One GRU cell update from precomputed input/hidden projections; also
    returns what the backward pass needs."""
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(torch.addcmul(i_n, r, h_n))
    return torch.lerp(n, h, z), (r, z, n, h_n)


def gru_half_backward(grad: Tensor, h: Tensor, saved, dgi: Tensor, dgh: Tensor) -> Tensor:
    """Gradients of :func:`gru_half`: writes those w.r.t. ``gi`` and ``gh``
    into the given views (no concatenation) and returns the direct one
    w.r.t. ``h``. In-place arithmetic keeps memory traffic low."""
    r, z, n, h_n = saved
    hs = r.size(1)
    dr_pre, dz_pre, dn_pre = dgi[:, :hs], dgi[:, hs:2 * hs], dgi[:, 2 * hs:]
    one_minus_z = 1 - z
    torch.mul(grad, one_minus_z, out=dn_pre)
    dn_pre.mul_(1 - n * n)
    torch.sub(h, n, out=dz_pre)
    dz_pre.mul_(grad).mul_(z).mul_(one_minus_z)
    torch.mul(dn_pre, h_n, out=dr_pre)
    dr_pre.mul_(r).mul_(1 - r)
    dgh[:, :2 * hs].copy_(dgi[:, :2 * hs])
    torch.mul(dn_pre, r, out=dgh[:, 2 * hs:])
    return grad * z


def gru_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Optional[Tensor],
             b_hh: Optional[Tensor]) -> Tensor:
    """``torch.nn.GRUCell``'s update with plain differentiable ops."""
    return gru_half(F.linear(x, w_ih, b_ih), F.linear(h, w_hh, b_hh), h)[0]


def gru_pair_plain(a: Tensor, b: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Optional[Tensor],
                   b_hh: Optional[Tensor]) -> Tensor:
    """LCM's GRU pair operator, ``(GRUCell(a, b) + GRUCell(b, a)) / 2``, in
    plain differentiable ops."""
    return (gru_cell(a, b, w_ih, w_hh, b_ih, b_hh) + gru_cell(b, a, w_ih, w_hh, b_ih, b_hh)) / 2


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor,
              b_ih: Optional[Tensor], b_hh: Optional[Tensor],
              w_hr: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """``torch.nn.LSTM``'s step (gates ``i, f, g, o``; ``w_hr`` is the
    projection of ``proj_size``) with plain differentiable ops."""
    gates = F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
    i, f, g, o = gates.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    if w_hr is not None:
        h = F.linear(h, w_hr)
    return h, c
