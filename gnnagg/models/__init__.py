"""Whole models (DAGNN, LATTE, heterogeneous and OGB baselines), imported lazily."""
import importlib

_EXPORTS = {
    "DAGNN": "dagnn",
    "LATTE": "latte",
    "HAN": "hetero",
    "HGT": "hetero",
    "RGCN": "hetero",
    "HeteroSAGE": "hetero",
    "OGBGraphModel": "ogb",
    "OGBNodeModel": "ogb",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
