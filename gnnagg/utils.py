"""Small helpers that every layer of gnnagg may use: threads, seeds, JSON
results written atomically, summaries and tables, progress bars, the
environment a result came from.

Nothing here imports the rest of gnnagg, and importing this module imports
neither torch nor numpy (the command line's ``--help`` stays fast); they are
imported by the functions that need them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence

__all__ = [
    "threads_from_env", "apply_threads", "seed_everything", "mean_std", "fmt", "format_table",
    "progress", "quiet_warnings", "quiet_csr", "to_jsonable", "write_json", "read_json", "check_writable",
    "environment", "OutputError",
]


# Threads and seeds ##########################################################

def threads_from_env(default: Optional[int] = None) -> Optional[int]:
    """The thread count asked for by ``GNNAGG_THREADS`` (a positive
    integer), else ``default``. A bad value raises an error that names the
    variable."""
    raw = os.environ.get("GNNAGG_THREADS")
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"GNNAGG_THREADS must be a positive integer (got {raw!r})") from None
    if value < 1:
        raise ValueError(f"GNNAGG_THREADS must be a positive integer (got {raw!r})")
    return value


def apply_threads(default: Optional[int] = None) -> Optional[int]:
    """Use the thread count of ``GNNAGG_THREADS``, else ``default`` (when
    given) for torch's intra-op threads; returns it (``None``: unchanged).
    Before torch is imported this only sets ``OMP_NUM_THREADS`` for this
    process, which torch reads when it loads, so that a command line that
    fails on its options never pays for importing torch."""
    n = threads_from_env(default)
    if n is None:
        return None
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)
    return n


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random generators."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


# Summaries ##################################################################

def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """``{'mean', 'std', 'n'}`` of ``values`` (sample std, 0 for one value)."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def fmt(ms: Dict[str, float], scale: float = 100.0, digits: int = 2) -> str:
    """``'mean +- std'`` of a :func:`mean_std` dict, scaled (percent by default)."""
    if not ms or ms.get("n", 0) == 0:
        return "-"
    return f"{ms['mean'] * scale:.{digits}f} +- {ms['std'] * scale:.{digits}f}"


def format_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(r):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"

    out = [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


# Progress and warnings ######################################################

def progress(iterable=None, **kwargs):
    """A tqdm progress bar on stderr, silent when ``GNNAGG_QUIET`` is set."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", bool(os.environ.get("GNNAGG_QUIET")))
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """Warnings raised inside the block are printed once each, through
    ``tqdm.write``, so that they do not break into a progress bar."""
    from tqdm.auto import tqdm

    seen = set()
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        key = (str(message), category)
        if key in seen:
            return
        seen.add(key)
        tqdm.write(f"{category.__name__}: {message}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


@contextlib.contextmanager
def quiet_csr() -> Iterator[None]:
    """Silence PyTorch's one-time notice that sparse CSR support is in beta
    (printed once per process from inside the first CSR tensor it builds,
    in the middle of a progress bar); every other warning passes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        yield


# JSON results ###############################################################

class OutputError(ValueError):
    """An output path that cannot take a result (a folder, unwritable, or a
    file that is not the result it would replace)."""


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tensors, NumPy scalars, paths and non-finite floats as
    plain JSON values (non-finite floats become ``null``)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.Tensor):
        return to_jsonable(obj.tolist())
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, (np.floating, np.integer, np.bool_)):
        return to_jsonable(obj.item())
    if np is not None and isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    return obj


def check_writable(path: Optional[str], what: str = "--out") -> Optional[Path]:
    """Check, before any work starts, that a result can be written to
    ``path``: not a folder, its folder creatable and writable. Returns the
    path (or ``None`` for no path)."""
    if not path:
        return None
    target = Path(path).expanduser()
    if target.is_dir():
        raise OutputError(f"{what} {target} is a folder; give a file name such as "
                          f"{target / 'result.json'}")
    parent = target.parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} {target}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {target}: the folder {existing} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{what} {target} exists and is read-only")
    return target


def write_json(path: Optional[str], result: Any) -> None:
    """Write ``result`` as JSON, atomically: a crash leaves the previous
    file (or none), never half a file."""
    if not path:
        return
    target = check_writable(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        with open(tmp, "w") as f:
            json.dump(to_jsonable(result), f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path: str, what: str = "result") -> Any:
    """Read a JSON file, with an error that names the file when it is
    missing or not valid JSON."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{what} file {p} does not exist")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} file {p} is not valid JSON ({exc})") from None


def environment() -> Dict[str, Any]:
    """What produced a result: versions, threads, device, time."""
    import platform

    import torch
    import torch_geometric

    from ._backend import use_torch_scatter

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
