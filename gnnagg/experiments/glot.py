"""GLOT token-graph pooling vs. mean/max/CLS/AdaPool over a frozen encoder (GLUE, stress test).

Reproduces the frozen-encoder experiments of "Towards Improved Sentence
Representations using Token Graphs" (https://arxiv.org/abs/2603.03389):
a frozen Hugging Face encoder (offline default: all-MiniLM-L6-v2) gives token
states once (cached on disk); each pooler plus a linear head is trained with
Adam (lr 2e-4, batch 32, 3 epochs). Sentence pairs are pooled separately and
concatenated. The epoch is chosen on a validation split held out from the
training set (``--val-fraction``); the GLUE dev set (or the stress test set)
is scored at that epoch. Mean +- std over ``--seeds`` seeds.

Tasks: sst2, cola, rte, mrpc, stsb (GLUE TSVs under GNNAGG_DATA/glue),
stress (distractor ratios ``--ratios``), and graph-bench (times vectorised
token-graph construction against a per-sentence loop).

Examples:
    gnnagg run glot --task stress --pooling all --seeds 3 --out stress.json
    gnnagg run glot --task sst2 --max-train 8000 --out sst2.json
    gnnagg run glot --task graph-bench
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .common import (add_config_arguments, config_from_args, environment, format_table, mean_std,
                     progress, set_seed)


@dataclass
class GLOTConfig:
    task: str = dataclasses.field(default="sst2", metadata={
        "help": "sst2, cola, rte, mrpc, stsb, stress or graph-bench"})
    pooling: str = dataclasses.field(default="all", metadata={
        "help": "glot, mean, max, cls, adapool, a comma-separated list, or all"})
    seeds: int = dataclasses.field(default=3, metadata={"help": "runs per pooler"})
    epochs: int = 3
    lr: float = 2e-4
    batch_size: int = 32
    max_length: int = dataclasses.field(default=128, metadata={
        "help": "encoder tokens per text (stress: words + 2)"})
    max_train: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "subsample the training set to this many rows (fixed seed 0)"})
    val_fraction: float = dataclasses.field(default=0.1, metadata={
        "help": "training rows held out to choose the epoch"})
    model: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "Hugging Face encoder name or folder (default: offline all-MiniLM-L6-v2)"})
    tau: Optional[float] = dataclasses.field(default=None, metadata={
        "help": "GLOT edge threshold (default: 0.8 GLUE, 0.6 stress)"})
    knn: Optional[int] = dataclasses.field(default=None, metadata={
        "help": "GLOT k-NN graph instead of (or, with --tau, on top of) a threshold"})
    hidden: int = 256
    layers: int = 2
    conv: str = "GATConv"
    aggr: Optional[str] = dataclasses.field(default=None, metadata={
        "help": "GLOT aggregator for gnnagg.aggr.resolve (default: the conv's own)"})
    attention: int = dataclasses.field(default=256, metadata={"help": "readout hidden size"})
    pair: str = dataclasses.field(default="concat", metadata={
        "help": "sentence-pair features: concat [a, b] (the paper) or sbert [a, b, |a-b|, a*b]"})
    ratios: Tuple[float, ...] = (0.2, 0.5, 0.8, 0.9)
    stress_train: int = 2000
    stress_test: int = 500
    stress_length: int = 128
    bench_repeats: int = 5


GLUE_TASKS = ("sst2", "cola", "rte", "mrpc", "stsb")
DEFAULT_TAU = {"glue": 0.8, "stress": 0.6}


def _tau(cfg: GLOTConfig) -> Optional[float]:
    if cfg.tau is not None:
        return cfg.tau
    if cfg.knn is not None:
        return None
    return DEFAULT_TAU["stress" if cfg.task == "stress" else "glue"]


# Poolers, built from a table (no switch) ###################################

def _glot(cfg: GLOTConfig, d: int):
    from ..nn.glot import GLOTPooling

    return GLOTPooling(d, cfg.hidden, cfg.layers, conv=cfg.conv, aggr=cfg.aggr, tau=_tau(cfg),
                       k=cfg.knn, attention_channels=cfg.attention)


def _simple(name: str) -> Callable[[GLOTConfig, int], torch.nn.Module]:
    def build(cfg: GLOTConfig, d: int):
        from ..nn.glot import resolve_pooling

        return resolve_pooling(name, d)
    return build


def _adapool(cfg: GLOTConfig, d: int):
    from ..nn.glot import AdaPool

    return AdaPool(d, cfg.attention)


POOLER_BUILDERS: Dict[str, Callable[[GLOTConfig, int], torch.nn.Module]] = {
    "cls": _simple("cls"),
    "mean": _simple("mean"),
    "max": _simple("max"),
    "adapool": _adapool,
    "glot": _glot,
}


def pooler_names(spec: str) -> List[str]:
    names = list(POOLER_BUILDERS) if spec == "all" else [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in POOLER_BUILDERS]
    if unknown or not names:
        raise ValueError(f"unknown pooling {unknown or spec!r}; choose from "
                         f"{sorted(POOLER_BUILDERS)} or 'all'")
    return names


# Metrics ####################################################################

def _accuracy(y, pred):
    return float((np.asarray(y) == np.asarray(pred)).mean())


def _mcc(y, pred):
    from sklearn.metrics import matthews_corrcoef

    return float(matthews_corrcoef(y, pred))


def _f1(y, pred):
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred))


def _spearman(y, pred):
    from scipy.stats import spearmanr

    rho = spearmanr(y, pred).statistic
    return float(rho) if np.isfinite(rho) else 0.0


METRICS: Dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": _accuracy, "mcc": _mcc, "f1": _f1, "spearman": _spearman,
}


# Data #######################################################################

@dataclass
class Features:
    """Encoded texts of one split: ``a`` (and ``b`` for pairs), labels ``y``."""
    a: Any
    b: Any
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, idx) -> "Features":
        return Features(self.a.subset(idx), None if self.b is None else self.b.subset(idx),
                        self.y[torch.as_tensor(idx, dtype=torch.long)])


@dataclass
class Setting:
    """One train/evaluate problem: a GLUE task or one stress-test ratio."""
    name: str
    metric: str
    num_outputs: int
    regression: bool
    train: Features
    val: Features
    eval: Features
    eval_split: str


def _split_val(train: Features, fraction: float) -> Tuple[Features, Features]:
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1) (got {fraction})")
    n = len(train)
    n_val = max(1, int(round(fraction * n)))
    if n - n_val < 1:
        raise ValueError(f"{n} training rows are too few to hold out a validation split")
    perm = np.random.default_rng(0).permutation(n)
    return train.subset(np.sort(perm[n_val:])), train.subset(np.sort(perm[:n_val]))


def _encode(encoder, texts_a, texts_b, labels, desc: str) -> Features:
    a = encoder.encode(texts_a, desc=f"{desc} a" if texts_b is not None else desc)
    b = encoder.encode(texts_b, desc=f"{desc} b") if texts_b is not None else None
    return Features(a, b, torch.as_tensor(labels))


def _glue_settings(cfg: GLOTConfig) -> List[Setting]:
    from ..datasets.glue import glue_task, load_glue
    from ..text import FrozenEncoder

    spec = glue_task(cfg.task)
    encoder = FrozenEncoder(cfg.model, max_length=cfg.max_length)
    train_split = load_glue(cfg.task, "train").subsample(cfg.max_train)
    dev_split = load_glue(cfg.task, "dev")
    train = _encode(encoder, train_split.text_a, train_split.text_b, train_split.labels,
                    f"{cfg.task} train")
    dev = _encode(encoder, dev_split.text_a, dev_split.text_b, dev_split.labels, f"{cfg.task} dev")
    train, val = _split_val(train, cfg.val_fraction)
    return [Setting(cfg.task, spec.metric, spec.num_classes, spec.regression, train, val, dev,
                    "dev")]


def _stress_settings(cfg: GLOTConfig) -> List[Setting]:
    from ..datasets.stress import stress_splits
    from ..text import FrozenEncoder

    encoder = FrozenEncoder(cfg.model, max_length=cfg.stress_length + 2)
    settings = []
    for ratio in cfg.ratios:
        tr, te = stress_splits(ratio, cfg.stress_train, cfg.stress_test, cfg.stress_length)
        train = _encode(encoder, tr.texts, None, tr.labels, f"stress {ratio} train")
        test = _encode(encoder, te.texts, None, te.labels, f"stress {ratio} test")
        train, val = _split_val(train, cfg.val_fraction)
        settings.append(Setting(f"stress@{ratio}", "accuracy", 2, False, train, val, test, "test"))
    return settings


SETTINGS: Dict[str, Callable[[GLOTConfig], List[Setting]]] = {
    **{t: _glue_settings for t in GLUE_TASKS}, "stress": _stress_settings,
}


# Model and training #########################################################

#: How two pooled sentences form the head's input: (function, width factor).
#: A linear head on ``concat`` scores a pair as f(a) + g(b), with no
#: interaction; ``sbert`` adds the features of Sentence-BERT
#: (https://arxiv.org/abs/1908.10084).
PAIR_FEATURES: Dict[str, Tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], int]] = {
    "concat": (lambda a, b: torch.cat([a, b], dim=-1), 2),
    "sbert": (lambda a, b: torch.cat([a, b, (a - b).abs(), a * b], dim=-1), 4),
}


class SentenceModel(torch.nn.Module):
    """A pooler and a linear head; sentence pairs share the pooler and the
    two pooled vectors are combined by ``pair`` (see ``PAIR_FEATURES``)."""

    def __init__(self, pooler: torch.nn.Module, num_outputs: int, pair: Optional[str]):
        super().__init__()
        if pair is not None and pair not in PAIR_FEATURES:
            raise ValueError(f"unknown pair features '{pair}'; choose from {sorted(PAIR_FEATURES)}")
        self.pooler = pooler
        self.pair = pair
        width = PAIR_FEATURES[pair][1] if pair is not None else 1
        self.head = torch.nn.Linear(pooler.out_channels * width, num_outputs)

    def forward(self, feats: Features, idx: torch.Tensor) -> torch.Tensor:
        z = self.pooler(*feats.a.padded(idx))
        if self.pair is not None:
            z = PAIR_FEATURES[self.pair][0](z, self.pooler(*feats.b.padded(idx)))
        return self.head(z)


@torch.no_grad()
def _predict(model: SentenceModel, feats: Features, regression: bool, batch: int = 256) -> np.ndarray:
    model.eval()
    outs = [model(feats, idx) for idx in torch.arange(len(feats)).split(batch)]
    out = torch.cat(outs)
    return (out.squeeze(-1) if regression else out.argmax(-1)).numpy()


def train_one(cfg: GLOTConfig, setting: Setting, pooler_name: str, seed: int) -> Dict[str, Any]:
    set_seed(seed)
    pooler = POOLER_BUILDERS[pooler_name](cfg, setting.train.a.dim)
    model = SentenceModel(pooler, setting.num_outputs,
                          cfg.pair if setting.train.b is not None else None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = torch.nn.MSELoss() if setting.regression else torch.nn.CrossEntropyLoss()
    metric = METRICS[setting.metric]
    gen = torch.Generator().manual_seed(seed)
    curve, start = [], time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(setting.train), generator=gen).split(cfg.batch_size):
            out = model(setting.train, idx)
            y = setting.train.y[idx]
            loss = loss_fn(out.squeeze(-1), y.float()) if setting.regression else loss_fn(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * idx.numel()
        val = metric(setting.val.y.numpy(), _predict(model, setting.val, setting.regression))
        ev = metric(setting.eval.y.numpy(), _predict(model, setting.eval, setting.regression))
        curve.append({"epoch": epoch + 1, "loss": total / len(setting.train), "val": val,
                      setting.eval_split: ev})
    best = max(curve, key=lambda r: r["val"])  # first best epoch on ties
    return {"seed": seed, "best_epoch": best["epoch"], "val": best["val"],
            "eval": best[setting.eval_split], "train_seconds": time.perf_counter() - start,
            "parameters": sum(p.numel() for p in model.parameters()), "curve": curve}


def run_settings(cfg: GLOTConfig, settings: List[Setting]) -> Dict[str, Any]:
    names = pooler_names(cfg.pooling)
    results: Dict[str, Any] = {}
    jobs = [(s, n, seed) for s in settings for n in names for seed in range(cfg.seeds)]
    bar = progress(jobs, desc="training", unit="run")
    for setting, name, seed in bar:
        bar.set_postfix_str(f"{setting.name} {name} seed {seed}")
        entry = results.setdefault(setting.name, {}).setdefault(
            name, {"metric": setting.metric, "eval_split": setting.eval_split, "runs": []})
        entry["runs"].append(train_one(cfg, setting, name, seed))
    for per_pooler in results.values():
        for entry in per_pooler.values():
            entry["eval"] = mean_std([r["eval"] for r in entry["runs"]])
            entry["val"] = mean_std([r["val"] for r in entry["runs"]])
    return results


def results_table(results: Dict[str, Any]) -> str:
    settings = list(results)
    names = list(dict.fromkeys(n for s in settings for n in results[s]))
    header = ["pooling"] + [f"{s} ({next(iter(results[s].values()))['metric']} x100)" for s in settings]
    rows = [[n] + [_fmt(results[s].get(n)) for s in settings] for n in names]
    return format_table(header, rows)


def _fmt(entry) -> str:
    from .common import fmt

    return fmt(entry["eval"]) if entry else "not run"


# Token-graph benchmark ######################################################

def graph_benchmark(cfg: GLOTConfig) -> Dict[str, Any]:
    """Vectorised vs. per-sentence token-graph construction on SST-2 dev
    states (the same graphs, checked before timing)."""
    from ..datasets.glue import load_glue
    from ..nn.glot import benchmark_token_graph
    from ..text import FrozenEncoder

    dev = load_glue("sst2", "dev")
    feats = FrozenEncoder(cfg.model, max_length=cfg.max_length).encode(dev.text_a, desc="sst2 dev")
    x, mask = feats.padded(torch.arange(len(feats)))
    tau = cfg.tau if cfg.tau is not None else DEFAULT_TAU["glue"]
    rows = []
    for chunk in (None, cfg.batch_size):
        for precision in ("fp32", "bf16"):
            r = benchmark_token_graph(x, mask, tau=tau, k=cfg.knn, repeats=cfg.bench_repeats,
                                      chunk=chunk, precision=precision)
            rows.append(r)
            print(f"token graphs of {r['sentences']} SST-2 dev sentences ({r['tokens']} tokens, "
                  f"{r['edges']} edges, {r['chunk']} per call, {r['precision']}): "
                  f"vectorised {r['vectorised_s'] * 1e3:.1f} ms, per-sentence loop "
                  f"{r['loop_s'] * 1e3:.1f} ms, speedup {r['speedup']:.1f}x; with node states "
                  f"{r['vectorised_with_x_s'] * 1e3:.1f} vs {r['loop_with_x_s'] * 1e3:.1f} ms, "
                  f"{r['speedup_with_x']:.1f}x")
    return {"task": "graph-bench", "config": cfg, "environment": environment(), "results": rows}


# CLI ########################################################################

def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, GLOTConfig)


def main(args: argparse.Namespace) -> Dict[str, Any]:
    cfg = config_from_args(GLOTConfig(), args)
    if cfg.task == "graph-bench":
        return graph_benchmark(cfg)
    if cfg.task not in SETTINGS:
        raise ValueError(f"unknown task '{cfg.task}'; choose from {sorted(SETTINGS)} or graph-bench")
    pooler_names(cfg.pooling)  # fail before encoding
    if cfg.pair not in PAIR_FEATURES:
        raise ValueError(f"unknown --pair '{cfg.pair}'; choose from {sorted(PAIR_FEATURES)}")
    if cfg.seeds < 1 or cfg.epochs < 1:
        raise ValueError("seeds and epochs must be positive")
    settings = SETTINGS[cfg.task](cfg)
    results = run_settings(cfg, settings)
    table = results_table(results)
    print(table)
    return {"task": cfg.task, "config": cfg, "environment": environment(),
            "sizes": {s.name: {"train": len(s.train), "val": len(s.val), s.eval_split: len(s.eval)}
                      for s in settings},
            "results": results, "table": table}
