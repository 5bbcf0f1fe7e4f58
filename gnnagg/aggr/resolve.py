"""One resolver for aggregators: gnnagg's first, then PyG's.

It is a drop-in for PyG's ``aggregation_resolver`` (``None``, names,
classes, modules, lists for a ``MultiAggregation``, positional and keyword
arguments) and adds the one rule about channel sizes: ``channels=`` gives
the width of the messages, and it reaches exactly the aggregators whose
constructors take ``in_channels``/``out_channels`` (see
:func:`needs_channels`); the others ignore it.
"""
from __future__ import annotations

import inspect
import warnings
from typing import Any, Dict, List, Optional, Sequence, Type, Union

from torch_geometric.nn.aggr import Aggregation, MultiAggregation

from .lcm import LCMAggregation
from .recurrent import GRUAggregation, LSTMAggregation

__all__ = ["AGGREGATORS", "aggregator_class", "needs_channels", "resolve",
           "AggregatorCostWarning", "WIDE_AGGREGATOR_PARAMETERS"]

#: gnnagg's aggregators by short name.
AGGREGATORS: Dict[str, Type[Aggregation]] = {
    "lcm": LCMAggregation,
    "gru": GRUAggregation,
    "lstm": LSTMAggregation,
}

#: Constructor arguments that ``channels=`` fills.
_CHANNEL_ARGS = ("in_channels", "out_channels", "channels")

#: Above this many parameters a learned aggregator warns about its cost.
WIDE_AGGREGATOR_PARAMETERS = 1_000_000

Query = Union[None, str, Aggregation, Type[Aggregation], Sequence[Any]]


class AggregatorCostWarning(UserWarning):
    """A learned aggregator built so wide that it will dominate the model."""


def _normalize(name: str) -> str:
    name = name.lower().replace("-", "").replace("_", "")
    return name[: -len("aggregation")] if name.endswith("aggregation") else name


def _pyg_classes() -> Dict[str, Type[Aggregation]]:
    import torch_geometric.nn.aggr as pyg_aggr

    out = {_normalize(cls.__name__): cls for cls in vars(pyg_aggr).values()
           if isinstance(cls, type) and issubclass(cls, Aggregation)
           and cls is not Aggregation}
    out["add"] = out["sum"]
    return out


def aggregator_class(query: Union[str, Aggregation, Type[Aggregation]]) -> Type[Aggregation]:
    """The class :func:`resolve` would build, without building it."""
    if isinstance(query, Aggregation):
        return type(query)
    if isinstance(query, type):
        if not issubclass(query, Aggregation):
            raise TypeError(f"{query.__name__} is not an Aggregation subclass")
        return query
    if not isinstance(query, str):
        raise TypeError(f"expected an aggregator name, class or module (got "
                        f"{type(query).__name__}: {query!r})")
    key = _normalize(query)
    if not key:
        raise ValueError("the aggregator name is empty; give e.g. 'sum', 'mean', 'lcm'")
    if key in AGGREGATORS:
        return AGGREGATORS[key]
    pyg = _pyg_classes()
    if key in pyg:
        return pyg[key]
    close = [n for n in sorted(set(AGGREGATORS) | set(pyg)) if n[:2] == key[:2]]
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ValueError(f"unknown aggregator '{query}'{hint}: gnnagg has {sorted(AGGREGATORS)}, "
                     f"PyG has {sorted(set(pyg) - {'add'})}")


def needs_channels(query: Union[str, Aggregation, Type[Aggregation]]) -> bool:
    """Whether building the aggregator requires channel sizes (an
    ``in_channels``, ``out_channels`` or ``channels`` argument without a
    default): the one place this rule lives. A built module needs nothing;
    for a list, whether any member does."""
    if query is None or isinstance(query, Aggregation):
        return False
    if isinstance(query, (list, tuple)):
        return any(needs_channels(q) for q in query)
    params = inspect.signature(aggregator_class(query).__init__).parameters
    return any(name in params and params[name].default is inspect.Parameter.empty
               for name in _CHANNEL_ARGS)


def _with_channels(cls: Type[Aggregation], args: tuple, kwargs: Dict[str, Any],
                   channels: Optional[int]) -> Dict[str, Any]:
    if channels is None:
        return kwargs
    if isinstance(channels, bool) or not isinstance(channels, int) or channels <= 0:
        raise ValueError(f"'channels' must be a positive int (got {channels!r})")
    sig = inspect.signature(cls.__init__)
    try:
        bound = sig.bind_partial(None, *args, **kwargs).arguments
    except TypeError as exc:
        raise TypeError(f"{cls.__name__}: {exc}") from None
    kwargs = dict(kwargs)
    for name in _CHANNEL_ARGS:
        param = sig.parameters.get(name)
        if param is not None and param.default is inspect.Parameter.empty and name not in bound:
            kwargs[name] = channels
    return kwargs


def _warn_if_wide(module: Aggregation) -> None:
    params = sum(p.numel() for p in module.parameters())
    if params <= WIDE_AGGREGATOR_PARAMETERS:
        return
    width = getattr(module, "in_channels", None)
    warnings.warn(
        f"{type(module).__name__} at width {width} has {params / 1e6:.1f}M parameters and "
        f"costs about {2 * params / 1e6:.0f} MFLOP per neighbour (O(width^2) per neighbour, "
        f"forward only): it will dominate the model's time and memory. Aggregating "
        f"narrower messages is usually better, e.g. gnnagg.aggr.Projected('lcm', {width}, "
        f"width=64), or swap_aggregators(model, ..., width=64)",
        AggregatorCostWarning, stacklevel=3)


def resolve(query: Query = None, *args: Any, channels: Optional[int] = None,
            **kwargs: Any) -> Optional[Aggregation]:
    """An aggregation module from a name, a class, a module or a list.

    * ``'lcm'``, ``'gru'``, ``'lstm'`` (or their class names) give gnnagg's
      padding-free aggregators; other names go to PyG's classes (``'sum'``
      or ``'add'``, ``'mean'``, ``'max'``, ``'softmax'``, ``'powermean'``,
      ``'std'``, ``'deep_sets'``, ...).
    * A class is built with ``args``/``kwargs``; a module is returned as
      it is; ``None`` gives ``None`` (as PyG's resolver).
    * A list or tuple gives a ``MultiAggregation`` of its members, each
      resolved here (so ``['sum', 'lcm']`` uses gnnagg's LCM);
      ``mode``/``mode_kwargs``/``aggrs_kwargs`` go to ``MultiAggregation``.
    * ``channels``: the width of the messages. Aggregators whose
      constructors require ``in_channels``/``out_channels`` get it for both
      (unless given); the others ignore it. Learned aggregators with more
      than a million parameters warn (:class:`AggregatorCostWarning`).

    Examples:
        >>> resolve('lcm', channels=16)
        LCMAggregation(16, 16, project=True, operator='gru', activation='relu')
        >>> resolve(['sum', 'max'])
        MultiAggregation([SumAggregation(), MaxAggregation()], mode=cat)
    """
    if query is None:
        return None
    if isinstance(query, Aggregation):
        if args or kwargs:
            raise TypeError("keyword arguments given with an aggregation module, which is "
                            "already built")
        return query
    if isinstance(query, (list, tuple)):
        if not query:
            raise ValueError("an empty list of aggregators")
        mode = kwargs.pop("mode", "cat")
        mode_kwargs = kwargs.pop("mode_kwargs", None)
        aggrs_kwargs: List[Dict[str, Any]] = kwargs.pop("aggrs_kwargs", None) or \
            [{} for _ in query]
        if args or kwargs:
            raise TypeError(f"a list of aggregators takes mode, mode_kwargs and aggrs_kwargs "
                            f"(got {sorted(kwargs) or 'positional arguments'})")
        if len(aggrs_kwargs) != len(query):
            raise ValueError(f"'aggrs_kwargs' has {len(aggrs_kwargs)} entries for "
                             f"{len(query)} aggregators")
        members = [resolve(q, channels=channels, **kw) for q, kw in zip(query, aggrs_kwargs)]
        return MultiAggregation(members, mode=mode, mode_kwargs=mode_kwargs)
    cls = aggregator_class(query)
    if cls is Aggregation or inspect.isabstract(cls):
        raise ValueError(f"'{query}' names the abstract base class; give a concrete "
                         f"aggregator such as 'sum', 'mean' or 'lcm'")
    kwargs = _with_channels(cls, args, kwargs, channels)
    try:
        module = cls(*args, **kwargs)
    except TypeError as exc:
        if needs_channels(cls) and channels is None:
            raise TypeError(f"{cls.__name__} needs its channel sizes: resolve('{query}', "
                            f"channels=WIDTH) or in_channels=/out_channels= ({exc})") from None
        raise
    _warn_if_wide(module)
    return module
