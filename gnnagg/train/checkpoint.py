"""Checkpoints: atomic writes, a fingerprint of the options that produced
them, and the random state needed to resume a run exactly."""
from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

__all__ = ["fingerprint", "config_diff", "save_atomic", "rng_state", "set_rng_state",
           "Checkpoint", "ConfigMismatch"]


class ConfigMismatch(ValueError):
    """Saved work was produced with other options than those given now."""


def _canonical(config: Mapping[str, Any], ignore: Iterable[str] = ()) -> Dict[str, Any]:
    from ..utils import to_jsonable

    skip = set(ignore)
    return {k: v for k, v in to_jsonable(dict(config)).items() if k not in skip}


def fingerprint(config: Mapping[str, Any], ignore: Iterable[str] = ()) -> str:
    """A short hash of ``config`` (a dict or dataclass fields), without the
    keys in ``ignore`` (options that may change between resumptions)."""
    blob = json.dumps(_canonical(config, ignore), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_diff(saved: Mapping[str, Any], given: Mapping[str, Any],
                ignore: Iterable[str] = ()) -> Dict[str, tuple]:
    """``{option: (saved value, given value)}`` for every option that differs."""
    a, b = _canonical(saved, ignore), _canonical(given, ignore)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def describe_diff(diff: Dict[str, tuple]) -> str:
    return ", ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in diff.items())


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and ``os.replace``: a crash
    leaves the previous file intact, never half a file."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def rng_state() -> Dict[str, Any]:
    """Python's, NumPy's and torch's (CPU and CUDA) random states."""
    import numpy as np
    import torch

    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpoint:
    """One run's checkpoint file.

    Args:
        path (str or Path): the file.
        config (dict, optional): the options of the run; a checkpoint
            written with other options (outside ``ignore``) is refused with
            an error that names them. (default: :obj:`None`)
        ignore (iterable of str, optional): options that may differ on
            resumption (e.g. the number of epochs). (default: :obj:`()`)
        min_interval (float, optional): seconds between two saves; a save
            asked for sooner is skipped unless forced (so short epochs do not
            pay for a write each). (default: :obj:`0.0`)
    """

    def __init__(self, path, config: Optional[Mapping[str, Any]] = None,
                 ignore: Iterable[str] = (), min_interval: float = 0.0) -> None:
        self.path = Path(path)
        self.config = dict(config or {})
        self.ignore = tuple(ignore)
        self.fingerprint = fingerprint(self.config, self.ignore)
        self.min_interval = float(min_interval)
        self._last_save = -float("inf")

    def load(self) -> Optional[Dict[str, Any]]:
        """The saved state, or ``None`` when there is none."""
        import torch

        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise RuntimeError(f"checkpoint {self.path} cannot be read ({type(exc).__name__}: "
                               f"{exc}); delete it to start this run over") from None
        if state.get("fingerprint") != self.fingerprint:
            diff = config_diff(state.get("config", {}), self.config, self.ignore)
            raise ConfigMismatch(f"checkpoint {self.path} was written with other options "
                                 f"({describe_diff(diff) or 'unknown'}); use another checkpoint "
                                 f"folder, or delete it to start over")
        return state

    def save(self, state: Dict[str, Any], force: bool = False) -> bool:
        """Write ``state`` (with the fingerprint) unless the last save is
        more recent than ``min_interval``; returns whether it wrote."""
        now = time.monotonic()
        if not force and now - self._last_save < self.min_interval:
            return False
        save_atomic({**state, "fingerprint": self.fingerprint, "config": self.config}, self.path)
        self._last_save = now
        return True

    def remove(self) -> None:
        if self.path.exists():
            self.path.unlink()

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.path}')"
