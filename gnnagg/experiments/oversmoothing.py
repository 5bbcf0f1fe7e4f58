"""Over-smoothing analysis of the DAGNN paper (Liu, Gao & Ji, KDD 2020,
https://arxiv.org/abs/2007.09296, Sec. 3 and Fig. 5): test accuracy and the
smoothness metric value (SMV) of the output representations against depth
(``K`` hops for DAGNN/APPNP/SGC, layers for GCN/SAGE/GIN).

Run through the citation runner::

    gnnagg run citation --dataset Cora --analysis-models gcn dagnn \\
        --depths 1 2 4 8 16 32 --runs 3 --plot oversmoothing.png --out o.json

Every (model, depth, run) is one resumable run of the citation protocol
with the model's defaults on the data set; the user's ``--runs``,
``--seed``, ``--split`` and ``--aggr`` apply to all of them.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Dict, List, Optional

from . import node_runs
from .common import environment, fmt, format_table, mean_std


def smoothness(h) -> float:
    """The smoothness metric value (SMV) of the DAGNN paper, Eq. 7-8: the
    mean over node pairs of half the Euclidean distance between the
    L2-normalised representations (0: all rows parallel, i.e. over-smoothed)."""
    import torch
    import torch.nn.functional as F

    n = h.size(0)
    if n < 2:
        raise ValueError("the smoothness metric needs at least two nodes")
    z = F.normalize(h.double(), dim=-1)
    return float((torch.cdist(z, z) / 2).sum() / (n * (n - 1)))


def analysis(c, data=None, out: Optional[str] = None) -> Dict[str, Any]:
    """Accuracy and SMV against depth for every ``c.analysis_models`` at
    every ``c.depths``; resumes from ``out``."""
    from .citation import MODELS, defaults_for, job, load_data, open_store, validate

    validate(c)
    store = open_store(c, out)
    tic = time.perf_counter()
    prep = None
    curves: Dict[str, List[Dict[str, Any]]] = {}
    for name in c.analysis_models:
        depth_field = MODELS[name].depth_field
        for depth in c.depths:
            mc = dataclasses.replace(defaults_for(name, c.dataset), runs=c.runs, seed=c.seed,
                                     split=c.split, aggr=c.aggr,
                                     sparse_features=c.sparse_features, **{depth_field: depth})
            if prep is None:
                prep = node_runs.prepare(mc, load_data(mc) if data is None else data)
            edge_index = prep.data.edge_index

            def extra(model, x):
                return {"smv": smoothness(model.logits(x, edge_index))}

            records = node_runs.run_series(
                store, [(f"{name}-{depth_field}{depth}-run{r}", job(mc, prep, r, extra))
                        for r in range(c.runs)], f"{name} {depth_field}={depth}")
            curves.setdefault(name, []).append({
                "depth": depth, "test_acc": mean_std([r["test_acc"] for r in records]),
                "smv": mean_std([r["smv"] for r in records])})
    rows = [[m, x["depth"], fmt(x["test_acc"]), f"{x['smv']['mean']:.4f}"]
            for m, xs in curves.items() for x in xs]
    result = {"environment": environment(), "curves": curves,
              "table": format_table(["model", "depth", "test acc (%)", "SMV"], rows)}
    if c.plot:
        from .plots import oversmoothing

        result["plot"] = oversmoothing(curves, c.plot, f"Over-smoothing on {c.dataset}")
    result["wall_time_s"] = time.perf_counter() - tic
    return store.finish(result)
