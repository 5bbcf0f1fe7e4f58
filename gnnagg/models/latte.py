"""LATTE: layer-stacked attention over meta-relations of growing order."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn.latte import EdgeType, LATTEConv, Metadata, NodeType, typed_linear
from ..nn.relations import (GraphCache, adjacency, chain_relations, compose_adjacency,
                            compose_relations, relation_parts, sort_by_target)

#: ``{relation: (edge_index sorted by target, weights or None)}``
Edges = Dict[EdgeType, Tuple[Tensor, Optional[Tensor]]]
LAYER_POOLING = ("concat", "last", "mean", "max")


class LATTE(nn.Module):
    r"""LATTE from `"Layer-stacked Attention for Heterogeneous Network
    Embedding" <https://arxiv.org/abs/2009.08072>`_ (Tran & Gao, 2020).

    Layer :math:`t` is a :class:`~gnnagg.nn.LATTEConv` over the relations of
    order :math:`t`: the first-order edge types, then their compositions
    (e.g. paper-author-paper at :math:`t = 2`) with the adjacency
    :math:`A_b\,\mathrm{diag}(1/(\mathrm{coldeg}(A_b) +
    \mathrm{rowdeg}(A_a)))\,A_a`
    (:func:`gnnagg.nn.relations.compose_adjacency`), whose values reach the
    layer as edge weights (``edge_weight``). The sparse products
    are computed once per graph and cached; with ``edge_threshold`` they are
    instead recomputed every forward, as the authors' code does: layer
    :math:`t` composes its relations from the edges of layer :math:`t-1`'s
    relations whose attention (maximum over heads) is at least the threshold,
    weighted by that attention. Optionally a per-type linear projection with
    ReLU comes first (the authors' ``feature_projection``). The target
    type's outputs of all layers are pooled (concatenated by default), passed
    through dropout and a linear classifier:

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
        heads (int, optional): attention heads per layer. (default: :obj:`2`)
        dropout (float, optional): dropout before the classifier.
            (default: :obj:`0.4`)
        attn_dropout (float, optional): attention dropout. (default: :obj:`0.2`)
        layer_dropout (float, optional): dropout after the input projection
            and after every layer, on all node types. (default: :obj:`0.2`)
        input_projection (bool, optional): a linear map with ReLU per node
            type before the first layer. (default: :obj:`True`)
        layer_pooling (str, optional): how the layers' outputs are combined,
            one of ``'concat'``, ``'last'``, ``'mean'``, ``'max'``.
            (default: :obj:`"concat"`)
        edge_weight (str, optional): how composed relations' weights are
            used, see :class:`~gnnagg.nn.LATTEConv`. (default: :obj:`"attention"`)
        edge_threshold (float, optional): compose the relations of layers
            :math:`t \ge 2` from the previous layer's edges with attention
            at least this (the authors use 0.5); :obj:`None` composes the
            full adjacency once. (default: :obj:`None`)
        num_negatives (int, optional): negatives per edge in the proximity
            loss. (default: :obj:`2`)
        init (str, optional): ``"xavier"`` (the authors': Xavier-normal
            projections and attention, Glorot classifier) or ``"torch"``
            (PyTorch's defaults), see :class:`~gnnagg.nn.LATTEConv`.
            (default: :obj:`"xavier"`)
        cumulative (bool, optional): let layer :math:`t` also use the
            relations of lower order (the paper's layer uses order :math:`t`
            only). (default: :obj:`False`)
    """

    def __init__(self, in_channels: Dict[NodeType, int], out_channels: int, metadata: Metadata,
                 target_node_type: NodeType, hidden_channels: int = 128, num_layers: int = 2,
                 aggr: Union[str, type] = "sum", heads: int = 2, dropout: float = 0.4,
                 attn_dropout: float = 0.2, layer_dropout: float = 0.2,
                 input_projection: bool = True, layer_pooling: str = "concat",
                 edge_weight: str = "attention", edge_threshold: Optional[float] = None,
                 num_negatives: int = 2, init: str = "xavier", cumulative: bool = False) -> None:
        super().__init__()
        node_types, relations = list(metadata[0]), [tuple(r) for r in metadata[1]]
        missing = [t for t in node_types if t not in in_channels]
        if missing:
            raise ValueError(f"'in_channels' lacks the node types {missing}")
        if target_node_type not in node_types:
            raise ValueError(f"target node type '{target_node_type}' is not among {node_types}")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"'num_layers' must be a positive int (got {num_layers!r})")
        for name, p in (("dropout", dropout), ("layer_dropout", layer_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"'{name}' must be in [0, 1) (got {p})")
        if layer_pooling not in LAYER_POOLING:
            raise ValueError(f"'layer_pooling' must be one of {LAYER_POOLING} "
                             f"(got {layer_pooling!r})")
        if edge_threshold is not None and not 0.0 <= edge_threshold <= 1.0:
            raise ValueError(f"'edge_threshold' must be in [0, 1] or None (got {edge_threshold})")
        if not isinstance(num_negatives, int) or num_negatives < 0:
            raise ValueError(f"'num_negatives' must be an int >= 0 (got {num_negatives!r})")
        # heads, attn_dropout, edge_weight and init: every LATTEConv checks them.
        self.in_channels = dict(in_channels)
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.target_node_type = target_node_type
        self.first_order: List[EdgeType] = relations
        self.dropout, self.layer_dropout = dropout, layer_dropout
        self.layer_pooling = layer_pooling
        self.edge_threshold = edge_threshold
        self.num_negatives = num_negatives
        self.init = init
        self.cumulative = cumulative
        self.aggr = aggr
        self.levels = chain_relations(relations, num_layers)
        self.parts = relation_parts(self.levels)
        self.order = {r: t + 1 for t, level in enumerate(self.levels) for r in level}
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
        first_types = sorted(outputs[0] | {r[0] for r in self.layer_rels[0]}, key=node_types.index)
        self.projection = nn.ModuleDict(
            {t: nn.Linear(in_channels[t], hidden_channels) for t in first_types}
            if input_projection else {})
        self.convs = nn.ModuleList()
        for t in range(num_layers):
            rels = self.layer_rels[t]
            types = sorted(outputs[t] | {r[0] for r in rels}, key=node_types.index)
            self.convs.append(LATTEConv(
                {k: v for k, v in self.in_channels.items() if k in types}
                if t == 0 and not input_projection else hidden_channels,
                hidden_channels, (types, rels), aggr=aggr, heads=heads,
                attn_dropout=attn_dropout, edge_weight=edge_weight, init=init,
                output_node_types=sorted(outputs[t], key=node_types.index)))
        width = hidden_channels * (num_layers if layer_pooling == "concat" else 1)
        self.classifier = nn.Linear(width, out_channels)
        self.reset_parameters()
        self._cache = GraphCache()

    def layer_relations(self, t: int) -> List[EdgeType]:
        """The relations of layer ``t`` (0-based) by the paper, before those
        that cannot reach the target are dropped (``layer_rels``)."""
        if self.cumulative:
            return [r for level in self.levels[:t + 1] for r in level]
        return list(self.levels[t])

    def reset_parameters(self) -> None:
        for module in [*self.projection.values(), *self.convs, self.classifier]:
            module.reset_parameters()
        if self.init == "xavier":
            for lin in self.projection.values():
                nn.init.xavier_normal_(lin.weight, gain=nn.init.calculate_gain("relu"))
            nn.init.xavier_uniform_(self.classifier.weight)

    def _graph(self, edge_index_dict: Dict[EdgeType, Tensor], num_nodes_dict: Dict[NodeType, int]):
        missing = [r for r in self.first_order if r not in edge_index_dict]
        if missing:
            raise ValueError(f"edge_index_dict lacks the relations {missing}")

        def compute() -> Tuple[Edges, Dict[EdgeType, Tensor]]:
            sub = {r: edge_index_dict[r] for r in self.first_order}
            wanted = [r for rels in self.layer_rels for r in rels
                      if self.edge_threshold is None or self.order[r] == 1]
            edges: Edges = {}
            for level in compose_relations(sub, num_nodes_dict, self.num_layers, wanted=wanted):
                for r, (ei, w) in level.items():
                    edges[r] = sort_by_target(ei, w if self.order[r] > 1 else None)
            shape = lambda r: (num_nodes_dict[r[0]], num_nodes_dict[r[2]])
            first = ({r: adjacency(sub[r], shape(r)) for r in self.first_order}
                     if self.edge_threshold is not None else {})
            return edges, first

        return self._cache.lookup(edge_index_dict, self.first_order, compute,
                                  tuple(sorted(num_nodes_dict.items())))

    def relations(self, edge_index_dict: Dict[EdgeType, Tensor],
                  num_nodes_dict: Dict[NodeType, int]) -> Edges:
        """The fixed relations for this graph, ``{relation: (edge_index,
        weight)}`` (weight :obj:`None` for first-order ones), cached: the
        sparse products run once per distinct graph. With ``edge_threshold``
        only the first-order relations are fixed."""
        return dict(self._graph(edge_index_dict, num_nodes_dict)[0])

    def _threshold_relation(self, rel: EdgeType, first: Dict[EdgeType, Tensor],
                            alphas: Dict[EdgeType, Tuple[Tensor, Tensor]],
                            num_nodes: Dict[NodeType, int]) -> Tuple[Tensor, Tensor]:
        b, a = self.parts[rel]
        edge_index, alpha = alphas[a]
        score = alpha.max(-1).values
        keep = score >= self.edge_threshold
        if score.numel() and not bool(keep.any()):  # the authors keep the strongest edge
            keep[score.argmax()] = True
        lower = adjacency(edge_index[:, keep], (num_nodes[a[0]], num_nodes[a[2]]), score[keep])
        m = compose_adjacency(first[b], lower)
        return sort_by_target(m.indices(), m.values())

    def _project(self, x_dict: Dict[NodeType, Tensor]) -> Dict[NodeType, Tensor]:
        if not len(self.projection):
            return x_dict
        return {t: F.dropout(F.relu(typed_linear(lin, x_dict[t])), self.layer_dropout,
                             self.training) for t, lin in self.projection.items()}

    def embed(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
              return_proximity_loss: bool = False, return_attention: bool = False):
        """The pooled per-layer embeddings of the target type, then the
        summed proximity loss of all layers and the relation-level attention
        (see :meth:`forward`) when asked."""
        num_nodes = {t: x.size(0) for t, x in x_dict.items()}
        edges, first = self._graph(edge_index_dict, num_nodes)
        edges = dict(edges)
        h, outputs, attention, proximity = self._project(x_dict), [], [], None
        alphas: Dict[EdgeType, Tuple[Tensor, Tensor]] = {}
        for t, conv in enumerate(self.convs):
            if self.edge_threshold is not None and t > 0:
                for r in conv.relations:
                    if self.order[r] == t + 1:
                        edges[r] = self._threshold_relation(r, first, alphas, num_nodes)
            want_alpha = self.edge_threshold is not None and t + 1 < self.num_layers
            result = conv(h, {r: edges[r][0] for r in conv.relations},
                          {r: edges[r][1] for r in conv.relations if edges[r][1] is not None},
                          return_attention_weights=want_alpha or return_attention,
                          return_proximity_loss=return_proximity_loss,
                          num_negatives=self.num_negatives)
            h, extras = (result[0], list(result[1:])) if isinstance(result, tuple) else (result, [])
            if want_alpha or return_attention:
                alphas, betas = extras.pop(0)
                attention.append({nt: (conv.relations_into[nt] + [(nt, "self", nt)], beta)
                                  for nt, beta in betas.items()})
            if return_proximity_loss:
                proximity = extras[0] if proximity is None else proximity + extras[0]
            h = {k: F.dropout(v, self.layer_dropout, self.training) for k, v in h.items()}
            outputs.append(h[self.target_node_type])
        if self.layer_pooling == "concat":
            emb = torch.cat(outputs, dim=-1)
        elif self.layer_pooling == "last":
            emb = outputs[-1]
        elif self.layer_pooling == "mean":
            emb = torch.stack(outputs).mean(0)
        else:
            emb = torch.stack(outputs).max(0).values
        return (emb, *([proximity] if return_proximity_loss else []),
                *([attention] if return_attention else [])) \
            if return_proximity_loss or return_attention else emb

    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
                return_proximity_loss: bool = False, return_attention: bool = False):
        """Class logits of every target node; then, when asked, the
        proximity loss (summed over layers) and the relation-level attention:
        one dict per layer, ``{node type: (relations, beta)}`` with ``beta``
        of shape ``(N, len(relations))``, each row a softmax over the node's
        relations, the last being ``(type, 'self', type)``."""
        result = self.embed(x_dict, edge_index_dict, return_proximity_loss, return_attention)
        emb, extras = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        logits = self.classifier(F.dropout(emb, p=self.dropout, training=self.training))
        return (logits, *extras) if extras else logits

    @torch.no_grad()
    def relation_attention(self, x_dict: Dict[NodeType, Tensor],
                           edge_index_dict: Dict[EdgeType, Tensor],
                           node_type: Optional[NodeType] = None) -> Dict[str, Dict[str, float]]:
        """The relation-level attention of ``node_type``'s nodes (the target
        type by default) averaged over them, in evaluation mode:
        ``{'layer t': {relation name or 'self': mean beta}}``."""
        node_type = node_type or self.target_node_type
        training = self.training
        self.eval()
        _, attention = self(x_dict, edge_index_dict, return_attention=True)
        self.train(training)
        out = {}
        for t, layer in enumerate(attention):
            if node_type in layer:
                relations, beta = layer[node_type]
                out[f"layer {t + 1}"] = {rel[1]: float(m)
                                         for rel, m in zip(relations, beta.mean(0))}
        return out

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"hidden_channels={self.hidden_channels}, num_layers={self.num_layers}, "
                f"target='{self.target_node_type}', aggr='{self.aggr}', "
                f"layer_pooling='{self.layer_pooling}', edge_threshold={self.edge_threshold}, "
                f"cumulative={self.cumulative})")


__all__ = ["LATTE", "LAYER_POOLING"]
