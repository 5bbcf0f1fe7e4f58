"""Aggregator benchmark: gnnagg vs PyG (sum, LCM, GRU, LSTM).

On a uniform random graph and on power-law graphs with a high-degree hub,
it first checks that gnnagg's output for each sampled node equals PyG's
output for that node run alone (same weights), then times forward and
forward+backward and measures peak memory. Every (graph, aggregator,
implementation) cell runs in its own process, so that peak memory is that
cell's own and a PyG run that exhausts the memory cap cannot take the
benchmark down (``--in-process`` runs them in this process instead, for
tests); ratios are taken between cells of the same run.

Each cell also records the matrix products of one forward+backward pass
and times them alone (:mod:`gnnagg.bench.gemm`): the GEMM-only bound, and
the fraction of it the implementation reaches.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import torch

AGGRS = ("sum", "lcm", "gru", "lstm")
IMPLS = ("gnnagg", "pyg")


# Graphs #####################################################################

def uniform_graph(num_nodes: int, num_edges: int, seed: int = 0) -> torch.Tensor:
    """Destination index of each edge, uniform over nodes, sorted."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, num_nodes, (num_edges,), generator=g).sort().values


def power_law_degrees(num_nodes: int, num_edges: int, hub_degree: int) -> torch.Tensor:
    r"""Degrees :math:`d_i = \lfloor h\,(i + 1)^{-a} \rfloor` with the hub's
    degree :math:`h` fixed and the exponent :math:`a` chosen (by bisection) so
    that the degrees add up to about ``num_edges``."""
    ranks = torch.arange(1, num_nodes + 1, dtype=torch.float64)
    lo, hi = 0.01, 10.0
    for _ in range(100):
        a = (lo + hi) / 2
        total = torch.floor(hub_degree * ranks ** -a).sum().item()
        lo, hi = (a, hi) if total > num_edges else (lo, a)
    return torch.floor(hub_degree * ranks ** -((lo + hi) / 2)).long()


def power_law_graph(num_nodes: int, num_edges: int, hub_degree: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    degrees = power_law_degrees(num_nodes, num_edges, hub_degree)
    degrees = degrees[torch.randperm(num_nodes, generator=g)]
    return torch.repeat_interleave(torch.arange(num_nodes), degrees)


def make_graph(spec: Dict[str, Any]) -> torch.Tensor:
    if spec["kind"] == "uniform":
        return uniform_graph(spec["nodes"], spec["edges"], spec["seed"])
    return power_law_graph(spec["nodes"], spec["edges"], spec["hub"], spec["seed"])


# Modules ####################################################################

def make_pair(aggr: str, channels: int, seed: int = 0):
    """(gnnagg module, PyG module) with identical weights."""
    import torch_geometric.nn.aggr as pyg

    from .. import aggr as ours

    torch.manual_seed(seed)
    if aggr == "sum":
        return pyg.SumAggregation(), pyg.SumAggregation()
    if aggr == "lcm":
        a = ours.LCMAggregation(channels, channels)
        b = pyg.LCMAggregation(channels, channels)
        b.lin.load_state_dict(a.lin.state_dict())
        b.gru_cell.load_state_dict(a.op.cell.state_dict())
        return a, b
    a = {"gru": ours.GRUAggregation, "lstm": ours.LSTMAggregation}[aggr](channels, channels)
    b = {"gru": pyg.GRUAggregation, "lstm": pyg.LSTMAggregation}[aggr](channels, channels)
    getattr(b, aggr).load_state_dict(a.rnn.state_dict())
    return a, b


# One cell, in a child process ###############################################

def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak resident set size (VmHWM)
        return True
    except OSError:
        return False


def run_cell(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Time one (graph, aggregator, implementation) cell in this process."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    index = make_graph(spec["graph"]).to(device)
    n, f = spec["graph"]["nodes"], spec["channels"]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(index.numel(), f, generator=g).to(device).requires_grad_(True)
    ours, pyg = make_pair(spec["aggr"], f)
    module = (ours if spec["impl"] == "gnnagg" else pyg).to(device)
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    def fwd():
        with torch.no_grad():
            module(x, index, dim_size=n)

    def fwd_bwd():
        module(x, index, dim_size=n).sum().backward()

    result: Dict[str, Any] = {}
    for name, fn in (("forward", fwd), ("forward_backward", fwd_bwd)):
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        else:
            _reset_peak()
            base = _rss_kb("VmRSS") * 1024
        times = []
        for i in range(spec["repeats"] + 1):  # the first call warms up
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if i:
                times.append(time.perf_counter() - start)
            x.grad = None
            module.zero_grad(set_to_none=True)
        peak = torch.cuda.max_memory_allocated() if cuda else _rss_kb("VmHWM") * 1024
        times.sort()
        result[name] = {"median_s": times[len(times) // 2], "min_s": times[0],
                        "peak_extra_bytes": max(peak - base, 0)}
    result["peak_rss_bytes"] = _rss_kb("VmHWM") * 1024 if not cuda else None
    if spec.get("gemm_bound", True):
        from .gemm import gemm_bound

        result["gemm"] = gemm_bound(fwd_bwd, device, spec["repeats"], sync)
        x.grad = None
        module.zero_grad(set_to_none=True)
    return result


def _run_child(spec: Dict[str, Any], memory_cap_gb: Optional[float], timeout: float) -> Dict[str, Any]:
    def limit():  # pragma: no cover - runs in the child
        if memory_cap_gb:
            cap = int(memory_cap_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    cmd = [sys.executable, "-m", "gnnagg.bench.aggr", "--_cell", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=limit if spec["device"] == "cpu" else None)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        text = tail[0]
        if "alloc" in text.lower() or "memory" in text.lower() or proc.returncode < 0:
            return {"error": f"out of memory under the {memory_cap_gb:g} GB cap ({text[:120]})"}
        return {"error": text[:200]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Correctness ################################################################

def check_against_pyg_alone(aggr: str, index: torch.Tensor, num_nodes: int, channels: int,
                            num_check: int, batched_pyg: bool,
                            device: str = "cpu") -> Dict[str, Any]:
    """Max |gnnagg(batch)[i] - PyG(node i alone)| over sampled nodes (the
    hub, an isolated node if any, and random ones); with ``batched_pyg``
    also PyG's own batched-vs-alone difference. Both run on ``device``."""
    ours, pyg = make_pair(aggr, channels)
    ours, pyg = ours.to(device).eval(), pyg.to(device)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(index.numel(), channels, generator=g)
    dev_x, dev_index = x.to(device), index.to(device)
    deg = torch.bincount(index, minlength=num_nodes)
    with torch.no_grad():
        out = ours(dev_x, dev_index, dim_size=num_nodes).cpu()
        pyg_out = pyg(dev_x, dev_index, dim_size=num_nodes).cpu() if batched_pyg else None
    nodes = {int(deg.argmax())}
    isolated = (deg == 0).nonzero().view(-1)
    if isolated.numel():
        nodes.add(int(isolated[0]))
    nodes.update(torch.randperm(num_nodes, generator=g)[:num_check].tolist())
    ptr = torch.cat([deg.new_zeros(1), deg.cumsum(0)])
    err_ours, err_pyg, checked = 0.0, 0.0, 0
    for i in sorted(nodes):
        d = int(deg[i])
        if d == 0:
            continue  # PyG alone is undefined for no elements (log2(0))
        xi = x[ptr[i]:ptr[i + 1]].to(device)
        with torch.no_grad():
            alone = pyg(xi, torch.zeros(d, dtype=torch.long, device=device), dim_size=1)[0].cpu()
        err_ours = max(err_ours, (out[i] - alone).abs().max().item())
        if pyg_out is not None:
            err_pyg = max(err_pyg, (pyg_out[i] - alone).abs().max().item())
        checked += 1
    return {"nodes_checked": checked, "max_abs_diff_gnnagg_vs_pyg_alone": err_ours,
            "max_abs_diff_pyg_batched_vs_alone": err_pyg if batched_pyg else None,
            "max_degree_checked": int(deg[sorted(nodes)].max())}


# Command line ###############################################################

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--hub-degrees", type=int, nargs="*", default=[1000],
                        help="one power-law graph per hub degree (default: 1000)")
    parser.add_argument("--aggrs", nargs="+", default=list(AGGRS), choices=AGGRS)
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per cell (default: torch's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--memory-cap-gb", type=float, default=10.0,
                        help="address-space cap of each CPU cell's process (default: 10)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds per cell before it is reported as timed out")
    parser.add_argument("--check-nodes", type=int, default=64,
                        help="random nodes compared with PyG run alone (default: 64)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every cell in this process (fast, for tests; peak memory "
                             "and failures are then not isolated per cell)")
    parser.add_argument("--no-gemm-bound", action="store_true",
                        help="skip timing each cell's matrix products alone")
    parser.add_argument("--_cell", help=argparse.SUPPRESS)


def _fmt_time(cell: Dict[str, Any], key: str) -> str:
    return "-" if "error" in cell else f"{cell[key]['median_s'] * 1000:.0f}"


def _fmt_mem(cell: Dict[str, Any]) -> str:
    if "error" in cell:
        return cell["error"][:60]
    return f"{cell['forward_backward']['peak_extra_bytes'] / 2**20:.0f}"


def _gemm_fraction(cell: Dict[str, Any]) -> Optional[float]:
    if "error" in cell or "gemm" not in cell or not cell["gemm"]["count"]:
        return None  # (fused RNN kernels, oneDNN's or cuDNN's, run no separate GEMMs)
    return cell["gemm"]["alone_s"] / cell["forward_backward"]["median_s"]


def validate(args: argparse.Namespace) -> None:
    for name in ("nodes", "edges", "channels", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1 (got {getattr(args, name)})")
    if any(h < 1 for h in args.hub_degrees):
        raise ValueError(f"--hub-degrees must be >= 1 (got {args.hub_degrees})")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: CUDA is not available here")


def main(args: argparse.Namespace) -> Dict[str, Any]:
    from ..utils import environment, format_table, progress

    if args._cell:
        print(json.dumps(run_cell(json.loads(args._cell))))
        return None
    validate(args)
    graphs = [{"name": "uniform", "kind": "uniform", "nodes": args.nodes, "edges": args.edges,
               "seed": 0}]
    graphs += [{"name": f"power-law (hub {h})", "kind": "power_law", "nodes": args.nodes,
                "edges": args.edges, "hub": h, "seed": 0} for h in args.hub_degrees]
    for graph in graphs:
        index = make_graph(graph)
        deg = torch.bincount(index, minlength=graph["nodes"])
        graph.update(num_edges=int(index.numel()), max_degree=int(deg.max()),
                     isolated=int((deg == 0).sum()), input_bytes=index.numel() * args.channels * 4)

    checks = {}
    for graph in progress(graphs, desc="correctness"):
        index = make_graph(graph)
        for aggr in args.aggrs:
            if aggr == "sum":
                continue
            checks[f"{graph['name']}/{aggr}"] = check_against_pyg_alone(
                aggr, index, graph["nodes"], args.channels, args.check_nodes,
                batched_pyg=graph["kind"] == "uniform", device=args.device)

    cells: List[Dict[str, Any]] = []
    jobs = [(g, a, i) for g in graphs for a in args.aggrs for i in args.impls]
    for graph, aggr, impl in progress(jobs, desc="timing"):
        spec = {"graph": {k: graph[k] for k in ("kind", "nodes", "edges", "seed", "hub") if k in graph},
                "aggr": aggr, "impl": impl, "channels": args.channels, "repeats": args.repeats,
                "threads": args.threads, "device": args.device,
                "gemm_bound": not args.no_gemm_bound}
        if args.in_process:
            threads = torch.get_num_threads()
            try:
                cell = run_cell(spec)
            except (RuntimeError, MemoryError) as exc:  # e.g. PyG out of GPU memory
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                cell = {"error": text[:200]}
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            finally:
                torch.set_num_threads(threads)
        else:
            cell = _run_child(spec, args.memory_cap_gb, args.timeout)
        cells.append({"graph": graph["name"], "aggr": aggr, "impl": impl, **cell})

    def find(graph, aggr, impl):
        return next((c for c in cells if c["graph"] == graph and c["aggr"] == aggr
                     and c["impl"] == impl and "error" not in c), None)

    ratios = {}
    for graph in graphs:
        for aggr in args.aggrs:
            a, b = find(graph["name"], aggr, "gnnagg"), find(graph["name"], aggr, "pyg")
            if a and b:
                for key in ("forward", "forward_backward"):
                    ratios[f"pyg/gnnagg {key}, {graph['name']}, {aggr}"] = (
                        b[key]["median_s"] / a[key]["median_s"])
    for aggr in args.aggrs:
        a = find("uniform", aggr, "gnnagg")
        for graph in graphs[1:]:
            p = find(graph["name"], aggr, "gnnagg")
            if a and p:
                ratios[f"gnnagg forward_backward, {graph['name']}/uniform, {aggr}"] = (
                    p["forward_backward"]["median_s"] / a["forward_backward"]["median_s"])

    rows = []
    for c in cells:
        check = checks.get(f"{c['graph']}/{c['aggr']}", {})
        diff = check.get("max_abs_diff_gnnagg_vs_pyg_alone") if c["impl"] == "gnnagg" else \
            check.get("max_abs_diff_pyg_batched_vs_alone")
        frac = _gemm_fraction(c)
        gemm = "-" if frac is None else f"{c['gemm']['alone_s'] * 1000:.0f}"
        rows.append([c["graph"], c["aggr"], c["impl"], _fmt_time(c, "forward"),
                     _fmt_time(c, "forward_backward"), gemm,
                     "-" if frac is None else f"{frac:.2f}", _fmt_mem(c),
                     "-" if diff is None else f"{diff:.1e}"])
    print(f"\ndevice: {args.device}, threads per cell: {args.threads or torch.get_num_threads()}, "
          f"channels: {args.channels}")
    for graph in graphs:
        print(f"  {graph['name']}: {graph['nodes']} nodes, {graph['num_edges']} edges, "
              f"max degree {graph['max_degree']}, {graph['isolated']} isolated")
    print(format_table(["graph", "aggr", "impl", "fwd ms", "fwd+bwd ms", "GEMMs alone ms",
                        "GEMM bound reached", "peak extra MB (fwd+bwd)",
                        "max |diff| vs PyG per node alone"], rows))
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}x")
    return {"benchmark": "aggr", "options": {k: v for k, v in vars(args).items() if k != "_cell"},
            "environment": environment(), "graphs": graphs, "cells": cells, "checks": checks,
            "ratios": ratios,
            "notes": "peak extra = peak resident memory (CPU) or allocated memory (CUDA) during "
                     "the timed calls minus memory before them; diff columns: gnnagg rows "
                     "compare gnnagg's batched output with PyG run on each node alone, pyg rows "
                     "compare PyG's batched output with PyG alone (uniform graph only). "
                     "GEMMs alone: the matrix products of one forward+backward pass of that "
                     "cell (same shapes, layouts, dtypes) timed alone in the same process; GEMM "
                     "bound reached = GEMMs alone / fwd+bwd time (not available where "
                     "torch runs a fused RNN kernel, oneDNN's or cuDNN's, without separate "
                     "GEMMs: PyG's LSTM on CPU, PyG's GRU/LSTM on CUDA)."}


def _main() -> None:  # ``python -m gnnagg.bench.aggr`` (used for child cells)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = main(args)
    if result is not None and args.out:
        from ..utils import write_json

        write_json(args.out, result)


if __name__ == "__main__":
    _main()
