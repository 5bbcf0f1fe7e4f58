"""gnnagg: graph neural network aggregators for PyTorch Geometric.

Run an experiment or a benchmark; every command takes --out FILE.json for
its results, and an interrupted experiment resumes when rerun with the
same command.

examples:
  gnnagg run generalization --quick --out out/generalization.json
  gnnagg run sweep --quick --out-dir out/sweep
  gnnagg run citation --model dagnn --dataset Cora --runs 10 --out cora.json
  gnnagg bench aggr --out bench.json
  gnnagg run citation --help          (the options of one experiment)
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Dict, List, Optional

#: ``gnnagg run NAME``: name -> (module, one-line description). Modules are
#: imported only when their command runs or shows its help, and import
#: neither torch nor PyG at the top, so that help and errors are instant.
EXPERIMENTS: Dict[str, tuple] = {
    "generalization": ("gnnagg.experiments.generalization",
                       "train set aggregators on small sets, test on large ones"),
    "sweep": ("gnnagg.experiments.sweep", "every aggregator x benchmark x seed, one table"),
    "citation": ("gnnagg.experiments.citation",
                 "node classification (Cora, CiteSeer, ...): DAGNN and baselines"),
    "hetero": ("gnnagg.experiments.hetero",
               "heterogeneous node classification (ACM, DBLP, IMDB): LATTE and baselines"),
    "glot": ("gnnagg.experiments.glot", "GLOT token-graph sentence pooling on GLUE"),
    "ogb": ("gnnagg.experiments.ogb", "OGB graph and node property prediction"),
}
#: ``gnnagg bench NAME``.
BENCHMARKS: Dict[str, tuple] = {
    "aggr": ("gnnagg.bench.aggr", "gnnagg vs PyG aggregators: agreement, time, memory"),
    "token-graph": ("gnnagg.bench.token_graph",
                    "GLOT token-graph construction: vectorised vs per-sentence loop"),
}
GROUPS = {"run": (EXPERIMENTS, "run an experiment"), "bench": (BENCHMARKS, "run a benchmark")}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gnnagg", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    for group, (entries, help_) in GROUPS.items():
        lines = "\n".join(f"  {name:<15} {desc}" for name, (_, desc) in entries.items())
        p = sub.add_parser(group, help=help_, description=f"{help_}:\n\n{lines}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("entry", metavar="NAME", choices=list(entries),
                       help=f"one of: {', '.join(entries)}")
    return parser


def _entry_parser(group: str, name: str):
    module_name, desc = GROUPS[group][0][name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"gnnagg {group} {name}",
                                     description=module.__doc__ or desc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    if not any(a.dest == "out" for a in parser._actions):
        parser.add_argument("--out", metavar="FILE.json", default=None,
                            help="write the results as JSON to this file; rerunning the "
                                 "same command with it resumes an interrupted run "
                                 "(default: print only)")
    return module, parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    # The first two words pick the command; the rest belongs to it.
    if len(argv) < 2 or argv[0] not in GROUPS or argv[1].startswith("-"):
        top.parse_args(argv[:2] if argv[:1] in (["run"], ["bench"]) else argv)
        top.print_help()
        return 2
    group, name = argv[0], argv[1]
    top.parse_args(argv[:2])  # an unknown name is an argparse error listing the choices
    module, parser = _entry_parser(group, name)
    args = parser.parse_args(argv[2:])
    from .utils import apply_threads, check_writable, write_json

    try:
        check_writable(getattr(args, "out", None))
        apply_threads(getattr(module, "DEFAULT_THREADS", None))
    except ValueError as exc:
        parser.error(str(exc))
    try:
        result = module.main(args)
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        print(f"\ninterrupted{'; finished runs are kept in ' + out if out else ''}: run the "
              f"same command again to resume", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as exc:  # bad options, missing data
        if os.environ.get("GNNAGG_DEBUG"):
            raise
        print(f"gnnagg {group} {name}: error: {exc}\n(GNNAGG_DEBUG=1 shows where)",
              file=sys.stderr)
        return 2
    out = getattr(args, "out", None)
    if result is not None and out and not getattr(module, "WRITES_OUT", False):
        write_json(out, result)
    if result is not None and out:
        print(f"results written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
