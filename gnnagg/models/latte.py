"""LATTE: layer-stacked attention over meta-relations of growing order."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn.aggr import Aggregation

from ..nn.latte import EdgeType, LATTEConv, Metadata, NodeType

Relation = Tuple[str, str, str]


def chain_relations(first_order: Sequence[EdgeType], order: int) -> List[List[EdgeType]]:
    """The relations of orders ``1 .. order`` by their types alone.

    An order-``t`` relation joins an order-``(t-1)`` relation ``a`` and a
    first-order one ``b`` whose types chain (target of ``a`` = source of
    ``b``); its name is ``'<a name>.<b name>'``. Returns one list per order.
    """
    if order < 1:
        raise ValueError(f"'order' must be at least 1 (got {order})")
    levels = [[tuple(r) for r in first_order]]
    for _ in range(order - 1):
        levels.append([(a[0], f"{a[1]}.{b[1]}", b[2])
                       for a in levels[-1] for b in levels[0] if a[2] == b[0]])
    return levels


def compose_adjacency(a: Tensor, b: Tensor) -> Tensor:
    r"""``A_a diag(1 / (coldeg(A_a) + rowdeg(A_b))) A_b`` for two sparse COO
    matrices ``A_a`` (``n_src x n_mid``) and ``A_b`` (``n_mid x n_dst``), as in
    LATTE (https://arxiv.org/abs/2009.08072): the middle nodes' degrees damp
    the number of paths through hubs. Degrees count stored entries."""
    if a.size(1) != b.size(0):
        raise ValueError(f"cannot chain a {tuple(a.shape)} relation with a "
                         f"{tuple(b.shape)} one")
    a, b = a.coalesce(), b.coalesce()
    mid = a.size(1)
    deg = torch.zeros(mid, dtype=a.dtype)
    deg.index_add_(0, a.indices()[1], torch.ones_like(a.values()))
    deg.index_add_(0, b.indices()[0], torch.ones_like(b.values()))
    scale = deg.clamp(min=1).reciprocal()
    a = torch.sparse_coo_tensor(a.indices(), a.values() * scale[a.indices()[1]], a.shape,
                                is_coalesced=True, check_invariants=False)
    return torch.sparse.mm(a, b).coalesce()


def _as_sparse(edge_index: Tensor, shape: Tuple[int, int]) -> Tensor:
    return torch.sparse_coo_tensor(edge_index, torch.ones(edge_index.size(1)), shape,
                                   check_invariants=False).coalesce()


def compose_relations(edge_index_dict: Dict[EdgeType, Tensor], num_nodes_dict: Dict[NodeType, int],
                      order: int, wanted: Optional[Sequence[EdgeType]] = None,
                      ) -> List[Dict[EdgeType, Tuple[Tensor, Tensor]]]:
    """Relations of order ``1 .. order``: ``{relation: (edge_index, weight)}``
    per order (see :func:`chain_relations`, :func:`compose_adjacency`).

    With ``wanted``, only those relations (of any order) and the lower-order
    ones they are composed from are computed; each product runs once.
    """
    levels = chain_relations(list(edge_index_dict), order)
    if wanted is not None:
        wanted = {tuple(r) for r in wanted}
        unknown = wanted - {r for level in levels for r in level}
        if unknown:
            raise ValueError(f"relations {sorted(unknown)} are not of order <= {order}")
        for t in range(order - 1, 0, -1):  # a wanted a.b needs a
            for rel in levels[t]:
                if rel in wanted:
                    a_name = rel[1].rsplit(".", 1)[0]
                    wanted.update(r for r in levels[t - 1] if r[0] == rel[0] and r[1] == a_name)
        levels = [levels[0]] + [[r for r in level if r in wanted] for level in levels[1:]]
    shape = lambda r: (num_nodes_dict[r[0]], num_nodes_dict[r[2]])
    first = {r: _as_sparse(edge_index_dict[r], shape(r)) for r in levels[0]}
    matrices = [first]
    for level in levels[1:]:
        prev, current = matrices[-1], {}
        for rel in level:
            a_name, b_name = rel[1].rsplit(".", 1)
            a = next(r for r in prev if r[0] == rel[0] and r[1] == a_name)
            b = next(r for r in first if r[1] == b_name and r[0] == a[2] and r[2] == rel[2])
            current[rel] = compose_adjacency(prev[a], first[b])
        matrices.append(current)
    return [{r: (m.indices(), m.values()) for r, m in level.items()} for level in matrices]


def _by_target(edge_index: Tensor, weight: Tensor) -> Tuple[Tensor, Tensor]:
    # Sorted by (target, source) once, so layers never sort again.
    key = edge_index[1] * (int(edge_index[0].max()) + 1 if edge_index.numel() else 1) + edge_index[0]
    order = torch.argsort(key)
    return edge_index[:, order], weight[order]


class LATTE(nn.Module):
    r"""LATTE from `"Layer-stacked Attention for Heterogeneous Network
    Embedding" <https://arxiv.org/abs/2009.08072>`_ (Tran & Gao, 2020).

    Layer :math:`t` is a :class:`~gnnagg.nn.LATTEConv` over the relations of
    order :math:`t`: the first-order edge types, then their compositions
    (e.g. paper-author-paper at :math:`t = 2`) with the adjacency
    :math:`A_a\,\mathrm{diag}(1/(\mathrm{coldeg}(A_a) +
    \mathrm{rowdeg}(A_b)))\,A_b` (:func:`compose_adjacency`). The sparse
    products are computed once per graph and cached. The target type's
    outputs of all layers are concatenated, passed through dropout and a
    linear classifier:

    .. math::
        \hat{\mathbf{y}}_i = W_o\, \mathrm{Dropout}\big(\mathbf{h}_i^1
            \,\Vert\, \cdots \,\Vert\, \mathbf{h}_i^T\big).

    Args:
        in_channels (Dict[str, int]): feature size per node type.
        out_channels (int): number of classes.
        metadata (Tuple[List[str], List[Tuple[str, str, str]]]): node types
            and first-order edge types (include reverse types).
        target_node_type (str): the type that is classified.
        hidden_channels (int, optional): :math:`d`. (default: :obj:`128`)
        num_layers (int, optional): :math:`T`, also the highest relation
            order. (default: :obj:`2`)
        aggr (str or Aggregation class, optional): per-relation aggregation,
            see :class:`~gnnagg.nn.LATTEConv`. (default: :obj:`"sum"`)
        dropout (float, optional): dropout before the classifier.
            (default: :obj:`0.4`)
        attn_dropout (float, optional): attention dropout. (default: :obj:`0.2`)
        cumulative (bool, optional): let layer :math:`t` also use the
            relations of lower order (the paper's layer uses order :math:`t`
            only). (default: :obj:`False`)
    """

    def __init__(self, in_channels: Dict[NodeType, int], out_channels: int, metadata: Metadata,
                 target_node_type: NodeType, hidden_channels: int = 128, num_layers: int = 2,
                 aggr: Union[str, type] = "sum", dropout: float = 0.4, attn_dropout: float = 0.2,
                 cumulative: bool = False) -> None:
        super().__init__()
        node_types, relations = list(metadata[0]), [tuple(r) for r in metadata[1]]
        missing = [t for t in node_types if t not in in_channels]
        if missing:
            raise ValueError(f"'in_channels' lacks the node types {missing}")
        if target_node_type not in node_types:
            raise ValueError(f"target node type '{target_node_type}' is not among {node_types}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive int (got {num_layers!r})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"'dropout' must be in [0, 1) (got {dropout})")
        self.in_channels = dict(in_channels)
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.target_node_type = target_node_type
        self.first_order: List[EdgeType] = relations
        self.dropout = dropout
        self.cumulative = cumulative
        self.aggr = aggr
        self.levels = chain_relations(relations, num_layers)
        # Only what reaches the target type is built: the last layer needs
        # the target's relations, layer t - 1 the types those read from.
        # (Outputs that can never reach the classifier are skipped; the
        # target's embedding is unchanged.)
        self.layer_rels: List[List[EdgeType]] = [[] for _ in range(num_layers)]
        outputs: List[set] = [set() for _ in range(num_layers)]
        needed = {target_node_type}
        for t in range(num_layers - 1, -1, -1):
            outputs[t] = needed
            self.layer_rels[t] = [r for r in self.layer_relations(t) if r[2] in needed]
            needed = needed | {r[0] for r in self.layer_rels[t]}
        self.convs = nn.ModuleList()
        for t in range(num_layers):
            rels = self.layer_rels[t]
            types = sorted(outputs[t] | {r[0] for r in rels}, key=node_types.index)
            self.convs.append(LATTEConv(
                {k: v for k, v in self.in_channels.items() if k in types} if t == 0
                else hidden_channels, hidden_channels, (types, rels), aggr=aggr,
                attn_dropout=attn_dropout,
                output_node_types=sorted(outputs[t], key=node_types.index)))
        self.classifier = nn.Linear(hidden_channels * num_layers, out_channels)
        self._cache: Dict[tuple, Tuple[tuple, List[Dict[EdgeType, Tuple[Tensor, Tensor]]]]] = {}

    def layer_relations(self, t: int) -> List[EdgeType]:
        """The relations of layer ``t`` (0-based) by the paper, before those
        that cannot reach the target are dropped (``layer_rels``)."""
        if self.cumulative:
            return [r for level in self.levels[:t + 1] for r in level]
        return list(self.levels[t])

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        self.classifier.reset_parameters()

    def relations(self, edge_index_dict: Dict[EdgeType, Tensor],
                  num_nodes_dict: Dict[NodeType, int]) -> Dict[EdgeType, Tensor]:
        """All relations up to order ``num_layers`` for this graph (cached:
        the sparse products run once per distinct graph)."""
        missing = [r for r in self.first_order if r not in edge_index_dict]
        if missing:
            raise ValueError(f"edge_index_dict lacks the relations {missing}")
        key = tuple((r, edge_index_dict[r].data_ptr(), edge_index_dict[r].size(1))
                    for r in self.first_order) + tuple(sorted(num_nodes_dict.items()))
        if key not in self._cache:
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            sub = {r: edge_index_dict[r] for r in self.first_order}
            wanted = [r for rels in self.layer_rels for r in rels]
            levels = [{r: _by_target(ei, w) for r, (ei, w) in level.items()}
                      for level in compose_relations(sub, num_nodes_dict, self.num_layers,
                                                     wanted=wanted)]
            # The key's tensors are held so their memory (and data_ptr) is not reused.
            self._cache[key] = (tuple(sub.values()), levels)
        levels = self._cache[key][1]
        return {r: ei for level in levels for r, (ei, _) in level.items()}

    def embed(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
              return_proximity_loss: bool = False):
        """The concatenated per-layer embeddings of the target type (and the
        summed proximity loss of all layers when asked)."""
        num_nodes = {t: x.size(0) for t, x in x_dict.items()}
        relations = self.relations(edge_index_dict, num_nodes)
        h, outputs = x_dict, []
        proximity = None
        for conv in self.convs:
            result = conv(h, relations, return_proximity_loss=return_proximity_loss)
            if return_proximity_loss:
                h, loss = result
                proximity = loss if proximity is None else proximity + loss
            else:
                h = result
            outputs.append(h[self.target_node_type])
        emb = torch.cat(outputs, dim=-1)
        return (emb, proximity) if return_proximity_loss else emb

    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
                return_proximity_loss: bool = False):
        """Class logits of every target node (and the proximity loss when asked)."""
        result = self.embed(x_dict, edge_index_dict, return_proximity_loss)
        emb, proximity = result if return_proximity_loss else (result, None)
        logits = self.classifier(F.dropout(emb, p=self.dropout, training=self.training))
        return (logits, proximity) if return_proximity_loss else logits

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
                f"target='{self.target_node_type}', aggr='{self.aggr}', "
                f"cumulative={self.cumulative})")


__all__ = ["LATTE", "chain_relations", "compose_adjacency", "compose_relations"]
