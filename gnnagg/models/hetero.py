"""Baselines for node classification on heterogeneous graphs: HAN, HGT,
R-GCN and a heterogeneous GraphSAGE, built from PyG's layers.

Every model takes plain arguments (``in_channels`` per node type,
``hidden_channels``, ``out_channels``, ``metadata``, ``target``,
``num_layers``, ...), accepts sparse node features (projected per type with
:func:`gnnagg.nn.latte.typed_linear`, never densified) and returns the class
logits of the ``target`` type's nodes from ``model(x_dict, edge_index_dict)``.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..aggr import message_channels, resolve
from ..nn.latte import EdgeType, Metadata, NodeType, typed_linear
from ..nn.relations import GraphCache, chain_relations, compose_relations

__all__ = ["TypedInput", "HAN", "HGT", "RGCN", "HeteroSAGE"]


class TypedInput(nn.Module):
    """A linear map per node type to a shared size; accepts sparse features."""

    def __init__(self, in_channels: Dict[NodeType, int], out_channels: int) -> None:
        super().__init__()
        self.lins = nn.ModuleDict({t: nn.Linear(c, out_channels) for t, c in in_channels.items()})

    def reset_parameters(self) -> None:
        for lin in self.lins.values():
            lin.reset_parameters()

    def forward(self, x_dict: Dict[NodeType, Tensor]) -> Dict[NodeType, Tensor]:
        return {t: typed_linear(lin, x_dict[t]) for t, lin in self.lins.items()}


class _Baseline(nn.Module):
    """What the baselines share: their argument checks, the classified node
    type, the dropout rate, and resetting what each builds, in this order:
    ``input`` (a :class:`TypedInput`), ``convs`` and ``classifier``."""

    def __init__(self, in_channels: Dict[NodeType, int], metadata: Metadata, target: NodeType,
                 num_layers: int, dropout: float) -> None:
        super().__init__()
        missing = [t for t in metadata[0] if t not in in_channels]
        if missing:
            raise ValueError(f"'in_channels' lacks the node types {missing}")
        if target not in metadata[0]:
            raise ValueError(f"target node type '{target}' is not among {list(metadata[0])}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive int (got {num_layers!r})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"'dropout' must be in [0, 1) (got {dropout})")
        self.target, self.dropout = target, dropout

    def reset_parameters(self) -> None:
        for module in [self.input, *self.convs, self.classifier]:
            module.reset_parameters()


class HAN(_Baseline):
    """HAN (Wang et al., 2019, https://arxiv.org/abs/1903.07293) with PyG's
    ``HANConv`` over the order-2 meta-paths from the target type back to
    itself (e.g. PAP, PSP), composed as LATTE's relations
    (:func:`gnnagg.nn.relations.compose_relations`, once per graph).

    Args:
        in_channels (Dict[str, int]): feature size per node type (only the
            target's is used).
        hidden_channels (int): total size over heads.
        out_channels (int): number of classes.
        metadata: node types and first-order edge types.
        target (str): the classified node type.
        num_layers (int, optional): ``HANConv`` layers. (default: :obj:`1`)
        heads (int, optional): attention heads. (default: :obj:`8`)
        dropout (float, optional): feature and attention dropout.
            (default: :obj:`0.6`)
    """

    def __init__(self, in_channels: Dict[NodeType, int], hidden_channels: int, out_channels: int,
                 metadata: Metadata, target: NodeType, num_layers: int = 1, heads: int = 8,
                 dropout: float = 0.6) -> None:
        super().__init__(in_channels, metadata, target, num_layers, dropout)
        from torch_geometric.nn import HANConv

        self.first_order = [tuple(r) for r in metadata[1]]
        self.metapaths = [r for r in chain_relations(self.first_order, 2)[1]
                          if r[0] == target and r[2] == target]
        if not self.metapaths:
            raise ValueError(f"no order-2 meta-path leads from '{target}' back to itself")
        # HANConv names parameters after edge types, which cannot hold dots.
        self.renamed = {r: (r[0], r[1].replace(".", "_"), r[2]) for r in self.metapaths}
        self.input = TypedInput({target: in_channels[target]}, hidden_channels)
        self.convs = nn.ModuleList(
            HANConv(hidden_channels, hidden_channels, ([target], list(self.renamed.values())),
                    heads=heads, dropout=dropout) for _ in range(num_layers))
        self.classifier = nn.Linear(hidden_channels, out_channels)
        self._cache = GraphCache()

    def metapath_edges(self, edge_index_dict, num_nodes) -> Dict[EdgeType, Tensor]:
        """The meta-paths' edges for this graph (cached per graph)."""

        def compute() -> Tuple[Dict[EdgeType, Tensor]]:
            sub = {r: edge_index_dict[r] for r in self.first_order}
            levels = compose_relations(sub, num_nodes, 2, wanted=self.metapaths)
            return ({self.renamed[r]: levels[1][r][0] for r in self.metapaths},)

        return self._cache.lookup(edge_index_dict, self.first_order, compute)[0]

    def forward(self, x_dict, edge_index_dict):
        num_nodes = {t: x.size(0) for t, x in x_dict.items()}
        edges = self.metapath_edges(edge_index_dict, num_nodes)
        h = {self.target: F.dropout(self.input(x_dict)[self.target], self.dropout, self.training)}
        for conv in self.convs:
            h = {self.target: F.elu(conv(h, edges)[self.target])}
        return self.classifier(F.dropout(h[self.target], self.dropout, self.training))


class HGT(_Baseline):
    """HGT (Hu et al., 2020, https://arxiv.org/abs/2003.01332) with PyG's
    ``HGTConv`` over the first-order relations.

    Args:
        in_channels, hidden_channels, out_channels, metadata, target: as
            :class:`HAN` (every type's features are used).
        num_layers (int, optional): ``HGTConv`` layers. (default: :obj:`2`)
        heads (int, optional): attention heads. (default: :obj:`4`)
        dropout (float, optional): dropout before every layer. (default: :obj:`0.2`)
    """

    def __init__(self, in_channels: Dict[NodeType, int], hidden_channels: int, out_channels: int,
                 metadata: Metadata, target: NodeType, num_layers: int = 2, heads: int = 4,
                 dropout: float = 0.2) -> None:
        super().__init__(in_channels, metadata, target, num_layers, dropout)
        from torch_geometric.nn import HGTConv

        self.input = TypedInput(in_channels, hidden_channels)
        self.convs = nn.ModuleList(HGTConv(hidden_channels, hidden_channels, metadata, heads=heads)
                                   for _ in range(num_layers))
        self.classifier = nn.Linear(hidden_channels, out_channels)

    def forward(self, x_dict, edge_index_dict):
        h = {t: F.relu(v) for t, v in self.input(x_dict).items()}
        for conv in self.convs:
            h = {t: F.dropout(v, self.dropout, self.training) for t, v in h.items()}
            h = conv(h, edge_index_dict)
        return self.classifier(h[self.target])


class RGCN(_Baseline):
    """R-GCN (Schlichtkrull et al., 2018, https://arxiv.org/abs/1703.06103)
    with PyG's ``RGCNConv`` on the graph made homogeneous, one relation per
    edge type (node offsets in the order of ``metadata[0]``).

    Args:
        in_channels, hidden_channels, out_channels, metadata, target: as
            :class:`HGT`.
        num_layers (int, optional): ``RGCNConv`` layers. (default: :obj:`2`)
        dropout (float, optional): dropout before every layer. (default: :obj:`0.5`)
        num_bases (int, optional): basis decomposition of the relation
            weights. (default: :obj:`None`)
    """

    def __init__(self, in_channels: Dict[NodeType, int], hidden_channels: int, out_channels: int,
                 metadata: Metadata, target: NodeType, num_layers: int = 2, dropout: float = 0.5,
                 num_bases: Optional[int] = None) -> None:
        super().__init__(in_channels, metadata, target, num_layers, dropout)
        from torch_geometric.nn import RGCNConv

        self.node_types = list(metadata[0])
        self.edge_types = [tuple(r) for r in metadata[1]]
        self.input = TypedInput(in_channels, hidden_channels)
        self.convs = nn.ModuleList(RGCNConv(hidden_channels, hidden_channels,
                                            len(self.edge_types), num_bases=num_bases)
                                   for _ in range(num_layers))
        self.classifier = nn.Linear(hidden_channels, out_channels)

    def homogeneous(self, num_nodes: Dict[NodeType, int], edge_index_dict: Dict[EdgeType, Tensor]
                    ) -> Tuple[Tensor, Tensor, Dict[str, int]]:
        """``(edge_index, edge_type, offsets)`` of the homogeneous graph,
        on the edges' device."""
        offsets, start = {}, 0
        for t in self.node_types:
            offsets[t] = start
            start += num_nodes[t]
        parts, types = [], []
        for i, r in enumerate(self.edge_types):
            ei = edge_index_dict[r]
            parts.append(ei + ei.new_tensor([[offsets[r[0]]], [offsets[r[2]]]]))
            types.append(torch.full((ei.size(1),), i, dtype=torch.long, device=ei.device))
        return torch.cat(parts, dim=1), torch.cat(types), offsets

    def forward(self, x_dict, edge_index_dict):
        h_dict = self.input(x_dict)
        num_nodes = {t: h_dict[t].size(0) for t in self.node_types}
        edge_index, edge_type, offsets = self.homogeneous(num_nodes, edge_index_dict)
        h = torch.cat([h_dict[t] for t in self.node_types])
        for conv in self.convs:
            h = F.dropout(F.relu(h), self.dropout, self.training)
            h = conv(h, edge_index, edge_type)
        first = offsets[self.target]
        return self.classifier(h[first:first + num_nodes[self.target]])


class HeteroSAGE(_Baseline):
    """GraphSAGE (Hamilton et al., 2017, https://arxiv.org/abs/1706.02216)
    made heterogeneous with PyG's ``HeteroConv``: one ``SAGEConv`` per edge
    type, summed per target type, after a linear map per node type.

    Args:
        in_channels, hidden_channels, out_channels, metadata, target: as
            :class:`HGT`.
        num_layers (int, optional): layers. (default: :obj:`2`)
        aggr (str, optional): each ``SAGEConv``'s neighbourhood aggregation,
            resolved with :func:`gnnagg.aggr.resolve` (one module per edge
            type and layer). (default: :obj:`"mean"`)
        dropout (float, optional): dropout before every layer. (default: :obj:`0.5`)
    """

    def __init__(self, in_channels: Dict[NodeType, int], hidden_channels: int, out_channels: int,
                 metadata: Metadata, target: NodeType, num_layers: int = 2,
                 aggr: Union[str, Sequence[str]] = "mean", dropout: float = 0.5) -> None:
        super().__init__(in_channels, metadata, target, num_layers, dropout)
        from torch_geometric.nn import HeteroConv, SAGEConv

        self.input = TypedInput(in_channels, hidden_channels)
        width = message_channels("SAGEConv", hidden_channels, hidden_channels)
        self.convs = nn.ModuleList(
            HeteroConv({tuple(r): SAGEConv(hidden_channels, hidden_channels,
                                           aggr=resolve(aggr, channels=width))
                        for r in metadata[1]}, aggr="sum")
            for _ in range(num_layers))
        self.classifier = nn.Linear(hidden_channels, out_channels)

    def forward(self, x_dict, edge_index_dict):
        h = self.input(x_dict)
        for conv in self.convs:
            h = {t: F.dropout(F.relu(v), self.dropout, self.training) for t, v in h.items()}
            h = {**h, **conv(h, edge_index_dict)}
        return self.classifier(h[self.target])
