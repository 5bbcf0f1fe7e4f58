"""Transforms of loaded data that experiments share: bag-of-words feature
weighting, the inductive view of a heterogeneous graph and neighbour
sampling of one.

The first two keep sparse inputs sparse (the GTN sets' features are large,
mostly zero bag-of-words matrices).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

#: What :func:`preprocess_features` does with the features.
FEATURE_TRANSFORMS = ("raw", "row", "tfidf")

__all__ = ["FEATURE_TRANSFORMS", "preprocess_features", "inductive_edges", "sample_neighbors",
           "check_num_neighbors"]


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


def check_num_neighbors(num_neighbors: Sequence[int], name: str = "num_neighbors") -> None:
    """One fan-out per hop, each a positive integer or -1 (all); ``name``
    is the option named in the error."""
    if not num_neighbors:
        raise ValueError(f"{name} is empty: give one fan-out per hop (e.g. 25 20)")
    for k in num_neighbors:
        if isinstance(k, bool) or not isinstance(k, int) or (k < 1 and k != -1):
            raise ValueError(f"{name} must be positive integers or -1 (all); "
                             f"got {list(num_neighbors)}")


def _check_sampling(edge_index_dict, num_nodes_dict, seeds, num_neighbors) -> None:
    check_num_neighbors(num_neighbors)
    for rel, edge_index in edge_index_dict.items():
        for end in (rel[0], rel[-1]):
            if end not in num_nodes_dict:
                raise ValueError(f"relation {rel} has node type '{end}', which is not in "
                                 f"num_nodes_dict ({sorted(num_nodes_dict)})")
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise ValueError(f"edge index of {rel} must have shape (2, E); "
                             f"got {tuple(edge_index.shape)}")
    for t, idx in seeds.items():
        if t not in num_nodes_dict:
            raise ValueError(f"seed node type '{t}' is not in num_nodes_dict "
                             f"({sorted(num_nodes_dict)})")
        if idx.dtype == torch.bool:
            raise ValueError(f"seeds of '{t}' must be node indices, not a mask "
                             f"(use mask.nonzero().view(-1))")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_nodes_dict[t]):
            raise ValueError(f"seeds of '{t}' must lie in [0, {num_nodes_dict[t]}); got "
                             f"[{int(idx.min())}, {int(idx.max())}]")


def sample_neighbors(edge_index_dict: Mapping[Tuple[str, str, str], Tensor],
                     num_nodes_dict: Mapping[str, int], seeds: Mapping[str, Tensor],
                     num_neighbors: Sequence[int],
                     generator: Optional[torch.Generator] = None
                     ) -> Dict[Tuple[str, str, str], Tensor]:
    """The edges of a sampled neighbourhood of ``seeds``, as the neighbour
    sampling of GraphSAGE (Hamilton et al., 2017) on the union of a
    heterogeneous graph's relations, which is how LATTE's authors sample
    their mini-batches (Tran & Gao, 2020, https://arxiv.org/abs/2009.08072;
    fan-outs 25 and 20).

    At hop ``h`` every node reached so far (the seeds, then the sources of
    the edges drawn so far) draws ``num_neighbors[h]`` of its incoming edges,
    uniformly without replacement over all relations into its type (all of
    them where it has fewer, or where the fan-out is -1). The drawn edges of
    all hops are kept; a seed thus draws at every hop.

    Args:
        edge_index_dict: ``{(src, rel, dst): edge_index}``; an edge carries
            a message from ``edge_index[0]`` to ``edge_index[1]``.
        num_nodes_dict: number of nodes of each type.
        seeds: ``{node type: indices}`` of the nodes to sample around.
        num_neighbors: one fan-out per hop.
        generator: random source (default: torch's global one).

    Returns:
        ``{relation: edge_index}``: every relation of ``edge_index_dict``,
        with its sampled edges in their original order (possibly none), in
        the graph's own node indices.
    """
    _check_sampling(edge_index_dict, num_nodes_dict, seeds, num_neighbors)
    offset, total = {}, 0
    for t, n in num_nodes_dict.items():
        offset[t], total = total, total + int(n)
    rels = list(edge_index_dict)
    sizes = [edge_index_dict[r].size(1) for r in rels]
    if not sum(sizes):
        return {r: edge_index_dict[r].clone() for r in rels}
    src = torch.cat([edge_index_dict[r][0] + offset[r[0]] for r in rels])
    dst = torch.cat([edge_index_dict[r][1] + offset[r[-1]] for r in rels])
    reached = torch.zeros(total, dtype=torch.bool, device=src.device)
    for t, idx in seeds.items():
        reached[idx.to(src.device) + offset[t]] = True
    drawn = torch.zeros(src.numel(), dtype=torch.bool, device=src.device)
    for fanout in num_neighbors:
        candidates = reached[dst].nonzero().view(-1)
        if fanout == -1:
            chosen = candidates
        else:  # a random order, then grouped by target: the first `fanout` of each group
            key = torch.rand(candidates.numel(), generator=generator).to(src.device)
            order = key.argsort()
            order = order[dst[candidates[order]].argsort(stable=True)]
            target = dst[candidates[order]]
            position = torch.arange(target.numel(), device=src.device)
            first = torch.ones_like(target, dtype=torch.bool)
            first[1:] = target[1:] != target[:-1]
            start = torch.where(first, position, torch.zeros_like(position)).cummax(0).values
            chosen = candidates[order[position - start < fanout]]
        drawn[chosen] = True
        reached[src[chosen]] = True
    return {r: edge_index_dict[r][:, keep]
            for r, keep in zip(rels, drawn.split(sizes))}
