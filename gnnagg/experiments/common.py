"""Pieces every runner shares: typed configs with command-line overrides,
seeding, mean +- std summaries, progress bars and JSON output."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import sys
import time
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Type, TypeVar

import numpy as np
import torch

C = TypeVar("C")


# Typed configuration ########################################################

def _arg_type(tp):
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _arg_type(args[0])
    if origin in (list, tuple, List, Sequence):
        return _arg_type(typing.get_args(tp)[0])
    return tp


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: Type[C],
                         skip: Iterable[str] = ()) -> None:
    """Add one ``--field-name`` option per dataclass field (default: ``None``,
    meaning "keep the config's value")."""
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        if field.name in skip:
            continue
        tp = hints[field.name]
        flag = "--" + field.name.replace("_", "-")
        help_ = field.metadata.get("help", "")
        origin = typing.get_origin(tp)
        is_list = origin in (list, tuple) or (
            origin is typing.Union and any(
                typing.get_origin(a) in (list, tuple) for a in typing.get_args(tp)))
        base = _arg_type(tp)
        if base is bool:
            parser.add_argument(flag, dest=field.name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_)
        else:
            parser.add_argument(flag, dest=field.name, default=None, type=base,
                                nargs="+" if is_list else None, help=help_)


def config_from_args(config: C, args: argparse.Namespace) -> C:
    """A copy of ``config`` with every option the user gave applied."""
    changes = {}
    for field in dataclasses.fields(config):
        value = getattr(args, field.name, None)
        if value is not None:
            current = getattr(config, field.name)
            changes[field.name] = tuple(value) if isinstance(current, tuple) else value
    return dataclasses.replace(config, **changes)


# Reproducibility ##########################################################

def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def default_threads() -> None:
    """Small sparse workloads on few cores run faster on one thread; users
    override with ``GNNAGG_THREADS`` (or ``OMP_NUM_THREADS``)."""
    n = os.environ.get("GNNAGG_THREADS")
    if n:
        torch.set_num_threads(int(n))


# Summaries ##################################################################

def mean_std(values: Sequence[float]) -> Dict[str, float]:
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {"mean": float(arr.mean()),
            "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "n": int(arr.size)}


def fmt(ms: Dict[str, float], scale: float = 100.0, digits: int = 2) -> str:
    if ms.get("n", 0) == 0:
        return "-"
    return f"{ms['mean'] * scale:.{digits}f} +- {ms['std'] * scale:.{digits}f}"


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    out = [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


# Output #####################################################################

def progress(iterable=None, **kwargs):
    """A tqdm progress bar on stderr, silent when ``GNNAGG_QUIET`` is set."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", bool(os.environ.get("GNNAGG_QUIET")))
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Optional[str], result: Dict[str, Any]) -> None:
    """Write ``result`` atomically (a crash never leaves half a file)."""
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    with open(tmp, "w") as f:
        json.dump(to_jsonable(result), f, indent=2)
        f.write("\n")
    os.replace(tmp, target)


def environment() -> Dict[str, Any]:
    """What produced a result: versions, threads, device."""
    import platform

    import torch_geometric

    from .._backend import use_torch_scatter

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_geometric": torch_geometric.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "backend": "torch_scatter" if use_torch_scatter() else "torch",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
