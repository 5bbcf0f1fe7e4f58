"""Layers from the papers gnnagg reproduces (DAGNN, LATTE, GLOT).

Names are imported lazily, so that importing ``gnnagg.nn`` does not pull in
optional dependencies (e.g. ``transformers``) of layers you do not use.
"""
import importlib

_EXPORTS = {
    "DAGNNProp": "dagnn",
    "LATTEConv": "latte",
    "TokenGraph": "glot",
    "build_token_graph": "glot",
    "GLOTPooling": "glot",
    "MeanPooling": "glot",
    "MaxPooling": "glot",
    "CLSPooling": "glot",
    "AdaPool": "glot",
    "resolve_pooling": "glot",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
