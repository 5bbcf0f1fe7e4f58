"""The LATTE layer: node-level attention inside each relation, then
relation-level attention across a node type's relations."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.aggr import Aggregation, SumAggregation

from ..aggr import layer_aggregator
from ..ops import index_to_ptr, softmax
from ..utils import quiet_csr

NodeType = str
EdgeType = Tuple[str, str, str]
Metadata = Tuple[Sequence[NodeType], Sequence[EdgeType]]

#: Initialisations: the authors' (Xavier-normal with ReLU / LeakyReLU gains)
#: or PyTorch's defaults for the linear maps and N(0, 1/c) for the attention.
INITS = ("xavier", "torch")
#: How :class:`LATTEConv` uses edge weights (e.g. the degree-damped weights
#: of composed relations): not at all, as a prior on the node-level
#: attention, or as a factor on each attention-weighted message.
EDGE_WEIGHT_MODES = ("none", "attention", "message")


def typed_linear(lin: nn.Linear, x: Tensor) -> Tensor:
    """``lin(x)`` for a dense or a sparse (COO/CSR) ``x``: sparse bag-of-words
    features are multiplied without ever being densified."""
    if x.is_sparse or x.layout == torch.sparse_csr:
        # An embedding bag over the stored entries: its backward scatters
        # into the used weight rows instead of transposing ``x`` each step.
        if x.layout != torch.sparse_csr:
            with quiet_csr():
                x = x.to_sparse_csr()
        csr = x
        return F.embedding_bag(csr.col_indices(), lin.weight.t(), csr.crow_indices()[:-1],
                               mode="sum", per_sample_weights=csr.values(),
                               include_last_offset=False) + (
            lin.bias if lin.bias is not None else 0.0)
    return lin(x)


class LATTEConv(MessagePassing):
    r"""One layer of LATTE from `"Layer-stacked Attention for Heterogeneous
    Network Embedding" <https://arxiv.org/abs/2009.08072>`_ (Tran & Gao, 2020).

    Every node type :math:`\tau` has two projections :math:`W_l^\tau,
    W_r^\tau` to :math:`d` channels, split into :math:`H` heads. For a
    relation :math:`r` from type :math:`\sigma` to type :math:`\tau`
    (messages flow along ``edge_index[0] -> edge_index[1]``), node :math:`i`
    of type :math:`\tau` attends over its neighbours :math:`j \in
    \mathcal{N}_r(i)`, per head :math:`h`:

    .. math::
        e_{ij}^h &= s_r\,\mathrm{LeakyReLU}\big(\mathbf{a}_{l,r}^{h\top}
            W_l^{\tau,h} \mathbf{h}_i + \mathbf{a}_{r,r}^{h\top}
            W_r^{\sigma,h} \mathbf{h}_j\big), \qquad
        \alpha_{ij}^h = \mathrm{softmax}_{j \in \mathcal{N}_r(i)}
            \big(e_{ij}^h + \log w_{ij}\big) \\
        \mathbf{h}_{i,r} &= \big\Vert_{h=1}^{H}\, \mathrm{AGG}_r\big(\{\alpha_{ij}^h\,
            W_r^{\sigma,h} \mathbf{h}_j\}_{j \in \mathcal{N}_r(i)}\big)

    with a learnable sharpening scalar :math:`s_r` per relation (outside the
    LeakyReLU, as in the authors' code) and :math:`\mathrm{AGG}_r` the sum
    by default (any aggregator of :func:`gnnagg.aggr.resolve`). Edge weights
    :math:`w_{ij}` (e.g. those of composed relations, see
    :func:`gnnagg.nn.relations.compose_adjacency`) enter as the prior
    :math:`\log w_{ij}` on the attention (``edge_weight="attention"``), as a
    factor :math:`\alpha_{ij} w_{ij}` on the messages (``"message"``), or
    not at all (``"none"``); without weights every :math:`w_{ij} = 1`. A
    linear map of :math:`\mathbf{h}_i` gives one logit per relation into
    :math:`\tau` plus one for the node itself; their softmax :math:`\beta`
    (per node, over its relations) mixes

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
            the attention-weighted messages, one module per relation built
            with ``gnnagg.aggr.layer_aggregator(aggr, out_channels, keep_width=True)`` (a list is projected back to ``out_channels``).
            (default: :obj:`"sum"`)
        heads (int, optional): attention heads :math:`H`; must divide
            ``out_channels``. (default: :obj:`1`)
        attn_dropout (float, optional): dropout on the node-level attention
            coefficients. (default: :obj:`0.2`)
        negative_slope (float, optional): LeakyReLU slope on the attention
            logits. (default: :obj:`0.2`)
        edge_weight (str, optional): how given edge weights are used, one
            of :obj:`EDGE_WEIGHT_MODES`. (default: :obj:`"attention"`)
        init (str, optional): ``"xavier"`` (the authors' code: Xavier-normal
            weights, gain of ReLU for the projections and of LeakyReLU for
            the attention vectors) or ``"torch"`` (PyTorch's defaults).
            (default: :obj:`"xavier"`)
        bias (bool, optional): biases in the projections. (default: :obj:`True`)
        output_node_types (List[str], optional): the node types whose
            outputs are computed (others only send messages); all when
            :obj:`None`. (default: :obj:`None`)
    """

    def __init__(self, in_channels: Union[int, Dict[NodeType, int]], out_channels: int,
                 metadata: Metadata, aggr: Union[str, Aggregation] = "sum", heads: int = 1,
                 attn_dropout: float = 0.2, negative_slope: float = 0.2,
                 edge_weight: str = "attention", init: str = "xavier", bias: bool = True,
                 output_node_types: Optional[Sequence[NodeType]] = None) -> None:
        super().__init__(aggr=None, node_dim=0)
        node_types, relations = list(metadata[0]), [tuple(r) for r in metadata[1]]
        if not isinstance(out_channels, int) or out_channels <= 0:
            raise ValueError(f"'out_channels' must be a positive int (got {out_channels!r})")
        if not isinstance(heads, int) or heads < 1 or out_channels % heads:
            raise ValueError(f"'heads' must be a positive int dividing 'out_channels' "
                             f"({out_channels}); got {heads!r}")
        if not 0.0 <= attn_dropout < 1.0:
            raise ValueError(f"'attn_dropout' must be in [0, 1) (got {attn_dropout})")
        if edge_weight not in EDGE_WEIGHT_MODES:
            raise ValueError(f"'edge_weight' must be one of {EDGE_WEIGHT_MODES} "
                             f"(got {edge_weight!r})")
        if init not in INITS:
            raise ValueError(f"'init' must be one of {INITS} (got {init!r})")
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
        self.heads = heads
        self.node_types = node_types
        self.output_node_types = outputs
        sources = sorted({r[0] for r in relations}, key=node_types.index)
        self.relations: List[EdgeType] = relations
        self.aggr_name = aggr if isinstance(aggr, str) else type(aggr).__name__
        self.attn_dropout = attn_dropout
        self.negative_slope = negative_slope
        self.edge_weight = edge_weight
        self.init = init
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
        per_head = out_channels // heads
        self.att_l = nn.ParameterDict({k: nn.Parameter(torch.empty(heads, per_head))
                                       for k in keys})
        self.att_r = nn.ParameterDict({k: nn.Parameter(torch.empty(heads, per_head))
                                       for k in keys})
        self.sharpening = nn.ParameterDict({k: nn.Parameter(torch.empty(1)) for k in keys})
        # Each relation's aggregate is mixed with the others at out_channels,
        # so a list of aggregators is projected back to that width.
        self.aggrs = nn.ModuleDict({k: layer_aggregator(aggr, out_channels, keep_width=True)
                                    for k in keys})
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
        vectors = [*self.att_l.values(), *self.att_r.values()]
        if self.init == "xavier":
            relu = nn.init.calculate_gain("relu")
            for lin in [*self.lin_l.values(), *self.lin_r.values()]:
                nn.init.xavier_normal_(lin.weight, gain=relu)
            for lin in self.rel_attn.values():
                nn.init.xavier_normal_(lin.weight)
            leaky = nn.init.calculate_gain("leaky_relu", self.negative_slope)
            for vec in vectors:
                nn.init.xavier_normal_(vec, gain=leaky)
        else:
            for vec in vectors:
                nn.init.normal_(vec, std=vec.size(-1) ** -0.5)
        for s in self.sharpening.values():
            nn.init.ones_(s)
        for aggr in self.aggrs.values():
            if hasattr(aggr, "reset_parameters"):
                aggr.reset_parameters()

    def _check_inputs(self, x_dict: Dict[NodeType, Tensor],
                      edge_index_dict: Dict[EdgeType, Tensor],
                      edge_weight_dict: Optional[Dict[EdgeType, Tensor]]) -> None:
        for t in set(self.lin_l) | set(self.lin_r):
            if t not in x_dict:
                raise ValueError(f"LATTEConv: no input for node type '{t}'")
            if x_dict[t].dim() != 2 or x_dict[t].size(1) != self.in_channels[t]:
                raise ValueError(f"LATTEConv: input of '{t}' has shape "
                                 f"{tuple(x_dict[t].shape)}, expected (N, {self.in_channels[t]})")
        for rel in self.relations:
            if rel not in edge_index_dict:
                raise ValueError(f"LATTEConv: no edge_index for relation {rel}")
            w = (edge_weight_dict or {}).get(rel)
            if w is not None and tuple(w.shape) != (edge_index_dict[rel].size(1),):
                raise ValueError(f"LATTEConv: edge weights of {rel} have shape "
                                 f"{tuple(w.shape)}, expected ({edge_index_dict[rel].size(1)},)")

    def _scores(self, relation: EdgeType, left: Tensor, right: Tensor,
                edge_index: Tensor) -> Tensor:
        # (E, H): a_l . l_i + a_r . r_j per head, before activation.
        k = self.key(relation)
        score_l = (left * self.att_l[k]).sum(-1)
        score_r = (right * self.att_r[k]).sum(-1)
        return score_l.index_select(0, edge_index[1]) + score_r.index_select(0, edge_index[0])

    def _activate(self, relation: EdgeType, scores: Tensor) -> Tensor:
        return self.sharpening[self.key(relation)] * F.leaky_relu(scores, self.negative_slope)

    def attention_logits(self, relation: EdgeType, left: Tensor, right: Tensor,
                         edge_index: Tensor) -> Tensor:
        r""":math:`e_{ij}^h` of shape ``(E, H)`` for the pairs ``edge_index``:
        ``left`` are the targets' :math:`W_l` projections, ``right`` the
        sources' :math:`W_r` ones, both ``(N, H, d / H)``."""
        return self._activate(relation, self._scores(relation, left, right, edge_index))

    def forward(self, x_dict: Dict[NodeType, Tensor], edge_index_dict: Dict[EdgeType, Tensor],
                edge_weight_dict: Optional[Dict[EdgeType, Tensor]] = None,
                return_attention_weights: bool = False, return_proximity_loss: bool = False,
                num_negatives: int = 2):
        r"""Args:
            x_dict (Dict[str, Tensor]): node features per type (dense or sparse).
            edge_index_dict (Dict[Tuple[str, str, str], Tensor]): the
                relations' edges, ``(2, E)`` from source to target.
            edge_weight_dict (Dict[Tuple[str, str, str], Tensor], optional):
                positive weights ``(E,)`` of some relations (used as
                ``edge_weight`` says). (default: :obj:`None`)
            return_attention_weights (bool, optional): also return
                ``{relation: (edge_index, alpha of shape (E, H))}`` and
                ``{node type: beta of shape (N, |R| + 1)}`` (the last column
                is the node itself). (default: :obj:`False`)
            return_proximity_loss (bool, optional): also return the
                proximity loss of the authors' code: per relation, observed
                edges' logits (max over heads) weighted by their attention
                against ``num_negatives`` uniformly random pairs per edge,
                averaged over the relations. (default: :obj:`False`)
            num_negatives (int, optional): negatives per edge. (default: :obj:`2`)

        Returns:
            ``out_dict``, then the optional extras in the order above.
        """
        self._check_inputs(x_dict, edge_index_dict, edge_weight_dict)
        shape = (-1, self.heads, self.out_channels // self.heads)
        left = {t: typed_linear(self.lin_l[t], x_dict[t]) for t in self.lin_l}
        right = {t: typed_linear(self.lin_r[t], x_dict[t]) for t in self.lin_r}
        alphas: Dict[EdgeType, Tuple[Tensor, Tensor]] = {}
        betas: Dict[NodeType, Tensor] = {}
        proximity, counted = left[self.output_node_types[0]].new_zeros(()), 0
        out_dict: Dict[NodeType, Tensor] = {}
        for t in self.output_node_types:
            n = left[t].size(0)
            per_relation = []
            for rel in self.relations_into[t]:
                src, edge_index = rel[0], edge_index_dict[rel]
                weight = (edge_weight_dict or {}).get(rel) if self.edge_weight != "none" else None
                scores = self._scores(rel, left[t].view(shape), right[src].view(shape),
                                      edge_index)
                logits = self._activate(rel, scores)
                if weight is not None and self.edge_weight == "attention":
                    # softmax(e + log w) = w exp(e) / sum w exp(e): the weights
                    # are a prior that the attention refines.
                    logits = logits + weight.clamp_min(1e-30).log().unsqueeze(-1)
                alpha = softmax(logits, edge_index[1], dim_size=n)
                if return_attention_weights:
                    alphas[rel] = (edge_index, alpha.detach())
                if return_proximity_loss and edge_index.size(1) > 0:
                    proximity = proximity + self._proximity(
                        rel, left[t].view(shape), right[src].view(shape), scores, alpha,
                        edge_index, num_negatives)
                counted += 1
                alpha = F.dropout(alpha, p=self.attn_dropout, training=self.training)
                if weight is not None and self.edge_weight == "message":
                    alpha = alpha * weight.unsqueeze(-1)
                per_relation.append(self._aggregate(rel, edge_index, alpha, right[src], n))
            beta = torch.softmax(typed_linear(self.rel_attn[t], x_dict[t]), dim=-1)
            betas[t] = beta
            stacked = torch.stack(per_relation + [left[t]], dim=1)  # (N, |R|+1, d)
            out_dict[t] = F.relu((beta.unsqueeze(-1) * stacked).sum(1))
        extras = []
        if return_attention_weights:
            extras.append((alphas, betas))
        if return_proximity_loss:
            extras.append(proximity / max(2 * counted, 1))
        return (out_dict, *extras) if extras else out_dict

    def _aggregate(self, rel: EdgeType, edge_index: Tensor, alpha: Tensor, x: Tensor,
                   n: int) -> Tensor:
        aggr_module = self.aggrs[self.key(rel)]
        if type(aggr_module) is SumAggregation:
            c = self.out_channels // self.heads
            return torch.cat([self._weighted_sum(edge_index, alpha[:, h],
                                                 x[:, h * c:(h + 1) * c], n)
                              for h in range(self.heads)], dim=-1)
        return self.propagate(edge_index, x=(x, None), alpha=alpha, aggr_module=aggr_module,
                              size=(x.size(0), n))

    def _proximity(self, rel: EdgeType, left: Tensor, right: Tensor, scores: Tensor,
                   alpha: Tensor, edge_index: Tensor, num_negatives: int) -> Tensor:
        # As the authors' code: an edge's logit is the activated maximum over
        # heads, observed edges count by their attention (its maximum over
        # heads), negatives are uniform random (source, target) pairs.
        pos = self._activate(rel, scores.max(-1).values)
        weight = alpha.max(-1).values
        n_neg = edge_index.size(1) * num_negatives
        neg_index = torch.stack([
            torch.randint(0, right.size(0), (n_neg,), device=edge_index.device),
            torch.randint(0, left.size(0), (n_neg,), device=edge_index.device)])
        neg = self._activate(rel, self._scores(rel, left, right, neg_index).max(-1).values)
        loss = -(weight * F.logsigmoid(pos)).mean()
        return loss - F.logsigmoid(-neg).mean() if n_neg > 0 else loss

    @staticmethod
    def _weighted_sum(edge_index: Tensor, alpha: Tensor, x: Tensor, num_targets: int) -> Tensor:
        # The default sum as one sparse (alpha) x dense product: memory O(E)
        # rather than the O(E d) of materialised messages, which matters for
        # composed relations with millions of pairs (ACM's paper-subject-paper).
        target, source = edge_index[1], edge_index[0]
        if target.numel() > 1 and bool((target[1:] < target[:-1]).any()):
            order = torch.argsort(target, stable=True)
            target, source, alpha = target[order], source[order], alpha[order]
        with quiet_csr():
            adj = torch.sparse_csr_tensor(index_to_ptr(target, num_targets), source, alpha,
                                          (num_targets, x.size(0)), check_invariants=False)
        return torch.sparse.mm(adj, x)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return (alpha.unsqueeze(-1) * x_j.view(x_j.size(0), self.heads, -1)).flatten(1)

    def aggregate(self, inputs: Tensor, index: Tensor, aggr_module: Aggregation,
                  ptr: Optional[Tensor] = None, dim_size: Optional[int] = None) -> Tensor:
        return aggr_module(inputs, index, ptr=ptr, dim_size=dim_size, dim=0)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"relations={len(self.relations)}, aggr='{self.aggr_name}', heads={self.heads}, "
                f"attn_dropout={self.attn_dropout}, edge_weight='{self.edge_weight}', "
                f"init='{self.init}')")


__all__ = ["LATTEConv", "typed_linear", "EDGE_WEIGHT_MODES", "INITS"]
