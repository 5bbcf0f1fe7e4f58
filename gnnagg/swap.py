"""Swap the aggregation of every message-passing layer of an existing model."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.aggr import Aggregation

from .aggr.channels import message_channels
from .aggr.projected import Projected
from .aggr.resolve import aggregator_class, needs_channels, resolve

__all__ = ["swap_aggregators", "SwapResult"]


class SwapResult(dict):
    """What :func:`swap_aggregators` did: ``{place: new module}``, with the
    modules that were replaced in :attr:`previous`."""

    def __init__(self) -> None:
        super().__init__()
        self.previous: Dict[str, Aggregation] = {}

    def __repr__(self) -> str:
        lines = [f"  {name}: {self.previous[name]} -> {new}" for name, new in self.items()]
        return f"SwapResult({len(self)} replaced:\n" + "\n".join(lines) + "\n)"


def _probe_channels(model: torch.nn.Module, places: Dict[str, Aggregation],
                    example: Sequence[Any]) -> Dict[str, int]:
    """Run ``model(*example)`` once and record the width of the messages
    that reach every aggregation module in ``places``."""
    seen: Dict[str, int] = {}
    handles = []
    for name, module in places.items():
        def hook(mod, args, kwargs, name=name):
            x = args[0] if args else kwargs["x"]
            width = 1
            for s in x.shape[1:]:
                width *= int(s)
            seen[name] = width
        handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
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


def _places(model: torch.nn.Module, filter) -> Dict[str, Tuple[torch.nn.Module, str, Aggregation]]:
    """Every aggregation to replace: ``{name: (owner, attribute, module)}``.
    A message-passing layer's ``aggr_module``, and bare aggregation modules
    that a model calls itself (as in PyG's LCM example)."""
    out: Dict[str, Tuple[torch.nn.Module, str, Aggregation]] = {}
    inside_mp = set()
    for name, module in model.named_modules():
        if isinstance(module, MessagePassing):
            inside_mp.update(id(m) for m in module.modules() if m is not module)
            if module.aggr_module is not None and (filter is None or filter(name, module)):
                out[name] = (module, "aggr_module", module.aggr_module)
    for name, module in model.named_modules():
        if isinstance(module, Aggregation) and id(module) not in inside_mp and name:
            owner_name, _, attr = name.rpartition(".")
            owner = model.get_submodule(owner_name) if owner_name else model
            if isinstance(owner, Aggregation):
                continue  # a member of a MultiAggregation or similar
            if filter is None or filter(name, module):
                out[name] = (owner, attr, module)
    return out


def _check_query(aggr) -> None:
    if isinstance(aggr, Aggregation):
        raise TypeError("pass a name, a class or a factory, not a module instance: "
                        "each layer needs its own aggregator")
    if isinstance(aggr, (list, tuple)):
        for a in aggr:
            _check_query(a)
        return
    if isinstance(aggr, (str, type)):
        aggregator_class(aggr)  # unknown and empty names fail here, before any change
        return
    if not callable(aggr):
        raise TypeError(f"aggr must be an aggregator name, a class, a list of them or a "
                        f"factory taking the message width (got {type(aggr).__name__}: {aggr!r})")


def swap_aggregators(model: torch.nn.Module,
                     aggr: Union[str, type, Sequence[Any], Callable[[int], Aggregation]],
                     example: Optional[Sequence[Any]] = None,
                     filter: Optional[Callable[[str, torch.nn.Module], bool]] = None,
                     width: Optional[int] = None, **kwargs: Any) -> SwapResult:
    """Replace the aggregation of every PyG message-passing layer in
    ``model`` (and every bare aggregation module it calls itself), in place.

    Args:
        model: any ``torch.nn.Module`` holding ``MessagePassing`` layers
            (including ``HeteroConv`` and models made with ``to_hetero``) or
            ``Aggregation`` modules.
        aggr: a name for :func:`gnnagg.aggr.resolve` (``'lcm'``, ``'gru'``,
            ``'sum'``, ...), an ``Aggregation`` class, a list of them (a
            ``MultiAggregation``), or a callable taking the message width
            and returning a module. A single module instance is not
            accepted, since layers must not share one.
        example: arguments of one forward call of ``model``; when given, the
            message width of each layer is measured rather than read from
            :func:`gnnagg.aggr.message_channels` (needed for layers that
            table does not know).
        filter: ``filter(name, module)`` picks the places to change.
        width: aggregate a projection to this many channels where the
            messages are wider (:class:`gnnagg.aggr.Projected`), so that a
            learned aggregator on raw features stays cheap.
        **kwargs: further arguments of the aggregator's constructor.

    Returns:
        :class:`SwapResult`: ``{place: new module}``, the replaced ones in
        ``.previous``.

    Raises:
        ValueError: an unknown aggregator name (before anything changes), or
            a model without a message-passing layer or aggregation module.

    Aggregators that take channel sizes are built at the layer's message
    width, so the layer's own weights fit unchanged. Build the optimiser
    after swapping, so that it holds the new parameters.
    """
    _check_query(aggr)
    places = _places(model, filter)
    if not places:
        raise ValueError(f"{type(model).__name__} has no message-passing layer with an "
                         f"aggregation module and no aggregation module of its own"
                         + (" that the filter accepts" if filter is not None else ""))
    probed = (_probe_channels(model, {n: p[2] for n, p in places.items()}, example)
              if example is not None else {})
    factory = callable(aggr) and not isinstance(aggr, (str, type, list, tuple))
    result = SwapResult()
    for name, (owner, attr, old) in places.items():
        needs = factory or needs_channels(aggr) or width is not None
        channels = _channels(name, owner, old, probed) if needs else None
        if factory:
            new = aggr(channels)
        elif width is not None and channels > width and needs_channels(aggr):
            new = Projected(aggr, channels, width, **kwargs)
        else:
            new = resolve(aggr, channels=channels, **kwargs)
        device = next((p.device for p in owner.parameters()), None)
        if device is not None:
            new = new.to(device)
        setattr(owner, attr, new)
        if isinstance(owner, MessagePassing):
            owner.aggr = str(new)
            owner.fuse = False  # fused sparse kernels implement the old aggregation only
        result[name] = new
        result.previous[name] = old
    return result


def _channels(name: str, owner: torch.nn.Module, old: Aggregation,
              probed: Dict[str, int]) -> int:
    if name in probed:
        return probed[name]
    if isinstance(owner, MessagePassing):
        channels = message_channels(owner)
    else:
        channels = getattr(old, "in_channels", None)
    if not isinstance(channels, int) or channels <= 0:
        raise ValueError(
            f"cannot tell the message width at '{name}' ({type(owner).__name__}); pass "
            f"example=(...) with the arguments of one forward call of the model")
    return channels
