"""What every gnnagg aggregator shares on top of PyG's ``Aggregation``."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor
from torch_geometric.nn.aggr import Aggregation

from ..ops.checks import check_dim_size, normalize_dim
from ..ops.layout import SegmentLayout, segment_layout, single_segment_layout


class Segments(NamedTuple):
    x: Tensor           # (R, F) rows grouped by segment
    ptr: Tensor         # CSR boundaries, (S + 1,)
    dim_size: int       # S: segments (times the batch size of a static graph)
    batch: List[int]    # leading batch shape of a static graph ([] if none)
    trailing: List[int]  # feature shape that was flattened into F
    num: int            # segments per batch entry (the output's dim_size)
    layout: Optional[SegmentLayout] = None  # the grouping of the rows, with its plans


class SegmentAggregation(Aggregation):
    r"""Base class of gnnagg's aggregators over variable-size neighbourhoods.

    It accepts PyG's call signature ``(x, index=None, ptr=None,
    dim_size=None, dim=-2, max_num_elements=None)`` with an index in any
    order, validates it, groups the elements by segment and hands them to
    the subclass's reduction. Elements keep their given order within a
    segment (a stable sort), unless ``shuffle`` asks for a random order while
    training.

    Input layouts: ``(E, F)`` with ``dim=0`` or ``-2``; ``(E, *F)`` with
    ``dim=0`` (e.g. ``(E, heads, C)``, reduced as ``heads * C`` channels);
    and a static graph's ``(*B, E, F)`` with ``dim=-2`` (every leading batch
    entry reduced on its own, as PyG's ``node_dim=-2`` layers do).

    How it runs:

    * eagerly: hand-written fast paths, with plain differentiable ops under
      ``torch.func`` transforms, forward-mode AD and double backward;
    * ``torch.compile``: the ragged reduction (data-dependent loop counts)
      runs eagerly behind one graph break, so graphs of varying shape never
      trigger recompilation;
    * ``torch.export`` (and ``torch.jit.trace``): a static-shape formulation
      whose loop count is a bound on the neighbourhood size:
      ``max_num_elements`` (argument or attribute), else the number of
      elements (fixed in a static-shape export); a larger neighbourhood at
      run time is an error, never dropped;
    * ``torch.jit.script``: a scriptable path (GRU and LSTM through
      ``torch.nn.GRU``/``LSTM`` on packed sequences, LCM through the
      static-shape tree with a bound taken from the data).

    ``max_num_elements`` is never needed eagerly and never drops elements.

    Class attributes say what the aggregator guarantees (tests check them):

    * ``permutation_invariant``: the output does not depend on the order of
      a node's neighbours;
    * ``needs_sorted_index``: whether ``index`` must be sorted (never, here).
    """

    permutation_invariant: bool = False
    needs_sorted_index: bool = False

    def __init__(self, shuffle: bool = False, max_num_elements: Optional[int] = None) -> None:
        super().__init__()
        if max_num_elements is not None and (isinstance(max_num_elements, bool) or not
                                             isinstance(max_num_elements, int) or
                                             max_num_elements < 1):
            raise ValueError(f"'max_num_elements' must be a positive int or None "
                             f"(got {max_num_elements!r})")
        self.shuffle = shuffle
        #: Bound on the neighbourhood size for static-shape tracing (torch.export).
        self.max_num_elements = max_num_elements
        #: The regularisation term of the last training forward pass (or
        #: ``None``); see :func:`gnnagg.aggr.regularization_loss`.
        self.reg_loss: Optional[Tensor] = None

    def forward(self, x: Tensor, index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
                dim_size: Optional[int] = None, dim: int = -2,
                max_num_elements: Optional[int] = None) -> Tensor:
        if torch.jit.is_scripting():
            rows, ptr, batch, trailing, num = static_segments(x, index, ptr, dim_size, dim)
            return restore_layout(self._reduce_script(rows, ptr), batch, trailing, num)
        return self._forward_python(x, index, ptr, dim_size, dim, max_num_elements)

    # What subclasses implement: (R, F) rows grouped by ``ptr`` -> (S, F_out).

    def reduce_segments(self, x: Tensor, ptr: Tensor,
                        layout: Optional[SegmentLayout] = None) -> Tensor:
        """The eager reduction (may set :attr:`reg_loss` while training).
        ``layout`` is the grouping that ``ptr`` describes, with its cached
        kernel plans (found from ``ptr`` when not given)."""
        raise NotImplementedError

    def _reduce_script(self, x: Tensor, ptr: Tensor) -> Tensor:
        raise RuntimeError("this aggregator has no TorchScript path; use torch.compile "
                           "or torch.export")

    def _reduce_bounded(self, x: Tensor, ptr: Tensor, bound: int) -> Tensor:
        """Static-shape reduction for segments of at most ``bound`` elements."""
        raise NotImplementedError

    @torch.jit.unused
    def _forward_python(self, x: Tensor, index: Optional[Tensor], ptr: Optional[Tensor],
                        dim_size: Optional[int], dim: int,
                        max_num_elements: Optional[int]) -> Tensor:
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            return self._forward_bounded(x, index, ptr, dim_size, dim, max_num_elements)
        if torch.compiler.is_compiling():
            return _run_eagerly(self, x, index, ptr, dim_size, dim)
        return self._forward_eager(x, index, ptr, dim_size, dim)

    @torch.jit.unused
    def _forward_eager(self, x: Tensor, index: Optional[Tensor], ptr: Optional[Tensor],
                       dim_size: Optional[int], dim: int) -> Tensor:
        if isinstance(x, Tensor) and torch.is_autocast_enabled(x.device.type):
            # The hand-written kernels need one dtype for elements and weights;
            # the surrounding model keeps its mixed precision.
            with torch.autocast(x.device.type, enabled=False):
                return self._forward_eager(x.float(), index, ptr, dim_size, dim)
        seg = self.segments(x, index, ptr, dim_size, dim)
        self._check_features(seg.x, x)
        return restore_layout(self.reduce_segments(seg.x, seg.ptr, seg.layout), seg.batch,
                              seg.trailing, seg.num)

    @torch.jit.unused
    def _forward_bounded(self, x: Tensor, index: Optional[Tensor], ptr: Optional[Tensor],
                         dim_size: Optional[int], dim: int,
                         max_num_elements: Optional[int]) -> Tensor:
        if ptr is None and index is not None and dim_size is None:
            raise ValueError(f"{type(self).__name__} under torch.export/trace needs 'dim_size' "
                             f"with 'index' (the number of segments is a shape)")
        rows, ptr, batch, trailing, num = static_segments(x, index, ptr, dim_size, dim)
        self._check_features(rows, x)
        bound = max_num_elements if max_num_elements is not None else self.max_num_elements
        if bound is None:
            bound = x.size(dim)  # no neighbourhood has more elements than all of them
            if torch.jit.is_tracing():
                bound = int(bound)  # the trace records this graph's size; see the assert
            if not isinstance(bound, int):
                raise ValueError(
                    f"{type(self).__name__} under torch.export/trace with a dynamic number of "
                    f"elements needs a bound on the neighbourhood size: set "
                    f"max_num_elements (constructor argument or attribute)")
        counts = ptr[1:] - ptr[:-1]
        torch._assert_async((counts <= bound).all(),
                            f"a neighbourhood has more than max_num_elements={bound} elements")
        return restore_layout(self._reduce_bounded(rows, ptr, bound), batch, trailing, num)

    def _check_features(self, rows: Tensor, x: Tensor) -> None:
        expected = getattr(self, "in_channels", None)
        if expected is not None and rows.size(1) != expected:
            raise ValueError(f"{type(self).__name__} expects {expected} input channels, got "
                             f"{rows.size(1)} (input shape {tuple(x.shape)})")
        param = next(self.parameters(), None)
        if param is not None and param.dtype != rows.dtype:
            raise TypeError(
                f"{type(self).__name__} has {param.dtype} parameters but got {rows.dtype} "
                f"input: convert one of them (e.g. `aggr.to({rows.dtype})` or "
                f"`x.to({param.dtype})`)")

    def segments(self, x: Tensor, index: Optional[Tensor], ptr: Optional[Tensor],
                 dim_size: Optional[int], dim: int) -> Segments:
        """Validate the input and group its rows by segment.

        The grouping (:class:`~gnnagg.ops.SegmentLayout`) costs one device
        sync, none when the same ``index``/``ptr`` tensor (or a view of the
        same memory, unchanged since) was seen recently: the layers of one
        model share it within a forward pass."""
        if not isinstance(x, Tensor):
            raise TypeError(f"'x' must be a torch.Tensor (got {type(x).__name__})")
        if not x.is_floating_point():
            raise TypeError(f"'x' must be floating point (got {x.dtype})")
        dim = normalize_dim(dim, x.dim())
        if dim != 0 and dim != x.dim() - 2:
            raise ValueError(f"{type(self).__name__} aggregates over the first dimension "
                             f"(dim=0) or, for a static graph's (*batch, E, F) input, over "
                             f"dim=-2; got dim={dim} for shape {tuple(x.shape)}")
        rows, batch, trailing = _rows(x, dim)
        n = x.size(dim)
        dim_size = check_dim_size(dim_size)
        if ptr is not None:
            if isinstance(ptr, Tensor) and ptr.dim() == 1 and dim_size is not None and \
                    dim_size != ptr.numel() - 1:
                raise ValueError(f"Encountered invalid 'dim_size' ({dim_size}): 'ptr' "
                                 f"defines {ptr.numel() - 1} segments")
            layout = segment_layout(index, ptr, n)
        elif index is None:
            layout = single_segment_layout(n, dim_size, x.device)
        else:
            layout = segment_layout(index, None, n, dim_size)
        num = layout.num_segments
        perm = layout.perm
        if self.shuffle and self.training and n > 1:
            perm = layout.shuffled_perm()
        if len(batch) > 0:
            lifted = layout.lift(_prod(batch))
            perm = lifted.perm if perm is layout.perm else lift_batch(perm, layout.ptr, n,
                                                                      batch)[0]
            layout = lifted
        if perm is not None:
            rows = rows.index_select(0, perm)
        return Segments(rows, layout.ptr, layout.num_segments, batch, trailing, num, layout)

    def depth(self, max_degree: int) -> int:
        """Sequential steps needed for a neighbourhood of ``max_degree``."""
        raise NotImplementedError


@torch.compiler.disable
def _run_eagerly(aggr: SegmentAggregation, x: Tensor, index: Optional[Tensor],
                 ptr: Optional[Tensor], dim_size: Optional[int], dim: int) -> Tensor:
    """Under ``torch.compile``: the ragged reduction's loop counts depend on
    the graph, so tracing it would recompile for every new graph; it runs
    eagerly (one graph break) with its fast kernels instead."""
    return aggr._forward_eager(x, index, ptr, dim_size, dim)


def _rows(x: Tensor, dim: int) -> Tuple[Tensor, List[int], List[int]]:
    """``x`` as (R, F) rows: ``(E, *F)`` flattens the features; a static
    graph's ``(*B, E, F)`` stacks its batch entries (batch-major)."""
    if dim == 0:
        trailing: List[int] = list(x.shape[1:])
        no_batch: List[int] = []
        return x.reshape(x.size(0), _prod(trailing)), no_batch, trailing
    batch: List[int] = list(x.shape[:dim])
    return x.reshape(_prod(batch) * x.size(dim), x.size(-1)), batch, [x.size(-1)]


def _prod(shape: List[int]) -> int:
    size = 1
    for s in shape:
        size *= s
    return size


def lift_batch(perm: Optional[Tensor], ptr: Tensor, n: int,
               batch: List[int]) -> Tuple[Optional[Tensor], Tensor]:
    """The grouping of one batch entry repeated for every entry of a static
    graph's batch, whose rows are stacked batch-major (``n`` rows each)."""
    if len(batch) == 0:
        return perm, ptr
    size = _prod(batch)
    offsets = torch.arange(size, device=ptr.device) * n
    if perm is not None:
        perm = (perm.unsqueeze(0) + offsets.unsqueeze(1)).reshape(-1)
    ptr = torch.cat([(ptr[:-1].unsqueeze(0) + offsets.unsqueeze(1)).reshape(-1),
                     ptr.new_full((1,), size * n)])
    return perm, ptr


def static_segments(x: Tensor, index: Optional[Tensor], ptr: Optional[Tensor],
                    dim_size: Optional[int], dim: int
                    ) -> Tuple[Tensor, Tensor, List[int], List[int], int]:
    """Grouping with static shapes and no validation of values (TorchScript,
    ``torch.export``): ``(rows, ptr, batch, trailing, num)`` as in
    :class:`Segments`. ``ptr`` wins when
    given; ``index`` is sorted stably and counted into ``dim_size`` bins."""
    if dim < 0:
        dim = dim + x.dim()
    if dim != 0 and dim != x.dim() - 2:
        raise ValueError("aggregation over the first dimension (dim=0) or over dim=-2 "
                         "of a static graph's (*batch, E, F) input")
    n = x.size(dim)
    rows, batch, trailing = _rows(x, dim)
    perm: Optional[Tensor] = None
    if ptr is None:
        if index is None:
            index = torch.zeros(n, dtype=torch.long, device=x.device)
        index = index.long()
        if dim_size is None:
            dim_size = int(index.max()) + 1 if index.numel() > 0 else 0
        perm = torch.argsort(index, stable=True)
        counts = torch.zeros(dim_size, dtype=torch.long, device=index.device)
        counts = counts.index_add(0, index, torch.ones_like(index))
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    else:
        ptr = ptr.long()
    num = ptr.numel() - 1
    perm, ptr = lift_batch(perm, ptr, n, batch)
    if perm is not None:
        rows = rows.index_select(0, perm)
    return rows, ptr, batch, trailing, num


def restore_layout(out: Tensor, batch: List[int], trailing: List[int], num: int) -> Tensor:
    """(S, F_out) back to the input's layout (see :func:`_rows`)."""
    if len(batch) > 0:
        return out.view(batch + [num, out.size(-1)])
    if len(trailing) > 1:
        lead = trailing[:-1]
        return out.view([out.size(0)] + lead + [out.size(1) // _prod(lead)])
    return out


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
