"""GLUE tasks read from the original TSV files.

Files are found through :func:`gnnagg.datasets.store.require_file`, e.g.
``GNNAGG_DATA/glue/SST-2/train.tsv``. The formats are those of the GLUE
release (Wang et al., 2019, https://arxiv.org/abs/1804.07461):

========  ===========  =========================================  ===========
task      header row   text columns                               label
========  ===========  =========================================  ===========
SST-2     yes          ``sentence``                               ``label``
CoLA      no           column 3                                   column 1
RTE       yes          ``sentence1``, ``sentence2``               ``label`` (entailment / not_entailment)
MRPC      yes          ``#1 String``, ``#2 String``               ``Quality``
STS-B     yes          ``sentence1``, ``sentence2``               ``score`` (0 to 5, regression)
========  ===========  =========================================  ===========

Fields are split on tabs without quote handling (SST-2 and CoLA contain bare
quote characters).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .store import require_file


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task's TSV files are laid out and scored.

    ``text_a``/``text_b``/``label`` are column names (files with a header) or
    positions (files without). ``labels`` maps label strings to classes;
    :obj:`None` means integer classes, or float scores when ``regression``.
    """
    folder: str
    header: bool
    text_a: Union[str, int]
    label: Union[str, int]
    metric: str
    text_b: Optional[Union[str, int]] = None
    labels: Optional[Dict[str, int]] = None
    regression: bool = False
    num_classes: int = 2

    @property
    def pair(self) -> bool:
        return self.text_b is not None


#: The GLUE tasks gnnagg reads, by lower-case name.
GLUE_TASKS: Dict[str, GlueTask] = {
    "sst2": GlueTask("SST-2", True, "sentence", "label", "accuracy"),
    "cola": GlueTask("CoLA", False, 3, 1, "mcc"),
    "rte": GlueTask("RTE", True, "sentence1", "label", "accuracy", text_b="sentence2",
                    labels={"entailment": 0, "not_entailment": 1}),
    "mrpc": GlueTask("MRPC", True, "#1 String", "Quality", "f1", text_b="#2 String"),
    "stsb": GlueTask("STS-B", True, "sentence1", "score", "spearman", text_b="sentence2",
                     regression=True, num_classes=1),
}


@dataclass
class GlueSplit:
    """One split of a GLUE task: texts (``text_b`` for sentence pairs) and
    labels (int64 classes, or float32 scores for regression)."""
    task: str
    split: str
    text_a: List[str]
    text_b: Optional[List[str]]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.text_a)

    def subsample(self, max_n: Optional[int], seed: int = 0) -> "GlueSplit":
        """At most ``max_n`` rows drawn without replacement (kept in file
        order); the same ``seed`` always gives the same rows."""
        if max_n is None or max_n >= len(self):
            return self
        if max_n < 1:
            raise ValueError(f"max_n must be positive (got {max_n})")
        keep = np.sort(np.random.default_rng(seed).permutation(len(self))[:max_n])
        return GlueSplit(self.task, self.split, [self.text_a[i] for i in keep],
                         None if self.text_b is None else [self.text_b[i] for i in keep],
                         self.labels[keep])


def glue_task(name: str) -> GlueTask:
    key = name.lower().replace("-", "").replace("_", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task '{name}'; known: {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[key]


def _column(spec: GlueTask, header: Optional[List[str]], col: Union[str, int], path) -> int:
    if isinstance(col, int):
        return col
    if header is None or col not in header:
        raise ValueError(f"{path}: no column '{col}' in header {header}")
    return header.index(col)


def parse_glue_tsv(text: str, spec: GlueTask, source: str = "<tsv>") -> Tuple[List[str], Optional[List[str]], np.ndarray]:
    """Parse a GLUE TSV file's contents into ``(text_a, text_b, labels)``."""
    lines = [line for line in text.split("\n") if line.strip()]
    header = None
    if spec.header:
        if not lines:
            raise ValueError(f"{source}: empty file (a header row was expected)")
        header = lines[0].rstrip("\r").split("\t")
        lines = lines[1:]
    ia = _column(spec, header, spec.text_a, source)
    ib = _column(spec, header, spec.text_b, source) if spec.pair else None
    il = _column(spec, header, spec.label, source)
    need = max(c for c in (ia, ib, il) if c is not None) + 1
    text_a, text_b, raw = [], [] if spec.pair else None, []
    for n, line in enumerate(lines, start=2 if spec.header else 1):
        fields = line.rstrip("\r").split("\t")
        if len(fields) < need:
            raise ValueError(f"{source}, line {n}: {len(fields)} tab-separated fields, "
                             f"expected at least {need}")
        text_a.append(fields[ia].strip())
        if spec.pair:
            text_b.append(fields[ib].strip())
        raw.append(fields[il].strip())
    try:
        if spec.regression:
            labels = np.asarray([float(v) for v in raw], dtype=np.float32)
        elif spec.labels is not None:
            labels = np.asarray([spec.labels[v] for v in raw], dtype=np.int64)
        else:
            labels = np.asarray([int(v) for v in raw], dtype=np.int64)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{source}: bad label {exc}") from None
    if not spec.regression and labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise ValueError(f"{source}: labels outside 0..{spec.num_classes - 1}")
    return text_a, text_b, labels


def load_glue(task: str, split: str = "train") -> GlueSplit:
    """Read ``glue/<Task>/<split>.tsv`` (``split`` is ``'train'`` or ``'dev'``).

    Raises :class:`~gnnagg.datasets.store.MissingDataError` naming the file and
    every place looked in when it is not found.
    """
    if split not in ("train", "dev"):
        raise ValueError(f"split must be 'train' or 'dev' (got {split!r}); GLUE test "
                         f"sets have no public labels")
    spec = glue_task(task)
    path = require_file(f"glue/{spec.folder}/{split}.tsv", what=f"GLUE {spec.folder}")
    text = path.read_text(encoding="utf-8")
    a, b, y = parse_glue_tsv(text, spec, str(path))
    return GlueSplit(task.lower(), split, a, b, y)
