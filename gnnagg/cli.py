"""The ``gnnagg`` command line (also ``python -m gnnagg``).

``gnnagg run EXPERIMENT ...`` and ``gnnagg bench NAME ...``: each entry is a
module with ``add_arguments(parser)`` and ``main(args) -> dict``; the dict is
printed as JSON to ``--out`` when given.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Dict, List, Optional

# name -> module; modules are imported only when their subcommand is built.
EXPERIMENTS: Dict[str, str] = {
    "generalization": "gnnagg.experiments.generalization",
    "citation": "gnnagg.experiments.citation",
    "hetero": "gnnagg.experiments.hetero",
    "glot": "gnnagg.experiments.glot",
    "ogb": "gnnagg.experiments.ogb",
}
BENCHMARKS: Dict[str, str] = {
    "aggr": "gnnagg.bench.aggr",
}


def _add_group(sub, name: str, entries: Dict[str, str], wanted: Optional[str], help_: str):
    group = sub.add_parser(name, help=help_)
    inner = group.add_subparsers(dest="entry", metavar="NAME", required=True)
    for entry, module_name in entries.items():
        if wanted is not None and entry != wanted:
            inner.add_parser(entry, add_help=False)  # listed, built lazily
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            inner.add_parser(entry, help="(not available in this version)")
            continue
        doc = (module.__doc__ or "").strip().splitlines()
        p = inner.add_parser(entry, help=doc[0] if doc else None,
                             description=module.__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.add_argument("--out", metavar="FILE.json", default=None,
                       help="write the results as JSON to this file")
        p.set_defaults(_module=module)


def build_parser(argv: List[str]) -> argparse.ArgumentParser:
    # Only the chosen subcommand's module is imported: `gnnagg run ogb` does
    # not pay for importing the text-model runner.
    wanted_group = argv[0] if argv else None
    wanted_entry = argv[1] if len(argv) > 1 and not argv[1].startswith("-") else None
    parser = argparse.ArgumentParser(prog="gnnagg", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    _add_group(sub, "run", EXPERIMENTS,
               wanted_entry if wanted_group == "run" else "", "run an experiment")
    _add_group(sub, "bench", BENCHMARKS,
               wanted_entry if wanted_group == "bench" else "", "run a benchmark")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    module = getattr(args, "_module", None)
    if module is None:  # listed but not built: no such module options
        parser.parse_args(argv[:2] + ["--help"])
        return 2
    from .experiments.common import default_threads, write_json

    default_threads()
    result = module.main(args)
    if result is not None:
        write_json(args.out, result)
        if args.out:
            print(f"results written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
