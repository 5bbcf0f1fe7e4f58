r"""One graph's grouping of elements by segment, found with at most one
device-to-host synchronisation and cached per graph.

Every call of a ragged aggregator needs the same integers on the host:
whether ``index`` is valid and sorted, and, for the kernels, how many pairs
each tree round merges or how many segments each recurrent step advances.
On a GPU every ``int(tensor)`` waits for the device, so
:func:`segment_layout` gathers everything the host must know into one
transfer: the validation statistics (smallest and largest index, whether it
is sorted) and the *degree spectrum*, the distinct segment sizes with how
many segments have each. Distinct sizes :math:`d_1 < \dots < d_D` of
segments that hold :math:`E` elements in all satisfy
:math:`D(D + 1)/2 \le E`, so the spectrum fits a buffer of
:math:`\sqrt{2E} + 1` entries whose size the host knows beforehand. The
tree rounds and packed steps are functions of the spectrum alone; the index
tensors they need are then built on the device with known sizes.

A layout is cached for the index (or ``ptr``) tensor it was computed from,
so that the layers of one model and the epochs of full-batch training reuse
it: the cache holds the tensor itself (so its memory cannot be reused by
another tensor while cached) and matches a later call when it passes the
same tensor or a view of the same memory with the same offset, shape and
strides (PyG's ``edge_index[1]`` is a new view in every layer) *and* the
same version counter, which every in-place change bumps. It keeps the 8
most recent graphs. Writing into the index through an alias that bypasses
the version counter (``.numpy()``, ``.data``) is not seen: call
:func:`clear_layout_cache` after doing so.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor

from .checks import _INT_DTYPES

__all__ = ["SegmentLayout", "segment_layout", "single_segment_layout",
           "clear_layout_cache", "compact"]


def compact(mask: Tensor, count: int) -> Tensor:
    """Positions of the ``count`` true entries of ``mask``, in order, without
    a device sync (``nonzero`` would need one to learn its output size)."""
    pos = torch.cumsum(mask, 0) - 1
    slot = torch.where(mask, pos, count)
    out = torch.empty(count + 1, dtype=torch.long, device=mask.device)
    out.scatter_(0, slot, torch.arange(mask.numel(), device=mask.device))
    return out[:count]


class SegmentLayout:
    """Elements grouped by segment: ``perm`` (a stable sort by segment, or
    ``None`` when already sorted), the CSR ``ptr``, the ``counts`` and the
    host-side degree ``spectrum`` (``(size, how many segments)`` pairs,
    largest first, empty segments left out). Kernel plans built from it
    (:meth:`plan`) are kept with it."""

    def __init__(self, perm: Optional[Tensor], ptr: Tensor, counts: Tensor,
                 spectrum: List[Tuple[int, int]], num_elements: int,
                 segment_of: Optional[Tensor] = None) -> None:
        self.perm = perm
        self.ptr = ptr
        self.counts = counts
        self.spectrum = spectrum
        self.num_elements = num_elements
        self._segment_of = segment_of  # segment of each element in the given order
        self._plans: Dict[Any, Any] = {}
        self._lock = threading.Lock()

    @property
    def num_segments(self) -> int:
        return self.counts.numel()

    @property
    def max_degree(self) -> int:
        return self.spectrum[0][0] if self.spectrum else 0

    @property
    def num_nonempty(self) -> int:
        return sum(m for _, m in self.spectrum)

    def plan(self, name: str, build):
        """``build(self)``, computed once per layout."""
        with self._lock:
            if name not in self._plans:
                self._plans[name] = build(self)
            return self._plans[name]

    def segment_of(self) -> Tensor:
        """The segment of every element, in the order the elements were given."""
        if self._segment_of is None:
            self._segment_of = torch.repeat_interleave(
                torch.arange(self.num_segments, device=self.ptr.device), self.counts,
                output_size=self.num_elements)
        return self._segment_of

    def shuffled_perm(self, generator: Optional[torch.Generator] = None) -> Tensor:
        """A grouping by segment with a uniformly random order inside every
        segment (no device sync)."""
        n, dev = self.num_elements, self.ptr.device
        rand = torch.randperm(n, device=dev, generator=generator) if generator is not None \
            else torch.randperm(n, device=dev)
        return rand[torch.argsort(self.segment_of()[rand], stable=True)]

    def lift(self, batch: int) -> "SegmentLayout":
        """The layout of ``batch`` copies of this graph stacked batch-major
        (a static graph's ``(*B, E, F)`` input); no device sync."""
        return self.plan(("lift", batch), lambda s: s._lift(batch))

    def _lift(self, batch: int) -> "SegmentLayout":
        n, dev = self.num_elements, self.ptr.device
        offsets = torch.arange(batch, device=dev) * n
        perm = None
        if self.perm is not None:
            perm = (self.perm.unsqueeze(0) + offsets.unsqueeze(1)).reshape(-1)
        ptr = torch.cat([(self.ptr[:-1].unsqueeze(0) + offsets.unsqueeze(1)).reshape(-1),
                         self.ptr.new_full((1,), batch * n)])
        return SegmentLayout(perm, ptr, self.counts.repeat(batch),
                             [(d, m * batch) for d, m in self.spectrum], batch * n)


# Validation and the one transfer ###########################################

def _meta(t: Tensor, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"'{name}' must be a torch.Tensor (got {type(t).__name__})")
    if t.dtype not in _INT_DTYPES:
        raise TypeError(f"'{name}' must have an integer dtype (got {t.dtype})")


def _index_meta(index: Tensor, n: int) -> Tensor:
    _meta(index, "index")
    if index.dim() != 1:
        raise ValueError(f"'index' must be one-dimensional (got shape {tuple(index.shape)})")
    if index.numel() != n:
        raise ValueError(f"'index' has {index.numel()} entries but the reduced "
                         f"dimension of the source has {n}")
    return index.long()


def _spectrum_bound(num_elements: int) -> int:
    return math.isqrt(2 * max(num_elements, 0)) + 1


def _fetch(stats: List[Tensor], counts: Tensor, bound: int) -> Tuple[List[int], List[Tuple[int, int]]]:
    """``stats`` (0-d integer tensors) and the degree spectrum of ``counts``,
    in one device-to-host transfer."""
    dev = counts.device
    s = counts.numel()
    desc = torch.sort(counts, descending=True).values
    change = desc > 0
    if s > 1:
        change[1:] &= desc[1:] != desc[:-1]
    rank = torch.cumsum(change, 0) - 1
    slot = torch.where(change & (rank < bound), rank, bound)
    values = torch.zeros(bound + 1, dtype=torch.long, device=dev).scatter_(0, slot, desc)
    starts = torch.zeros(bound + 1, dtype=torch.long, device=dev).scatter_(
        0, slot, torch.arange(s, device=dev))
    head = [t.reshape(()).long() for t in stats] + [change.sum(), (counts > 0).sum()]
    blob = torch.cat([torch.stack(head), values[:bound], starts[:bound]]).tolist()
    k = len(stats)
    num_distinct, nonempty = min(blob[k], bound), blob[k + 1]
    values, starts = blob[k + 2:k + 2 + bound], blob[k + 2 + bound:]
    spectrum = []
    for i in range(num_distinct):
        end = starts[i + 1] if i + 1 < num_distinct else nonempty
        spectrum.append((values[i], end - starts[i]))
    return blob[:k], spectrum


def _from_index(index: Tensor, n: int, dim_size: Optional[int]) -> SegmentLayout:
    index = _index_meta(index, n)
    dev = index.device
    if dim_size is None:
        # The number of segments is a shape: one extra transfer (PyG's layers
        # always pass dim_size).
        lo, hi = torch.stack([index.min(), index.max()]).tolist() if n else (0, -1)
        if lo < 0:
            raise ValueError(f"'index' contains a negative entry ({lo})")
        dim_size = hi + 1
    safe = index.clamp(0, max(dim_size - 1, 0))
    counts = torch.zeros(dim_size, dtype=torch.long, device=dev)
    if dim_size:
        counts.index_add_(0, safe, torch.ones_like(safe))
    zero = torch.zeros((), dtype=torch.long, device=dev)
    stats = [index.min(), index.max(), (index[1:] < index[:-1]).any()] if n else [zero] * 3
    (lo, hi, unsorted), spectrum = _fetch(stats, counts, _spectrum_bound(n))
    if n and lo < 0:
        raise ValueError(f"'index' contains a negative entry ({lo})")
    if n and hi >= dim_size:
        raise ValueError(f"Encountered invalid 'dim_size' ({dim_size}) for this index: 'index' "
                         f"contains {hi}, out of range for dim_size={dim_size} (entries must "
                         f"be < dim_size)")
    perm = torch.argsort(index, stable=True) if unsorted else None
    ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    return SegmentLayout(perm, ptr, counts, spectrum, n, segment_of=index)


def _from_ptr(ptr: Tensor, n: Optional[int], index: Optional[Tensor]) -> SegmentLayout:
    _meta(ptr, "ptr")
    if ptr.dim() != 1 or ptr.numel() == 0:
        raise ValueError(f"'ptr' must be a non-empty one-dimensional tensor "
                         f"(got shape {tuple(ptr.shape)})")
    ptr = ptr.long()
    if n is None:
        n = int(ptr[-1])  # the public ops that take a bare ptr; aggregators know n
    counts = ptr[1:] - ptr[:-1]
    stats = [ptr[0], ptr[-1], (counts < 0).any()]
    if index is not None:
        index = _index_meta(index, n)
        # Element e lies in segment index[e] iff ptr[index[e]] <= e < ptr[index[e] + 1].
        safe = index.clamp(0, counts.numel() - 1) if counts.numel() else index.clamp(0, 0)
        e = torch.arange(n, device=ptr.device)
        bad = (index < 0) | (index >= counts.numel()) if counts.numel() else \
            torch.ones_like(index, dtype=torch.bool)
        if counts.numel():
            bad |= (e < ptr[safe]) | (e >= ptr[safe + 1])
        stats.append(bad.any() if n else torch.zeros((), dtype=torch.long, device=ptr.device))
    head, spectrum = _fetch(stats, counts.clamp(min=0), _spectrum_bound(n))
    first, last, decreasing = head[:3]
    if first != 0:
        raise ValueError(f"'ptr' must start at 0 (got {first})")
    if last != n:
        raise ValueError(f"'ptr' must end at the length of the reduced dimension ({n}), "
                         f"got {last}")
    if decreasing:
        raise ValueError("'ptr' must be non-decreasing")
    if index is not None and head[3]:
        _raise_disagree(index, ptr)
    return SegmentLayout(None, ptr, counts, spectrum, n, segment_of=index)


def _raise_disagree(index: Tensor, ptr: Tensor) -> None:
    counts = ptr[1:] - ptr[:-1]
    expected = torch.repeat_interleave(torch.arange(counts.numel(), device=ptr.device), counts)
    bad = int((index != expected).nonzero()[0])
    raise ValueError(f"'index' and 'ptr' disagree: element {bad} is in segment "
                     f"{int(index[bad])} by 'index' but in segment {int(expected[bad])} "
                     f"by 'ptr' (pass only one of them, or make them agree)")


def single_segment_layout(num_elements: int, dim_size: Optional[int],
                          device: torch.device) -> SegmentLayout:
    """All elements in segment 0 (no ``index``, as PyG's global pooling):
    known without looking at any data."""
    n = num_elements
    num = dim_size if dim_size is not None else (1 if n else 0)
    if n and num < 1:
        raise ValueError(f"Encountered invalid 'dim_size' ({num}) for {n} elements in "
                         f"one segment")
    counts = torch.zeros(num, dtype=torch.long, device=device)
    if num:
        counts[0] = n
    ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    return SegmentLayout(None, ptr, counts, [(n, 1)] if n else [], n)


# The cache ##################################################################

class _LayoutCache:
    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._entries: "OrderedDict[tuple, Tuple[tuple, SegmentLayout]]" = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(tensors: Tuple[Optional[Tensor], ...], extra: tuple) -> Optional[tuple]:
        parts = []
        for t in tensors:
            if t is None:
                parts.append(None)
                continue
            if not isinstance(t, Tensor) or t.is_inference() or t.layout != torch.strided:
                return None  # inference tensors have no version counter to check
            parts.append((t.device, t.dtype, t.data_ptr(), t.storage_offset(), tuple(t.shape),
                          tuple(t.stride()), t._version))
        return tuple(parts) + extra

    def get(self, key: tuple) -> Optional[SegmentLayout]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple, held: tuple, layout: SegmentLayout) -> None:
        with self._lock:
            self._entries[key] = (held, layout)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHE = _LayoutCache()


def clear_layout_cache() -> None:
    """Forget every cached :class:`SegmentLayout`."""
    _CACHE.clear()


def segment_layout(index: Optional[Tensor] = None, ptr: Optional[Tensor] = None,
                   num_elements: Optional[int] = None, dim_size: Optional[int] = None,
                   cache: bool = True) -> SegmentLayout:
    """Validate ``index`` (COO, any order) or ``ptr`` (CSR; both may be
    given, then they must agree) for ``num_elements`` elements and
    ``dim_size`` segments, and group the elements by segment.

    Costs one device-to-host transfer (two for an ``index`` without
    ``dim_size``), none when the layout of the same tensor is cached.
    Raises ``ValueError``/``TypeError`` naming the problem for bad input.
    """
    if index is None and ptr is None:
        raise ValueError("one of 'index' or 'ptr' must be given")
    if num_elements is None and index is not None:
        num_elements = index.numel() if isinstance(index, Tensor) else None
    key = _CACHE.key((index, ptr), (num_elements, dim_size)) if cache else None
    if key is not None:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
    if ptr is not None:
        layout = _from_ptr(ptr, num_elements, index)
    else:
        layout = _from_index(index, num_elements, dim_size)
    if key is not None:
        _CACHE.put(key, (index, ptr), layout)
    return layout
