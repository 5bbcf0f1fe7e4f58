r"""The element-wise part of the GRU gates, written once as plain torch and
fused by ``torch.compile`` for large inputs.

The learned aggregators spend their time in two places: the GEMMs that
project the elements (which run in the BLAS library either way) and the
gate arithmetic between them, a dozen element-wise operations per GRU cell
that each read and write the whole batch. Run one by one, the latter take as
long as the GEMMs; fused into one loop (C++ on CPUs, Triton on GPUs) they
read their inputs once. :class:`Kernel` wraps each function below: it runs
the ``torch.compile``-d version when :func:`fusion_wanted` says so, and the
same function eagerly otherwise (small inputs, where compiling is not worth
it; ``GNNAGG_FUSED=0``; or when compiling fails, which is then reported once).

``GNNAGG_FUSED``: ``auto`` (default) fuses calls on at least 16384
elements; ``1`` always; ``0`` never. The first fused call of each kernel in
a process compiles it (seconds; inductor caches the result on disk).

The hyperbolic tangent is computed as :math:`2\sigma(2x) - 1` (at most 2e-7
from ``torch.tanh`` in float32): the vectorised sigmoid is several times
faster than the tanh of the CPU kernels, fused or not.
"""
from __future__ import annotations

import os
import threading
import warnings
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

#: Smallest number of elements per aggregator call for which ``auto`` fuses.
FUSE_MIN_ELEMENTS = 16384


def fusion_wanted(num_elements: int) -> bool:
    """Whether an aggregator call on ``num_elements`` elements uses the
    compiled kernels (``GNNAGG_FUSED``, see the module docstring)."""
    mode = os.environ.get("GNNAGG_FUSED", "auto").strip().lower()
    if mode in ("0", "false", "off", "no") or _STATE["failed"]:
        return False
    if mode in ("1", "true", "on", "yes"):
        return True
    return num_elements >= FUSE_MIN_ELEMENTS


_STATE = {"failed": False}
_LOCK = threading.Lock()


class Kernel:
    """``fn`` eagerly, or compiled (``dynamic=True``) when ``fused``."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.compiled: Optional[Callable] = None

    def __call__(self, *args, fused: bool = False):
        # Not under a dispatch mode (FakeTensor, tracing, operator counting): those
        # run the arithmetic as plain operators.
        if fused and not _STATE["failed"] and not torch._C._len_torch_dispatch_stack():
            try:
                if self.compiled is None:
                    with _LOCK:
                        if self.compiled is None:
                            self.compiled = torch.compile(self.fn, dynamic=True, fullgraph=True)
                return self.compiled(*args)
            except Exception as exc:  # no C++ compiler, no Triton, ...: stay correct
                _STATE["failed"] = True
                warnings.warn(f"gnnagg: compiling the fused GRU kernels failed ({type(exc).__name__}:"
                              f" {str(exc)[:200]}); using the unfused ones (set GNNAGG_FUSED=0 to "
                              f"skip the attempt)", RuntimeWarning, stacklevel=2)
        return self.fn(*args)


# The arithmetic #############################################################

def _tanh(x: Tensor) -> Tensor:
    return 2 * torch.sigmoid(2 * x) - 1


def _bias(g: Tensor, b: Optional[Tensor]) -> Tensor:
    return g if b is None else g + b


def _gates(gi: Tensor, gh: Tensor, h: Tensor):
    """GRU update from the projections (biases included): the new state and
    what the backward pass needs (r, z, n and the hidden part of n)."""
    hs = h.size(-1)
    r = torch.sigmoid(gi[..., :hs] + gh[..., :hs])
    z = torch.sigmoid(gi[..., hs:2 * hs] + gh[..., hs:2 * hs])
    hn = gh[..., 2 * hs:]
    n = _tanh(gi[..., 2 * hs:] + r * hn)
    return n + z * (h - n), r, z, n, hn


def _gates_backward(g: Tensor, r: Tensor, z: Tensor, n: Tensor, hn: Tensor, h: Tensor):
    """Gradients w.r.t. the pre-activations of r, z, n (input side), the
    hidden part of n, and ``h`` directly."""
    dn = g * (1 - z) * (1 - n * n)
    dz = g * (h - n) * z * (1 - z)
    dr = dn * hn * r * (1 - r)
    return dr, dz, dn, dn * r, g * z


# The kernels return their multi-part outputs as a ``cat`` of fresh
# tensors (the compiler writes each part in place within one loop) and write
# only whole tensors into the given ``*_out`` views: stores into column
# slices of an argument take several passes.

def _step_forward(gi: Tensor, gh: Tensor, h: Tensor, b_ih: Optional[Tensor],
                  b_hh: Optional[Tensor], h_out: Tensor) -> Tensor:
    out, r, z, n, hn = _gates(_bias(gi, b_ih), _bias(gh, b_hh), h)
    h_out.copy_(out)
    return torch.cat([r, z, n, hn], -1)


def _step_backward(g: Tensor, saved: Tensor, h: Tensor, dh_out: Tensor) -> Tuple[Tensor, Tensor]:
    hs = h.size(-1)
    r, z, n, hn = (saved[:, k * hs:(k + 1) * hs] for k in range(4))
    dr, dz, dn, dhn, dh = _gates_backward(g, r, z, n, hn, h)
    dh_out.copy_(dh)
    return torch.cat([dr, dz, dn], -1), torch.cat([dr, dz, dhn], -1)


def _pair_forward(proj: Tensor, ab: Tensor, b_ih: Optional[Tensor], b_hh: Optional[Tensor],
                  merged_out: Tensor) -> Tensor:
    # A pair is one row: ab = [a | b] (m, 2H), proj = [a W^T | b W^T] (m, 12H).
    # GRU(a, b) takes a as input and b as hidden state, GRU(b, a) the reverse.
    hs = ab.size(-1) // 2
    a, b = ab[:, :hs], ab[:, hs:]
    out_ab, *gates_ab = _gates(_bias(proj[:, :3 * hs], b_ih), _bias(proj[:, 9 * hs:], b_hh), b)
    out_ba, *gates_ba = _gates(_bias(proj[:, 6 * hs:9 * hs], b_ih),
                               _bias(proj[:, 3 * hs:6 * hs], b_hh), a)
    merged_out.copy_((out_ab + out_ba) * 0.5)
    return torch.cat(gates_ab + gates_ba, -1)


def _pair_backward(g: Tensor, saved: Tensor, ab: Tensor) -> Tuple[Tensor, Tensor]:
    hs = ab.size(-1) // 2
    grad = g * 0.5
    r, z, n, hn = (saved[:, k * hs:(k + 1) * hs] for k in range(4))
    dr1, dz1, dn1, dhn1, db = _gates_backward(grad, r, z, n, hn, ab[:, hs:])  # GRU(a, b)
    r, z, n, hn = (saved[:, k * hs:(k + 1) * hs] for k in range(4, 8))
    dr2, dz2, dn2, dhn2, da = _gates_backward(grad, r, z, n, hn, ab[:, :hs])  # GRU(b, a)
    dproj = torch.cat([dr1, dz1, dn1, dr2, dz2, dhn2, dr2, dz2, dn2, dr1, dz1, dhn1], -1)
    return dproj, torch.cat([da, db], -1)


def row_buffer(rows: int, width: int, like: Tensor) -> Tensor:
    """An uninitialised ``(rows, width)`` buffer for kernel outputs whose
    row blocks never start at storage offset 0 (a spare first row): the
    compiled kernels specialise on offset 0, so this keeps one compiled
    version for every block."""
    return like.new_empty(rows + 1, width)[1:]


#: One GRU step for every row: ``gi = x W_ih^T``, ``gh = h W_hh^T`` (no
#: biases) -> ``[r, z, n, hn]`` ``(rows, 4H)`` for the backward pass; writes
#: the new state to ``h_out``.
step_forward = Kernel(_step_forward)
#: ``(grad of h_new, saved, h)`` -> gradients w.r.t. ``gi`` and ``gh``;
#: writes the direct one w.r.t. ``h`` to ``dh_out``.
step_backward = Kernel(_step_backward)
#: LCM's pair operator ``(GRU(a, b) + GRU(b, a)) / 2`` on pairs
#: ``ab = [a | b]`` ``(m, 2H)`` from ``proj = [a W^T | b W^T]`` ``(m, 12H)``,
#: ``W = [W_ih; W_hh]`` -> saved gates ``(m, 8H)``; writes the means to
#: ``merged_out``.
pair_forward = Kernel(_pair_forward)
#: ``(grad of the means, saved, ab)`` -> gradients w.r.t. ``proj`` and,
#: directly, ``ab``.
pair_backward = Kernel(_pair_backward)
