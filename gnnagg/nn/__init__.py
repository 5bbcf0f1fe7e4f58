"""Layers from the papers gnnagg reproduces (DAGNN, LATTE, GLOT).

* :mod:`gnnagg.nn.token_graph`: GLOT's token graphs (vectorised, the
  per-sentence reference, the edgeless ablation).
* :mod:`gnnagg.nn.pooling`: sentence poolers over token states (GLOT and
  the baselines of its paper) and their resolver.
* :mod:`gnnagg.nn.relations`: relations of higher order (meta-paths) on
  heterogeneous graphs, as LATTE and HAN read them.

Names are imported lazily, so that importing ``gnnagg.nn`` does not pull in
optional dependencies of layers you do not use.
"""
import importlib

_EXPORTS = {
    "DAGNNProp": "dagnn",
    "LATTEConv": "latte",
    "TokenGraph": "token_graph",
    "build_token_graph": "token_graph",
    "build_token_graph_loop": "token_graph",
    "empty_token_graph": "token_graph",
    "BF16_MARGIN": "token_graph",
    "TokenPooling": "pooling",
    "AttentionReadout": "pooling",
    "GLOTPooling": "pooling",
    "MeanPooling": "pooling",
    "MaxPooling": "pooling",
    "CLSPooling": "pooling",
    "AdaPool": "pooling",
    "POOLINGS": "pooling",
    "resolve_pooling": "pooling",
    "resolve_conv": "pooling",
    "compose_relations": "relations",
    "compose_adjacency": "relations",
    "chain_relations": "relations",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
