"""Synthetic generalisation suite: train set functions on small sets, test on large ones.

Every aggregator sits in the same :class:`gnnagg.models.SetModel` and gets the
same sets, budget, learning rate and seeds; the model of the best validation
epoch (sets of ``--val-size``) is tested at every ``--test-sizes``. The
benchmark of "Learnable Commutative Monoids for Graph Neural Networks" (Ong &
Velickovic, 2022, https://arxiv.org/abs/2212.08541), tasks in
``gnnagg.datasets.synthetic``. Output: a table and a one-line summary per
task, the JSON (``--out``; rerun to resume) and a PNG plot.

Examples:
    gnnagg run generalization --quick --out results/quick.json
    gnnagg run generalization --tasks second_min --aggregators sum lcm gru --seeds 0 1 2
    gnnagg run generalization --from-json a.json b.json --out all.json
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from . import generalization_suite as suite
from .common import (add_config_arguments, check_choice, check_positive, config_from_args,
                     option, run_series)
from .generalization_suite import AGGREGATORS, DEFAULT_AGGREGATORS, TASKS

#: Torch threads unless ``GNNAGG_THREADS`` is set (the CLI applies it): the
#: models are small, and a second thread mostly adds synchronisation, which
#: costs more than it gives when another process shares the cores.
DEFAULT_THREADS: Optional[int] = 1
WRITES_OUT = True  # through a RunStore, as the runs finish



@dataclass
class GeneralizationConfig:
    tasks: Tuple[str, ...] = option(tuple(TASKS), f"tasks, of {list(TASKS)}")
    aggregators: Tuple[str, ...] = option(DEFAULT_AGGREGATORS,
                                          f"aggregators, of {list(AGGREGATORS)}")
    seeds: Tuple[int, ...] = option((0, 1, 2), "model seeds")
    bits: int = option(8, "bits per integer (1 to 16)")
    encoding: str = option("bits", "element input: 'bits' or 'embedding'")
    target: str = option("bits", "output: 'bits' (one logit per bit of the label, as PyG's "
                               "example) or 'class' (softmax over labels)")
    train_sizes: Tuple[int, ...] = option((2, 16), "training set sizes: MIN MAX")
    val_size: int = option(32, "validation set size (model selection)")
    test_sizes: Tuple[int, ...] = option((32, 64, 128, 256, 512), "test set sizes")
    train_sets: int = option(16384, "training sets (fixed, reshuffled every epoch)")
    val_sets: int = option(512, "validation sets")
    test_sets: int = option(1000, "test sets per size (at most)")
    test_elements: int = option(65536, "cap on test elements per size: fewer sets at large sizes")
    channels: int = option(64, "embedding size")
    epochs: int = option(15, "training epochs")
    batch_size: int = option(128, "sets per training step")
    lr: float = option(3e-3, "Adam learning rate")
    lr_schedule: str = option("constant", "'constant' or 'cosine' (decays to 0 over all "
                                        "training steps)")
    assoc_samples: int = option(256, "triples per step for LCM's associativity regulariser "
                                   "(lcm_assoc)")
    assoc_weight: float = option(0.1, "weight of the aggregators' own regularisers (lcm_assoc's "
                                    "associativity)")
    data_seed: int = option(0, "seed of the training/validation/test sets")
    plot: Optional[str] = option(None, "PNG path (default: next to --out)")


#: ``--quick``, the README's first command: parity, where LCM extrapolates
#: from sizes 2-16 to 512 while sum/mean/max stay at chance. 512 steps per
#: aggregator: LCM reached 100% in 5 of 5 seeds (at 256 steps, 0 of 3); about
#: 40 s of CPU time in all.
QUICK = dict(tasks=("parity",), aggregators=("sum", "mean", "max", "gru", "lcm", "pyg_lcm"),
             seeds=(0,), test_sizes=(32, 64, 128, 256, 512), train_sets=16384, epochs=4,
             val_sets=256, test_sets=256, test_elements=32768, lr_schedule="cosine")

#: Options that may change between an interrupted run and its resumption:
#: finished runs are kept by task/aggregator/seed.
RESUMABLE_CHANGES = ("tasks", "aggregators", "seeds", "plot")


def validate(cfg: GeneralizationConfig) -> None:
    """Every option, before any data is made."""
    for name in ("tasks", "aggregators", "seeds", "test_sizes"):
        values = list(getattr(cfg, name))
        if not values or len(set(values)) != len(values):
            raise ValueError(f"--{name.replace('_', '-')} needs distinct values (got {values})")
    checks = [("encoding", cfg.encoding, ("bits", "embedding")), ("target", cfg.target, (
        "bits", "class")), ("lr_schedule", cfg.lr_schedule, ("constant", "cosine"))]
    checks += [("tasks", t, TASKS) for t in cfg.tasks]
    for name, value, choices in checks + [("aggregators", a, AGGREGATORS) for a in cfg.aggregators]:
        check_choice(name, value, choices)
    check_positive(cfg, "epochs", "batch_size", "train_sets", "val_sets", "test_sets", "lr",
                   "test_elements", "channels", "val_size", "test_sizes", "train_sizes")
    check_positive(cfg, "assoc_samples", "assoc_weight",
                   allow_zero=("assoc_samples", "assoc_weight"))
    if not 1 <= cfg.bits <= 16:
        raise ValueError(f"--bits must be in [1, 16] (got {cfg.bits})")
    if len(cfg.train_sizes) != 2 or cfg.train_sizes[0] > cfg.train_sizes[1]:
        raise ValueError(f"--train-sizes takes MIN MAX (got {list(cfg.train_sizes)})")
    smallest = min([cfg.train_sizes[0], cfg.val_size, *cfg.test_sizes])
    for task in cfg.tasks:
        if smallest < TASKS[task]:
            raise ValueError(f"task {task} needs sets of at least {TASKS[task]} elements "
                             f"(a set size given is {smallest})")


def make_data(task: str, cfg: GeneralizationConfig, train: bool = True) -> Dict[str, Any]:
    """A task's sets, the same for every aggregator and seed: ``train`` (a
    SetBatch), ``val`` and ``test[size]`` (lists of SetBatches; at size d,
    ``min(test_sets, test_elements // d)`` sets)."""
    import torch

    from ..datasets.synthetic import generate_sets

    def sets(n, size, seed):  # evaluation in chunks: memory stays bounded
        batch = generate_sets(task, n, size, cfg.bits, cfg.data_seed * 1000 + seed)
        return [batch.select(i) for i in torch.arange(n).split(max(1, 16384 // size))]

    data: Dict[str, Any] = {"test": {d: sets(max(1, min(cfg.test_sets, cfg.test_elements // d)),
                                             d, 3 + d) for d in cfg.test_sizes}}
    if train:
        data["train"] = generate_sets(task, cfg.train_sets, tuple(cfg.train_sizes), cfg.bits,
                                      cfg.data_seed * 1000 + 1)
        data["val"] = sets(cfg.val_sets, cfg.val_size, 2)
    return data


def train_one(task: str, name: str, seed: int, cfg: GeneralizationConfig,
              data: Dict[str, Any], checkpoint=None) -> Dict[str, Any]:
    """Train one aggregator on one task with one seed (one :func:`gnnagg.train.fit`);
    test the model of the best validation epoch at every test size."""
    import torch

    from ..datasets.synthetic import get_task
    from ..models import SetModel
    from ..train import fit, seed_everything
    from ..train.tasks import set_function, set_outputs

    classes = get_task(task).num_classes(cfg.bits)
    spec, bits = AGGREGATORS[name], cfg.encoding == "bits"
    seed_everything(seed)
    model = SetModel(cfg.bits if bits else 1 << cfg.bits, cfg.channels,
                     set_outputs(classes, cfg.target), aggr=spec.aggr(),
                     aggr_kwargs=spec.kwargs(cfg.channels, cfg),
                     encoder="linear" if bits else "embedding")
    batches, loss_fn, evaluate, accuracy = set_function(
        data["train"], data["val"], classes, cfg.target, cfg.encoding, cfg.batch_size, seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * len(batches))
             if cfg.lr_schedule == "cosine" else None)
    result = fit(model, opt, loss_fn, evaluate, epochs=cfg.epochs, train_data=batches,
                 monitor="val_acc", scheduler=sched, scheduler_per_step=True,
                 regularization=cfg.assoc_weight, checkpoint=checkpoint,
                 desc=f"{task} {name} seed {seed}")
    model.eval()
    with torch.no_grad():
        test = {str(d): accuracy(model, data["test"][d]) for d in cfg.test_sizes}
    depth = getattr(model.aggr, "depth", None) or spec.depth
    return {"task": task, "aggregator": name, "seed": seed, "val": result.best.get("val_acc"),
            "best_epoch": result.best_epoch, "test": test, "stopped": result.stopped,
            "seconds": result.seconds, "params": sum(p.numel() for p in model.parameters()),
            "depth": {str(d): int(depth(d)) for d in (cfg.train_sizes[1], *cfg.test_sizes)},
            "curve": result.curve}


def run(cfg: GeneralizationConfig, out: Optional[str] = None) -> Dict[str, Any]:
    """Every (task, aggregator, seed) run not finished in ``out`` (the one in
    progress resumes from its epoch checkpoint); returns the result, written
    to ``out`` as runs finish and complete at the end."""
    validate(cfg)
    from ..train import RunStore

    store = RunStore(out, "generalization", dataclasses.asdict(cfg), ignore=RESUMABLE_CHANGES)
    tic = time.perf_counter()
    keys = [suite.run_key(t, a, s) for t in cfg.tasks for a in cfg.aggregators for s in cfg.seeds]
    data: Dict[str, Any] = {}

    def train(key: str, checkpoint) -> Dict[str, Any]:
        task, name, seed = suite.parse_key(key)
        if data.get("task") != task:  # made once per task
            data.clear()
            data.update(make_data(task, cfg), task=task)
        return train_one(task, name, seed, cfg, data, checkpoint)

    def show(key: str, record: Dict[str, Any], new: bool) -> None:
        note = f"{record['seconds']:.0f} s" if new else "finished in an earlier session"
        label = AGGREGATORS[suite.parse_key(key)[1]].label
        suite.print_run(f"[{keys.index(key) + 1}/{len(keys)}] {label}", record, note)

    records = run_series(store, keys, train, stored=True, on_record=show)
    result = suite.build(dict(zip(keys, records)), cfg, suite.baselines(cfg, make_data))
    result["wall_time_s"] = time.perf_counter() - tic
    if cfg.plot:
        from .plots import generalization

        result["plot"] = generalization(result, cfg, cfg.plot)
    else:
        result["plot"] = None
    return store.finish(result)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="the README's first command (about 40 s of CPU time): "
                             + ", ".join(f"--{k.replace('_', '-')} " + (" ".join(map(str, v))
                                         if isinstance(v, tuple) else str(v))
                                         for k, v in QUICK.items()))
    parser.add_argument("--from-json", nargs="+", metavar="FILE.json", default=None,
                        help="train nothing: merge the runs of earlier result files (finished "
                             "or interrupted; e.g. one per task) into one table, JSON and plot")
    add_config_arguments(parser, GeneralizationConfig)


def main(args: argparse.Namespace) -> Dict[str, Any]:
    cfg = GeneralizationConfig()
    if getattr(args, "quick", False):
        cfg = dataclasses.replace(cfg, **QUICK)
    cfg = config_from_args(cfg, args)
    out = getattr(args, "out", None)
    if cfg.plot is None and out:
        cfg = dataclasses.replace(cfg, plot=str(Path(out).with_suffix(".png")))
    if getattr(args, "from_json", None):
        from .generalization_merge import merge

        result, cfg = merge(args.from_json, out, cfg.plot, GeneralizationConfig,
                            lambda c: suite.baselines(c, make_data))
    else:
        result = run(cfg, out)
    suite.print_result(result, cfg, out)
    return result
