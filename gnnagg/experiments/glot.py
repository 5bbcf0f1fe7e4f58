"""GLOT token-graph pooling vs. mean/max/CLS/AdaPool over a frozen encoder (GLUE, stress test).

The frozen-encoder experiments of "Towards Improved Sentence Representations
using Token Graphs" (https://arxiv.org/abs/2603.03389): token states of a
frozen encoder (default: offline all-MiniLM-L6-v2), cached; a pooler and a
linear head (gnnagg.models.SentenceClassifier; pairs share the pooler)
trained with Adam by gnnagg.train.fit. Training rows held out as validation
(--val-fraction) select the epoch and stop training (--patience) by the
task's main GLUE metric (marked *: SST-2 accuracy, CoLA MCC, RTE accuracy,
MRPC F1, STS-B Spearman; also reported: accuracy for CoLA, F1 for RTE,
accuracy for MRPC, Pearson for STS-B: gnnagg.datasets.glue.GlueTask.metrics);
GLUE dev (stress: test) is scored at that epoch. Mean +- std over seeds, and
a trivial baseline row (the majority training class; regression: the
training mean). Pair and single-sentence
tasks take their recipe from RECIPES; options given win, for every pooler.

Examples:
    gnnagg run glot --task sst2 --max-train 8000 --out sst2.json
    gnnagg run glot --task rte --pair concat --lr 1e-3 --out rte_concat.json
    gnnagg run glot --task rte --pooling glot --graph none --out rte_nograph.json
    gnnagg run glot --task stress --ratios 0.9 --out stress.json
Token-graph construction is timed by `gnnagg bench token-graph`.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .common import (add_config_arguments, check_choice, check_positive, config_from_args,
                     environment, format_table, option, over_runs, progress, run_series,
                     seed_everything)

WRITES_OUT = True

#: The recipe of each kind of task, for every pooler alike; change a default
#: here (one line).
RECIPES: Dict[str, Dict[str, Any]] = {
    "single": {"pair": None, "epochs": 3, "patience": 0, "lr": 2e-4, "class_weights": False},
    # Chosen on RTE's validation split, averaged over all five poolers alike
    # (experiments/glot/README.md): Sentence-BERT features, lr 1e-3, early
    # stopping (the best epochs were 3-4 of up to 30).
    "pair": {"pair": "sbert", "epochs": 30, "patience": 5, "lr": 1e-3, "class_weights": False},
}
DEFAULT_TAU = {"glue": 0.8, "stress": 0.6}



@dataclass
class GLOTConfig:
    task: str = option("sst2", "a GLUE task (gnnagg.datasets.glue.GLUE_TASKS) or stress")
    pooling: str = option("all", "cls, mean, max, adapool, glot, a comma-separated list, or all")
    seeds: int = option(3, "runs per pooler (seeds 0 .. N-1)")
    epochs: Optional[int] = option(None, "most epochs per run")
    patience: Optional[int] = option(None, "stop after N epochs without a better val score (0: no)")
    lr: Optional[float] = option(None, "Adam learning rate")
    pair: Optional[str] = option(None, "pair head input: concat [u, v] or sbert [u, v, |u-v|, u*v]")
    class_weights: Optional[bool] = option(None, "weight the loss by inverse class frequency")
    batch_size: int = option(32, "training examples per step")
    max_length: int = option(128, "encoder tokens per text")
    max_train: Optional[int] = option(None, "subsample the training set to N rows (fixed seed 0)")
    val_fraction: float = option(0.1, "training rows held out to select the epoch")
    model: Optional[str] = option(None, "encoder name or folder "
                                        "(default: offline all-MiniLM-L6-v2)")
    graph: str = option("similarity", "GLOT graph: similarity, or none (no edges, same parameters)")
    tau: Optional[float] = option(None, "GLOT edge threshold")
    knn: Optional[int] = option(None, "GLOT k-NN graph instead of (with --tau: besides) a "
                                      "threshold")
    hidden: int = option(256, "GLOT GNN width")
    layers: int = option(2, "GLOT GNN layers")
    conv: str = option("GATConv", "GLOT convolution, any PyG name")
    aggr: Optional[str] = option(None, "GLOT aggregator, gnnagg.aggr.resolve (default: conv's own)")
    attention: int = option(256, "GLOT/AdaPool readout hidden size")
    ratios: Tuple[float, ...] = option((0.2, 0.5, 0.8, 0.9), "stress: distractor ratios")
    stress_train: int = option(2000, "stress: training sequences")
    stress_test: int = option(500, "stress: test sequences")
    stress_length: int = option(128, "stress: words per sequence")


#: Pooler options from the config, by pooler name (the others take none).
POOLER_OPTIONS = {
    "glot": lambda c: dict(hidden_channels=c.hidden, num_layers=c.layers, conv=c.conv,
                           aggr=c.aggr, tau=c.tau, k=c.knn, attention_channels=c.attention,
                           edges=c.graph),
    "adapool": lambda c: dict(attention_channels=c.attention),
}


def pooler_names(spec: str) -> List[str]:
    from ..nn.pooling import POOLINGS

    names = list(POOLINGS) if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    if not names or set(names) - set(POOLINGS):
        raise ValueError(f"unknown --pooling {spec!r}; choose from {list(POOLINGS)} or 'all'")
    return names


def validate(cfg: GLOTConfig) -> GLOTConfig:
    """Checks every option before any data is read; returns the config with
    the task's recipe filled in where an option was not given."""
    from ..datasets.glue import GLUE_TASKS

    if cfg.task == "graph-bench":
        raise ValueError("token-graph timing moved to its own command: gnnagg bench token-graph")
    cfg = dataclasses.replace(cfg, task=cfg.task.lower().replace("-", "").replace("_", ""))
    check_choice("task", cfg.task, [*GLUE_TASKS, "stress"])
    spec = GLUE_TASKS.get(cfg.task)
    kind = "pair" if spec is not None and spec.pair else "single"
    if kind == "single" and cfg.pair is not None:
        raise ValueError(f"--pair applies to sentence-pair tasks; {cfg.task} has single sentences")
    if cfg.class_weights and spec is not None and spec.regression:
        raise ValueError(f"--class-weights needs a classification task; {cfg.task} is a regression")
    filled = {k: v for k, v in RECIPES[kind].items() if getattr(cfg, k) is None}
    if cfg.tau is None and cfg.knn is None:
        filled["tau"] = DEFAULT_TAU["stress" if cfg.task == "stress" else "glue"]
    cfg = dataclasses.replace(cfg, **filled)
    check_positive(cfg, "seeds", "epochs", "patience", "lr", "batch_size", "max_train", "knn",
                   "hidden", "layers", "attention", "stress_train", "stress_test",
                   "stress_length", allow_zero=("patience",))
    if cfg.max_length < 2:
        raise ValueError(f"--max-length must be >= 2 (got {cfg.max_length})")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1) (got {cfg.val_fraction})")
    if cfg.tau is not None and not -1.0 <= cfg.tau <= 1.0:
        raise ValueError(f"--tau is a cosine similarity in [-1, 1] (got {cfg.tau})")
    if not cfg.ratios or any(not 0.0 <= r < 1.0 for r in cfg.ratios):
        raise ValueError(f"--ratios must lie in [0, 1) (got {cfg.ratios})")
    from ..models.sentence import PAIR_FEATURES
    from ..nn.pooling import GRAPHS, resolve_conv

    if kind == "pair":
        check_choice("pair", cfg.pair, list(PAIR_FEATURES))
    check_choice("graph", cfg.graph, GRAPHS)
    if "glot" in pooler_names(cfg.pooling):
        resolve_conv(cfg.conv)
        if cfg.aggr is not None:
            from ..aggr import aggregator_class

            aggregator_class(cfg.aggr)
    return cfg


# Data #######################################################################

@dataclass
class Setting:
    """One train/evaluate problem: a GLUE task or one stress-test ratio."""
    name: str
    metrics: List[str]
    regression: bool
    num_outputs: int
    train: Any  # gnnagg.text.LabelledTexts
    val: Any
    eval: Any
    eval_split: str


def load_settings(cfg: GLOTConfig) -> List[Setting]:
    from ..text import FrozenEncoder, LabelledTexts

    if cfg.task == "stress":
        from ..datasets.stress import stress_splits

        enc, out = FrozenEncoder(cfg.model, max_length=cfg.stress_length + 2), []
        for r in cfg.ratios:
            tr, te = stress_splits(r, cfg.stress_train, cfg.stress_test, cfg.stress_length)
            train = LabelledTexts.encode(enc, tr.texts, None, tr.labels, f"stress {r} train")
            test = LabelledTexts.encode(enc, te.texts, None, te.labels, f"stress {r} test")
            out.append(Setting(f"stress@{r}", ["accuracy"], False, 2,
                               *train.split(cfg.val_fraction), test, "test"))
        return out
    from ..datasets.glue import GLUE_TASKS, load_glue

    spec, enc = GLUE_TASKS[cfg.task], FrozenEncoder(cfg.model, max_length=cfg.max_length)
    tr = load_glue(cfg.task, "train").subsample(cfg.max_train)
    dev = load_glue(cfg.task, "dev")
    train = LabelledTexts.encode(enc, tr.text_a, tr.text_b, tr.labels, f"{cfg.task} train")
    dev = LabelledTexts.encode(enc, dev.text_a, dev.text_b, dev.labels, f"{cfg.task} dev")
    return [Setting(cfg.task, list(spec.metrics), spec.regression, spec.num_classes,
                    *train.split(cfg.val_fraction), dev, "dev")]


# Runs #######################################################################

def train_run(cfg: GLOTConfig, s: Setting, pooler: str, seed: int, checkpoint=None) -> Dict:
    """One (setting, pooler, seed) run through gnnagg.train.fit."""
    import torch

    from ..models.sentence import SentenceClassifier
    from ..train import Patience, fit
    from ..train.tasks import sentence_prediction

    seed_everything(seed)
    model = SentenceClassifier(s.train.a.dim, s.num_outputs, pooler,
                               cfg.pair if s.train.pair else None,
                               POOLER_OPTIONS.get(pooler, lambda c: {})(cfg))
    batches, loss_fn, evaluate = sentence_prediction(
        s.train, {"val": s.val, s.eval_split: s.eval}, s.metrics, s.num_outputs, s.regression,
        cfg.class_weights, cfg.batch_size, seed)
    res = fit(model, torch.optim.Adam(model.parameters(), lr=cfg.lr), loss_fn, evaluate,
              epochs=cfg.epochs, train_data=batches, monitor=f"val_{s.metrics[0]}",
              stopping=Patience(cfg.patience), checkpoint=checkpoint,
              desc=f"{s.name} {pooler} seed {seed}")
    at = lambda split: {m: res.best.get(f"{split}_{m}", float("nan")) for m in s.metrics}
    return {"seed": seed, "best_epoch": res.best_epoch, "epochs": res.epochs,
            "stopped": res.stopped, "val": at("val"), "eval": at(s.eval_split),
            "seconds": res.seconds, "parameters": sum(p.numel() for p in model.parameters()),
            "curve": res.curve}


def baseline(s: Setting) -> Dict[str, Any]:
    """The trivial predictor's scores: majority training class, or mean."""
    import warnings

    from ..metrics import majority_baseline

    with warnings.catch_warnings():  # a constant predictor, by construction
        warnings.simplefilter("ignore")
        return {"predictor": "training mean" if s.regression else "majority class",
                **{k: majority_baseline(s.train.y, d.y, s.metrics, s.regression)
                   for k, d in (("val", s.val), ("eval", s.eval))}}


def summarize(s: Setting, runs: List[Dict]) -> Dict[str, Any]:
    value = lambda v: float("nan") if v is None else v  # JSON keeps NaN as null
    return {"runs": [{k: v for k, v in r.items() if k != "curve"} for r in runs],
            **{split: over_runs(runs, s.metrics, lambda r, m: value(r[split][m]))
               for split in ("val", "eval")}}


def results_table(results: Dict[str, Any]) -> str:
    """Dev (test) scores x100 at the selected epoch, one column per metric;
    ``*`` marks the metric that selected it (on validation)."""
    from ..utils import fmt

    header, cells = ["pooling"], []
    for name, r in results.items():
        header += [f"{name} {m}{'*' if i == 0 else ''} ({r['eval_split']})"
                   for i, m in enumerate(r["metrics"])]
        cells.append(r)
    names = list(dict.fromkeys(n for r in cells for n in r["poolers"]))
    rows = [[n] + [fmt(r["poolers"][n]["eval"][m]) if n in r["poolers"] else "not run"
                   for r in cells for m in r["metrics"]] for n in names]
    rows.append([cells[0]["baseline"]["predictor"]] +
                [f"{r['baseline']['eval'][m] * 100:.2f}" for r in cells for m in r["metrics"]])
    return format_table(header, rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shown = {k: f"{RECIPES['single'][k]}; pair tasks {RECIPES['pair'][k]}" for k in RECIPES["pair"]}
    shown.update(pair=f"{RECIPES['pair']['pair']} (pair tasks)",
                 tau=", ".join(f"{v} {k}" for k, v in DEFAULT_TAU.items()))
    add_config_arguments(parser, GLOTConfig, defaults=shown)


def main(args: argparse.Namespace) -> Dict[str, Any]:
    from ..train import RunStore

    cfg = validate(config_from_args(GLOTConfig(), args))
    names = pooler_names(cfg.pooling)
    store = RunStore(getattr(args, "out", None), "glot", dataclasses.asdict(cfg),
                     ignore=("seeds", "pooling"))
    settings = {s.name: s for s in load_settings(cfg)}
    results = {s.name: {"metrics": s.metrics, "eval_split": s.eval_split, "baseline": baseline(s),
                        "sizes": {"train": len(s.train), "val": len(s.val),
                                  s.eval_split: len(s.eval)}, "poolers": {}}
               for s in settings.values()}
    cells = {f"{s}/{name}/{seed}": (s, name, seed)
             for s in settings for name in names for seed in range(cfg.seeds)}

    def summaries(records: List[Dict]) -> Dict[str, Any]:
        runs: Dict[Tuple[str, str], List[Dict]] = {}
        for key, record in zip(cells, records):
            runs.setdefault(cells[key][:2], []).append(record)
        for (s, name), rs in runs.items():
            results[s]["poolers"][name] = summarize(settings[s], rs)
        return {"results": results}

    def train(key: str, checkpoint) -> Dict:
        s, name, seed = cells[key]
        return train_run(cfg, settings[s], name, seed, checkpoint)

    summaries(run_series(store, progress(list(cells), desc="runs", unit="run"), train,
                         partial=summaries))
    table = results_table(results)
    print(f"{table}\n* selects the epoch on the validation split; x100")
    return store.finish({"task": cfg.task, "config": cfg, "environment": environment(),
                         "results": results, "table": table})
