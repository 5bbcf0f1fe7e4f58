"""The LATTE layer: node-level attention inside each relation, then
relation-level attention across a node type's relations."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.aggr import Aggregation, SumAggregation
from torch_geometric.utils import softmax

from ..aggr import needs_channels, resolve
from ..ops import index_to_ptr

NodeType = str
EdgeType = Tuple[str, str, str]
Metadata = Tuple[Sequence[NodeType], Sequence[EdgeType]]


def typed_linear(lin: nn.Linear, x: Tensor) -> Tensor:
    """``lin(x)`` for a dense or a sparse (COO/CSR) ``x``: sparse bag-of-words
    features are multiplied without ever being densified."""
    if x.is_sparse or x.layout == torch.sparse_csr:
        # An embedding bag over the stored entries: its backward scatters
        # into the used weight rows instead of transposing ``x`` each step.
        csr = x if x.layout == torch.sparse_csr else x.to_sparse_csr()
        return F.embedding_bag(csr.col_indices(), lin.weight.t(), csr.crow_indices()[:-1],
                               mode="sum", per_sample_weights=csr.values(),
                               include_last_offset=False) + (
            lin.bias if lin.bias is not None else 0.0)
    return lin(x)


class LATTEConv(MessagePassing):
    r"""One layer of LATTE from `"Layer-stacked Attention for Heterogeneous
    Network Embedding" <https://arxiv.org/abs/2009.08072>`_ (Tran & Gao, 2020).

    Every node type :math:`\tau` has two projections :math:`W_l^\tau,
    W_r^\tau`. For a relation :math:`r` from type :math:`\sigma` to type
    :math:`\tau` (messages flow along ``edge_index[0] -> edge_index[1]``),
    node :math:`i` of type :math:`\tau` attends over its neighbours
    :math:`j \in \mathcal{N}_r(i)`:

    .. math::
        e_{ij} &= \mathrm{LeakyReLU}\big(s_r\,(\mathbf{a}_{l,r}^\top
            W_l^\tau \mathbf{h}_i + \mathbf{a}_{r,r}^\top W_r^\sigma
            \mathbf{h}_j)\big), \qquad
        \alpha_{ij} = \mathrm{softmax}_{j \in \mathcal{N}_r(i)}(e_{ij}) \\
        \mathbf{h}_{i,r} &= \mathrm{AGG}_r\big(\{\alpha_{ij}\,
            W_r^\sigma \mathbf{h}_j\}_{j \in \mathcal{N}_r(i)}\big)

    with a learnable sharpening scalar :math:`s_r` per relation and
    :math:`\mathrm{AGG}_r` the sum by default (any aggregator of
    :func:`gnnagg.aggr.resolve`). A linear map of :math:`\mathbf{h}_i` gives
    one logit per relation into :math:`\tau` plus one for the node itself;
    their softmax :math:`\beta` mixes

    .. math::
        \mathbf{h}_i' = \mathrm{ReLU}\Big(\sum_{r} \beta_{i,r}\,
            \mathbf{h}_{i,r} + \beta_{i,\mathrm{self}}\, W_l^\tau
            \mathbf{h}_i\Big).

    Relations of higher order (meta-paths) are given to the layer as edge
    types like any other; see :class:`gnnagg.models.LATTE`.

    Args:
        in_channels (int or Dict[str, int]): input size, per node type or
            shared. Inputs may be sparse tensors.
        out_channels (int): output size :math:`d`.
        metadata (Tuple[List[str], List[Tuple[str, str, str]]]): the node
            types and the relations (edge types) the layer attends over.
        aggr (str or Aggregation, optional): per-relation aggregation of
            the attention-weighted messages, resolved with
            :func:`gnnagg.aggr.resolve` (one module per relation; channels
            are passed when the aggregator needs them). (default: :obj:`"sum"`)
        attn_dropout (float, optional): dropout on the node-level attention
            coefficients. (default: :obj:`0.2`)
        negative_slope (float, optional): LeakyReLU slope on the attention
            logits. (default: :obj:`0.2`)
        bias (bool, optional): biases in the projections. (default: :obj:`True`)
        output_node_types (List[str], optional): the node types whose
            outputs are computed (others only send messages); all when
            :obj:`None`. (default: :obj:`None`)
    """

    def __init__(self, in_channels: Union[int, Dict[NodeType, int]], out_channels: int,
                 metadata: Metadata, aggr: Union[str, Aggregation] = "sum",
                 attn_dropout: float = 0.2, negative_slope: float = 0.2,
                 bias: bool = True, output_node_types: Optional[Sequence[NodeType]] = None,
                 ) -> None:
        super().__init__(aggr=None, node_dim=0)
        node_types, relations = list(metadata[0]), [tuple(r) for r in metadata[1]]
        if not isinstance(out_channels, int) or out_channels <= 0:
            raise ValueError(f"'out_channels' must be a positive int (got {out_channels!r})")
        if not 0.0 <= attn_dropout < 1.0:
            raise ValueError(f"'attn_dropout' must be in [0, 1) (got {attn_dropout})")
        for rel in relations:
            if len(rel) != 3 or rel[0] not in node_types or rel[2] not in node_types:
                raise ValueError(f"relation {rel!r} is not (source type, name, target "
                                 f"type) over the node types {node_types}")
        if isinstance(in_channels, int):
            in_channels = {t: in_channels for t in node_types}
        missing = [t for t in node_types if t not in in_channels]
        if missing:
            raise ValueError(f"'in_channels' lacks the node types {missing}")
        outputs = list(node_types if output_node_types is None else output_node_types)
        if any(t not in node_types for t in outputs):
            raise ValueError(f"'output_node_types' {outputs} must be among {node_types}")
        stray = [r for r in relations if r[2] not in outputs]
        if stray:
            raise ValueError(f"relations {stray} end in node types without outputs")
        if isinstance(aggr, Aggregation) and len(relations) > 1:
            raise ValueError("give 'aggr' as a name or class: one module per relation "
                             "is built from it")

        self.in_channels = dict(in_channels)
        self.out_channels = out_channels
        self.node_types = node_types
        self.output_node_types = outputs
        sources = sorted({r[0] for r in relations}, key=node_types.index)
        self.relations: List[EdgeType] = relations
        self.aggr_name = aggr if isinstance(aggr, str) else type(aggr).__name__
        self.attn_dropout = attn_dropout
        self.negative_slope = negative_slope
        self.relations_into: Dict[NodeType, List[EdgeType]] = {
            t: [r for r in relations if r[2] == t] for t in outputs}

        self.lin_l = nn.ModuleDict({t: nn.Linear(in_channels[t], out_channels, bias=bias)
                                    for t in outputs})
        self.lin_r = nn.ModuleDict({t: nn.Linear(in_channels[t], out_channels, bias=bias)
                                    for t in sources})
        self.rel_attn = nn.ModuleDict({
            t: nn.Linear(in_channels[t], len(self.relations_into[t]) + 1, bias=True)
            for t in outputs})
        keys = [self.key(r) for r in relations]
        self.att_l = nn.ParameterDict({k: nn.Parameter(torch.empty(out_channels)) for k in keys})
        self.att_r = nn.ParameterDict({k: nn.Parameter(torch.empty(out_channels)) for k in keys})
        self.sharpening = nn.ParameterDict({k: nn.Parameter(torch.empty(1)) for k in keys})
        channels = ({"in_channels": out_channels, "out_channels": out_channels}
                    if needs_channels(aggr) else {})
        self.aggrs = nn.ModuleDict({k: resolve(aggr, **channels) if not isinstance(aggr, Aggregation)
                                    else aggr for k in keys})
        self.reset_parameters()

    @staticmethod
    def key(relation: EdgeType) -> str:
        """The relation's name in parameter dicts (``'src__name__dst'``, with
        the dots of composed names as ``'-'``: module names cannot hold dots)."""
        return "__".join(relation).replace(".", "-")

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for module in [*self.lin_l.values(), *self.lin_r.values(), *self.rel_attn.values()]:
            module.reset_parameters()
        for vec in [*self.att_l.values(), *self.att_r.values()]:
            nn.init.normal_(vec, std=self.out_channels ** -0.5)
        for s in self.sharpening.values():
            nn.init.ones_(s)
        for aggr in self.aggrs.values():
            if hasattr(aggr, "reset_parameters"):
                aggr.reset_parameters()

    def _check_inputs(self, x_dict: Dict[NodeType, Tensor],
                      edge_index_dict: Dict[EdgeType, Tensor]) -> None:
        for t in set(self.lin_l) | set(self.lin_r):
            if t not in x_dict:
                raise ValueError(f"LATTEConv: no input for node type '{t}'")
            if x_dict[t].dim() != 2 or x_dict[t].size(1) != self.in_channels[t]:
                raise ValueError(f"LATTEConv: input of '{t}' has shape "
                                 f"{tuple(x_dict[t].shape)}, expected (N, {self.in_channels[t]})")
        for rel in self.relations:
            if rel not in edge_index_dict:
                raise ValueError(f"LATTEConv: no edge_index for relation {rel}")

    def attention_logits(self, relation: EdgeType, left: Tensor, right: Tensor,
                         edge_index: Tensor) -> Tensor:
        """:math:`s_r(\\mathbf{a}_l^\\top l_i + \\mathbf{a}_r^\\top r_j)` for the
        pairs ``edge_index`` (before the LeakyReLU): ``left`` are the targets'
        :math:`W_l` projections, ``right`` the sources' :math:`W_r` ones."""
        k = self.key(relation)
        score_l = (left * self.att_l[k]).sum(-1)
        score_r = (right * self.att_r[k]).sum(-1)
        return self.sharpening[k] * (score_l[edge_index[1]] + score_r[edge_index[0]])

    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
                return_attention_weights: bool = False, return_proximity_loss: bool = False,
                num_negatives: int = 1):
        r"""Args:
            x_dict (Dict[str, Tensor]): node features per type (dense or sparse).
            edge_index_dict (Dict[Tuple[str, str, str], Tensor]): the
                relations' edges, ``(2, E)`` from source to target.
            return_attention_weights (bool, optional): also return
                ``{relation: (edge_index, alpha)}`` and
                ``{node type: beta}``. (default: :obj:`False`)
            return_proximity_loss (bool, optional): also return the
                proximity loss: observed edges scored by the attention
                logits against as many random negative sources each.
                (default: :obj:`False`)
            num_negatives (int, optional): negatives per edge. (default: :obj:`1`)

        Returns:
            ``out_dict``, then the optional extras in the order above.
        """
        self._check_inputs(x_dict, edge_index_dict)
        left = {t: typed_linear(self.lin_l[t], x_dict[t]) for t in self.lin_l}
        right = {t: typed_linear(self.lin_r[t], x_dict[t]) for t in self.lin_r}
        alphas: Dict[EdgeType, Tuple[Tensor, Tensor]] = {}
        betas: Dict[NodeType, Tensor] = {}
        proximity = left[self.output_node_types[0]].new_zeros(())
        out_dict: Dict[NodeType, Tensor] = {}
        for t in self.output_node_types:
            n = left[t].size(0)
            per_relation = []
            for rel in self.relations_into[t]:
                src = rel[0]
                edge_index = edge_index_dict[rel]
                logits = self.attention_logits(rel, left[t], right[src], edge_index)
                alpha = softmax(F.leaky_relu(logits, self.negative_slope), edge_index[1],
                                num_nodes=n)
                if return_attention_weights:
                    alphas[rel] = (edge_index, alpha.detach())
                alpha = F.dropout(alpha, p=self.attn_dropout, training=self.training)
                aggr_module = self.aggrs[self.key(rel)]
                if type(aggr_module) is SumAggregation:
                    per_relation.append(self._weighted_sum(edge_index, alpha, right[src], n))
                else:
                    per_relation.append(self.propagate(
                        edge_index, x=(right[src], None), alpha=alpha,
                        aggr_module=aggr_module, size=(right[src].size(0), n)))
                if return_proximity_loss and edge_index.size(1) > 0:
                    proximity = proximity + self._proximity(rel, left[t], right[src],
                                                            logits, edge_index, num_negatives)
            beta = torch.softmax(typed_linear(self.rel_attn[t], x_dict[t]), dim=-1)
            betas[t] = beta
            stacked = torch.stack(per_relation + [left[t]], dim=1)  # (N, |R|+1, d)
            out_dict[t] = F.relu((beta.unsqueeze(-1) * stacked).sum(1))
        extras = []
        if return_attention_weights:
            extras.append((alphas, betas))
        if return_proximity_loss:
            extras.append(proximity)
        return (out_dict, *extras) if extras else out_dict

    def _proximity(self, rel: EdgeType, left: Tensor, right: Tensor, pos_logits: Tensor,
                   edge_index: Tensor, num_negatives: int) -> Tensor:
        # Negatives keep each edge's target and draw a uniform random source.
        target = edge_index[1].repeat(num_negatives)
        source = torch.randint(0, right.size(0), target.shape, device=target.device)
        neg_logits = self.attention_logits(rel, left, right, torch.stack([source, target]))
        return F.softplus(-pos_logits).mean() + F.softplus(neg_logits).mean()

    @staticmethod
    def _weighted_sum(edge_index: Tensor, alpha: Tensor, x: Tensor, num_targets: int) -> Tensor:
        # The default sum as one sparse (alpha) x dense product: memory O(E)
        # rather than the O(E d) of materialised messages, which matters for
        # composed relations with millions of pairs (ACM's paper-subject-paper).
        target, source = edge_index[1], edge_index[0]
        if target.numel() > 1 and bool((target[1:] < target[:-1]).any()):
            order = torch.argsort(target, stable=True)
            target, source, alpha = target[order], source[order], alpha[order]
        adj = torch.sparse_csr_tensor(index_to_ptr(target, num_targets), source, alpha,
                                      (num_targets, x.size(0)), check_invariants=False)
        return torch.sparse.mm(adj, x)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def aggregate(self, inputs: Tensor, index: Tensor, aggr_module: Aggregation,
                  ptr: Optional[Tensor] = None, dim_size: Optional[int] = None) -> Tensor:
        return aggr_module(inputs, index, ptr=ptr, dim_size=dim_size, dim=0)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"relations={len(self.relations)}, aggr='{self.aggr_name}', "
                f"attn_dropout={self.attn_dropout})")


__all__ = ["LATTEConv", "typed_linear"]
