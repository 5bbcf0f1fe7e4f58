"""The OGB baseline models with a swappable neighbourhood aggregator.

Graph property prediction follows the OGB example models
(``examples/graphproppred/mol`` of the OGB repository) from
`"Open Graph Benchmark: Datasets for Machine Learning on Graphs"
<https://arxiv.org/abs/2005.00687>`_ (Hu et al., 2020): GIN
(`Xu et al., 2019 <https://arxiv.org/abs/1810.00826>`_) or GCN
(`Kipf & Welling, 2017 <https://arxiv.org/abs/1609.02907>`_) layers with bond
features, optionally a virtual node
(`Gilmer et al., 2017 <https://arxiv.org/abs/1704.01212>`_), batch norm,
dropout, a jumping-knowledge readout and graph pooling. Every layer's
neighbourhood aggregator comes from :func:`gnnagg.aggr.resolve`, so
``aggr='lcm'`` or ``aggr='gru'`` replace OGB's fixed sum.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import BatchNorm1d, Embedding, Linear, ModuleList, Parameter, ReLU, Sequential
from torch_geometric.nn import GCNConv, MessagePassing, SAGEConv
from torch_geometric.nn.aggr import Aggregation
from torch_geometric.utils import degree

from ..aggr import aggregated_width, layer_aggregator, message_channels

#: What ``aggr`` may be: anything :func:`gnnagg.aggr.resolve` accepts.
AggrQuery = Union[str, Aggregation, type, Sequence[Any]]


def layer_aggr(aggr: AggrQuery, channels: int, aggr_kwargs: Optional[Dict[str, Any]] = None,
               keep_width: bool = False) -> Aggregation:
    """:func:`gnnagg.aggr.layer_aggregator` for ``channels``-wide messages
    (``keep_width``: the layer adds the aggregate to a ``channels``-wide term)."""
    module = layer_aggregator(aggr, channels, aggr_kwargs, keep_width=keep_width)
    if module is None:
        raise ValueError("aggr=None: give an aggregator, e.g. 'sum'")
    return module


def _encoders():
    from ogb.graphproppred.mol_encoder import AtomEncoder, BondEncoder

    return AtomEncoder, BondEncoder


def _mlp_reset(mlp: Sequential) -> None:
    for module in mlp:
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


class OGBGINConv(MessagePassing):
    r"""OGB's GIN layer with bond features: :math:`\mathbf{x}_i' =
    \mathrm{MLP}\big((1 + \epsilon)\mathbf{x}_i + \bigoplus_{j}
    \mathrm{ReLU}(\mathbf{x}_j + \mathbf{e}_{ji})\big)`, where
    :math:`\bigoplus` is ``aggr`` (OGB: sum).

    When the aggregate is wider than the messages (a list of ``k``
    aggregators, concatenated by PyG's ``MultiAggregation``), the self term
    is added to each of the ``k`` parts and the MLP takes the ``k``-fold
    width (GIN's update applied per aggregator, as in PNA's concatenation,
    `Corso et al., 2020 <https://arxiv.org/abs/2004.05718>`_).

    Args:
        channels (int): Node embedding size.
        aggr (str, list or Aggregation, optional): The neighbourhood
            aggregator, anything :func:`gnnagg.aggr.resolve` accepts.
            (default: :obj:`"sum"`)
        aggr_kwargs (dict, optional): Extra aggregator arguments. (default: :obj:`None`)
    """

    def __init__(self, channels: int, aggr: AggrQuery = "sum",
                 aggr_kwargs: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(aggr=layer_aggr(aggr, channels, aggr_kwargs))
        self.channels = channels
        self.aggr_channels = aggregated_width(self.aggr_module, channels)
        if self.aggr_channels % channels:
            raise ValueError(f"the aggregate is {self.aggr_channels} channels wide, not a "
                             f"multiple of the {channels} channels of the self term")
        self.mlp = Sequential(Linear(self.aggr_channels, 2 * channels), BatchNorm1d(2 * channels),
                              ReLU(), Linear(2 * channels, channels))
        self.eps = Parameter(torch.zeros(1))
        self.bond_encoder = _encoders()[1](channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        _mlp_reset(self.mlp)
        with torch.no_grad():
            self.eps.zero_()
        for emb in self.bond_encoder.bond_embedding_list:
            torch.nn.init.xavier_uniform_(emb.weight.data)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        edge_emb = self.bond_encoder(edge_attr)
        self_term = (1 + self.eps) * x
        if self.aggr_channels != self.channels:
            self_term = self_term.repeat(1, self.aggr_channels // self.channels)
        return self.mlp(self_term + self.propagate(edge_index, x=x, edge_attr=edge_emb))

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return F.relu(x_j + edge_attr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, aggr={self.aggr_module})"


class OGBGCNConv(MessagePassing):
    r"""OGB's GCN layer with bond features: symmetric-normalised messages
    :math:`\frac{1}{\sqrt{d_i d_j}}\mathrm{ReLU}(\mathbf{W}\mathbf{x}_j +
    \mathbf{e}_{ji})` combined by ``aggr`` (OGB: sum), plus a self term
    :math:`\mathrm{ReLU}(\mathbf{W}\mathbf{x}_i + \mathbf{r}) / d_i`. The
    aggregate must keep the width: a list of aggregators is projected back
    (see :func:`layer_aggr`).

    Args:
        channels (int): Node embedding size.
        aggr (str, list or Aggregation, optional): The neighbourhood
            aggregator. (default: :obj:`"sum"`)
        aggr_kwargs (dict, optional): Extra aggregator arguments. (default: :obj:`None`)
    """

    def __init__(self, channels: int, aggr: AggrQuery = "sum",
                 aggr_kwargs: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(aggr=layer_aggr(aggr, channels, aggr_kwargs, keep_width=True))
        self.channels = channels
        self.linear = Linear(channels, channels)
        self.root_emb = Embedding(1, channels)
        self.bond_encoder = _encoders()[1](channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.linear.reset_parameters()
        self.root_emb.reset_parameters()
        for emb in self.bond_encoder.bond_embedding_list:
            torch.nn.init.xavier_uniform_(emb.weight.data)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        x = self.linear(x)
        edge_emb = self.bond_encoder(edge_attr)
        row, col = edge_index
        deg = degree(row, x.size(0), dtype=x.dtype) + 1
        deg_inv_sqrt = deg.pow(-0.5)
        norm = deg_inv_sqrt[row] * deg_inv_sqrt[col]
        out = self.propagate(edge_index, x=x, edge_attr=edge_emb, norm=norm)
        return out + F.relu(x + self.root_emb.weight) / deg.view(-1, 1)

    def message(self, x_j: Tensor, edge_attr: Tensor, norm: Tensor) -> Tensor:
        return norm.view(-1, 1) * F.relu(x_j + edge_attr)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channels}, aggr={self.aggr_module})"


#: Graph layers by name (the ``conv`` argument of :class:`OGBGraphModel`).
GRAPH_CONVS: Dict[str, Callable[..., MessagePassing]] = {
    "gin": OGBGINConv,
    "gcn": OGBGCNConv,
}
#: The OGB example's model names -> (layer, virtual node).
GRAPH_MODELS: Dict[str, Dict[str, Any]] = {
    "gin": {"conv": "gin", "virtual_node": False},
    "gin-virtual": {"conv": "gin", "virtual_node": True},
    "gcn": {"conv": "gcn", "virtual_node": False},
    "gcn-virtual": {"conv": "gcn", "virtual_node": True},
}
#: Jumping-knowledge readouts over the list of layer outputs.
JK_MODES: Dict[str, Callable[[list], Tensor]] = {
    "last": lambda hs: hs[-1],
    "sum": lambda hs: torch.stack(hs).sum(0),
}


class OGBGraphModel(torch.nn.Module):
    r"""The OGB graph property prediction baseline (``GNN`` in OGB's
    ``examples/graphproppred/mol``) with an injectable aggregator; see the
    module docstring for the papers. Atoms and bonds are embedded with OGB's
    ``AtomEncoder``/``BondEncoder`` (so it takes the ``ogbg-mol*`` sets);
    with ``virtual_node=True`` a virtual node connected to every atom is
    updated between layers by an MLP over the sum of the graph's node
    states. Returns one logit (or value) per task and graph.

    .. math::
        \mathbf{h}^{(l+1)} = \mathrm{Dropout}\big(\sigma(\mathrm{BN}(
        \mathrm{conv}(\mathbf{h}^{(l)})))\big)\;[+\,\mathbf{h}^{(l)}
        \text{ with residual}],\qquad
        \hat{y}_G = \mathbf{W}\,\mathrm{pool}_{i \in G}\,
        \mathrm{JK}(\mathbf{h}^{(1)}, \dots, \mathbf{h}^{(L)})_i

    (:math:`\sigma` = ReLU except after the last layer.)

    Example (the aggregator x benchmark sweep builds it so)::

        model = OGBGraphModel(dataset.num_tasks, conv="gin", aggr="lcm",
                              num_layers=5, hidden_channels=300)
        out = model(batch.x, batch.edge_index, batch.edge_attr, batch.batch,
                    batch.num_graphs)

    Args:
        num_tasks (int): Outputs per graph (``dataset.num_tasks``).
        conv (str, optional): Layer type, a key of :data:`GRAPH_CONVS`.
            (default: :obj:`"gin"`)
        virtual_node (bool, optional): Add a virtual node. (default: :obj:`False`)
        aggr (str, list or Aggregation, optional): Neighbourhood aggregator
            of every layer, anything :func:`gnnagg.aggr.resolve` accepts (a
            list gives a ``MultiAggregation``); a module is copied per
            layer. (default: :obj:`"sum"`)
        aggr_kwargs (dict, optional): Extra arguments of every layer's
            aggregator, e.g. ``{"operator": "mlp"}`` for ``'lcm'``.
            (default: :obj:`None`)
        num_layers (int, optional): Message-passing layers (at least 2).
            (default: :obj:`5`)
        hidden_channels (int, optional): Embedding size. (default: :obj:`300`)
        dropout (float, optional): Dropout after every layer. (default: :obj:`0.5`)
        jk (str, optional): Readout over layers, a key of :data:`JK_MODES`.
            (default: :obj:`"last"`)
        pooling (str, list or Aggregation, optional): Graph pooling,
            anything :func:`gnnagg.aggr.resolve` accepts (learned poolers
            get ``hidden_channels``; the head takes a wider pooled vector).
            (default: :obj:`"mean"`)
        residual (bool, optional): Residual connections around every layer
            and the virtual-node update, as OGB's ``residual=True``.
            (default: :obj:`False`)
    """

    def __init__(self, num_tasks: int, conv: str = "gin", virtual_node: bool = False,
                 aggr: AggrQuery = "sum", aggr_kwargs: Optional[Dict[str, Any]] = None,
                 num_layers: int = 5, hidden_channels: int = 300, dropout: float = 0.5,
                 jk: str = "last", pooling: AggrQuery = "mean", residual: bool = False) -> None:
        super().__init__()
        if conv not in GRAPH_CONVS:
            raise ValueError(f"unknown conv '{conv}' (expected one of {sorted(GRAPH_CONVS)})")
        if jk not in JK_MODES:
            raise ValueError(f"unknown jk '{jk}' (expected one of {sorted(JK_MODES)})")
        if num_layers < 2:
            raise ValueError(f"num_layers must be at least 2 (got {num_layers})")
        if num_tasks < 1 or hidden_channels < 1:
            raise ValueError(f"num_tasks and hidden_channels must be positive "
                             f"(got {num_tasks}, {hidden_channels})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout})")
        self.num_tasks, self.conv_name, self.virtual_node = num_tasks, conv, virtual_node
        self.num_layers, self.hidden_channels = num_layers, hidden_channels
        self.dropout, self.jk, self.residual = dropout, jk, residual
        self.atom_encoder = _encoders()[0](hidden_channels)
        self.convs = ModuleList(GRAPH_CONVS[conv](hidden_channels, aggr, aggr_kwargs)
                                for _ in range(num_layers))
        self.norms = ModuleList(BatchNorm1d(hidden_channels) for _ in range(num_layers))
        if virtual_node:
            h = hidden_channels
            self.vn_embedding = Embedding(1, h)
            self.vn_mlps = ModuleList(
                Sequential(Linear(h, 2 * h), BatchNorm1d(2 * h), ReLU(),
                           Linear(2 * h, h), BatchNorm1d(h), ReLU())
                for _ in range(num_layers - 1))
        self.pool = layer_aggr(pooling, hidden_channels)
        self.head = Linear(aggregated_width(self.pool, hidden_channels), num_tasks)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for emb in self.atom_encoder.atom_embedding_list:
            torch.nn.init.xavier_uniform_(emb.weight.data)
        for conv, norm in zip(self.convs, self.norms):
            conv.reset_parameters()
            norm.reset_parameters()
        if self.virtual_node:
            torch.nn.init.constant_(self.vn_embedding.weight.data, 0)
            for mlp in self.vn_mlps:
                _mlp_reset(mlp)
        self.pool.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor,
                num_graphs: Optional[int] = None) -> Tensor:
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        hs = [self.atom_encoder(x)]
        vn = None
        if self.virtual_node:
            vn = self.vn_embedding.weight.expand(num_graphs, -1)
        for layer, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h_in = hs[layer]
            if vn is not None:
                h_in = h_in + vn[batch]
                hs[layer] = h_in
            h = norm(conv(h_in, edge_index, edge_attr))
            if layer < self.num_layers - 1:
                h = F.relu(h)
            h = F.dropout(h, self.dropout, training=self.training)
            if self.residual:
                h = h + h_in
            hs.append(h)
            if vn is not None and layer < self.num_layers - 1:
                pooled = torch.zeros_like(vn).index_add_(0, batch, h_in) + vn
                upd = F.dropout(self.vn_mlps[layer](pooled), self.dropout, training=self.training)
                vn = vn + upd if self.residual else upd
        node_repr = JK_MODES[self.jk](hs[1:])
        return self.head(self.pool(node_repr, batch, dim_size=num_graphs))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(num_tasks={self.num_tasks}, conv='{self.conv_name}', "
                f"virtual_node={self.virtual_node}, aggr={self.convs[0].aggr_module}, "
                f"num_layers={self.num_layers}, hidden_channels={self.hidden_channels}, "
                f"dropout={self.dropout}, jk='{self.jk}', pooling={self.pool}, "
                f"residual={self.residual})")


#: Node-level layers by name (the ``conv`` argument of :class:`OGBNodeModel`);
#: which width each aggregates is :func:`gnnagg.aggr.message_channels`'s to say.
NODE_CONVS: Dict[str, type] = {
    "gcn": GCNConv,
    "sage": SAGEConv,
}
#: Layers that size their own weights to a wider aggregate (PyG's SAGEConv
#: does for a ``MultiAggregation``); the others add a bias of the message
#: width to it, so a list of aggregators is projected back.
_TAKES_WIDER_AGGREGATE = frozenset({"sage"})


class OGBNodeModel(torch.nn.Module):
    r"""The OGB node property prediction baseline for ``ogbn-arxiv`` /
    ``ogbn-products`` (``examples/nodeproppred/arxiv/gnn.py``: GCN or
    GraphSAGE (`Hamilton et al., 2017 <https://arxiv.org/abs/1706.02216>`_),
    3 layers, 256 hidden, batch norm, dropout 0.5) with an injectable
    aggregator; full-batch or on sampled subgraphs alike. Returns
    log-probabilities per node.

    Args:
        in_channels (int): Node feature size.
        out_channels (int): Number of classes.
        conv (str, optional): A key of :data:`NODE_CONVS`. (default: :obj:`"gcn"`)
        aggr (str, list or Aggregation, optional): Neighbourhood aggregator,
            built at the width each layer aggregates
            (:func:`gnnagg.aggr.message_channels`). (default: :obj:`"sum"`,
            which GCN's normalisation assumes)
        aggr_kwargs (dict, optional): Extra aggregator arguments. (default: :obj:`None`)
        num_layers (int, optional): Layers (at least 2). (default: :obj:`3`)
        hidden_channels (int, optional): Hidden size. (default: :obj:`256`)
        dropout (float, optional): Dropout. (default: :obj:`0.5`)
    """

    def __init__(self, in_channels: int, out_channels: int, conv: str = "gcn",
                 aggr: AggrQuery = "sum", aggr_kwargs: Optional[Dict[str, Any]] = None,
                 num_layers: int = 3, hidden_channels: int = 256, dropout: float = 0.5) -> None:
        super().__init__()
        if conv not in NODE_CONVS:
            raise ValueError(f"unknown conv '{conv}' (expected one of {sorted(NODE_CONVS)})")
        if num_layers < 2:
            raise ValueError(f"num_layers must be at least 2 (got {num_layers})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout})")
        self.conv_name, self.dropout, self.num_layers = conv, dropout, num_layers
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        cls = NODE_CONVS[conv]
        keep = conv not in _TAKES_WIDER_AGGREGATE
        self.convs = ModuleList(
            cls(dims[i], dims[i + 1], aggr=layer_aggr(
                aggr, message_channels(cls, dims[i], dims[i + 1]), aggr_kwargs, keep_width=keep))
            for i in range(num_layers))
        self.norms = ModuleList(BatchNorm1d(d) for d in dims[1:-1])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in list(self.convs) + list(self.norms):
            module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for conv, norm in zip(self.convs[:-1], self.norms):
            x = F.dropout(F.relu(norm(conv(x, edge_index))), self.dropout, training=self.training)
        return self.convs[-1](x, edge_index).log_softmax(dim=-1)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(conv='{self.conv_name}', num_layers={self.num_layers}, "
                f"aggr={self.convs[0].aggr_module})")
