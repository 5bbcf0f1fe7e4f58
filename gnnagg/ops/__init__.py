"""Segment and scatter kernels in plain torch (``torch_scatter`` when
installed), and padding-free ragged reductions."""
from .layout import SegmentLayout, clear_layout_cache, segment_layout
from .ragged import (Packed, PackPlan, TreePlan, build_pack_plan, build_tree_plan,
                     pack_segments, shuffle_within_segments, sort_segments, tree_depth,
                     tree_plan, tree_reduce)
from .scatter import (REDUCTIONS, degree, index_to_ptr, logsumexp, ptr_to_index, scatter,
                      segment, softmax)

__all__ = [
    "REDUCTIONS", "scatter", "segment", "softmax", "logsumexp", "degree", "ptr_to_index",
    "index_to_ptr", "tree_reduce", "tree_plan", "tree_depth", "TreePlan", "pack_segments",
    "Packed", "sort_segments", "shuffle_within_segments", "SegmentLayout", "segment_layout",
    "clear_layout_cache", "PackPlan", "build_tree_plan", "build_pack_plan",
]
