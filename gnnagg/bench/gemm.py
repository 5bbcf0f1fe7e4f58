"""The GEMM-only bound of a computation: its matrix products, with the
same shapes, memory layouts and dtypes, timed alone.

A learned aggregator's forward and backward passes are matrix products
(which run in the BLAS library, near the hardware's speed) and everything
else (gate arithmetic, gathers, scatters, allocation, Python). Timing the
products alone, in the same process and on the same device, gives the time
the computation would take if everything else were free;
``bound / actual`` is the fraction of that bound reached.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["record_gemms", "gemm_bound"]

_aten = torch.ops.aten
_GEMMS = {_aten.mm.default, _aten.mm.out, _aten.addmm.default, _aten.addmm.out,
          _aten.addmm_.default, _aten.bmm.default, _aten.bmm.out, _aten.baddbmm.default,
          _aten.baddbmm_.default}

Spec = Tuple[Tuple[int, ...], Tuple[int, ...], torch.dtype]


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: List[Tuple[Any, List[Spec]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _GEMMS:
            specs = [(tuple(a.shape), tuple(a.stride()), a.dtype) for a in args
                     if isinstance(a, Tensor)]
            self.calls.append((func.overloadpacket, specs))
        return func(*args, **kwargs)


def record_gemms(fn: Callable[[], Any]) -> List[Tuple[Any, List[Spec]]]:
    """The matrix products ``fn()`` runs: ``(operator, [(shape, stride,
    dtype) of each tensor operand])``."""
    recorder = _Recorder()
    with recorder:
        fn()
    return recorder.calls


def _operand(spec: Spec, device: torch.device) -> Tensor:
    shape, stride, dtype = spec
    t = torch.empty_strided(shape, stride, dtype=dtype, device=device)
    if t.numel():
        # Fill the whole storage (strides may leave gaps) with small values.
        torch.as_strided(t, (t.untyped_storage().nbytes() // t.element_size(),), (1,)).normal_()
    return t


def _flops(op, specs: List[Spec]) -> int:
    shapes = [s[0] for s in specs]
    if op in (_aten.mm,):
        (m, k), (_, n) = shapes[0], shapes[1]
        return 2 * m * k * n
    if op in (_aten.addmm, _aten.addmm_):
        (m, k), (_, n) = shapes[1], shapes[2]
        return 2 * m * k * n
    if op in (_aten.bmm,):
        (b, m, k), (_, _, n) = shapes[0], shapes[1]
        return 2 * b * m * k * n
    (b, m, k), (_, _, n) = shapes[1], shapes[2]  # baddbmm
    return 2 * b * m * k * n


def gemm_bound(fn: Callable[[], Any], device: torch.device, repeats: int = 3,
               sync: Optional[Callable[[], None]] = None) -> Dict[str, float]:
    """Record the matrix products of one call of ``fn`` and time them
    alone (median of ``repeats`` replays, outputs preallocated): ``{'count',
    'gflop', 'alone_s', 'gflops_per_s'}``."""
    calls = record_gemms(fn)
    replay = []
    flops = 0
    for op, specs in calls:
        operands = [_operand(s, device) for s in specs]
        flops += _flops(op, specs)
        if op is _aten.mm:
            a, b = operands[:2]
            out = a.new_empty(a.size(0), b.size(1))
            replay.append(lambda a=a, b=b, out=out: torch.mm(a, b, out=out))
        elif op in (_aten.addmm, _aten.addmm_):
            c, a, b = operands[:3]
            out = a.new_empty(a.size(0), b.size(1))
            replay.append(lambda c=c, a=a, b=b, out=out: torch.addmm(c, a, b, out=out))
        elif op is _aten.bmm:
            a, b = operands[:2]
            out = a.new_empty(a.size(0), a.size(1), b.size(2))
            replay.append(lambda a=a, b=b, out=out: torch.bmm(a, b, out=out))
        else:
            c, a, b = operands[:3]
            replay.append(lambda c=c, a=a, b=b: torch.baddbmm(c, a, b))
    sync = sync or (lambda: None)

    def run():
        for r in replay:
            r()

    run()  # warm up
    times = []
    for _ in range(max(repeats, 1)):
        sync()
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    times.sort()
    alone = times[len(times) // 2]
    return {"count": len(calls), "gflop": flops / 1e9, "alone_s": alone,
            "gflops_per_s": flops / 1e9 / alone if alone > 0 else float("nan")}
