"""What every gnnagg aggregator shares on top of PyG's ``Aggregation``."""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.nn.aggr import Aggregation

from ..ops.checks import check_dim_size, check_index, check_ptr, normalize_dim
from ..ops.ragged import sort_segments


def full_precision(forward: Callable) -> Callable:
    """Run an aggregator's ``forward`` in float32 when autocast is on.

    The learned aggregators (LCM, GRU, LSTM) use hand-written autograd
    functions whose matrix products and gates must agree on one dtype;
    under ``torch.autocast`` their inputs would arrive as a mix of float32
    and bfloat16/float16. Inside this wrapper autocast is off and the
    elements are float32; the surrounding model keeps its mixed precision.
    """
    @functools.wraps(forward)
    def wrapper(self, x: Tensor, *args, **kwargs):
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type, enabled=False):
                return forward(self, x.float(), *args, **kwargs)
        return forward(self, x, *args, **kwargs)

    return wrapper


class Segments(NamedTuple):
    x: Tensor          # (E, F) elements grouped by segment
    ptr: Tensor        # CSR boundaries, (N + 1,)
    dim_size: int
    trailing: Tuple[int, ...]  # feature shape that was flattened into F


class SegmentAggregation(Aggregation):
    r"""Base class of gnnagg's aggregators over variable-size neighbourhoods.

    It accepts PyG's call signature ``(x, index=None, ptr=None,
    dim_size=None, dim=-2, max_num_elements=None)`` with an index in any
    order, validates it, and hands subclasses the elements grouped by
    segment (:meth:`segments`). Elements keep their given order within a
    segment (a stable sort), unless ``shuffle`` asks for a random order while
    training. ``max_num_elements`` is accepted for compatibility and never
    drops elements.

    Class attributes say what the aggregator guarantees (tests check them):

    * ``permutation_invariant``: the output does not depend on the order of
      a node's neighbours;
    * ``needs_sorted_index``: whether ``index`` must be sorted (never, here).
    """

    permutation_invariant: bool = False
    needs_sorted_index: bool = False

    def __init__(self, shuffle: bool = False) -> None:
        super().__init__()
        self.shuffle = shuffle
        #: The regularisation term of the last training forward pass (or
        #: ``None``); see :func:`gnnagg.aggr.regularization_loss`.
        self.reg_loss: Optional[Tensor] = None

    def segments(self, x: Tensor, index: Optional[Tensor], ptr: Optional[Tensor],
                 dim_size: Optional[int], dim: int) -> Segments:
        if not isinstance(x, Tensor):
            raise TypeError(f"'x' must be a torch.Tensor (got {type(x).__name__})")
        if not x.is_floating_point():
            raise TypeError(f"'x' must be floating point (got {x.dtype})")
        dim = normalize_dim(dim, x.dim())
        if dim != 0 and not (dim == x.dim() - 2 and x.dim() == 2):
            raise ValueError(f"{type(self).__name__} aggregates over the first "
                             f"dimension (dim=0 or dim=-2 for 2-D inputs), got "
                             f"dim={dim} for shape {tuple(x.shape)}")
        trailing = tuple(x.shape[1:])
        x = x.reshape(x.size(0), _prod(trailing))
        n = x.size(0)
        dim_size = check_dim_size(dim_size)
        shuffle = self.shuffle and self.training
        if ptr is not None and index is None and not shuffle:
            ptr = check_ptr(ptr, n)
            if dim_size is not None and dim_size != ptr.numel() - 1:
                raise ValueError(f"'dim_size' ({dim_size}) does not match 'ptr' "
                                 f"({ptr.numel() - 1} segments)")
            return Segments(x, ptr, ptr.numel() - 1, trailing)
        if index is None:
            if ptr is None:
                index = torch.zeros(n, dtype=torch.long, device=x.device)
            else:
                from ..ops.scatter import ptr_to_index

                ptr = check_ptr(ptr, n)
                dim_size = ptr.numel() - 1
                index = ptr_to_index(ptr)
        index = check_index(index, n, dim_size)
        perm, new_ptr, dim_size = sort_segments(index, dim_size, shuffle=shuffle)
        if perm is not None:
            x = x.index_select(0, perm)
        return Segments(x, new_ptr, dim_size, trailing)

    @staticmethod
    def unflatten(out: Tensor, seg: Segments, out_features: int) -> Tensor:
        if len(seg.trailing) <= 1:
            return out
        return out.view(out.size(0), *seg.trailing[:-1], out_features // _prod(seg.trailing[:-1]))

    def depth(self, max_degree: int) -> int:
        """Sequential steps needed for a neighbourhood of ``max_degree``."""
        raise NotImplementedError


def _prod(shape) -> int:
    p = 1
    for s in shape:
        p *= s
    return p


def regularization_loss(model: torch.nn.Module) -> Tensor:
    """Sum of the regularisation terms (associativity for LCM, permutation
    invariance for recurrent aggregators) that gnnagg aggregators in
    ``model`` computed in their last training forward pass; 0 if none."""
    total: Optional[Tensor] = None
    for module in model.modules():
        term = getattr(module, "reg_loss", None)
        if isinstance(module, SegmentAggregation) and term is not None:
            total = term if total is None else total + term
    if total is None:
        p = next(model.parameters(), None)
        return torch.zeros((), device=p.device if p is not None else None)
    return total
