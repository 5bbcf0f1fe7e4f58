r"""Segment and scatter reductions.

Elements of ``src`` along ``dim`` are grouped either by a COO ``index``
(``index[e]`` is the segment of element ``e``; any order) or by a CSR ``ptr``
(segment ``i`` is ``src[ptr[i]:ptr[i+1]]``). Every reduction is written in
plain torch (no Python loop over elements), differentiable, and runs on any
device; when ``torch_scatter`` is installed it is used for the reductions it
implements with the same semantics (see :mod:`gnnagg._backend`).

Conventions (as in ``pytorch_scatter`` and PyG):

* the output has ``dim_size`` segments; ``dim_size`` defaults to
  ``index.max() + 1`` (or ``len(ptr) - 1``) and may be larger;
* an empty segment yields ``fill_value`` when given, else 0 for every
  reduction except ``'mul'``, whose empty product is 1;
* ``'var'``/``'std'`` use ``correction`` (0: population, 1: sample) and
  clamp the divisor at 1 (a one-element sample variance is 0, not NaN);
* given both, ``index`` must be the sorted index that ``ptr`` describes.

Non-empty segments follow torch's reduction of that segment alone
(``torch.sum``, ``torch.amax``, ``torch.var``, ``torch.std``,
``torch.logsumexp``, ``torch.softmax``): NaN anywhere in a segment gives NaN
(also for ``min``/``max``), ``+inf - inf`` gives NaN, ``var``/``std`` of a
segment holding an infinity are NaN, ``logsumexp`` of an all ``-inf``
segment is ``-inf``, and ``softmax`` of an all ``-inf`` segment is NaN. Where
torch's gradient is NaN only because of ``-inf - (-inf)`` (``logsumexp`` of
an all ``-inf`` segment), the gradient here is 0. These are the plain torch
kernels' semantics; ``torch_scatter``'s min/max (used when it is installed)
are not tested on NaN here: ``GNNAGG_BACKEND=torch`` guarantees the above.

``var`` is the corrected two-pass algorithm of Chan, Golub & LeVeque,
`"Algorithms for Computing the Sample Variance" (1983)
<https://doi.org/10.1080/00031305.1983.10483115>`_, on data shifted by
each segment's maximum: :math:`\sum e^2 - (\sum e)^2 / n` with
:math:`e = (x - K) - \overline{(x - K)}`. It is relatively exact for small
spreads (``std([0, 2e-6]) = 1e-6`` in float32) and exactly 0 for a constant
segment, where ``std`` (like ``torch.std``) has a zero gradient instead of
the infinite slope of :math:`\sqrt{\cdot}` at 0.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .. import _backend
from .checks import (check_dim_size, check_index, check_index_matches_ptr, check_ptr, check_src,
                     normalize_dim)

REDUCTIONS = ("sum", "add", "mean", "min", "max", "mul", "prod", "var", "std",
              "logsumexp")
_SCATTER_NATIVE = {"sum": "sum", "add": "sum", "mean": "mean", "min": "min",
                   "max": "max", "mul": "mul", "prod": "mul"}


def ptr_to_index(ptr: Tensor) -> Tensor:
    """``[0, 2, 2, 5] -> [0, 0, 2, 2, 2]``."""
    counts = ptr[1:] - ptr[:-1]
    return torch.repeat_interleave(
        torch.arange(counts.numel(), device=ptr.device), counts)


def index_to_ptr(index: Tensor, dim_size: int) -> Tensor:
    """CSR pointer of a *sorted* ``index`` with ``dim_size`` segments."""
    counts = torch.bincount(index, minlength=dim_size)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _resolve(src: Tensor, index: Optional[Tensor], ptr: Optional[Tensor],
             dim: int, dim_size: Optional[int]):
    """Validate inputs; return (dim, index, ptr, dim_size)."""
    check_src(src)
    dim = normalize_dim(dim, src.dim())
    n = src.size(dim)
    dim_size = check_dim_size(dim_size)
    if ptr is not None:
        ptr = check_ptr(ptr, n)
        if dim_size is not None and dim_size != ptr.numel() - 1:
            raise ValueError(f"'dim_size' ({dim_size}) does not match 'ptr', "
                             f"which defines {ptr.numel() - 1} segments")
        dim_size = ptr.numel() - 1
        if index is None:
            index = ptr_to_index(ptr)
        else:
            index = check_index_matches_ptr(index, ptr)
    elif index is not None:
        index = check_index(index, n, dim_size)
        if dim_size is None:
            dim_size = int(index.max()) + 1 if index.numel() > 0 else 0
    else:
        raise ValueError("one of 'index' or 'ptr' must be given")
    return dim, index, ptr, dim_size


def _flat(src: Tensor, dim: int) -> Tensor:
    """Move ``dim`` to the front and flatten the rest: (E, F)."""
    rest = 1
    for i, size in enumerate(src.shape):
        if i != dim:
            rest *= size
    return src.movedim(dim, 0).reshape(src.size(dim), rest)


def _unflat(out: Tensor, src: Tensor, dim: int) -> Tensor:
    rest = [s for i, s in enumerate(src.shape) if i != dim]
    return out.reshape([out.size(0)] + rest).movedim(0, dim)


def _counts(index: Tensor, dim_size: int) -> Tensor:
    return torch.bincount(index, minlength=dim_size)


def _gather(values: Tensor, index: Tensor) -> Tensor:
    return values.index_select(0, index)


def _segment_amax(x: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """Per-segment maximum (NaN-propagating, ``-inf`` for empty segments)."""
    return x.new_full((dim_size, x.size(1)), float("-inf")).scatter_reduce(
        0, index.unsqueeze(1).expand_as(x), x, "amax", include_self=False)


def _variance(x: Tensor, index: Tensor, dim_size: int, counts: Tensor,
              correction: int) -> Tensor:
    """Centred, compensated per-segment variance (see the module docstring)."""
    n = counts.to(x.dtype).unsqueeze(1)
    # Shifting by an element of the segment (its maximum) makes a constant
    # segment exactly zero, its mean then exact, and keeps the sums small;
    # the variance does not depend on the shift, so it needs no gradient.
    # Empty segments' -inf maximum is never gathered.
    y = x - _gather(_segment_amax(x.detach(), index, dim_size), index)
    mean = y.new_zeros(dim_size, y.size(1)).index_add_(0, index, y) / n.clamp(min=1)
    e = y - _gather(mean, index)
    sq = e.new_zeros(dim_size, e.size(1)).index_add_(0, index, e * e)
    # Take the mean's rounding error back out (Chan, Golub & LeVeque's
    # correction term). Exactly, it is at most sq, so the clamp removes only
    # a rounding-level negative; clamp lets NaN through.
    err = e.new_zeros(dim_size, e.size(1)).index_add_(0, index, e)
    sq = (sq - err * err / n.clamp(min=1)).clamp(min=0)
    return sq / (n - correction).clamp(min=1)


def _scatter_flat(x: Tensor, index: Tensor, dim_size: int, reduce: str,
                  fill_value: Optional[float], correction: int) -> Tensor:
    """Reduce rows of a 2-D ``x`` by ``index`` into ``dim_size`` rows."""
    f = x.size(1)
    # Segment sizes, only where they are needed (not on the plain sum path).
    needs_counts = reduce in ("mean", "var", "std", "logsumexp") or fill_value is not None
    counts = _counts(index, dim_size) if needs_counts else None
    if reduce in ("sum", "add", "mean"):
        out = x.new_zeros(dim_size, f).index_add_(0, index, x)
        empty_default = 0.0
        if reduce == "mean":
            out = out / counts.to(x.dtype).unsqueeze(1).clamp(min=1)
    elif reduce in ("var", "std"):
        out = _variance(x, index, dim_size, counts, correction)
        empty_default = 0.0
        if reduce == "std":
            # sqrt has an infinite slope at 0: a constant segment (exactly 0,
            # see _variance) gets 0 through a constant branch, hence a zero
            # gradient, as torch.std; NaN still reaches the sqrt and stays NaN.
            zero = out == 0
            out = torch.where(zero, out.new_zeros(()),
                              torch.where(zero, out.new_ones(()), out).sqrt())
    elif reduce in ("min", "max", "mul", "prod"):
        op = {"min": "amin", "max": "amax", "mul": "prod", "prod": "prod"}[reduce]
        empty_default = 1.0 if op == "prod" else 0.0
        base = x.new_full((dim_size, f), empty_default)
        out = base.scatter_reduce(0, index.unsqueeze(1).expand_as(x), x, op,
                                  include_self=False)
    elif reduce == "logsumexp":
        mx = _segment_amax(x.detach(), index, dim_size)
        # An infinite maximum is not subtracted: +inf stays +inf, and an all
        # -inf (or empty) segment sums exp(-inf) = 0 instead of exp(NaN).
        mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
        s = x.new_zeros(dim_size, f).index_add_(0, index, (x - _gather(mx, index)).exp())
        # log(0) = -inf as torch.logsumexp; the log only sees s = 0 through a
        # constant branch, so the gradient there is 0, not 0 * inf = NaN.
        zero = s == 0
        out = torch.where(zero, s.new_full((), float("-inf")),
                          torch.where(zero, s.new_ones(()), s).log() + mx)
        empty_default = 0.0
    else:
        raise ValueError(f"unknown reduction '{reduce}' (expected one of {REDUCTIONS})")

    if fill_value is not None and fill_value != empty_default or reduce == "logsumexp":
        empty = counts == 0
        if bool(empty.any()):
            value = empty_default if fill_value is None else fill_value
            out = torch.where(empty.unsqueeze(1), out.new_full((), value), out)
    return out


def scatter(src: Tensor, index: Optional[Tensor] = None, dim: int = 0,
            dim_size: Optional[int] = None, reduce: str = "sum",
            ptr: Optional[Tensor] = None, fill_value: Optional[float] = None,
            correction: int = 0) -> Tensor:
    r"""Reduce ``src`` along ``dim`` into ``dim_size`` segments.

    .. math::
        \mathrm{out}_i = \bigoplus_{e \,:\, \mathrm{index}_e = i} \mathrm{src}_e

    Args:
        src (Tensor): the values, any shape.
        index (Tensor, optional): segment of each element along ``dim``
            (1-D, integer, any order). (default: :obj:`None`)
        dim (int, optional): the reduced dimension. (default: :obj:`0`)
        dim_size (int, optional): number of segments. (default: :obj:`None`)
        reduce (str, optional): one of ``sum``, ``mean``, ``min``, ``max``,
            ``mul``, ``var``, ``std``, ``logsumexp``. (default: :obj:`"sum"`)
        ptr (Tensor, optional): CSR boundaries instead of ``index``.
            (default: :obj:`None`)
        fill_value (float, optional): the value of empty segments.
            (default: :obj:`None`, i.e. 0, and 1 for ``mul``)
        correction (int, optional): divisor correction for ``var``/``std``.
            (default: :obj:`0`)
    """
    reduce = reduce.lower()
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduction '{reduce}' (expected one of {REDUCTIONS})")
    dim, index, ptr, dim_size = _resolve(src, index, ptr, dim, dim_size)
    if (_backend.use_torch_scatter() and reduce in _SCATTER_NATIVE
            and src.is_floating_point()):
        out = _torch_scatter(src, index, ptr, dim, dim_size, _SCATTER_NATIVE[reduce])
        native_empty = 1.0 if _SCATTER_NATIVE[reduce] == "mul" else 0.0
        if fill_value is not None and fill_value != native_empty:
            empty = _counts(index, dim_size) == 0
            shape = [1] * out.dim()
            shape[dim] = dim_size
            out = torch.where(empty.view(shape), out.new_full((), fill_value), out)
        return out
    out = _scatter_flat(_flat(src, dim), index, dim_size, reduce, fill_value, correction)
    return _unflat(out, src, dim)


def _torch_scatter(src, index, ptr, dim, dim_size, reduce):
    ts = _backend.torch_scatter
    if ptr is not None and reduce != "mul":  # segment_csr has no product
        shape = [1] * dim + [-1]
        out = ts.segment_csr(src, ptr.view(shape).expand(*src.shape[:dim], -1),
                             reduce=reduce)
    else:
        out = ts.scatter(src, index, dim, dim_size=dim_size, reduce=reduce)
    if isinstance(out, tuple):  # min/max also return arg positions
        out = out[0]
    return out


def segment(src: Tensor, ptr: Tensor, dim: int = 0, reduce: str = "sum",
            fill_value: Optional[float] = None, correction: int = 0) -> Tensor:
    """:func:`scatter` over CSR segments ``src[ptr[i]:ptr[i+1]]``."""
    return scatter(src, None, dim, None, reduce, ptr=ptr, fill_value=fill_value,
                   correction=correction)


def softmax(src: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
            dim_size: Optional[int] = None, dim: int = 0) -> Tensor:
    r"""Softmax of ``src`` within each segment; same shape as ``src``.

    .. math::
        \mathrm{out}_e = \frac{\exp(\mathrm{src}_e)}
        {\sum_{e' : \mathrm{index}_{e'} = \mathrm{index}_e} \exp(\mathrm{src}_{e'})}

    Each segment gets ``torch.softmax`` of that segment alone: ``-inf``
    entries get 0 (a mask), a segment whose entries are all ``-inf`` is NaN
    (there is no distribution over nothing; mask such rows out afterwards,
    e.g. with ``torch.nan_to_num``, if a zero row is wanted), and ``+inf`` or
    NaN in a segment makes it NaN.
    """
    dim, index, ptr, dim_size = _resolve(src, index, ptr, dim, dim_size)
    x = _flat(src, dim)
    mx = _segment_amax(x.detach(), index, dim_size)
    e = (x - _gather(mx, index)).exp()
    s = x.new_zeros(dim_size, x.size(1)).index_add_(0, index, e)
    return _unflat(e / _gather(s, index), src, dim)


def logsumexp(src: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
              dim_size: Optional[int] = None, dim: int = 0,
              fill_value: Optional[float] = None) -> Tensor:
    """``log(sum(exp(src)))`` per segment, computed stably."""
    return scatter(src, index, dim, dim_size, "logsumexp", ptr=ptr, fill_value=fill_value)


def degree(index: Tensor, dim_size: Optional[int] = None) -> Tensor:
    """Number of elements in each segment."""
    index = check_index(index, index.numel() if isinstance(index, Tensor) else 0,
                        check_dim_size(dim_size))
    if dim_size is None:
        dim_size = int(index.max()) + 1 if index.numel() > 0 else 0
    return torch.bincount(index, minlength=dim_size)
