"""Transforms of loaded data that experiments share: bag-of-words feature
weighting and the inductive view of a heterogeneous graph.

Both keep sparse inputs sparse (the GTN sets' features are large, mostly
zero bag-of-words matrices).
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import torch
from torch import Tensor

#: What :func:`preprocess_features` does with the features.
FEATURE_TRANSFORMS = ("raw", "row", "tfidf")

__all__ = ["FEATURE_TRANSFORMS", "preprocess_features", "inductive_edges"]


def preprocess_features(x: Tensor, how: str) -> Tensor:
    """``x`` as is (``raw``), each row divided by its sum (``row``), or
    TF-IDF (``tfidf``: smooth idf over the rows, as scikit-learn's
    ``TfidfTransformer``, then unit L2 rows). Sparse in, sparse out."""
    if how not in FEATURE_TRANSFORMS:
        raise ValueError(f"unknown feature transform {how!r}; choose from {FEATURE_TRANSFORMS}")
    if how == "raw":
        return x
    sparse = x.is_sparse
    x = (x if sparse else x.to_sparse()).coalesce()
    idx, val = x.indices(), x.values()
    n, f = x.shape
    if how == "tfidf":
        df = torch.zeros(f, dtype=val.dtype).index_add_(0, idx[1], torch.ones_like(val))
        val = val * (torch.log((1 + n) / (1 + df)) + 1)[idx[1]]
        norm = torch.zeros(n, dtype=val.dtype).index_add_(0, idx[0], val * val).sqrt()
    else:
        norm = torch.zeros(n, dtype=val.dtype).index_add_(0, idx[0], val)
    out = torch.sparse_coo_tensor(idx, val / norm.clamp_min(1e-12)[idx[0]], x.shape,
                                  check_invariants=False).coalesce()
    return out if sparse else out.to_dense()


def inductive_edges(data: Any, target: str, hidden: Tensor) -> Dict[Tuple[str, str, str], Tensor]:
    """The edges of a heterogeneous graph (``data.edge_index_dict``) that
    touch no ``hidden`` node (a boolean mask) of type ``target``: the graph
    an inductive protocol trains (or validates) on."""
    out = {}
    for rel, edge_index in data.edge_index_dict.items():
        keep = edge_index.new_ones(edge_index.size(1), dtype=bool)
        if rel[0] == target:
            keep &= ~hidden[edge_index[0]]
        if rel[2] == target:
            keep &= ~hidden[edge_index[1]]
        out[rel] = edge_index[:, keep]
    return out
