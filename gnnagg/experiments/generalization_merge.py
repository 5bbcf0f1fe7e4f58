"""``gnnagg run generalization --from-json``: the runs of earlier result
files of the runner (finished or interrupted, new or old form) merged into
one result, with its report and plot (:mod:`generalization_suite`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..utils import read_json, write_json
from . import plots
from .generalization_suite import build, parse_key, run_key


def load_runs(paths: List[str], out: Optional[str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``({path: config}, {key: record})`` from result files of this runner,
    finished or interrupted, new (``finished_runs``) or old (``runs``) form.
    Refuses files with other training/test sizes, a run found in two files,
    and an ``out`` that is one of the inputs or holds an unfinished run."""
    if not paths:
        raise ValueError("--from-json needs at least one file")
    if out and Path(out).exists():
        if any(Path(out).resolve() == Path(p).resolve() for p in paths):
            raise ValueError(f"--out {out} is one of the --from-json inputs; give another --out")
        saved = read_json(out, "--out")
        if isinstance(saved, dict) and saved.get("complete") is False:
            raise ValueError(f"--out {out} holds an unfinished run; resume it with its own "
                             f"command, or give another --out")
    configs, runs, where = {}, {}, {}
    for path in paths:
        part = read_json(path, "--from-json")
        if not isinstance(part, dict) or "config" not in part or \
                not ("finished_runs" in part or "runs" in part):
            raise ValueError(f"{path} is not a result of 'gnnagg run generalization'")
        cfg = part["config"]
        found = dict(part["finished_runs"]) if "finished_runs" in part else _old_runs(part)
        if configs:
            first_path, first = next(iter(configs.items()))
            for key in ("test_sizes", "train_sizes"):
                if list(cfg[key]) != list(first[key]):
                    raise ValueError(f"{path}: {key} {cfg[key]} differ from {first_path}'s "
                                     f"{first[key]}")
        for key, record in found.items():
            if key in runs:
                raise ValueError(f"run {key} is in both {where[key]} and {path}; merge "
                                 f"files with different runs")
            runs[key], where[key] = record, path
        configs[path] = cfg
    return configs, runs


def _old_runs(part: Mapping[str, Any]) -> Dict[str, Any]:
    """Keyed runs of a file written before the RunStore: ``runs`` held
    ``{task: {aggregator: [record, ...]}}`` in the order of ``config.seeds``,
    or, for a merge, of each merged file's seeds in turn (``configs``)."""
    configs = list(part.get("configs", {}).values()) or [part["config"]]
    out = {}
    for task, by_aggr in part["runs"].items():
        for name, recs in by_aggr.items():
            seeds = [s for c in configs if task in c["tasks"] and name in c["aggregators"]
                     for s in c["seeds"]]
            if len(seeds) != len(recs) or len(set(seeds)) != len(seeds):
                seeds = list(range(len(recs)))  # not recorded: number them in order
            out.update({run_key(task, name, s): r for s, r in zip(seeds, recs)})
    return out


def merge(paths: List[str], out: Optional[str], plot_path: Optional[str], config_cls: type,
          baselines: Callable) -> Tuple[Dict[str, Any], Any]:
    """``--from-json``: the runs of several result files (finished or
    interrupted, with the same training and test sizes) as one result,
    written to ``out`` with its plot. Returns it and its config: the first
    file's options with the tasks, aggregators and seeds found (each file's
    options are kept in ``configs``)."""
    configs, runs = load_runs(list(paths), out)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    first = {k: tuple(v) if isinstance(v, list) else v
             for k, v in next(iter(configs.values())).items() if k in fields}
    found = lambda i: tuple(dict.fromkeys(parse_key(k)[i] for k in runs))
    cfg = dataclasses.replace(config_cls(**first), tasks=found(0),
                              aggregators=found(1), seeds=tuple(sorted(found(2))),
                              plot=plot_path)
    result = {"experiment": "generalization", "config": dataclasses.asdict(cfg),
              "configs": configs, "merged_from": list(paths),
              **build(runs, cfg, baselines(cfg))}
    result["plot"] = plots.generalization(result, cfg, plot_path) if plot_path else None
    result.update(complete=True, finished_runs=runs)
    write_json(out, result)
    return result, cfg
