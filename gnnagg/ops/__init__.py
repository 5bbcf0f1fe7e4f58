"""Segment and scatter kernels in plain torch (``torch_scatter`` when
installed), and padding-free ragged reductions."""
from .ragged import (Packed, TreePlan, pack_segments, shuffle_within_segments, sort_segments,
                     tree_depth, tree_plan, tree_reduce)
from .scatter import (REDUCTIONS, degree, index_to_ptr, logsumexp, ptr_to_index, scatter,
                      segment, softmax)

__all__ = [
    "REDUCTIONS", "scatter", "segment", "softmax", "logsumexp", "degree", "ptr_to_index",
    "index_to_ptr", "tree_reduce", "tree_plan", "tree_depth", "TreePlan", "pack_segments",
    "Packed", "sort_segments", "shuffle_within_segments",
]
