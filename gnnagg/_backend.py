"""Optional kernel backends, detected once, here.

``torch_scatter`` is used for the scatter/segment reductions it implements
when it is installed, unless ``GNNAGG_BACKEND=torch`` forces plain torch.
"""
import os

try:  # pragma: no cover - depends on the environment
    import torch_scatter  # noqa: F401

    HAS_TORCH_SCATTER = True
except Exception:  # ImportError, or a binary built for another torch
    torch_scatter = None
    HAS_TORCH_SCATTER = False

BACKEND = os.environ.get("GNNAGG_BACKEND", "auto").lower()
if BACKEND not in ("auto", "torch", "torch_scatter"):
    raise ValueError(f"GNNAGG_BACKEND must be 'auto', 'torch' or "
                     f"'torch_scatter' (got '{BACKEND}')")
if BACKEND == "torch_scatter" and not HAS_TORCH_SCATTER:
    raise ImportError("GNNAGG_BACKEND=torch_scatter, but torch_scatter "
                      "cannot be imported (pip install torch-scatter)")


def use_torch_scatter() -> bool:
    return HAS_TORCH_SCATTER and BACKEND != "torch"
