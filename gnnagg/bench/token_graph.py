"""Token-graph construction benchmark: vectorised vs per-sentence loop.

Builds the token graphs (GLOT, https://arxiv.org/abs/2603.03389) of a GLUE
dev set's sentences, encoded once by a frozen encoder (cached), with
:func:`gnnagg.nn.build_token_graph` and with the per-sentence reference
:func:`gnnagg.nn.build_token_graph_loop`; checks that both give the same
edges, then times them alternately (best of ``--repeats``), for the graphs
alone and with their node states gathered, all sentences in one call and
``--batch-size`` per call (as a training loop builds them), in float32 and
with the bfloat16 screen.

Example:
    gnnagg bench token-graph --repeats 9 --out graph_bench.json
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Dict, Optional

__all__ = ["benchmark_token_graph", "add_arguments", "main"]


def benchmark_token_graph(x, mask, tau: Optional[float] = 0.8, k: Optional[int] = None,
                          repeats: int = 5, chunk: Optional[int] = None,
                          precision: str = "auto", bucket_size: int = 64) -> Dict[str, Any]:
    """Time :func:`~gnnagg.nn.build_token_graph` against
    :func:`~gnnagg.nn.build_token_graph_loop` on the same padded states,
    after checking that both give the same edges (a ``RuntimeError``
    otherwise).

    Both build ``chunk`` sentences per call (:obj:`None`: all at once). Runs
    of the two alternate; the best of ``repeats`` runs of each is reported,
    in seconds, for the graphs alone (``*_s``) and with their node states
    (``TokenGraph.x``) gathered too (``*_with_x_s``).
    """
    import torch

    from ..nn.token_graph import (build_token_graph, build_token_graph_loop, check_padded,
                                  uses_bf16_screen)

    mask = check_padded(x, mask)
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive int (got {repeats!r})")
    B = x.size(0)
    chunk = chunk or max(B, 1)
    starts = range(0, B, chunk)

    def vectorised(with_x=False):
        gs = [build_token_graph(x[s:s + chunk], mask[s:s + chunk], tau, k,
                                bucket_size=bucket_size, precision=precision) for s in starts]
        return [g.x for g in gs] if with_x else gs

    def loop(with_x=False):
        gs = [build_token_graph_loop(x[s:s + chunk], mask[s:s + chunk], tau, k) for s in starts]
        return [g.x for g in gs] if with_x else gs

    slow = build_token_graph_loop(x, mask, tau, k)
    fast_edges = torch.cat([slow.edge_index[:, :0]] + [
        g.edge_index + int(slow.ptr[s]) for s, g in zip(starts, vectorised())], dim=1)
    if not torch.equal(fast_edges, slow.edge_index):
        raise RuntimeError("vectorised and per-sentence token graphs differ")

    fns = {"vectorised_s": vectorised, "loop_s": loop,
           "vectorised_with_x_s": lambda: vectorised(True), "loop_with_x_s": lambda: loop(True)}
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)  # time finished work
    times: Dict[str, list] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t)
    best = {name: min(ts) for name, ts in times.items()}
    screened = uses_bf16_screen(precision, x, k, False)
    return {"sentences": B, "max_len": x.size(1), "tokens": int(mask.sum()),
            "device": str(x.device),
            "edges": slow.num_edges, "tau": tau, "k": k, "chunk": chunk,
            "precision": "bf16" if screened else "fp32", "bucket_size": bucket_size, **best,
            "speedup": best["loop_s"] / max(best["vectorised_s"], 1e-12),
            "speedup_with_x": best["loop_with_x_s"] / max(best["vectorised_with_x_s"], 1e-12)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="sst2",
                        help="GLUE task whose dev sentences (first text) are used (default: sst2)")
    parser.add_argument("--model", default=None,
                        help="Hugging Face encoder name or folder (default: offline "
                             "all-MiniLM-L6-v2)")
    parser.add_argument("--max-length", type=int, default=128,
                        help="encoder tokens per sentence (default: 128)")
    parser.add_argument("--max-sentences", type=int, default=None,
                        help="use the first N dev sentences (default: all)")
    parser.add_argument("--tau", type=float, default=0.8,
                        help="cosine threshold, as GLOT's GLUE default (default: 0.8)")
    parser.add_argument("--knn", type=int, default=None,
                        help="k-NN graphs instead (default: threshold graphs)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="sentences per call in the mini-batch rows (default: 32)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16", "auto"], help="(default: fp32 bf16)")
    parser.add_argument("--repeats", type=int, default=5, help="best of N runs (default: 5)")
    parser.add_argument("--device", default="cpu",
                        help="where the graphs are built: cpu, cuda or cuda:N; the encoder "
                             "runs where FrozenEncoder puts it (default: cpu)")


def _validate(args: argparse.Namespace) -> None:
    from ..datasets.glue import glue_task

    glue_task(args.task)
    for name in ("max_length", "batch_size", "repeats", "max_sentences", "knn"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1 (got {value})")
    if args.max_length < 2:
        raise ValueError(f"--max-length must be >= 2 (got {args.max_length})")
    if not -1.0 <= args.tau <= 1.0:
        raise ValueError(f"--tau is a cosine similarity in [-1, 1] (got {args.tau})")
    import torch

    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        raise ValueError(f"--device {args.device!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: no CUDA device is available here")


def main(args: argparse.Namespace) -> Dict[str, Any]:
    _validate(args)
    import torch

    from ..datasets.glue import load_glue
    from ..text import FrozenEncoder
    from ..utils import environment, format_table

    dev = load_glue(args.task, "dev")
    texts = dev.text_a[:args.max_sentences] if args.max_sentences else dev.text_a
    feats = FrozenEncoder(args.model, max_length=args.max_length).encode(
        texts, desc=f"{args.task} dev")
    x, mask = feats.padded(torch.arange(len(feats)))
    x, mask = x.to(args.device), mask.to(args.device)
    rows, table = [], []
    for chunk in (None, args.batch_size):
        for precision in args.precisions:
            r = benchmark_token_graph(x, mask, tau=args.tau, k=args.knn, repeats=args.repeats,
                                      chunk=chunk, precision=precision)
            rows.append(r)
            table.append([r["chunk"], r["precision"], f"{r['vectorised_s'] * 1e3:.1f}",
                          f"{r['loop_s'] * 1e3:.1f}", f"{r['speedup']:.1f}x",
                          f"{r['vectorised_with_x_s'] * 1e3:.1f}",
                          f"{r['loop_with_x_s'] * 1e3:.1f}", f"{r['speedup_with_x']:.1f}x"])
    r = rows[0]
    print(f"token graphs of {r['sentences']} {args.task} dev sentences ({r['tokens']} tokens, "
          f"{r['edges']} edges, tau {args.tau}, k {args.knn}) on {args.device}; the same "
          f"graphs, checked first; best of {args.repeats}, ms")
    print(format_table(["per call", "precision", "vectorised", "loop", "speedup",
                        "+ x vectorised", "+ x loop", "speedup"], table))
    return {"benchmark": "token-graph", "options": vars(args), "environment": environment(),
            "results": rows}
