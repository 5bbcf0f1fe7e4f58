"""Synthetic generalisation suite: train set functions on small sets, test on large ones.

Every aggregator gets the same model around it (element encoder, aggregator,
decoder), the same training sets, budget, learning rate and seeds; the model
of the epoch with the best validation accuracy (sets of ``--val-size``) is
tested on sets of every ``--test-sizes``. The benchmark is that of
"Learnable Commutative Monoids for Graph Neural Networks" (Ong & Velickovic,
2022, https://arxiv.org/abs/2212.08541); the tasks are described in
``gnnagg.datasets.synthetic``. Output: one table per task (aggregator x
test size, accuracy mean +- std over seeds), time per training epoch,
aggregation depth, a JSON (``--out``) and a PNG plot (``--plot``).

Examples:
    gnnagg run generalization --quick --out results/quick.json
    gnnagg run generalization --tasks second_min --aggregators sum lcm gru --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn import Embedding, Linear, ReLU, Sequential
from torch_geometric.nn.aggr import Aggregation

from ..aggr import regularization_loss, resolve
from ..datasets.synthetic import TASKS, SetBatch, generate_sets, get_task, int_to_bits
from .common import (add_config_arguments, config_from_args, environment, fmt, format_table,
                     mean_std, progress, set_seed, write_json)


# Aggregators under test ###################################################

@dataclass(frozen=True)
class AggregatorSpec:
    """How to build one aggregator of the comparison and what it costs.

    Attributes:
        build: ``(channels, config) -> Aggregation``.
        depth: ``(max set size) -> sequential steps``, for aggregators without
            a ``depth`` method of their own.
        label: the name shown in tables and plots.
        regularized: whether :func:`gnnagg.aggr.regularization_loss`, times
            the config's ``assoc_weight``, is added to the loss.
    """
    build: Callable[[int, "GeneralizationConfig"], Aggregation]
    label: str
    depth: Optional[Callable[[int], int]] = None
    regularized: bool = False


def _deep_sets(c: int, cfg: "GeneralizationConfig") -> Aggregation:
    mlp = lambda: Sequential(Linear(c, c), ReLU(), Linear(c, c))
    return resolve("deep_sets", local_nn=mlp(), global_nn=mlp())


def _pyg(name: str) -> Callable[[int, "GeneralizationConfig"], Aggregation]:
    from torch_geometric.nn import aggr as pyg_aggr

    return lambda c, cfg: getattr(pyg_aggr, name)(c, c)


def _lcm(c: int, **kwargs: Any) -> Aggregation:
    # The encoder already ends in a linear map, so the leaves are its output
    # squashed by tanh into (-1, 1), the range of the GRU operator's outputs:
    # every tree level then lives in the same box (see LCMAggregation's
    # ``activation``; the ``lcm_relu`` ablation shows the difference).
    return resolve("lcm", in_channels=c, out_channels=c, project=False, activation="tanh",
                   **kwargs)


_one = lambda d: 1
_log = lambda d: math.ceil(math.log2(d)) if d > 1 else 0
_linear = lambda d: d

#: The comparison, by the name used on the command line.
AGGREGATORS: Dict[str, AggregatorSpec] = {
    "sum": AggregatorSpec(lambda c, cfg: resolve("sum"), "sum", _one),
    "mean": AggregatorSpec(lambda c, cfg: resolve("mean"), "mean", _one),
    "max": AggregatorSpec(lambda c, cfg: resolve("max"), "max", _one),
    "deepsets": AggregatorSpec(_deep_sets, "DeepSets (PyG)", _one),
    "pyg_gru": AggregatorSpec(_pyg("GRUAggregation"), "GRU (PyG)", _linear),
    "pyg_lcm": AggregatorSpec(_pyg("LCMAggregation"), "LCM (PyG)", _log),
    "gru": AggregatorSpec(lambda c, cfg: resolve("gru", in_channels=c, out_channels=c), "GRU"),
    "lstm": AggregatorSpec(lambda c, cfg: resolve("lstm", in_channels=c, out_channels=c), "LSTM"),
    "lcm": AggregatorSpec(lambda c, cfg: _lcm(c), "LCM"),
    "lcm_assoc": AggregatorSpec(lambda c, cfg: _lcm(c, assoc_samples=cfg.assoc_samples),
                                "LCM + assoc. reg.", regularized=True),
    # ablation, not run by default: LCM's default leaves, ReLU(W h + b) as in PyG
    "lcm_relu": AggregatorSpec(lambda c, cfg: resolve("lcm", in_channels=c, out_channels=c),
                               "LCM, ReLU-projected leaves"),
}

#: What runs when ``--aggregators`` is not given.
DEFAULT_AGGREGATORS = tuple(a for a in AGGREGATORS if a != "lcm_relu")


def aggregator_depth(name: str, aggr: Aggregation, max_size: int) -> int:
    """Sequential aggregation steps for sets of up to ``max_size`` elements."""
    depth = getattr(aggr, "depth", None)
    if callable(depth):
        return int(depth(max_size))
    return int(AGGREGATORS[name].depth(max_size))


# Configuration ##############################################################

@dataclass
class GeneralizationConfig:
    tasks: Tuple[str, ...] = field(default=tuple(TASKS), metadata={"help": f"tasks, of {list(TASKS)}"})
    aggregators: Tuple[str, ...] = field(default=DEFAULT_AGGREGATORS,
                                         metadata={"help": f"aggregators, of {list(AGGREGATORS)}"})
    seeds: Tuple[int, ...] = field(default=(0, 1, 2), metadata={"help": "model seeds"})
    bits: int = field(default=8, metadata={"help": "bits per integer"})
    encoding: str = field(default="bits", metadata={"help": "element input: 'bits' or 'embedding'"})
    target: str = field(default="bits", metadata={"help": "output: 'bits' (one logit per bit of the label, as PyG's example) or 'class' (softmax over labels)"})
    train_sizes: Tuple[int, ...] = field(default=(2, 16), metadata={"help": "training set sizes: MIN MAX"})
    val_size: int = field(default=32, metadata={"help": "validation set size (model selection)"})
    test_sizes: Tuple[int, ...] = field(default=(32, 64, 128, 256, 512), metadata={"help": "test set sizes"})
    train_sets: int = field(default=16384, metadata={"help": "training sets (fixed, reused every epoch)"})
    val_sets: int = field(default=512, metadata={"help": "validation sets"})
    test_sets: int = field(default=1000, metadata={"help": "test sets per size (at most)"})
    test_elements: int = field(default=65536, metadata={"help": "cap on test elements per size: fewer sets at large sizes"})
    channels: int = field(default=64, metadata={"help": "embedding size"})
    epochs: int = field(default=15, metadata={"help": "training epochs"})
    batch_size: int = field(default=128, metadata={"help": "sets per training step"})
    lr: float = field(default=3e-3, metadata={"help": "Adam learning rate"})
    lr_schedule: str = field(default="constant", metadata={
        "help": "'constant' or 'cosine' (decays to 0 over all training steps)"})
    assoc_samples: int = field(default=256, metadata={"help": "triples per step for the LCM associativity regulariser"})
    assoc_weight: float = field(default=0.1, metadata={"help": "weight of the associativity regulariser"})
    data_seed: int = field(default=0, metadata={"help": "seed of the training/validation/test sets"})
    plot: Optional[str] = field(default=None, metadata={"help": "PNG path (default: next to --out)"})


#: ``--quick``: the README's main job, a few minutes on 2 CPU cores.
QUICK = dict(tasks=("second_min", "majority"), seeds=(0,), test_sizes=(32, 64, 128, 256),
             train_sets=8192, epochs=6, val_sets=256, test_sets=256, test_elements=16384,
             lr_schedule="cosine")


def validate(cfg: GeneralizationConfig) -> None:
    for t in cfg.tasks:
        get_task(t)
    unknown = [a for a in cfg.aggregators if a not in AGGREGATORS]
    if unknown:
        raise ValueError(f"unknown aggregators {unknown} (expected some of {list(AGGREGATORS)})")
    if len(cfg.train_sizes) != 2 or cfg.train_sizes[0] > cfg.train_sizes[1]:
        raise ValueError(f"--train-sizes takes MIN MAX (got {list(cfg.train_sizes)})")
    if cfg.encoding not in ("bits", "embedding"):
        raise ValueError(f"--encoding must be 'bits' or 'embedding' (got '{cfg.encoding}')")
    if cfg.lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"--lr-schedule must be 'constant' or 'cosine' (got '{cfg.lr_schedule}')")
    if cfg.target not in ("bits", "class"):
        raise ValueError(f"--target must be 'bits' or 'class' (got '{cfg.target}')")
    for name in ("epochs", "batch_size", "train_sets", "val_sets", "test_sets", "channels"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(cfg, name)})")
    if not cfg.seeds or not cfg.tasks or not cfg.aggregators or not cfg.test_sizes:
        raise ValueError("--seeds, --tasks, --aggregators and --test-sizes must not be empty")


# Model ######################################################################

class SetModel(torch.nn.Module):
    r"""``decoder(aggr(encoder(x_j) for j in set))``: the same encoder and
    decoder MLPs around every aggregator under test.

    Args:
        aggr (Aggregation): the aggregator, ``channels -> channels``.
        bits (int): bits per input integer.
        channels (int): embedding size.
        num_outputs (int): output logits.
        encoding (str, optional): ``'bits'`` (a linear map of the bit vector)
            or ``'embedding'`` (a learned vector per integer).
            (default: :obj:`"bits"`)
    """

    def __init__(self, aggr: Aggregation, bits: int, channels: int, num_outputs: int,
                 encoding: str = "bits") -> None:
        super().__init__()
        self.bits = bits
        self.encoding = encoding
        first = Linear(bits, channels) if encoding == "bits" else Embedding(1 << bits, channels)
        self.encoder = Sequential(first, ReLU(), Linear(channels, channels))
        self.aggr = aggr
        self.decoder = Sequential(Linear(channels, channels), ReLU(), Linear(channels, num_outputs))

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, batch: SetBatch) -> Tensor:
        x = batch.bit_features() if self.encoding == "bits" else batch.values
        h = self.encoder(x)
        return self.decoder(self.aggr(h, batch.index, dim_size=batch.num_sets))


# Training and evaluation ####################################################

def _chunks(batch: SetBatch, max_elements: int):
    """Consecutive sub-batches of at most ``max_elements`` elements (at
    least one set each)."""
    ends = torch.cumsum(batch.sizes, 0)
    start = 0
    while start < batch.num_sets:
        base = int(ends[start - 1]) if start > 0 else 0
        stop = int(torch.searchsorted(ends, base + max_elements, right=True))
        stop = max(stop, start + 1)
        yield batch.select(torch.arange(start, stop))
        start = stop


class Target:
    """How labels are predicted: ``'class'``, a softmax over all labels, or
    ``'bits'``, one logit per bit of the label (as in PyG's example for the
    LCM paper), correct only when every bit is."""

    def __init__(self, kind: str, num_classes: int) -> None:
        self.kind = kind
        self.num_bits = max(1, math.ceil(math.log2(num_classes)))
        self.num_outputs = num_classes if kind == "class" else self.num_bits

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        if self.kind == "class":
            return F.cross_entropy(logits, y)
        return F.binary_cross_entropy_with_logits(logits, int_to_bits(y, self.num_bits))

    def predict(self, logits: Tensor) -> Tensor:
        if self.kind == "class":
            return logits.argmax(-1)
        weights = 1 << torch.arange(self.num_bits - 1, -1, -1, device=logits.device)
        return ((logits > 0).long() * weights).sum(-1)


@torch.no_grad()
def accuracy(model: SetModel, batch: SetBatch, target: Target, max_elements: int = 16384) -> float:
    model.eval()
    correct = 0
    for part in _chunks(batch, max_elements):
        correct += int((target.predict(model(part)) == part.y).sum())
    return correct / max(batch.num_sets, 1)


def _test_sets(cfg: GeneralizationConfig, size: int) -> int:
    return max(1, min(cfg.test_sets, cfg.test_elements // size))


def train_one(task: str, name: str, seed: int, cfg: GeneralizationConfig,
              data: Dict[str, Any]) -> Dict[str, Any]:
    """Train one aggregator on one task with one seed; test the model of the
    best validation epoch at every test size."""
    t = get_task(task)
    set_seed(seed)
    spec = AGGREGATORS[name]
    aggr = spec.build(cfg.channels, cfg)
    target = Target(cfg.target, t.num_classes(cfg.bits))
    model = SetModel(aggr, cfg.bits, cfg.channels, target.num_outputs, cfg.encoding)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    train: SetBatch = data["train"]
    steps = cfg.epochs * math.ceil(train.num_sets / cfg.batch_size)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
             if cfg.lr_schedule == "cosine" else None)
    gen = torch.Generator().manual_seed(seed)
    best_val, best_state, best_epoch = -1.0, None, 0
    epoch_times, losses = [], []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        tic = time.perf_counter()
        perm = torch.randperm(train.num_sets, generator=gen)
        total = 0.0
        for i in range(0, train.num_sets, cfg.batch_size):
            batch = train.select(perm[i:i + cfg.batch_size])
            loss = target.loss(model(batch), batch.y)
            if spec.regularized:
                loss = loss + cfg.assoc_weight * regularization_loss(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            total += float(loss.detach()) * batch.num_sets
        epoch_times.append(time.perf_counter() - tic)
        losses.append(total / train.num_sets)
        if not math.isfinite(losses[-1]):
            break
        val = accuracy(model, data["val"], target)
        if val > best_val:
            best_val, best_epoch = val, epoch
            best_state = copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    test = {size: accuracy(model, data["test"][size], target) for size in cfg.test_sizes}
    return {"val": best_val, "best_epoch": best_epoch, "test": test, "epoch_time": epoch_times,
            "loss": losses, "params": sum(p.numel() for p in model.parameters()),
            "depth": {size: aggregator_depth(name, aggr, size)
                      for size in (cfg.train_sizes[1], *cfg.test_sizes)}}


def make_data(task: str, cfg: GeneralizationConfig) -> Dict[str, Any]:
    """The training, validation and test sets of a task (the same for every
    aggregator and model seed)."""
    s = cfg.data_seed * 1000
    return {
        "train": generate_sets(task, cfg.train_sets, tuple(cfg.train_sizes), cfg.bits, s + 1),
        "val": generate_sets(task, cfg.val_sets, cfg.val_size, cfg.bits, s + 2),
        "test": {size: generate_sets(task, _test_sets(cfg, size), size, cfg.bits, s + 3 + size)
                 for size in cfg.test_sizes},
    }


# Reporting ##################################################################

def summarize(runs: Dict[str, Dict[str, List[Dict[str, Any]]]], cfg: GeneralizationConfig):
    summary: Dict[str, Dict[str, Any]] = {}
    for task, by_aggr in runs.items():
        summary[task] = {}
        for name, seeds in by_aggr.items():
            summary[task][name] = {
                "label": AGGREGATORS[name].label,
                "test": {size: mean_std([r["test"][size] for r in seeds]) for size in cfg.test_sizes},
                "val": mean_std([r["val"] for r in seeds]),
                "epoch_time_s": mean_std([t for r in seeds for t in r["epoch_time"]]),
                "depth": seeds[0]["depth"],
                "params": seeds[0]["params"],
            }
    return summary


def constant_baseline(task: str, cfg: GeneralizationConfig) -> Dict[int, float]:
    """Accuracy of always answering the most frequent label of each test set
    (large sets make some answers likely: max 255, second-minimum 0)."""
    out = {}
    for size, batch in make_data(task, dataclasses.replace(cfg, train_sets=0, val_sets=0))["test"].items():
        out[size] = float(torch.bincount(batch.y).max()) / max(batch.num_sets, 1)
    return out


def tables(summary: Dict[str, Any], cfg: GeneralizationConfig) -> Dict[str, str]:
    out = {}
    train_max = cfg.train_sizes[1]
    for task, by_aggr in summary.items():
        header = ["aggregator"] + [f"d={s}" for s in cfg.test_sizes] + \
            ["s/epoch", f"depth d={train_max}/{cfg.test_sizes[-1]}"]
        const = constant_baseline(task, cfg)
        rows = [["(most frequent label)"] + [f"{100 * const[size]:.1f}" for size in cfg.test_sizes]
                + ["-", "-"]]
        for name, s in by_aggr.items():
            rows.append([s["label"]] + [fmt(s["test"][size], digits=1) for size in cfg.test_sizes] +
                        [f"{s['epoch_time_s']['mean']:.2f}",
                         f"{s['depth'][train_max]}/{s['depth'][cfg.test_sizes[-1]]}"])
        out[task] = format_table(header, rows)
    return out


def paper_check(summary: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The issue's bar on second-minimum: LCM >= 90% at size 32 and >= 20
    points above each of sum, mean, max at sizes >= 64 (measured, not assumed)."""
    res = summary.get("second_min", {})
    if "lcm" not in res:
        return None
    lcm = res["lcm"]["test"]
    sizes = sorted(lcm)
    check: Dict[str, Any] = {"lcm_at_32": lcm[32]["mean"] if 32 in lcm else None}
    check["lcm_at_32_ge_90"] = bool(32 in lcm and lcm[32]["mean"] >= 0.9)
    margins = {}
    for size in sizes:
        if size < 64:
            continue
        others = [res[b]["test"][size]["mean"] for b in ("sum", "mean", "max") if b in res]
        if others:
            margins[size] = lcm[size]["mean"] - max(others)
    check["margin_over_sum_mean_max"] = margins
    check["margin_ge_20_points"] = bool(margins) and all(m >= 0.2 for m in margins.values())
    return check


def plot(summary: Dict[str, Any], cfg: GeneralizationConfig, path: str) -> Optional[str]:
    """Accuracy against set size (log x), one line per aggregator, one panel
    per task. Returns the path, or ``None`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install gnnagg[plot]): no plot written")
        return None
    tasks = list(summary)
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    sizes = list(cfg.test_sizes)
    for ax, task in zip(axes[0], tasks):
        for i, (name, s) in enumerate(summary[task].items()):
            means = [100 * s["test"][d]["mean"] for d in sizes]
            stds = [100 * s["test"][d]["std"] for d in sizes]
            style = "-" if i < 10 else "--"
            ax.errorbar(sizes, means, yerr=stds, marker="o", ms=3, capsize=2, ls=style,
                        label=s["label"])
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(d) for d in sizes])
        ax.set_ylim(-2, 102)
        ax.set_title(f"{task} (train {cfg.train_sizes[0]}-{cfg.train_sizes[1]})")
        ax.set_xlabel("set size")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# Command line ###############################################################

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="small preset (a few minutes on 2 CPU cores): "
                             + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--from-json", nargs="+", metavar="FILE.json", default=None,
                        help="train nothing: merge the results of earlier runs (e.g. one "
                             "per task) into one table, JSON and plot")
    add_config_arguments(parser, GeneralizationConfig)


def run(cfg: GeneralizationConfig, progress_path: Optional[str] = None) -> Dict[str, Any]:
    """Run the whole comparison; returns the JSON-ready result.

    With ``progress_path``, the finished (task, aggregator, seed) runs are
    rewritten there (atomically) after each one, so an interrupted run keeps
    them; the file is removed when the comparison completes."""
    validate(cfg)
    runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    jobs = [(t, a, s) for t in cfg.tasks for a in cfg.aggregators for s in cfg.seeds]
    bar = progress(total=len(jobs), desc="generalization")
    tic = time.perf_counter()
    for task in cfg.tasks:
        data = make_data(task, cfg)
        runs[task] = {}
        for name in cfg.aggregators:
            runs[task][name] = []
            for seed in cfg.seeds:
                bar.set_postfix_str(f"{task} {name} seed {seed}")
                runs[task][name].append(train_one(task, name, seed, cfg, data))
                bar.update(1)
                if progress_path:
                    write_json(progress_path, {"config": dataclasses.asdict(cfg), "runs": runs})
    bar.close()
    if progress_path and Path(progress_path).exists():
        Path(progress_path).unlink()
    summary = summarize(runs, cfg)
    return {"config": dataclasses.asdict(cfg), "environment": environment(),
            "wall_time_s": time.perf_counter() - tic, "summary": summary,
            "tables": tables(summary, cfg), "paper_check": paper_check(summary), "runs": runs}


def _int_keys(obj: Any) -> Any:
    # JSON turns the set sizes into strings; bring them back.
    if isinstance(obj, dict):
        return {(int(k) if isinstance(k, str) and k.isdigit() else k): _int_keys(v)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_int_keys(v) for v in obj]
    return obj


def merge(paths: List[str]) -> Dict[str, Any]:
    """One result from the JSON files of several runs (e.g. one per task or
    per seed) with the same training and test sizes: the runs of each task
    and aggregator are pooled and summarised again. Each file's config is
    kept in ``configs``."""
    import json

    if not paths:
        raise ValueError("--from-json needs at least one file")
    parts = []
    for path in paths:
        try:
            with open(path) as f:
                parts.append(_int_keys(json.load(f)))
        except FileNotFoundError:
            raise FileNotFoundError(f"--from-json: no such file {path}") from None
        if not isinstance(parts[-1], dict) or "runs" not in parts[-1]:
            raise ValueError(f"{path} is not a result of 'gnnagg run generalization'")
    first = parts[0]["config"]
    for path, part in zip(paths, parts):
        for key in ("test_sizes", "train_sizes"):
            if list(part["config"][key]) != list(first[key]):
                raise ValueError(f"{path}: {key} {part['config'][key]} differ from "
                                 f"{paths[0]}'s {first[key]}")
    runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    for part in parts:
        for task, by_aggr in part["runs"].items():
            for name, seeds in by_aggr.items():
                runs.setdefault(task, {}).setdefault(name, []).extend(seeds)
    cfg = GeneralizationConfig(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in first.items()})
    cfg = dataclasses.replace(cfg, tasks=tuple(runs))
    summary = summarize(runs, cfg)
    return {"config": dataclasses.asdict(cfg), "configs": {p: r["config"] for p, r in zip(paths, parts)},
            "environment": environment(), "wall_time_s": sum(r["wall_time_s"] for r in parts),
            "summary": summary, "tables": tables(summary, cfg), "paper_check": paper_check(summary),
            "runs": runs}


def main(args: argparse.Namespace) -> Dict[str, Any]:
    cfg = GeneralizationConfig()
    if getattr(args, "quick", False):
        cfg = dataclasses.replace(cfg, **QUICK)
    cfg = config_from_args(cfg, args)
    out = getattr(args, "out", None)
    if cfg.plot is None and out:
        cfg = dataclasses.replace(cfg, plot=str(Path(out).with_suffix(".png")))
    if getattr(args, "from_json", None):
        result = merge(args.from_json)
        cfg = dataclasses.replace(GeneralizationConfig(**{
            k: tuple(v) if isinstance(v, list) else v for k, v in result["config"].items()}),
            plot=cfg.plot)
    else:
        result = run(cfg, progress_path=f"{out}.runs-so-far.json" if out else None)
    if cfg.plot:
        result["plot"] = plot(result["summary"], cfg, cfg.plot)
    for task, table in result["tables"].items():
        seeds = max(s["val"]["n"] for s in result["summary"][task].values())
        print(f"\n## {task}: test accuracy (%) by set size, mean +- std over "
              f"{seeds} seed(s); trained on sizes "
              f"{cfg.train_sizes[0]}-{cfg.train_sizes[1]}\n\n{table}")
    if result["paper_check"] is not None:
        print(f"\nsecond_min bar (LCM >= 90% at 32; >= 20 points over sum/mean/max at >= 64): "
              f"{result['paper_check']}")
    print(f"\nwall time {result['wall_time_s']:.0f} s")
    return result
