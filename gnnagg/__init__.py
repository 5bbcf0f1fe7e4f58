"""gnnagg: graph neural network aggregation for PyTorch Geometric.

Submodules are imported on first use (``gnnagg.aggr``, ``gnnagg.models``,
...), so that ``import gnnagg`` is cheap and changes no global state.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("aggr", "ops", "nn", "models", "train", "metrics", "datasets", "testing",
               "distributed", "text", "bench", "experiments", "utils", "sweeps")
_NAMES = {"swap_aggregators": "swap", "sweep": "sweeps"}

__all__ = ["__version__", "swap_aggregators", "sweep", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
