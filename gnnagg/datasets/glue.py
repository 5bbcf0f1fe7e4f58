"""GLUE tasks read from the original TSV files.

Files are found through :func:`gnnagg.datasets.store.require_file`, e.g.
``GNNAGG_DATA/glue/SST-2/train.tsv``. The formats are those of the GLUE
release (Wang et al., 2019, https://arxiv.org/abs/1804.07461), as written by
its ``download_glue_data.py``:

======  ======================  ==========================  ==========================  ==============
task    header row              text columns                label                       metrics
======  ======================  ==========================  ==========================  ==============
SST-2   ``sentence label``      ``sentence``                ``label`` (0/1)             accuracy
CoLA    none (4 columns)        column 3                    column 1 (0/1)              MCC, accuracy
MRPC    ``Quality #1 ID #2 ID   ``#1 String``,              ``Quality`` (0/1)           F1, accuracy
        #1 String #2 String``   ``#2 String``
QQP     ``id qid1 qid2          ``question1``,              ``is_duplicate`` (0/1)      F1, accuracy
        question1 question2     ``question2``
        is_duplicate``
STS-B   ``index genre ...       ``sentence1``,              ``score`` (0 to 5,          Spearman,
        sentence1 sentence2     ``sentence2``               regression)                 Pearson
        score``
MNLI    ``index promptID ...    ``sentence1``,              ``gold_label``              accuracy
        sentence1 sentence2     ``sentence2``               (entailment 0, neutral 1,
        label1 ... gold_label``                             contradiction 2)
QNLI    ``index question        ``question``, ``sentence``  ``label`` (entailment 0,    accuracy, F1
        sentence label``                                    not_entailment 1)
RTE     ``index sentence1       ``sentence1``,              ``label`` (as QNLI)         accuracy, F1
        sentence2 label``       ``sentence2``
WNLI    as RTE                  as RTE                      ``label`` (0/1)             accuracy, F1
======  ======================  ==========================  ==========================  ==============

Splits are ``train`` and ``dev`` (``dev.tsv``; MNLI's ``dev`` is
``dev_matched.tsv`` and ``dev_mismatched`` is also available); GLUE's test
files have no public labels. Metrics are names in
:data:`gnnagg.metrics.METRICS`: GLUE's main metric of the task first, then
the others worth reporting beside it (accuracy with CoLA's MCC, F1 of the
binary sentence-pair tasks).

Fields are split on tabs without quote handling (SST-2, CoLA and MRPC contain
bare quote characters). A leading UTF-8 byte-order mark (MRPC's files begin
with one) and CRLF line ends are accepted. Every row must have as many fields
as the header (CoLA: 4): a stray tab would otherwise shift a column silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .store import require_file

_TRAIN_DEV = (("train", "train.tsv"), ("dev", "dev.tsv"))
_NLI2 = {"entailment": 0, "not_entailment": 1}


@dataclass(frozen=True)
class GlueTask:
    """How one GLUE task's TSV files are laid out and scored.

    ``text_a``/``text_b``/``label`` are column names (files with a header) or
    positions (files without, which have ``num_fields`` columns). ``labels``
    maps label strings to classes; :obj:`None` means integer classes, or
    float scores when ``regression``. ``metrics`` are names in
    :data:`gnnagg.metrics.METRICS`, GLUE's main one first (it selects
    models), then those reported beside it; ``splits`` maps
    split names to file names.
    """
    folder: str
    header: bool
    text_a: Union[str, int]
    label: Union[str, int]
    metrics: Tuple[str, ...]
    text_b: Optional[Union[str, int]] = None
    labels: Optional[Dict[str, int]] = None
    regression: bool = False
    num_classes: int = 2
    num_fields: Optional[int] = None
    splits: Tuple[Tuple[str, str], ...] = _TRAIN_DEV

    @property
    def pair(self) -> bool:
        return self.text_b is not None

    @property
    def metric(self) -> str:
        """The main metric (the first of ``metrics``)."""
        return self.metrics[0]

    def file(self, split: str) -> str:
        """The file of ``split`` below ``glue/``, e.g. ``'MNLI/dev_matched.tsv'``."""
        names = dict(self.splits)
        if split not in names:
            raise ValueError(f"split must be one of {list(names)} for GLUE {self.folder} (got "
                             f"{split!r}); GLUE test sets have no public labels")
        return f"{self.folder}/{names[split]}"


#: The GLUE tasks gnnagg reads, by lower-case name.
GLUE_TASKS: Dict[str, GlueTask] = {
    "sst2": GlueTask("SST-2", True, "sentence", "label", ("accuracy",)),
    "cola": GlueTask("CoLA", False, 3, 1, ("mcc", "accuracy"), num_fields=4),
    "mrpc": GlueTask("MRPC", True, "#1 String", "Quality", ("f1", "accuracy"),
                     text_b="#2 String"),
    "qqp": GlueTask("QQP", True, "question1", "is_duplicate", ("f1", "accuracy"),
                    text_b="question2"),
    "stsb": GlueTask("STS-B", True, "sentence1", "score", ("spearman", "pearson"),
                     text_b="sentence2", regression=True, num_classes=1),
    "mnli": GlueTask("MNLI", True, "sentence1", "gold_label", ("accuracy",), text_b="sentence2",
                     labels={"entailment": 0, "neutral": 1, "contradiction": 2}, num_classes=3,
                     splits=(("train", "train.tsv"), ("dev", "dev_matched.tsv"),
                             ("dev_mismatched", "dev_mismatched.tsv"))),
    "qnli": GlueTask("QNLI", True, "question", "label", ("accuracy", "f1"), text_b="sentence",
                     labels=_NLI2),
    "rte": GlueTask("RTE", True, "sentence1", "label", ("accuracy", "f1"), text_b="sentence2",
                    labels=_NLI2),
    "wnli": GlueTask("WNLI", True, "sentence1", "label", ("accuracy", "f1"),
                     text_b="sentence2"),
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


def glue_key(name: str) -> str:
    """The key of a GLUE task in :data:`GLUE_TASKS` (``'STS-B'`` -> ``'stsb'``)."""
    if not isinstance(name, str):
        raise TypeError(f"GLUE task name must be a string (got {type(name).__name__})")
    key = name.lower().replace("-", "").replace("_", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task '{name}'; known: {sorted(GLUE_TASKS)}")
    return key


def glue_task(name: str) -> GlueTask:
    """The :class:`GlueTask` of a task name (case, ``-`` and ``_`` ignored)."""
    return GLUE_TASKS[glue_key(name)]


def _column(spec: GlueTask, header: Optional[List[str]], col: Union[str, int], path) -> int:
    if isinstance(col, int):
        return col
    if header is None or col not in header:
        raise ValueError(f"{path}: no column '{col}' in header {header}")
    return header.index(col)


def parse_glue_tsv(text: str, spec: GlueTask, source: str = "<tsv>") -> Tuple[List[str], Optional[List[str]], np.ndarray]:
    """Parse a GLUE TSV file's contents into ``(text_a, text_b, labels)``."""
    if text.startswith("\ufeff"):  # a byte-order mark, as in MRPC's files
        text = text[1:]
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    header = None
    width = spec.num_fields
    if spec.header:
        if not lines:
            raise ValueError(f"{source}: empty file (a header row was expected)")
        header = lines[0].split("\t")
        width = len(header)
        lines = lines[1:]
    ia = _column(spec, header, spec.text_a, source)
    ib = _column(spec, header, spec.text_b, source) if spec.pair else None
    il = _column(spec, header, spec.label, source)
    need = max(c for c in (ia, ib, il) if c is not None) + 1
    text_a, text_b, raw = [], [] if spec.pair else None, []
    for n, line in enumerate(lines, start=2 if spec.header else 1):
        fields = line.split("\t")
        if len(fields) < need or width is not None and len(fields) != width:
            raise ValueError(f"{source}, line {n}: {len(fields)} tab-separated fields, "
                             f"expected {width if width is not None else f'at least {need}'}")
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
    """Read a split of a GLUE task from ``glue/<Task>/<file>.tsv``.

    Args:
        task (str): a key of :data:`GLUE_TASKS` (``'sst2'``, ``'MRPC'``,
            ``'STS-B'``, ...; case, ``-`` and ``_`` are ignored).
        split (str, optional): ``'train'`` or ``'dev'`` (MNLI's matched dev
            set; ``'dev_mismatched'`` gives the other). (default: :obj:`"train"`)

    Raises :class:`~gnnagg.datasets.store.MissingDataError` naming the file and
    every place looked in when it is not found.
    """
    key = glue_key(task)
    spec = GLUE_TASKS[key]
    path = require_file(f"glue/{spec.file(split)}", what=f"GLUE {spec.folder}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    a, b, y = parse_glue_tsv(text, spec, str(path))
    return GlueSplit(key, split, a, b, y)
