"""Which width of messages a PyG convolution aggregates: the one table that
models, ``swap_aggregators`` and GLOT consult when they build an
aggregator that takes channel sizes."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Union

__all__ = ["AGGREGATES_INPUT", "AGGREGATES_OUTPUT", "message_channels"]


def _first(value):
    return value[0] if isinstance(value, (tuple, list)) else value


def _nn_in(module) -> Optional[int]:
    """Input width of the first layer of an MLP (GINConv's ``nn``)."""
    for m in module.modules():
        for attr in ("in_features", "in_channels"):
            value = getattr(m, attr, None)
            if isinstance(value, int) and value > 0:
                return value
    return None


def _nn_out(module) -> Optional[int]:
    """Output width of the last layer of an MLP (EdgeConv's ``nn``)."""
    out = None
    for m in module.modules():
        value = getattr(m, "out_features", getattr(m, "out_channels", None))
        if isinstance(value, int) and value > 0:
            out = value
    return out


#: Convolutions whose messages are the (source) input features, so they
#: aggregate ``in_channels`` wide and transform afterwards.
AGGREGATES_INPUT = frozenset({"SAGEConv", "GraphConv", "GINConv", "GINEConv", "SimpleConv",
                              "ChebConv", "MFConv", "ClusterGCNConv", "SGConv", "TAGConv",
                              "APPNP"})
#: Convolutions whose messages are transformed first: ``out_channels`` wide,
#: times ``heads`` where they have heads (concatenated or averaged later).
AGGREGATES_OUTPUT = frozenset({"GCNConv", "LEConv", "ResGatedGraphConv", "GeneralConv",
                               "GATConv", "GATv2Conv", "TransformerConv"})

# From a built layer: its attributes say the width.
_FROM_LAYER: Dict[str, Callable[[Any], Optional[int]]] = {
    "GINConv": lambda c: _nn_in(c.nn),
    "GINEConv": lambda c: _nn_in(c.nn),
    "EdgeConv": lambda c: _nn_out(c.nn),
    "DynamicEdgeConv": lambda c: _nn_out(c.nn),
}


def message_channels(conv: Union[str, type, Any], in_channels: Optional[int] = None,
                     out_channels: Optional[int] = None, heads: int = 1) -> Optional[int]:
    """The width of the messages that ``conv`` aggregates.

    Args:
        conv: a PyG convolution: a built layer (its own attributes are read),
            a class or a class name (then ``in_channels``/``out_channels``/
            ``heads`` are those it is, or will be, built with).
        in_channels, out_channels, heads: the layer's sizes, when ``conv``
            is a class or a name.

    Returns:
        The width, or ``None`` when the table does not know the layer (pass
        ``example=`` to :func:`gnnagg.swap_aggregators` to measure it).

    Example:
        >>> message_channels("SAGEConv", 1433, 64)
        1433
        >>> message_channels("GATConv", 1433, 8, heads=8)
        64
    """
    if isinstance(conv, str):
        name, layer = conv, None
    elif isinstance(conv, type):
        name, layer = conv.__name__, None
    else:
        name, layer = type(conv).__name__, conv
    if layer is not None:
        if name in _FROM_LAYER:
            return _FROM_LAYER[name](layer)
        in_channels = _first(getattr(layer, "in_channels", None))
        out_channels = getattr(layer, "out_channels", None)
        heads = getattr(layer, "heads", 1) or 1
    if name in AGGREGATES_INPUT:
        return in_channels if isinstance(in_channels, int) and in_channels > 0 else None
    if name in AGGREGATES_OUTPUT:
        if not isinstance(out_channels, int) or out_channels <= 0:
            return None
        return out_channels * (heads if name in ("GeneralConv", "GATConv", "GATv2Conv",
                                                 "TransformerConv") else 1)
    return None
