"""Relations of higher order on heterogeneous graphs (meta-paths), composed
from the first-order edge types, as LATTE and HAN read them.

An order-``t`` relation chains ``t`` first-order ones whose node types
match; its adjacency is the product of theirs, damped at the middle nodes
(:func:`compose_adjacency`, from LATTE: Tran & Gao, 2020,
https://arxiv.org/abs/2009.08072). :class:`GraphCache` keeps what a model
composes once per graph.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .latte import EdgeType, NodeType

__all__ = ["chain_relations", "relation_parts", "compose_adjacency", "compose_relations",
           "adjacency", "sort_by_target", "GraphCache"]


def chain_relations(first_order: Sequence[EdgeType], order: int) -> List[List[EdgeType]]:
    """The relations of orders ``1 .. order`` by their types alone.

    An order-``t`` relation joins a first-order relation ``b`` and an
    order-``(t-1)`` one ``a`` whose types chain (target of ``b`` = source of
    ``a``); its name is ``'<b name>.<a name>'`` (e.g. ``'PA.AP'``). The
    higher-order part is on the side of the receiving node, as in the
    authors' code. Returns one list per order.
    """
    if order < 1:
        raise ValueError(f"'order' must be at least 1 (got {order})")
    levels = [[tuple(r) for r in first_order]]
    for _ in range(order - 1):
        level = [(b[0], f"{b[1]}.{a[1]}", a[2])
                 for b in levels[0] for a in levels[-1] if b[2] == a[0]]
        if len(set(level)) != len(level):
            raise ValueError("two paths of different node types have the same relation "
                             "names and end types; give the edge types distinct names")
        levels.append(level)
    return levels


def relation_parts(levels: List[List[EdgeType]]) -> Dict[EdgeType, Tuple[EdgeType, EdgeType]]:
    """``{relation of order >= 2: (first-order part b, lower-order part a)}``."""
    parts = {}
    for t in range(1, len(levels)):
        lower = set(levels[t - 1])
        for rel in levels[t]:
            first, rest = rel[1].split(".", 1)
            parts[rel] = next((b, (b[2], rest, rel[2])) for b in levels[0]
                              if b[0] == rel[0] and b[1] == first and (b[2], rest, rel[2]) in lower)
    return parts


def compose_adjacency(a: Tensor, b: Tensor) -> Tensor:
    r"""``A_a diag(1 / (coldeg(A_a) + rowdeg(A_b))) A_b`` for two sparse COO
    matrices ``A_a`` (``n_src x n_mid``) and ``A_b`` (``n_mid x n_dst``), as in
    LATTE (https://arxiv.org/abs/2009.08072; the authors' ``adamic_adar``):
    the middle nodes' degrees damp the number of paths through hubs. Degrees
    are sums of the stored values (counts for unweighted relations)."""
    if a.size(1) != b.size(0):
        raise ValueError(f"cannot chain a {tuple(a.shape)} relation with a "
                         f"{tuple(b.shape)} one")
    a, b = a.coalesce(), b.coalesce()
    deg = torch.zeros(a.size(1), dtype=a.dtype, device=a.device)
    deg.index_add_(0, a.indices()[1], a.values())
    deg.index_add_(0, b.indices()[0], b.values().to(a.dtype))
    scale = torch.where(deg > 0, deg.reciprocal(), torch.zeros_like(deg))
    a = torch.sparse_coo_tensor(a.indices(), a.values() * scale[a.indices()[1]], a.shape,
                                is_coalesced=True, check_invariants=False)
    return torch.sparse.mm(a, b.to(a.dtype)).coalesce()


def adjacency(edge_index: Tensor, shape: Tuple[int, int],
              values: Optional[Tensor] = None) -> Tensor:
    """The coalesced sparse COO adjacency of ``edge_index`` (values: ones)."""
    if values is None:
        values = torch.ones(edge_index.size(1), device=edge_index.device)
    return torch.sparse_coo_tensor(edge_index, values, shape, check_invariants=False).coalesce()


def compose_relations(edge_index_dict: Dict[EdgeType, Tensor], num_nodes_dict: Dict[NodeType, int],
                      order: int, wanted: Optional[Sequence[EdgeType]] = None,
                      ) -> List[Dict[EdgeType, Tuple[Tensor, Tensor]]]:
    """Relations of order ``1 .. order``: ``{relation: (edge_index, weight)}``
    per order (see :func:`chain_relations`, :func:`compose_adjacency`).

    With ``wanted``, only those relations (of any order) and the lower-order
    ones they are composed from are computed; each product runs once.
    """
    levels = chain_relations(list(edge_index_dict), order)
    parts = relation_parts(levels)
    if wanted is not None:
        wanted = {tuple(r) for r in wanted}
        unknown = wanted - {r for level in levels for r in level}
        if unknown:
            raise ValueError(f"relations {sorted(unknown)} are not of order <= {order}")
        for t in range(order - 1, 0, -1):  # a wanted b.a needs a
            wanted.update(parts[r][1] for r in levels[t] if r in wanted)
        levels = [levels[0]] + [[r for r in level if r in wanted] for level in levels[1:]]
    shape = lambda r: (num_nodes_dict[r[0]], num_nodes_dict[r[2]])
    first = {r: adjacency(edge_index_dict[r], shape(r)) for r in levels[0]}
    matrices = [first]
    for level in levels[1:]:
        matrices.append({rel: compose_adjacency(first[parts[rel][0]], matrices[-1][parts[rel][1]])
                         for rel in level})
    return [{r: (m.indices(), m.values()) for r, m in level.items()} for level in matrices]


def sort_by_target(edge_index: Tensor, weight: Optional[Tensor]) -> Tuple[Tensor, Optional[Tensor]]:
    """The edges (and their weights) sorted by (target, source), so that
    the layers that read them never sort again."""
    width = int(edge_index[0].max()) + 1 if edge_index.numel() else 1
    key = edge_index[1] * width + edge_index[0]
    order = torch.argsort(key)
    return edge_index[:, order], None if weight is None else weight[order]


class GraphCache(dict):
    """What a model computes once per graph (composed relations, meta-path
    edges), for the ``size`` graphs it used last (a graph sampled anew at
    every training step does not push out the evaluation graph, which is
    used at every epoch). A graph is known by the
    identity (storage and size) of its edge tensors; the entry holds those
    tensors, so that their memory, and with it the key, is not reused.

    An entry is ``(held tensors, *results)``, a dict item like any other.
    """

    def __init__(self, size: int = 4) -> None:
        super().__init__()
        self.size = size

    def lookup(self, edge_index_dict: Dict[EdgeType, Tensor], relations: Sequence[EdgeType],
               compute: Callable[[], Tuple[Any, ...]], extra_key: tuple = ()) -> Tuple[Any, ...]:
        """``compute()``'s results for this graph (a tuple), computed on
        the first lookup of the graph's ``relations`` (and ``extra_key``)."""
        key = tuple((r, edge_index_dict[r].data_ptr(), edge_index_dict[r].size(1))
                    for r in relations) + tuple(extra_key)
        if key in self:
            self[key] = self.pop(key)  # now the most recently used
        else:
            if len(self) >= self.size:
                self.pop(next(iter(self)))
            self[key] = (tuple(edge_index_dict[r] for r in relations), *compute())
        return self[key][1:]
