"""Data sets and loaders. See :mod:`gnnagg.datasets.store` for where data
is read from (``GNNAGG_DATA``) and cached (``GNNAGG_CACHE``).

The loaders are imported on first use (PEP 562), so that importing this
package loads neither torch nor PyG::

    from gnnagg.datasets import load_citation, load_glue, generate_sets
"""
import importlib

from .store import (ChecksumError, CorruptDataError, MissingDataError, cache_dir, data_dirs,
                    load_staged, require_file, stage)

_EXPORTS = {
    # node classification (DAGNN's graphs)
    "load_citation": "citation", "random_split": "citation", "row_normalize": "citation",
    "largest_connected_component": "citation", "dataset_key": "citation",
    # OGB
    "load_graph_dataset": "ogb", "load_node_dataset": "ogb", "FastGraphLoader": "ogb",
    # heterogeneous GTN graphs
    "load_gtn": "gtn", "GTN_DATASETS": "gtn", "GTNSpec": "gtn",
    # text
    "load_glue": "glue", "GLUE_TASKS": "glue", "GlueTask": "glue", "GlueSplit": "glue",
    "glue_task": "glue", "make_stress": "stress", "stress_splits": "stress",
    "StressSplit": "stress",
    # transforms
    "preprocess_features": "transforms", "inductive_edges": "transforms",
    "sample_neighbors": "transforms",
    "FEATURE_TRANSFORMS": "transforms",
    # synthetic multisets
    "generate_sets": "synthetic", "SyntheticSetDataset": "synthetic", "SetBatch": "synthetic",
    "SetTask": "synthetic", "TASKS": "synthetic", "get_task": "synthetic",
}

__all__ = ["ChecksumError", "CorruptDataError", "MissingDataError", "cache_dir", "data_dirs",
           "load_staged", "require_file", "stage"] + sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
