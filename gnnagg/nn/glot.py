r"""GLOT: sentence representations from token graphs over a frozen encoder.

From "Towards Improved Sentence Representations using Token Graphs"
(https://arxiv.org/abs/2603.03389). A frozen language model gives one state
per token; each sentence becomes a graph over its non-padding tokens (an edge
where two states' cosine similarity exceeds :math:`\tau`), a small GNN refines
the states, and an attention readout pools them:

.. math::
    \mathbf{u}_i = [\mathbf{x}_i \,\|\, \mathbf{h}^{(1)}_i \,\|\, \cdots \,\|\,
    \mathbf{h}^{(K)}_i], \qquad
    m_i = \mathbf{v}^{\top} \tanh(\mathbf{W}\mathbf{u}_i + \mathbf{b}), \qquad
    \mathbf{z} = \sum_i \operatorname{softmax}(m)_i \, \mathbf{u}_i .

Every pooler here shares one interface, ``pooler(x, mask) -> (B, out_channels)``
for a padded ``(B, L, d)`` batch and its ``(B, L)`` attention mask, so the
baselines of the paper (:class:`MeanPooling`, :class:`MaxPooling`,
:class:`CLSPooling`, :class:`AdaPool`) swap in through :func:`resolve_pooling`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple, Type, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..aggr import resolve as resolve_aggr
from ..aggr import needs_channels
from ..ops import scatter, softmax

__all__ = [
    "TokenGraph", "build_token_graph", "build_token_graph_loop", "benchmark_token_graph",
    "TokenPooling", "AttentionReadout", "GLOTPooling", "MeanPooling", "MaxPooling",
    "CLSPooling", "AdaPool", "POOLINGS", "resolve_pooling", "resolve_conv",
]


# Token graphs ###############################################################

@dataclass
class TokenGraph:
    """A batch of token graphs, one per sentence, in PyG's conventions.

    Nodes are the non-padding tokens, sentence after sentence and in token
    order within a sentence (the row-major order of ``x[mask]``).

    Attributes:
        x: ``(N, d)`` token states.
        edge_index: ``(2, E)`` edges ``source -> target`` as global node ids;
            both ends always lie in the same sentence; sorted by target.
        edge_weight: ``(E,)`` cosine similarity of the two token states, or
            :obj:`None` when not asked for.
        batch: ``(N,)`` sentence of each node.
        ptr: ``(B + 1,)`` sentence ``b`` owns nodes ``ptr[b]:ptr[b+1]``.
        position: ``(N,)`` each node's position in the padded input.
    """
    x: Tensor
    edge_index: Tensor
    edge_weight: Optional[Tensor]
    batch: Tensor
    ptr: Tensor
    position: Tensor

    @property
    def num_graphs(self) -> int:
        return self.ptr.numel() - 1

    @property
    def num_nodes(self) -> int:
        return self.x.size(0)

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)


def _check_padded(x: Tensor, mask: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a padded (B, L, d) tensor (got shape "
                         f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__})")
    if not isinstance(mask, Tensor) or tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"mask must have shape {tuple(x.shape[:2])} (B, L) "
                         f"(got {tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__})")
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must be boolean or 0/1 integers")
        mask = mask.bool()
    return mask


def _check_graph_args(tau: Optional[float], k: Optional[int]) -> None:
    if k is None and tau is None:
        raise ValueError("give a threshold tau, a neighbour count k, or both")
    if tau is not None and not -1.0 <= float(tau) <= 1.0:
        raise ValueError(f"tau is a cosine similarity and must lie in [-1, 1] (got {tau})")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ValueError(f"k must be a positive int or None (got {k!r})")


def _buckets(lengths: Tensor, bucket_size: int):
    """Sentences sorted by length, in groups of ``bucket_size``: a batched
    product per group wastes little on padding."""
    order = torch.argsort(lengths, stable=True)
    order = order[lengths[order] > 0]
    return order.split(bucket_size)


def build_token_graph(x: Tensor, mask: Tensor, tau: Optional[float] = 0.8,
                      k: Optional[int] = None, edge_weights: bool = False,
                      bucket_size: int = 64) -> TokenGraph:
    r"""Token graphs of a padded batch, vectorised over sentences.

    For each sentence, tokens :math:`i \neq j` (both unmasked) are joined when
    :math:`\cos(\mathbf{x}_i, \mathbf{x}_j) > \tau`. With ``k``, each token
    :math:`i` instead receives edges from its ``k`` most similar other tokens
    (fewer in shorter sentences; ties broken by position), and ``tau``, when
    not :obj:`None`, additionally drops those at or below the threshold.
    Threshold graphs are symmetric; k-NN graphs need not be. Self-loops are
    never added (most PyG convolutions add their own).

    There is no Python loop over sentences: sentences are sorted by length and
    each group of ``bucket_size`` is handled by one batched matrix product
    (a padded batch of ``B <= bucket_size`` sentences is one group). The
    graph does not depend on ``bucket_size``.

    Args:
        x (torch.Tensor): token states, ``(B, L, d)``.
        mask (torch.Tensor): ``(B, L)``, true for real tokens, false for padding.
        tau (float, optional): cosine-similarity threshold. (default: :obj:`0.8`)
        k (int, optional): neighbours per token; :obj:`None` builds a pure
            threshold graph. (default: :obj:`None`)
        edge_weights (bool, optional): also return each edge's cosine
            similarity. (default: :obj:`False`)
        bucket_size (int, optional): sentences per batched product.
            (default: :obj:`64`)
    """
    mask = _check_padded(x, mask)
    _check_graph_args(tau, k)
    if isinstance(bucket_size, bool) or not isinstance(bucket_size, int) or bucket_size < 1:
        raise ValueError(f"bucket_size must be a positive int (got {bucket_size!r})")
    B, L, d = x.shape
    dev = x.device
    with torch.no_grad():
        lengths = mask.sum(1)
        ptr = torch.zeros(B + 1, dtype=torch.long, device=dev)
        ptr[1:] = lengths.cumsum(0)
        right_padded = bool((mask == (torch.arange(L, device=dev) < lengths.unsqueeze(1))).all())
        # column of each sentence's r-th real token (identity when right-padded)
        cols = None if right_padded else torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        xd = x.detach()
        src_parts, dst_parts, w_parts = [], [], []
        for group in _buckets(lengths, bucket_size):
            n = lengths[group]
            l = int(n.max())
            if right_padded:
                h = xd[:, :l].index_select(0, group)
            else:
                h = xd[group.unsqueeze(1), cols.index_select(0, group)[:, :l]]
            h = F.normalize(h.float(), dim=-1)
            ranks = torch.arange(l, device=dev)
            tok = ranks.unsqueeze(0) < n.unsqueeze(1)
            valid = tok.unsqueeze(2) & tok.unsqueeze(1)
            valid &= ~torch.eye(l, dtype=torch.bool, device=dev)
            sim = torch.bmm(h, h.transpose(1, 2))
            if k is None:
                adj = valid & (sim > tau)
            else:
                adj = torch.zeros_like(valid)
                kk = min(k, l - 1)
                if kk > 0:
                    top, idx = sim.masked_fill(~valid, float("-inf")).topk(kk, dim=-1)
                    keep = top > (tau if tau is not None else float("-inf"))
                    adj.scatter_(2, idx, keep)
            bb, i, j = adj.nonzero(as_tuple=True)  # token j -> token i
            base = ptr.index_select(0, group)[bb]
            src_parts.append(base + j)
            dst_parts.append(base + i)
            if edge_weights:
                w_parts.append(sim[bb, i, j])
        N = int(ptr[-1])
        empty = torch.zeros(0, dtype=torch.long, device=dev)
        src = torch.cat(src_parts) if src_parts else empty
        dst = torch.cat(dst_parts) if dst_parts else empty
        perm = torch.argsort(dst * max(N, 1) + src)  # sorted by target, then source
        src, dst = src.index_select(0, perm), dst.index_select(0, perm)
        weight = None
        if edge_weights:
            weight = (torch.cat(w_parts) if w_parts else x.new_zeros(0)).index_select(0, perm)
            weight = weight.to(x.dtype)
        flat_pos = mask.reshape(-1).nonzero(as_tuple=True)[0]
        batch = torch.repeat_interleave(torch.arange(B, device=dev), lengths, output_size=N)
        position = flat_pos - batch * L
    nodes = x.reshape(B * L, d).index_select(0, flat_pos)
    return TokenGraph(nodes, torch.stack([src, dst]), weight, batch, ptr, position)


def build_token_graph_loop(x: Tensor, mask: Tensor, tau: Optional[float] = 0.8,
                           k: Optional[int] = None, edge_weights: bool = False) -> TokenGraph:
    """The same graphs as :func:`build_token_graph`, one sentence at a time.

    A plain reference for tests and for :func:`benchmark_token_graph`; use
    :func:`build_token_graph` in models.
    """
    mask = _check_padded(x, mask)
    _check_graph_args(tau, k)
    feats, edges, weights, batches, positions, counts = [], [], [], [], [], [0]
    offset = 0
    with torch.no_grad():
        for b in range(x.size(0)):
            pos = mask[b].nonzero(as_tuple=True)[0]
            h = x[b, pos]
            n = h.size(0)
            hn = F.normalize(h.detach().float(), dim=-1)
            sim = hn @ hn.t()
            off_diag = ~torch.eye(n, dtype=torch.bool, device=x.device)
            if k is None:
                adj = off_diag & (sim > tau)
            else:
                adj = torch.zeros_like(off_diag)
                kk = min(k, n - 1)
                if kk > 0:
                    top, idx = sim.masked_fill(~off_diag, float("-inf")).topk(kk, dim=-1)
                    keep = top > (tau if tau is not None else float("-inf"))
                    adj.scatter_(1, idx, keep)
            i, j = adj.nonzero(as_tuple=True)
            edges.append(torch.stack([j, i]) + offset)
            if edge_weights:
                weights.append(sim[i, j])
            feats.append(h)
            batches.append(torch.full((n,), b, dtype=torch.long, device=x.device))
            positions.append(pos)
            offset += n
            counts.append(offset)
    d = x.size(2)
    cat = lambda ts, empty: torch.cat(ts, dim=-1) if ts else empty
    return TokenGraph(
        torch.cat(feats) if feats else x.new_zeros(0, d),
        cat(edges, torch.zeros(2, 0, dtype=torch.long, device=x.device)),
        cat(weights, x.new_zeros(0)).to(x.dtype) if edge_weights else None,
        cat(batches, torch.zeros(0, dtype=torch.long, device=x.device)),
        torch.tensor(counts, dtype=torch.long, device=x.device),
        cat(positions, torch.zeros(0, dtype=torch.long, device=x.device)))


def benchmark_token_graph(x: Tensor, mask: Tensor, tau: Optional[float] = 0.8,
                          k: Optional[int] = None, repeats: int = 5,
                          chunk: Optional[int] = None) -> Dict[str, Any]:
    """Time :func:`build_token_graph` against :func:`build_token_graph_loop`
    on the same input, after checking that both give the same graphs.

    ``chunk`` builds the vectorised graphs ``chunk`` sentences at a time (as
    a training loop does per mini-batch); :obj:`None` does all at once.
    Reports the best of ``repeats`` runs of each, in seconds.
    """
    mask = _check_padded(x, mask)
    B = x.size(0)
    chunk = chunk or B

    def vectorised():
        return [build_token_graph(x[s:s + chunk], mask[s:s + chunk], tau, k)
                for s in range(0, B, chunk)]

    fast = vectorised()
    slow = build_token_graph_loop(x, mask, tau, k)
    fast_edges = torch.cat([g.edge_index + int(slow.ptr[s]) for s, g in
                            zip(range(0, B, chunk), fast)], dim=1)
    if not torch.equal(fast_edges, slow.edge_index):
        raise RuntimeError("vectorised and per-sentence token graphs differ")

    def best(fn):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    t_vec = best(vectorised)
    t_loop = best(lambda: build_token_graph_loop(x, mask, tau, k))
    return {"sentences": B, "max_len": x.size(1), "tokens": int(mask.sum()),
            "edges": slow.num_edges, "tau": tau, "k": k, "chunk": chunk,
            "vectorised_s": t_vec, "loop_s": t_loop, "speedup": t_loop / t_vec}


# Poolers ####################################################################

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
        mask = _check_padded(x, mask)
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


#: Convolutions that aggregate their *input* features (and transform after),
#: so a channel-taking aggregator must be built with the layer's input size;
#: all others aggregate transformed messages of ``hidden_channels``.
AGGREGATE_INPUT_CONVS = frozenset({"SAGEConv", "GraphConv", "GINConv", "GINEConv",
                                   "LEConv", "ResGatedGraphConv", "SimpleConv"})


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
            layer; channel-taking ones get the size of the messages the
            convolution aggregates, see ``AGGREGATE_INPUT_CONVS``); :obj:`None`
            keeps the convolution's own. (default: :obj:`None`)
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
    """

    def __init__(self, in_channels: int, hidden_channels: int = 256, num_layers: int = 2,
                 conv: Union[str, Type[torch.nn.Module]] = "GATConv",
                 aggr: Optional[Any] = None, tau: Optional[float] = 0.8,
                 k: Optional[int] = None, attention_channels: Optional[int] = None,
                 jumping_knowledge: bool = True, dropout: float = 0.0,
                 conv_kwargs: Optional[Dict[str, Any]] = None):
        super().__init__(in_channels)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive int (got {num_layers!r})")
        if not isinstance(hidden_channels, int) or hidden_channels < 1:
            raise ValueError(f"hidden_channels must be a positive int (got {hidden_channels!r})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (got {dropout})")
        _check_graph_args(tau, k)
        self.hidden_channels = hidden_channels
        self.num_layers = num_layers
        self.conv_cls = resolve_conv(conv)
        self.aggr = aggr
        self.tau, self.k = tau, k
        self.jumping_knowledge = bool(jumping_knowledge)
        self.dropout = dropout
        self.conv_kwargs = dict(conv_kwargs or {})
        self.convs = torch.nn.ModuleList()
        for layer in range(num_layers):
            kwargs = dict(self.conv_kwargs)
            c_in = in_channels if layer == 0 else hidden_channels
            if aggr is not None:
                if isinstance(aggr, torch.nn.Module) and num_layers > 1:
                    raise ValueError("pass aggr by name or class when num_layers > 1: "
                                     "one module cannot serve several layers")
                c_msg = c_in if self.conv_cls.__name__ in AGGREGATE_INPUT_CONVS else hidden_channels
                kwargs["aggr"] = (resolve_aggr(aggr, in_channels=c_msg, out_channels=c_msg)
                                  if needs_channels(aggr) else resolve_aggr(aggr))
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
            graph = build_token_graph(x, mask, self.tau, self.k)
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
        graph = f"tau={self.tau}" + (f", k={self.k}" if self.k is not None else "")
        aggr = f", aggr={self.aggr!r}" if self.aggr is not None else ""
        return (f"{self.__class__.__name__}({self.in_channels}, {self.hidden_channels}, "
                f"num_layers={self.num_layers}, conv={self.conv_cls.__name__}{aggr}, {graph}, "
                f"jumping_knowledge={self.jumping_knowledge})")


#: Poolers by name, for :func:`resolve_pooling`.
POOLINGS: Dict[str, Type[TokenPooling]] = {
    "glot": GLOTPooling,
    "mean": MeanPooling,
    "max": MaxPooling,
    "cls": CLSPooling,
    "adapool": AdaPool,
}


def resolve_pooling(name: Union[str, TokenPooling], in_channels: Optional[int] = None,
                    **kwargs: Any) -> TokenPooling:
    """A pooler from its name (``'glot'``, ``'mean'``, ``'max'``, ``'cls'``,
    ``'adapool'``) built with ``in_channels`` and ``kwargs``; a module is
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
