"""Whole models, each taking its aggregator through :func:`gnnagg.aggr.resolve`
(DAGNN, node-classification baselines, heterogeneous models and LATTE, the OGB
baselines, the set model, the sentence classifier), imported lazily."""
import importlib

_EXPORTS = {
    "DAGNN": "dagnn",
    "GCN": "node",
    "GraphSAGE": "node",
    "GIN": "node",
    "APPNPNet": "node",
    "SGC": "node",
    "LATTE": "latte",
    "HAN": "hetero",
    "HGT": "hetero",
    "RGCN": "hetero",
    "HeteroSAGE": "hetero",
    "OGBGraphModel": "ogb",
    "OGBNodeModel": "ogb",
    "SentenceClassifier": "sentence",
    "SetModel": "sets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
