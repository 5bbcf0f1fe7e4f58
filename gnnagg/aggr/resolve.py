"""One resolver for aggregators: gnnagg's first, then PyG's."""
from __future__ import annotations

import inspect
from typing import Any, Dict, Type, Union

from torch_geometric.nn.aggr import Aggregation
from torch_geometric.nn.resolver import aggregation_resolver

from .lcm import LCMAggregation
from .recurrent import GRUAggregation, LSTMAggregation

#: gnnagg's aggregators by short name.
AGGREGATORS: Dict[str, Type[Aggregation]] = {
    "lcm": LCMAggregation,
    "gru": GRUAggregation,
    "lstm": LSTMAggregation,
}


def _normalize(name: str) -> str:
    name = name.lower().replace("-", "").replace("_", "")
    return name[: -len("aggregation")] if name.endswith("aggregation") else name


def aggregator_class(name_or_module: Union[str, Aggregation, Type[Aggregation]]) -> Type[Aggregation]:
    """The class :func:`resolve` would build, without building it."""
    if isinstance(name_or_module, Aggregation):
        return type(name_or_module)
    if isinstance(name_or_module, type):
        return name_or_module
    key = _normalize(name_or_module)
    if key in AGGREGATORS:
        return AGGREGATORS[key]
    import torch_geometric.nn.aggr as pyg_aggr

    if key == "add":
        key = "sum"
    for cls in vars(pyg_aggr).values():
        if isinstance(cls, type) and issubclass(cls, Aggregation) and _normalize(cls.__name__) == key:
            return cls
    raise ValueError(f"unknown aggregator '{name_or_module}'")


def needs_channels(name_or_module: Union[str, Aggregation, Type[Aggregation]]) -> bool:
    """Whether building the aggregator takes ``in_channels``/``out_channels``."""
    if isinstance(name_or_module, Aggregation):
        return False
    params = inspect.signature(aggregator_class(name_or_module).__init__).parameters
    return "in_channels" in params


def resolve(name_or_module: Union[str, Aggregation, Type[Aggregation]], **kwargs: Any) -> Aggregation:
    """An aggregation module from a name, a class or a module.

    ``'lcm'``, ``'gru'``, ``'lstm'`` (or their class names) give gnnagg's
    padding-free aggregators; other names go to PyG's resolver (``'sum'``,
    ``'mean'``, ``'max'``, ``'softmax'``, ``'deep_sets'``, ...). A module is
    returned as it is; keyword arguments go to the constructor.

    Examples:
        >>> resolve('lcm', in_channels=16, out_channels=16)
        LCMAggregation(16, 16, project=True, operator='gru')
        >>> resolve('sum')
        SumAggregation()
    """
    if isinstance(name_or_module, Aggregation):
        if kwargs:
            raise TypeError("keyword arguments given with an aggregation module")
        return name_or_module
    if isinstance(name_or_module, type):
        if not issubclass(name_or_module, Aggregation):
            raise TypeError(f"{name_or_module.__name__} is not an Aggregation subclass")
        return name_or_module(**kwargs)
    if not isinstance(name_or_module, str):
        raise TypeError(f"expected an aggregator name, class or module "
                        f"(got {type(name_or_module).__name__})")
    key = _normalize(name_or_module)
    if key in AGGREGATORS:
        return AGGREGATORS[key](**kwargs)
    try:
        return aggregation_resolver(name_or_module, **kwargs)
    except ValueError as exc:
        raise ValueError(f"unknown aggregator '{name_or_module}': gnnagg has "
                         f"{sorted(AGGREGATORS)}; PyG's resolver says: {exc}") from None
