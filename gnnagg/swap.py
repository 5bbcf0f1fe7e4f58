"""Swap the aggregation of every message-passing layer of an existing model."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.aggr import Aggregation

from .aggr.resolve import needs_channels, resolve


def _first_in_features(module: torch.nn.Module) -> Optional[int]:
    for m in module.modules():
        for attr in ("in_features", "in_channels"):
            value = getattr(m, attr, None)
            if isinstance(value, int) and value > 0:
                return value
    return None


def _first(value) -> int:
    return value[0] if isinstance(value, (tuple, list)) else value


# Size of the messages that reach aggregation, for PyG layers whose
# constructor arguments determine it; other layers need ``example=``.
_MESSAGE_CHANNELS: Dict[str, Callable[[MessagePassing], Optional[int]]] = {
    "SAGEConv": lambda c: _first(c.in_channels),
    "GraphConv": lambda c: _first(c.in_channels),
    "ResGatedGraphConv": lambda c: c.out_channels,
    "GINConv": lambda c: _first_in_features(c.nn),
    "GINEConv": lambda c: _first_in_features(c.nn),
    "GCNConv": lambda c: c.out_channels,
    "LEConv": lambda c: c.out_channels,
    "GeneralConv": lambda c: c.out_channels * c.heads,
    "GATConv": lambda c: c.out_channels * c.heads,
    "GATv2Conv": lambda c: c.out_channels * c.heads,
    "EdgeConv": lambda c: _last_out_features(c.nn),
}


def _last_out_features(module: torch.nn.Module) -> Optional[int]:
    out = None
    for m in module.modules():
        value = getattr(m, "out_features", getattr(m, "out_channels", None))
        if isinstance(value, int) and value > 0:
            out = value
    return out


def _probe_channels(model: torch.nn.Module, example: Sequence[Any]) -> Dict[str, int]:
    """Run ``model(*example)`` once and record the feature size that reaches
    every message-passing layer's aggregation."""
    seen: Dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, MessagePassing) and module.aggr_module is not None:
            def hook(mod, args, kwargs, name=name):
                x = args[0] if args else kwargs["x"]
                seen[name] = int(x[0].numel()) if x.size(0) else int(torch.tensor(x.shape[1:]).prod())
            handles.append(module.aggr_module.register_forward_pre_hook(hook, with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*example)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return seen


def swap_aggregators(model: torch.nn.Module,
                     aggr: Union[str, Aggregation, type, Callable[[int], Aggregation]],
                     example: Optional[Sequence[Any]] = None,
                     filter: Optional[Callable[[str, MessagePassing], bool]] = None,
                     **kwargs: Any) -> Dict[str, Aggregation]:
    """Replace the aggregation of every PyG message-passing layer in
    ``model``, in place, and return the replaced modules by layer name.

    Args:
        model: any ``torch.nn.Module`` holding ``MessagePassing`` layers
            (including ``HeteroConv`` and models made with ``to_hetero``).
        aggr: a name for :func:`gnnagg.aggr.resolve` (``'lcm'``, ``'gru'``,
            ``'sum'``, ...), an ``Aggregation`` class, or a callable taking
            the message size and returning a module. A single module
            instance is not accepted, since layers must not share one.
        example: arguments of one forward call of ``model``; when given, the
            message size of each layer is measured rather than inferred from
            its constructor arguments (needed for layers that gnnagg does
            not know).
        filter: ``filter(name, layer)`` picks the layers to change.
        **kwargs: further arguments of the aggregator's constructor.

    Aggregators that take ``in_channels``/``out_channels`` get both set to
    the layer's message size, so the layer's own weights fit unchanged. Put
    the new parameters into the optimizer (build it after swapping).
    """
    if isinstance(aggr, Aggregation):
        raise TypeError("pass a name, a class or a factory, not a module instance: "
                        "each layer needs its own aggregator")
    layers = [(n, m) for n, m in model.named_modules()
              if isinstance(m, MessagePassing) and m.aggr_module is not None
              and (filter is None or filter(n, m))]
    probed = _probe_channels(model, example) if example is not None else {}
    replaced: Dict[str, Aggregation] = {}
    for name, layer in layers:
        if callable(aggr) and not isinstance(aggr, (str, type)):
            channels = probed.get(name) or _known_channels(name, layer)
            new = aggr(channels)
        elif needs_channels(aggr):
            channels = probed.get(name) or _known_channels(name, layer)
            options = dict(kwargs)
            options.setdefault("in_channels", channels)
            options.setdefault("out_channels", channels)
            new = resolve(aggr, **options)
        else:
            new = resolve(aggr, **kwargs)
        device = next((p.device for p in layer.parameters()), None)
        if device is not None:
            new = new.to(device)
        replaced[name] = layer.aggr_module
        layer.aggr_module = new
        layer.aggr = str(new)
        # Fused sparse kernels implement the old aggregation only.
        layer.fuse = False
    return replaced


def _known_channels(name: str, layer: MessagePassing) -> int:
    rule = _MESSAGE_CHANNELS.get(type(layer).__name__)
    channels = rule(layer) if rule is not None else None
    if not channels or channels < 0:
        raise ValueError(
            f"cannot tell the message size of layer '{name}' ({type(layer).__name__}); "
            f"pass example=(...) with the arguments of one forward call of the model")
    return channels
