"""Evaluation metrics, in one place, with OGB's ``Evaluator`` contract.

Every metric is a plain function ``metric(y_true, y_pred) -> float`` of
tensors or arrays, and :class:`Evaluator` wraps one or more of them behind
OGB's dictionary interface (`"Open Graph Benchmark" <https://arxiv.org/abs/2005.00687>`_):

>>> Evaluator("acc").eval({"y_true": y, "y_pred": logits})
{'acc': 0.81}

``y_pred`` may be class labels (``(N,)`` or ``(N, 1)`` integers) or scores
(``(N, C)`` floats, whose argmax is the label) for the classification
metrics; ROC-AUC takes scores; the regression metrics take values. Inputs
are checked, and an error says what shape or dtype was expected.

For OGB data sets use :func:`evaluator_for` with the data set's name: it
returns OGB's own ``Evaluator`` (same contract), so numbers are OGB's.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Sequence, Union

import numpy as np

__all__ = ["accuracy", "macro_f1", "micro_f1", "f1", "roc_auc", "mcc", "pearson", "spearman",
           "rmse", "mae", "METRICS", "HIGHER_IS_BETTER", "Evaluator", "evaluator_for",
           "higher_is_better", "majority_baseline"]


def _array(v: Any, name: str) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu()
        if str(v.dtype) == "torch.bfloat16":
            v = v.float()
        v = v.numpy()
    arr = np.asarray(v)
    if arr.dtype == object:
        raise TypeError(f"'{name}' must be numeric (got dtype object)")
    return arr


def _labels(v: Any, name: str) -> np.ndarray:
    """Class labels from labels or from (N, C) scores (argmax)."""
    arr = _array(v, name)
    if arr.ndim == 2 and arr.shape[1] > 1:
        return arr.argmax(1)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"'{name}' must be labels of shape (N,) or (N, 1), or scores of "
                         f"shape (N, C) (got shape {arr.shape})")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"'{name}' holds non-integer values; give class labels, or "
                             f"(N, C) scores whose argmax is taken")
    return arr.astype(np.int64)


def _values(v: Any, name: str) -> np.ndarray:
    """Values or scores as a float64 ``(N, T)`` array."""
    arr = _array(v, name).astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"'{name}' must have shape (N,) or (N, T) (got shape {arr.shape})")
    return arr


def _pair(y_true: Any, y_pred: Any, labels: bool):
    get = _labels if labels else _values
    t, p = get(y_true, "y_true"), get(y_pred, "y_pred")
    if len(t) != len(p):
        raise ValueError(f"y_true has {len(t)} rows but y_pred has {len(p)}")
    if len(t) == 0:
        raise ValueError("no examples to evaluate (y_true is empty)")
    return t, p


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct labels."""
    t, p = _pair(y_true, y_pred, labels=True)
    return float((t == p).mean())


def _f1(y_true, y_pred, average: str) -> float:
    from sklearn.metrics import f1_score

    t, p = _pair(y_true, y_pred, labels=True)
    return float(f1_score(t, p, average=average, zero_division=0))


def macro_f1(y_true, y_pred) -> float:
    """F1 averaged over classes, each class counting alike."""
    return _f1(y_true, y_pred, "macro")


def micro_f1(y_true, y_pred) -> float:
    """F1 over all decisions (equals accuracy for single-label tasks)."""
    return _f1(y_true, y_pred, "micro")


def f1(y_true, y_pred) -> float:
    """F1 of the positive class (label 1) of a binary task."""
    return _f1(y_true, y_pred, "binary")


def mcc(y_true, y_pred) -> float:
    """Matthews correlation coefficient (CoLA's metric); 0 for a constant predictor."""
    from sklearn.metrics import matthews_corrcoef

    t, p = _pair(y_true, y_pred, labels=True)
    return float(matthews_corrcoef(t, p))


def roc_auc(y_true, y_pred) -> float:
    """ROC-AUC of scores, averaged over tasks (columns) that have both
    classes among their labelled (non-NaN) rows, as OGB's molecule sets."""
    from sklearn.metrics import roc_auc_score

    t, p = _pair(y_true, y_pred, labels=False)
    if p.shape != t.shape:
        raise ValueError(f"roc_auc needs y_pred of the shape of y_true {t.shape} "
                         f"(got {p.shape})")
    scores = []
    for c in range(t.shape[1]):
        keep = ~np.isnan(t[:, c])
        if len(np.unique(t[keep, c])) == 2:
            scores.append(roc_auc_score(t[keep, c], p[keep, c]))
    if not scores:
        raise ValueError("roc_auc needs both a positive and a negative label in some task")
    return float(np.mean(scores))


def _regression(y_true, y_pred):
    t, p = _pair(y_true, y_pred, labels=False)
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred {p.shape}")
    return t, p


def pearson(y_true, y_pred) -> float:
    """Pearson correlation (0 when either side is constant)."""
    t, p = _regression(y_true, y_pred)
    t, p = t.ravel(), p.ravel()
    if t.std() == 0 or p.std() == 0:
        return 0.0
    return float(np.corrcoef(t, p)[0, 1])


def spearman(y_true, y_pred) -> float:
    """Spearman rank correlation (0 when either side is constant)."""
    from scipy.stats import spearmanr

    t, p = _regression(y_true, y_pred)
    rho = spearmanr(t.ravel(), p.ravel()).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def rmse(y_true, y_pred) -> float:
    """Root mean squared error over labelled (non-NaN) entries."""
    t, p = _regression(y_true, y_pred)
    keep = ~np.isnan(t)
    return float(np.sqrt(np.mean((t[keep] - p[keep]) ** 2)))


def mae(y_true, y_pred) -> float:
    """Mean absolute error over labelled (non-NaN) entries."""
    t, p = _regression(y_true, y_pred)
    keep = ~np.isnan(t)
    return float(np.mean(np.abs(t[keep] - p[keep])))


#: Metrics by name (the names OGB uses where it has one).
METRICS: Dict[str, Callable[[Any, Any], float]] = {
    "acc": accuracy, "accuracy": accuracy, "macro_f1": macro_f1, "micro_f1": micro_f1,
    "f1": f1, "mcc": mcc, "rocauc": roc_auc, "roc_auc": roc_auc, "pearson": pearson,
    "spearman": spearman, "rmse": rmse, "mae": mae,
}
#: Whether a larger value is better, by metric name.
HIGHER_IS_BETTER: Dict[str, bool] = {name: name not in ("rmse", "mae") for name in METRICS}


def higher_is_better(name: str) -> bool:
    """Whether a larger value of the named metric or monitored quantity is
    better: losses and errors (``*loss``, ``*rmse``, ``*mae``) are not."""
    key = name.lower()
    return not (key.endswith("loss") or key.endswith("rmse") or key.endswith("mae"))


class Evaluator:
    """OGB's evaluator contract for gnnagg's metrics.

    Args:
        metrics (str or list of str): names from :data:`METRICS`.

    ``eval({'y_true': ..., 'y_pred': ...})`` returns ``{name: value}`` for
    every metric; ``eval_metric`` is the first name (the one to select on).
    """

    def __init__(self, metrics: Union[str, Sequence[str]]):
        names = [metrics] if isinstance(metrics, str) else list(metrics)
        unknown = [m for m in names if m not in METRICS]
        if unknown or not names:
            raise ValueError(f"unknown metric(s) {unknown or names}; known: {sorted(METRICS)}")
        self.names = names
        self.eval_metric = names[0]

    @property
    def expected_input_format(self) -> str:
        return ("{'y_true': labels (N,) or values (N, T), 'y_pred': labels (N,), "
                "scores (N, C) or values (N, T)} as torch tensors or numpy arrays")

    def eval(self, input_dict: Dict[str, Any]) -> Dict[str, float]:
        if not isinstance(input_dict, dict) or not {"y_true", "y_pred"} <= set(input_dict):
            raise ValueError(f"Evaluator.eval expects {self.expected_input_format}")
        return {m: METRICS[m](input_dict["y_true"], input_dict["y_pred"]) for m in self.names}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.names})"


def evaluator_for(name: str):
    """OGB's own ``Evaluator`` for an OGB data set name (``'ogbg-molhiv'``,
    ``'ogbn-arxiv'``, ...); otherwise gnnagg's :class:`Evaluator` for a
    metric name."""
    if name.startswith("ogbg-"):
        from ogb.graphproppred import Evaluator as OGBEvaluator

        return OGBEvaluator(name)
    if name.startswith("ogbn-"):
        from ogb.nodeproppred import Evaluator as OGBEvaluator

        return OGBEvaluator(name)
    return Evaluator(name)


def majority_baseline(y_train, y_eval, metrics: Sequence[str], regression: bool = False
                      ) -> Dict[str, float]:
    """The trivial predictor's scores on ``y_eval``: the most frequent
    training class (ties: the smallest label), or for regression the
    training mean."""
    t = _array(y_train, "y_train")
    e = _array(y_eval, "y_eval")
    if regression:
        pred = np.full(e.shape, float(np.mean(t)))
    else:
        values, counts = np.unique(t.astype(np.int64), return_counts=True)
        pred = np.full(e.shape, values[counts.argmax()], dtype=np.int64)
    return {m: METRICS[m](e, pred) for m in metrics}
