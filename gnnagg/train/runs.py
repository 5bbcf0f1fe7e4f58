"""Resumable experiments: finished runs are kept as they finish, so that
an interrupted experiment resumes where it stopped.

A runner asks a :class:`RunStore` for each run (a seed, a task x aggregator
x seed cell, ...) whether it is done, records it when it finishes, and hands
:meth:`RunStore.checkpoint` to :func:`gnnagg.train.fit` for epoch-level
resumption of the run in progress. The store lives in the result file
itself (``--out``): the same JSON, marked ``"complete": false`` until the
experiment ends. A rerun with the same ``--out`` skips finished runs; with
other options it is refused with an error naming them, and a file that is
not such a result is never overwritten.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

from ..utils import OutputError, check_writable, read_json, to_jsonable, write_json
from .checkpoint import Checkpoint, ConfigMismatch, config_diff, describe_diff, fingerprint

__all__ = ["RunStore"]


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", key)


class RunStore:
    """The finished runs of one experiment, kept in its result file.

    Args:
        path (str, optional): the result file (``--out``); :obj:`None` keeps
            nothing (no resumption).
        experiment (str): the runner's name, recorded in the file.
        config (dict): the experiment's options.
        ignore (iterable of str, optional): options that may change between a
            run and its resumption (e.g. how many seeds, where to plot).
        checkpoint_dir (str, optional): folder for epoch checkpoints of the
            run in progress; by default a hidden folder next to ``path``.
        checkpoint_interval (float, optional): seconds between epoch
            checkpoints (a run shorter than this never writes one);
            :obj:`None` reads ``GNNAGG_CHECKPOINT_SECONDS``, else 30.
            (default: :obj:`None`)
    """

    def __init__(self, path: Optional[str], experiment: str, config: Mapping[str, Any],
                 ignore: Iterable[str] = (), checkpoint_dir: Optional[str] = None,
                 checkpoint_interval: Optional[float] = None) -> None:
        self.path = check_writable(path)
        self.experiment = experiment
        self.config = to_jsonable(dict(config))
        self.ignore = tuple(ignore)
        self.fingerprint = fingerprint(self.config, self.ignore)
        self.runs: Dict[str, Any] = {}
        if checkpoint_interval is None:
            checkpoint_interval = float(os.environ.get("GNNAGG_CHECKPOINT_SECONDS", "30"))
        self.checkpoint_interval = checkpoint_interval
        if checkpoint_dir is not None:
            self.checkpoint_dir: Optional[Path] = Path(checkpoint_dir).expanduser()
            if self.checkpoint_dir.exists() and not self.checkpoint_dir.is_dir():
                raise OutputError(f"--checkpoint-dir {self.checkpoint_dir} is a file, not a folder")
            check_writable(str(self.checkpoint_dir / "x"), "--checkpoint-dir")
        elif self.path is not None:
            self.checkpoint_dir = self.path.with_name(f".{self.path.name}.checkpoints")
        else:
            self.checkpoint_dir = None
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            saved = read_json(str(self.path), "--out")
        except ValueError:
            raise OutputError(f"--out {self.path} exists and is not a result file (not JSON); "
                              f"refusing to overwrite it: give another --out") from None
        if not isinstance(saved, dict) or saved.get("experiment") != self.experiment \
                or "fingerprint" not in saved:
            raise OutputError(f"--out {self.path} exists and is not a result of "
                              f"'gnnagg run {self.experiment}'; refusing to overwrite it: "
                              f"give another --out")
        if saved["fingerprint"] != self.fingerprint:
            diff = config_diff(saved.get("config", {}), self.config, self.ignore)
            raise ConfigMismatch(
                f"--out {self.path} holds runs made with other options "
                f"({describe_diff(diff)}); rerun with the same options to resume it, or "
                f"give another --out (finished results are never overwritten)")
        self.runs = dict(saved.get("finished_runs", {}))

    # Runs ##################################################################

    def get(self, key: str) -> Optional[Any]:
        """The record of a finished run, or ``None``."""
        return self.runs.get(str(key))

    def __contains__(self, key: str) -> bool:
        return str(key) in self.runs

    def __len__(self) -> int:
        return len(self.runs)

    def put(self, key: str, record: Any, partial: Optional[Dict[str, Any]] = None) -> None:
        """Record a finished run and write the file (with ``partial``, e.g.
        the summary so far, alongside)."""
        self.runs[str(key)] = to_jsonable(record)
        ckpt = self.checkpoint(key)
        self._write({**(partial or {}), "complete": False})
        if ckpt is not None:
            ckpt.remove()

    def checkpoint(self, key: str) -> Optional[Checkpoint]:
        """Where the run ``key`` saves its epochs (``None`` without a folder)."""
        if self.checkpoint_dir is None:
            return None
        return Checkpoint(self.checkpoint_dir / f"{_safe(str(key))}.pt", self.config,
                          self.ignore, min_interval=self.checkpoint_interval)

    def finish(self, result: Dict[str, Any]) -> Dict[str, Any]:
        """The final result, with the finished runs, written as complete;
        the epoch checkpoints are removed."""
        out = self._write({**result, "complete": True})
        if self.checkpoint_dir is not None and self.checkpoint_dir.name.startswith(".") \
                and self.checkpoint_dir.is_dir():
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        return out

    def _write(self, body: Dict[str, Any]) -> Dict[str, Any]:
        out = {"experiment": self.experiment, "fingerprint": self.fingerprint,
               "config": self.config, **body, "finished_runs": self.runs}
        if self.path is not None:
            write_json(str(self.path), out)
        return out


__all__ += ["ConfigMismatch"]
