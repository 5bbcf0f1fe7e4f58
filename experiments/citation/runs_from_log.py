"""Recover per-run test accuracies of `gnnagg run citation` from its progress
log, for runs stopped before they wrote their JSON.

The progress bar shows ``test XX.X`` (percent, one decimal) after every run;
with 1000 test nodes (Cora, CiteSeer public split) this is exact.

    python experiments/citation/runs_from_log.py LOG [--out FILE.json]
"""
import argparse
import json
import re
import statistics

PATTERN = re.compile(r"(\d+)/(\d+) \[[^\]]*?test ([\d.]+)\]")


def runs_from_log(text: str):
    last = {}
    for count, _total, value in PATTERN.findall(text.replace("\r", "\n")):
        last[int(count)] = float(value)
    if not last:
        return []
    # At count k the bar first repeats run k-1's value, then shows run k's.
    done = max(last)
    return [last[k] for k in range(done) if k in last]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log")
    parser.add_argument("--out")
    args = parser.parse_args()
    values = runs_from_log(open(args.log, errors="replace").read())
    summary = {"n": len(values),
               "mean": statistics.fmean(values) if values else None,
               "std": statistics.stdev(values) if len(values) > 1 else None}
    result = {"source": args.log, "test_acc_percent": values, "summary": summary}
    print(json.dumps(summary))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
