#!/bin/sh
# `make bench`: every benchmark in build/bench, with the flags the figures in
# docs/PERFORMANCE.md were produced with.
set -eu
BENCH=${1:-build/bench}
BIN=$(cd "$BENCH/../bin" && pwd)
export SIGIL_BIN_DIR="$BIN"
echo "== mint_bench (one core)"
taskset -c 1 "$BENCH/mint_bench" --benchmark_min_time=2 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
echo "== datastore_bench"
"$BENCH/datastore_bench" --benchmark_min_time=1
echo "== server_rpc_bench"
"$BENCH/server_rpc_bench"
echo "== workload_api_bench (1,000 streams)"
"$BENCH/workload_api_bench"
echo "== e2e_latency_bench (real binaries)"
"$BENCH/e2e_latency_bench"
