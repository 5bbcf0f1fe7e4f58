"""Input validation shared by every kernel: clear errors that name the
problem (shape, dtype, index range) instead of a crash deep in a kernel."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def normalize_dim(dim: int, ndim: int) -> int:
    if ndim == 0:
        raise ValueError("expected a tensor with at least one dimension, got a scalar")
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim


def check_src(src: Tensor, name: str = "src") -> None:
    if not isinstance(src, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor (got {type(src).__name__})")


def _check_integer_vector(index: Tensor, name: str) -> None:
    if not isinstance(index, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor (got {type(index).__name__})")
    if index.dtype not in _INT_DTYPES:
        raise TypeError(f"'{name}' must have an integer dtype (got {index.dtype})")
    if index.dim() != 1:
        raise ValueError(f"'{name}' must be one-dimensional (got shape {tuple(index.shape)})")


def check_index(index: Tensor, num_elements: int, dim_size: Optional[int] = None,
                name: str = "index") -> Tensor:
    """Validate a COO ``index``: 1-D, integer, as long as the reduced
    dimension, non-negative and below ``dim_size``. Returns it as int64."""
    _check_integer_vector(index, name)
    if index.numel() != num_elements:
        raise ValueError(f"'{name}' has {index.numel()} entries but the reduced "
                         f"dimension of the source has {num_elements}")
    if index.numel() > 0:
        lo, hi = int(index.min()), int(index.max())
        if lo < 0:
            raise ValueError(f"'{name}' contains a negative entry ({lo})")
        if dim_size is not None and hi >= dim_size:
            raise ValueError(f"'{name}' contains {hi}, out of range for "
                             f"dim_size={dim_size} (entries must be < dim_size)")
    return index.long()


def check_ptr(ptr: Tensor, num_elements: int, name: str = "ptr") -> Tensor:
    """Validate a CSR ``ptr``: 1-D, integer, starts at 0, non-decreasing,
    ends at the length of the reduced dimension. Returns it as int64."""
    if not isinstance(ptr, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor (got {type(ptr).__name__})")
    if ptr.dtype not in _INT_DTYPES:
        raise TypeError(f"'{name}' must have an integer dtype (got {ptr.dtype})")
    if ptr.dim() != 1 or ptr.numel() == 0:
        raise ValueError(f"'{name}' must be a non-empty one-dimensional tensor "
                         f"(got shape {tuple(ptr.shape)})")
    if int(ptr[0]) != 0:
        raise ValueError(f"'{name}' must start at 0 (got {int(ptr[0])})")
    if int(ptr[-1]) != num_elements:
        raise ValueError(f"'{name}' must end at the length of the reduced "
                         f"dimension ({num_elements}), got {int(ptr[-1])}")
    if ptr.numel() > 1 and bool((ptr[1:] < ptr[:-1]).any()):
        raise ValueError(f"'{name}' must be non-decreasing")
    return ptr.long()


def check_index_matches_ptr(index: Tensor, ptr: Tensor, name: str = "index") -> Tensor:
    """Validate an ``index`` given together with a (checked) CSR ``ptr``: it
    must be the sorted index that ``ptr`` describes, element for element,
    or the caller would silently reduce by one of two different segmentations.
    One comparison (a single device sync) replaces the range checks, which
    equality implies. Returns ``index`` as int64."""
    _check_integer_vector(index, name)
    num_elements = int(ptr[-1])
    if index.numel() != num_elements:
        raise ValueError(f"'{name}' has {index.numel()} entries but 'ptr' describes "
                         f"{num_elements} elements")
    index = index.long()
    counts = ptr[1:] - ptr[:-1]
    expected = torch.repeat_interleave(torch.arange(counts.numel(), device=ptr.device), counts)
    if not torch.equal(index, expected.to(index.device)):
        e = int((index != expected.to(index.device)).nonzero()[0, 0])
        raise ValueError(f"'{name}' and 'ptr' disagree: element {e} is in segment "
                         f"{int(index[e])} by '{name}' but in segment {int(expected[e])} by "
                         f"'ptr' (give one of them, or an '{name}' sorted as 'ptr' describes)")
    return index


def check_dim_size(dim_size: Optional[int]) -> Optional[int]:
    if dim_size is None:
        return None
    if isinstance(dim_size, Tensor):
        dim_size = int(dim_size)
    if not isinstance(dim_size, int) or isinstance(dim_size, bool):
        raise TypeError(f"'dim_size' must be an int (got {type(dim_size).__name__})")
    if dim_size < 0:
        raise ValueError(f"'dim_size' must be non-negative (got {dim_size})")
    return dim_size
