"""Whole models (DAGNN, LATTE, OGB baselines, the set model), imported lazily."""
import importlib

_EXPORTS = {
    "DAGNN": "dagnn",
    "LATTE": "latte",
    "OGBGraphModel": "ogb",
    "OGBNodeModel": "ogb",
    "SetModel": "sets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
