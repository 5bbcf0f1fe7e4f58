#!/usr/bin/env bash
# The GPU check of gnnagg in one command, from the source tree:
#
#   bash experiments/gpu/check.sh --device cuda --out gpu_check.json
#   bash experiments/gpu/check.sh --device cpu --dry        # the same on tiny sizes
#
# The ogb part needs the `ogb` package importable (e.g. PYTHONPATH=/path/to/ogb-copy)
# and GNNAGG_DATA on a folder holding ogb/ogbg_molhiv; without them it is skipped,
# saying so. Every part's results go into one JSON file (--out); see check.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
exec python experiments/gpu/check.py "$@"
