"""One-command check of gnnagg on a GPU: tests, benchmarks against PyG, and
a few OGB training epochs, collected into one JSON file.

Run from the source tree (``bash experiments/gpu/check.sh --device cuda``,
which sets ``PYTHONPATH=.``). Parts, in order (``--only`` picks some):

``tests``        the op and aggregator tests on the device (``pytest -k cuda``)
                 and the compiled-kernel test;
``bench``        ``gnnagg bench aggr`` against PyG on the same device: a
                 uniform graph and a power-law graph with a hub of degree 1,000
                 (sum, LCM, GRU, LSTM), with the GEMM-only bound;
``hub``          the same for a hub of degree 100,000 (LCM, GRU), and the
                 GRU's time per sequential step: a step that costs
                 about as much as a few kernel launches (~5-20 us) means the
                 step loop is launch-bound (a CUDA graph or one fused step
                 kernel would then pay off);
``token_graph``  GLOT's token-graph construction on the device against the
                 per-sentence loop (``gnnagg bench token-graph``; synthetic
                 states of SST-2's shape when the data or the encoder is not
                 there);
``ogb``          one epoch of a GIN on ogbg-molhiv with sum, lcm and gru
                 (skipped, saying so, when ``ogb`` is not importable).

Each part runs in its own process with a time limit (a crash or an
out-of-memory in one part cannot take the others down) and reports
``status`` (ok, failed, skipped, timed out), ``seconds`` and its results.
``--dry`` runs every part on tiny sizes, in this process where it can (the
tests use it on CPU: ``--device cpu --dry``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PARTS = ("tests", "bench", "hub", "token_graph", "ogb")
#: Seconds each part may take (the whole check stays under 8 minutes).
LIMITS = {"tests": 90, "bench": 100, "hub": 80, "token_graph": 40, "ogb": 120}


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("GNNAGG_QUIET", "1")
    return env


def _run(cmd: List[str], timeout: float) -> Dict[str, Any]:
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timed out", "command": cmd, "seconds": time.perf_counter() - start}
    return {"status": "ok" if proc.returncode == 0 else "failed", "command": cmd,
            "returncode": proc.returncode, "seconds": time.perf_counter() - start,
            "output_tail": (proc.stdout + proc.stderr)[-3000:]}


def _gnnagg(argv: List[str]) -> Dict[str, Any]:
    """``gnnagg ARGV`` in this process (a part's own process, or the dry
    check's), with the JSON it writes to ``--out``."""
    from gnnagg.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        start = time.perf_counter()
        try:
            code = main(argv + ["--out", out])
            result = {"status": "ok" if code == 0 else "failed", "returncode": code}
        except Exception as exc:  # a crash in one command: report it, go on
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:1000]}
        result.update(command=["gnnagg"] + argv, seconds=time.perf_counter() - start)
        if os.path.exists(out):
            with open(out) as f:
                result["result"] = json.load(f)
        return result


def _save_partial(args, result: Dict[str, Any]) -> None:
    """What a part has so far, for the parent to read if the part times out."""
    if getattr(args, "_result", None):
        with open(args._result, "w") as f:
            json.dump(result, f)


# Parts ######################################################################

def part_tests(args) -> Dict[str, Any]:
    kind = args.device.split(":")[0]
    if args.dry:  # one quick test: the plumbing, not the suite
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "tests/ops/test_layout.py", "-k", f"single_segment and {kind}"]
    else:
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/aggr",
               "tests/ops", "tests/bench/test_token_graph_bench.py", "-k", kind]
    result = _run(cmd, LIMITS["tests"])
    tail = result.get("output_tail", "").strip().splitlines()
    result["summary"] = tail[-1] if tail else ""
    return result


def _bench_argv(args, hubs: List[int], aggrs: List[str]) -> List[str]:
    size = ["--nodes", "60", "--edges", "300", "--channels", "8", "--repeats", "1",
            "--check-nodes", "3", "--threads", "1"] if args.dry else ["--repeats", "3"]
    return (["bench", "aggr", "--device", args.device, "--in-process", "--aggrs"] + aggrs +
            ["--hub-degrees"] + [str(h) for h in hubs] + size)


def part_bench(args) -> Dict[str, Any]:
    hub = 20 if args.dry else 1000
    return _gnnagg(_bench_argv(args, [hub], ["sum", "lcm", "gru", "lstm"]))


def part_hub(args) -> Dict[str, Any]:
    hub = 50 if args.dry else 100_000
    result: Dict[str, Any] = {"status": "ok", "runs": {}, "recurrent_steps": {}}
    start = time.perf_counter()
    for aggr in ("lcm", "gru"):  # one command each: a timeout keeps the first
        argv = _bench_argv(args, [hub], [aggr])
        if not args.dry:
            argv[argv.index("--repeats") + 1] = "1"
            argv.append("--no-gemm-bound")  # replaying 300,000 small GEMMs says nothing new
        run = _gnnagg(argv)
        result["runs"][aggr] = run
        if run["status"] != "ok":
            result["status"] = "failed"
        bench = run.get("result", {})
        for cell in bench.get("cells", []):
            graph = next(g for g in bench["graphs"] if g["name"] == cell["graph"])
            if aggr == "gru" and "error" not in cell and graph["kind"] != "uniform":
                steps = graph["max_degree"]
                result["recurrent_steps"][cell["impl"]] = {
                    "max_degree": steps,
                    "forward_us_per_step": cell["forward"]["median_s"] / steps * 1e6,
                    "forward_backward_us_per_step":
                        cell["forward_backward"]["median_s"] / steps * 1e6}
        result["seconds"] = time.perf_counter() - start
        _save_partial(args, result)
    return result


def part_token_graph(args) -> Dict[str, Any]:
    if args.dry:
        result = {"status": "skipped", "reason": "dry: synthetic states only"}
    else:
        result = _gnnagg(["bench", "token-graph", "--device", args.device, "--repeats", "3"])
        if result["status"] == "ok":
            return result
    # No GLUE copy or no offline encoder here: states of SST-2 dev's shape
    # (872 sentences, up to 66 tokens, 384 channels), random.
    import torch

    from gnnagg.bench.token_graph import benchmark_token_graph

    start = time.perf_counter()
    shape = (8, 12, 16) if args.dry else (872, 66, 384)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    lengths = torch.randint(2, shape[1] + 1, (shape[0],), generator=g)
    mask = torch.arange(shape[1]) < lengths.unsqueeze(1)
    x, mask = x.to(args.device), mask.to(args.device)
    rows = [benchmark_token_graph(x, mask, tau=0.8 if not args.dry else 0.0,
                                  repeats=1 if args.dry else 3, chunk=chunk, precision="fp32")
            for chunk in (None, 32)]
    return {"status": "ok", "seconds": time.perf_counter() - start, "synthetic_states": True,
            "why_synthetic": str(result.get("error", result.get("reason", result)))[-500:],
            "result": {"results": rows}}


def part_ogb(args) -> Dict[str, Any]:
    if importlib.util.find_spec("ogb") is None:
        return {"status": "skipped",
                "reason": "the ogb package is not importable: put a copy on PYTHONPATH (and "
                          "GNNAGG_DATA on a folder with ogb/ogbg_molhiv) to run this part"}
    dataset = args.ogb_dataset or ("ogbg-molesol" if args.dry else "ogbg-molhiv")
    result: Dict[str, Any] = {"status": "failed", "dataset": dataset, "runs": {}}
    start = time.perf_counter()
    for aggr in ("sum", "lcm", "gru"):
        argv = ["run", "ogb", "--dataset", dataset, "--model", "gin", "--aggr", aggr, "--runs",
                "1", "--epochs", "1", "--device", args.device]
        if args.dry:
            argv += ["--subset", "16", "--batch-size", "8", "--hidden-channels", "16",
                     "--num-layers", "2"]
        r = _gnnagg(argv)
        run = (r.pop("result", {}).get("runs") or [{}])[0]
        r.update({k: run[k] for k in ("seconds_per_epoch", "best") if k in run})
        result["runs"][aggr] = r
        result["seconds"] = time.perf_counter() - start
        _save_partial(args, result)
    if all(r["status"] == "ok" for r in result["runs"].values()):
        result["status"] = "ok"
    return result


FUNCTIONS: Dict[str, Callable] = {"tests": part_tests, "bench": part_bench, "hub": part_hub,
                                  "token_graph": part_token_graph, "ogb": part_ogb}


def _part_in_child(name: str, args) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "part.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--_part", name, "--_result", path,
               "--device", args.device]
        if args.ogb_dataset:
            cmd += ["--ogb-dataset", args.ogb_dataset]
        run = _run(cmd, LIMITS[name])
        if not os.path.exists(path):
            return dict(run, status=run["status"] if run["status"] != "ok" else "failed")
        with open(path) as f:
            result = json.load(f)
        if run["status"] != "ok":  # timed out or crashed after saving what it had
            result.update(status=run["status"], partial=True,
                          output_tail=run.get("output_tail", ""))
        result["seconds"] = run["seconds"]
        return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    parser.add_argument("--dry", action="store_true", help="tiny sizes (runs on a CPU in seconds)")
    parser.add_argument("--out", default="gpu_check.json", help="(default: gpu_check.json)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                        help="run these parts only (default: all)")
    parser.add_argument("--ogb-dataset", default=None,
                        help="OGB set of the ogb part (default: ogbg-molhiv; ogbg-molesol "
                             "with --dry)")
    parser.add_argument("--_part", help=argparse.SUPPRESS)
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._part:  # one part, in its own process, for the non-dry check
        _save_partial(args, FUNCTIONS[args._part](args))
        return 0
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"check: --device {args.device}, but CUDA is not available here", file=sys.stderr)
        return 2
    from gnnagg.utils import environment, write_json

    report: Dict[str, Any] = {"check": "gpu", "device": args.device, "dry": args.dry,
                              "environment": environment(), "parts": {}}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    start = time.perf_counter()
    for name in args.only:
        print(f"check: {name} ...", file=sys.stderr, flush=True)
        if args.dry and name != "tests":
            try:
                result = FUNCTIONS[name](args)
            except Exception as exc:  # report it, run the other parts
                result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:1000]}
        else:
            result = FUNCTIONS[name](args) if name == "tests" else _part_in_child(name, args)
        report["parts"][name] = result
        print(f"check: {name}: {result['status']} ({result.get('seconds', 0):.0f} s)",
              file=sys.stderr, flush=True)
        write_json(args.out, dict(report, seconds=time.perf_counter() - start))
    report["seconds"] = time.perf_counter() - start
    write_json(args.out, report)
    print(f"check: wrote {args.out} ({report['seconds']:.0f} s): " + ", ".join(
        f"{k} {v['status']}" for k, v in report["parts"].items()), file=sys.stderr)
    return 0 if all(v["status"] in ("ok", "skipped") for v in report["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
