r"""Sentence poolers over a frozen encoder's token states: GLOT and the
baselines of its paper, behind one interface.

From "Towards Improved Sentence Representations using Token Graphs"
(GLOT, https://arxiv.org/abs/2603.03389). GLOT builds each sentence's token
graph (:mod:`gnnagg.nn.token_graph`), refines the states with a small GNN and
pools them with an attention readout:

.. math::
    \mathbf{u}_i = [\mathbf{x}_i \,\|\, \mathbf{h}^{(1)}_i \,\|\, \cdots \,\|\,
    \mathbf{h}^{(K)}_i], \qquad
    m_i = \mathbf{v}^{\top} \tanh(\mathbf{W}\mathbf{u}_i + \mathbf{b}), \qquad
    \mathbf{z} = \sum_i \operatorname{softmax}(m)_i \, \mathbf{u}_i .

Every pooler is called as ``pooler(x, mask) -> (B, out_channels)`` for a
padded ``(B, L, d)`` batch and its ``(B, L)`` attention mask, so the
baselines (:class:`MeanPooling`, :class:`MaxPooling`, :class:`CLSPooling`,
:class:`AdaPool`) swap in through :func:`resolve_pooling`.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..aggr import message_channels
from ..aggr import resolve as resolve_aggr
from ..ops import scatter, softmax
from .token_graph import TokenGraph, build_token_graph, check_graph_args, check_padded, \
    empty_token_graph

__all__ = ["TokenPooling", "MeanPooling", "MaxPooling", "CLSPooling", "AttentionReadout",
           "AdaPool", "GLOTPooling", "POOLINGS", "GRAPHS", "resolve_pooling", "resolve_conv"]


class TokenPooling(torch.nn.Module):
    """Base class of the poolers: ``forward(x, mask) -> (B, out_channels)``
    for a padded ``(B, L, in_channels)`` batch and its ``(B, L)`` mask.
    Every sentence must hold at least one token."""

    def __init__(self, in_channels: int):
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int (got {in_channels!r})")
        self.in_channels = in_channels
        self.out_channels = in_channels

    def reset_parameters(self) -> None:
        pass

    def _check(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = check_padded(x, mask)
        if x.size(-1) != self.in_channels:
            raise ValueError(f"{self.__class__.__name__} expects {self.in_channels} "
                             f"channels (got {x.size(-1)})")
        empty = (~mask.any(1)).nonzero(as_tuple=True)[0]
        if empty.numel():
            raise ValueError(f"sentences {empty.tolist()[:10]} have no tokens in mask")
        return mask

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels})"


class MeanPooling(TokenPooling):
    r"""Mean of the token states, :math:`\mathbf{z} = \frac{1}{n}\sum_i \mathbf{x}_i`.

    Args:
        in_channels (int): token state size.
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = self._check(x, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(1) / m.sum(1)


class MaxPooling(TokenPooling):
    r"""Channel-wise maximum of the token states.

    Args:
        in_channels (int): token state size.
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = self._check(x, mask)
        return x.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)


class CLSPooling(TokenPooling):
    r"""The state of the first real token (``[CLS]`` for BERT-style
    encoders) or, with ``last=True``, of the last one (decoder models).

    Args:
        in_channels (int): token state size.
        last (bool, optional): take the last unmasked token. (default: :obj:`False`)
    """

    def __init__(self, in_channels: int, last: bool = False):
        super().__init__(in_channels)
        self.last = bool(last)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        mask = self._check(x, mask)
        L = mask.size(1)
        pos = torch.arange(L, device=x.device).expand_as(mask)
        if self.last:
            idx = pos.masked_fill(~mask, -1).amax(1)
        else:
            idx = pos.masked_fill(~mask, L).amin(1)
        return x[torch.arange(x.size(0), device=x.device), idx]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, last={self.last})"


class AttentionReadout(torch.nn.Module):
    r"""Additive attention over each sentence's nodes,
    :math:`m_i = \mathbf{v}^{\top}\tanh(\mathbf{W}\mathbf{u}_i + \mathbf{b})`,
    :math:`\pi = \operatorname{softmax}(m)` within the sentence,
    :math:`\mathbf{z} = \sum_i \pi_i \mathbf{u}_i`
    (https://arxiv.org/abs/2603.03389).

    Args:
        in_channels (int): node feature size.
        attention_channels (int): size of :math:`\mathbf{W}`'s output.
    """

    def __init__(self, in_channels: int, attention_channels: int):
        super().__init__()
        self.in_channels = in_channels
        self.attention_channels = attention_channels
        self.lin = torch.nn.Linear(in_channels, attention_channels)
        self.score = torch.nn.Linear(attention_channels, 1, bias=False)

    def reset_parameters(self) -> None:
        self.lin.reset_parameters()
        self.score.reset_parameters()

    def forward(self, u: Tensor, batch: Tensor, num_graphs: int) -> Tuple[Tensor, Tensor]:
        """Pooled ``(num_graphs, in_channels)`` and the ``(N,)`` weights."""
        m = self.score(torch.tanh(self.lin(u))).squeeze(-1)
        pi = softmax(m, batch, dim_size=num_graphs)
        return scatter(pi.unsqueeze(-1) * u, batch, dim=0, dim_size=num_graphs, reduce="sum"), pi

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.attention_channels})"


class AdaPool(TokenPooling):
    r"""Attention pooling of the token states without a graph
    (:class:`AttentionReadout` on :math:`\mathbf{x}`), the AdaPool baseline of
    https://arxiv.org/abs/2603.03389.

    Args:
        in_channels (int): token state size.
        attention_channels (int, optional): attention hidden size.
            (default: :obj:`256`)
    """

    def __init__(self, in_channels: int, attention_channels: int = 256):
        super().__init__(in_channels)
        self.readout = AttentionReadout(in_channels, attention_channels)

    def reset_parameters(self) -> None:
        self.readout.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor, return_attention: bool = False):
        mask = self._check(x, mask)
        batch = torch.repeat_interleave(torch.arange(x.size(0), device=x.device), mask.sum(1))
        z, pi = self.readout(x[mask], batch, x.size(0))
        return (z, pi) if return_attention else z

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.in_channels}, {self.readout.attention_channels})"


def _conv_key(name: str) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    return key[:-4] if key.endswith("conv") else key


def resolve_conv(conv: Union[str, Type[torch.nn.Module]]) -> Type[torch.nn.Module]:
    """A PyG convolution class from a name (``'GATConv'``, ``'gat'``,
    ``'sage'``, ...) or a class."""
    if isinstance(conv, type):
        return conv
    if not isinstance(conv, str):
        raise TypeError(f"conv must be a PyG conv name or class (got {type(conv).__name__})")
    import torch_geometric.nn.conv as pyg_conv

    from torch_geometric.nn.conv import MessagePassing

    key = _conv_key(conv)
    for name in pyg_conv.__all__:
        cls = getattr(pyg_conv, name)
        if isinstance(cls, type) and issubclass(cls, MessagePassing) and _conv_key(name) == key:
            return cls
    raise ValueError(f"unknown PyG convolution '{conv}' (try e.g. 'GATConv', 'GCNConv', "
                     f"'SAGEConv', 'GraphConv')")


#: Graphs :class:`GLOTPooling` can read: ``'similarity'`` joins similar
#: tokens (:func:`~gnnagg.nn.build_token_graph`); ``'none'`` keeps the nodes and
#: no edges (:func:`~gnnagg.nn.empty_token_graph`), the ablation that measures
#: what the graph adds with every parameter kept.
GRAPHS = ("similarity", "none")


class GLOTPooling(TokenPooling):
    r"""GLOT token-graph pooling (https://arxiv.org/abs/2603.03389).

    Builds each sentence's token graph (:func:`build_token_graph`), refines
    the states with ``num_layers`` PyG convolutions and ReLU, concatenates all
    layers (jumping knowledge,
    :math:`\mathbf{u} = [\mathbf{x} \| \mathbf{h}^{(1)} \| \cdots \| \mathbf{h}^{(K)}]`)
    and pools with an :class:`AttentionReadout`. Graph construction is not
    differentiated (the encoder is frozen).

    Args:
        in_channels (int): token state size.
        hidden_channels (int, optional): GNN width. (default: :obj:`256`)
        num_layers (int, optional): GNN layers :math:`K`. (default: :obj:`2`)
        conv (str or type, optional): PyG convolution, by name or class; it
            is called as ``conv(in, out, **conv_kwargs)`` and applied as
            ``conv(x, edge_index)``; its output must have ``out`` channels
            (for ``GATConv`` with several heads pass ``concat=False``).
            (default: :obj:`'GATConv'`)
        aggr (str or Aggregation, optional): neighbourhood aggregator for the
            convolutions, from :func:`gnnagg.aggr.resolve` (a fresh one per
            layer, built with ``channels=`` the width of the messages the
            convolution aggregates, :func:`gnnagg.aggr.message_channels`);
            :obj:`None` keeps the convolution's own. (default: :obj:`None`)
        tau (float, optional): edge threshold on cosine similarity.
            (default: :obj:`0.8`)
        k (int, optional): k-NN graph instead (see :func:`build_token_graph`).
            (default: :obj:`None`)
        attention_channels (int, optional): readout hidden size; :obj:`None`
            means ``hidden_channels``. (default: :obj:`None`)
        jumping_knowledge (bool, optional): concatenate the input and every
            layer; otherwise read out the last layer only. (default: :obj:`True`)
        dropout (float, optional): dropout after each layer. (default: :obj:`0.0`)
        conv_kwargs (dict, optional): extra arguments of the convolution.
            (default: :obj:`None`)
        edges (str, optional): ``'similarity'``, the token graph, or
            ``'none'``: no edges at all, every parameter kept (see
            :data:`GRAPHS`). (default: :obj:`'similarity'`)
    """

    def __init__(self, in_channels: int, hidden_channels: int = 256, num_layers: int = 2,
                 conv: Union[str, Type[torch.nn.Module]] = "GATConv",
                 aggr: Optional[Any] = None, tau: Optional[float] = 0.8,
                 k: Optional[int] = None, attention_channels: Optional[int] = None,
                 jumping_knowledge: bool = True, dropout: float = 0.0,
                 conv_kwargs: Optional[Dict[str, Any]] = None, edges: str = "similarity"):
        super().__init__(in_channels)
        if edges not in GRAPHS:
            raise ValueError(f"edges must be one of {GRAPHS} (got {edges!r})")
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int (got {num_layers!r})")
        if not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ValueError(f"hidden_channels must be a positive int (got {hidden_channels!r})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout})")
        check_graph_args(tau, k)
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.conv_cls = resolve_conv(conv)
        self.aggr = aggr
        self.tau, self.k = tau, k
        self.jumping_knowledge = bool(jumping_knowledge)
        self.dropout = dropout
        self.conv_kwargs = dict(conv_kwargs or {})
        self.edges = edges
        self.convs = torch.nn.ModuleList()
        for layer in range(num_layers):
            kwargs = dict(self.conv_kwargs)
            c_in = in_channels if layer == 0 else hidden_channels
            if aggr is not None:
                if isinstance(aggr, torch.nn.Module) and num_layers > 1:
                    raise ValueError("pass aggr by name or class when num_layers > 1: "
                                     "one module cannot serve several layers")
                width = message_channels(self.conv_cls, c_in, hidden_channels,
                                         self.conv_kwargs.get("heads", 1))
                kwargs["aggr"] = resolve_aggr(aggr, channels=width)
            self.convs.append(self.conv_cls(c_in, hidden_channels, **kwargs))
        self.out_channels = in_channels + num_layers * hidden_channels if jumping_knowledge \
            else hidden_channels
        self.readout = AttentionReadout(self.out_channels, attention_channels or hidden_channels)

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()
        self.readout.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor, graph: Optional[TokenGraph] = None,
                return_attention: bool = False):
        """Pooled ``(B, out_channels)``; with ``return_attention`` also the
        ``(N,)`` readout weights in node order (``x[mask]``'s order).
        ``graph`` reuses graphs built earlier from the same ``x`` and ``mask``."""
        mask = self._check(x, mask)
        if graph is None:
            graph = (build_token_graph(x, mask, self.tau, self.k) if self.edges == "similarity"
                     else empty_token_graph(x, mask))
        elif graph.num_nodes != int(mask.sum()):
            raise ValueError(f"graph has {graph.num_nodes} nodes but mask {int(mask.sum())} tokens")
        h = x[mask]  # not graph.x: gradients must reach x
        layers = [h]
        for conv in self.convs:
            h = F.relu(conv(h, graph.edge_index))
            h = F.dropout(h, self.dropout, self.training)
            layers.append(h)
        u = torch.cat(layers, dim=-1) if self.jumping_knowledge else h
        z, pi = self.readout(u, graph.batch, graph.num_graphs)
        return (z, pi) if return_attention else z

    def __repr__(self) -> str:
        graph = f"tau={self.tau}" + (f", k={self.k}" if self.k is not None else "") \
            if self.edges == "similarity" else "edges='none'"
        aggr = f", aggr={self.aggr!r}" if self.aggr is not None else ""
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"num_layers={self.num_layers}, conv={self.conv_cls.__name__}{aggr}, {graph}, "
                f"jumping_knowledge={self.jumping_knowledge})")


#: Poolers by name, for :func:`resolve_pooling`.
POOLINGS: Dict[str, Type[TokenPooling]] = {
    "cls": CLSPooling,
    "mean": MeanPooling,
    "max": MaxPooling,
    "adapool": AdaPool,
    "glot": GLOTPooling,
}


def resolve_pooling(name: Union[str, TokenPooling], in_channels: Optional[int] = None,
                    **kwargs: Any) -> TokenPooling:
    """A pooler from its name (``'cls'``, ``'mean'``, ``'max'``, ``'adapool'``,
    ``'glot'``) built with ``in_channels`` and ``kwargs``; a module is
    returned as it is.

    Example:
        >>> resolve_pooling('glot', 384, tau=0.6)
    """
    if isinstance(name, TokenPooling):
        if kwargs or in_channels is not None:
            raise TypeError("arguments given with a pooling module")
        return name
    if not isinstance(name, str):
        raise TypeError(f"expected a pooling name or module (got {type(name).__name__})")
    key = name.lower().replace("-", "").replace("_", "")
    if key.endswith("pooling"):
        key = key[:-len("pooling")]
    if key not in POOLINGS:
        raise ValueError(f"unknown pooling '{name}'; known: {sorted(POOLINGS)}")
    if in_channels is None:
        raise ValueError(f"pooling '{name}' needs in_channels")
    return POOLINGS[key](in_channels, **kwargs)
