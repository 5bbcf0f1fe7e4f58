"""OGB's own catalogue of its data sets, read without torch.

The ``ogb`` package ships a ``master.csv`` per task family (one column per
data set: task type, evaluation metric, number of tasks, ...); this module
reads it, so that a runner can check a data set name, and learn how the set
is scored, before anything heavy is imported or any data is read.
`"Open Graph Benchmark: Datasets for Machine Learning on Graphs"
<https://arxiv.org/abs/2005.00687>`_ (Hu et al., 2020).
"""
from __future__ import annotations

import csv
import difflib
import importlib.util
from pathlib import Path
from typing import Dict

#: Name prefix -> the ``ogb`` subpackage that holds its ``master.csv``.
FAMILIES = {"ogbg": "graphproppred", "ogbn": "nodeproppred"}

__all__ = ["FAMILIES", "catalogue", "dataset_info"]


def catalogue(family: str) -> Dict[str, Dict[str, str]]:
    """OGB's table of the data sets of ``family`` (``'ogbg'`` or
    ``'ogbn'``), ``{name: {property: value}}``, as written in ``master.csv``
    (e.g. ``'task type'``, ``'eval metric'``, ``'is hetero'``)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown OGB task family {family!r} (expected one of {list(FAMILIES)})")
    spec = importlib.util.find_spec("ogb")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("OGB data sets need the 'ogb' package: pip install ogb")
    path = Path(list(spec.submodule_search_locations)[0]) / FAMILIES[family] / "master.csv"
    with open(path) as f:
        rows = list(csv.reader(f))
    return {name: {row[0]: row[i] for row in rows[1:]} for i, name in enumerate(rows[0]) if i}


def dataset_info(name: str) -> Dict[str, str]:
    """OGB's properties of the data set ``name``, with ``'task'`` (its
    family, ``'ogbg'`` or ``'ogbn'``) added. An unknown name is a
    ``ValueError`` that suggests close names and lists the known ones."""
    known = {family: catalogue(family) for family in FAMILIES}
    family = name.split("-", 1)[0]
    info = known.get(family, {}).get(name)
    if info is None:
        names = sorted(n for table in known.values() for n in table)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.85)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown OGB data set '{name}'{hint}; OGB's graph and node property "
                         f"prediction sets are: {', '.join(names)}")
    return {**info, "task": family}
