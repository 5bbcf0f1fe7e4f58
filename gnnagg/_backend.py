"""Optional kernel backends, detected once, here.

``torch_scatter`` is used for the scatter/segment reductions it implements
when it is installed, unless ``GNNAGG_BACKEND=torch`` forces plain torch
(read on first use, so importing gnnagg reads no environment variable).
:func:`fast_bf16_matmul` says whether a device multiplies bfloat16 natively
with float32 accumulation (used by the token-graph screen of ``gnnagg.nn.token_graph``).
"""
import os
from typing import Optional

_CHOICE: Optional[bool] = None
torch_scatter = None


def _decide() -> bool:
    global torch_scatter
    backend = os.environ.get("GNNAGG_BACKEND", "auto").lower()
    if backend not in ("auto", "torch", "torch_scatter"):
        raise ValueError(f"GNNAGG_BACKEND must be 'auto', 'torch' or "
                         f"'torch_scatter' (got '{backend}')")
    if backend == "torch":
        return False
    try:  # pragma: no cover - depends on the environment
        import torch_scatter as ts
    except Exception:  # ImportError, or a binary built for another torch
        ts = None
    if ts is None and backend == "torch_scatter":
        raise ImportError("GNNAGG_BACKEND=torch_scatter, but torch_scatter "
                          "cannot be imported (pip install torch-scatter)")
    torch_scatter = ts
    return ts is not None


def use_torch_scatter() -> bool:
    """Whether the scatter kernels go to ``torch_scatter``: decided on the
    first call (``GNNAGG_BACKEND`` is read then, not at import)."""
    global _CHOICE
    if _CHOICE is None:
        _CHOICE = _decide()
    return _CHOICE


_FAST_BF16 = {}


def _cpu_has_native_bf16() -> bool:
    try:  # pragma: no cover - depends on the machine
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fast_bf16_matmul(device) -> bool:
    """Whether bfloat16 matrix products on ``device`` are both fast (native
    bfloat16 dot products: ``avx512_bf16``/``amx_bf16`` on x86 Linux CPUs, or
    a CUDA device that supports bfloat16) and accumulated in float32 (a probe:
    512 ones must sum to 512; a bfloat16 accumulator stops at 256).
    Answered once per device type."""
    import torch

    device = torch.device(device)
    if device.type not in _FAST_BF16:
        if device.type == "cpu":
            native = _cpu_has_native_bf16()
        elif device.type == "cuda":
            native = torch.cuda.is_bf16_supported()
        else:
            native = False
        if native:
            ones = torch.ones(1, 1, 512, dtype=torch.bfloat16, device=device)
            native = float(torch.bmm(ones, ones.transpose(1, 2))) == 512.0
        _FAST_BF16[device.type] = native
    return _FAST_BF16[device.type]
