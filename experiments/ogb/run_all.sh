#!/usr/bin/env bash
# The molhiv runs behind experiments/ogb/README.md, started in the background
# (one process per seed, one thread each). Each run keeps its finished seed in
# results/<name>.json and checkpoints the seed in progress into
# $WORK/ckpt/<name>; rerunning this script with the same EPOCHS resumes them
# (a different EPOCHS is refused: use another RESULTS folder).
set -euo pipefail
export GNNAGG_DATA=${GNNAGG_DATA:-../shared/data} GNNAGG_CACHE=${GNNAGG_CACHE:-/tmp/gnnagg-cache}
export GNNAGG_THREADS=1
WORK=${WORK:-/tmp/ogb8}
EPOCHS=${EPOCHS:-20}
RESULTS=${RESULTS:-$(dirname "$0")/results/engine}
mkdir -p "$WORK/logs" "$RESULTS"
launch() {  # name, extra options
  local name=$1; shift
  nohup python -m gnnagg run ogb --dataset ogbg-molhiv --runs 1 --epochs "$EPOCHS" --amp \
    --checkpoint-dir "$WORK/ckpt/$name" --out "$RESULTS/$name.json" "$@" \
    > "$WORK/logs/$name.log" 2>&1 &
  echo "$name $!"
}
for s in 0 1 2; do
  launch "gin-sum-s$s" --model gin --aggr sum --seed "$s"
  launch "gin-virtual-sum-s$s" --model gin-virtual --aggr sum --seed "$s"
done
launch gin-lcm-s0 --model gin --aggr lcm --seed 0
launch gin-gru-s0 --model gin --aggr gru --seed 0
launch gin-sum-s0-ws2 --model gin --aggr sum --seed 0 --world-size 2
