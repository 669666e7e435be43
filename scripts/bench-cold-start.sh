#!/usr/bin/env bash
# Cold-start benchmark of the release sms-inbound binary: init time (spawn to first
# Runtime API poll), first and warm invocation latency, peak memory (VmHWM) and binary
# size, over N fresh processes. Prints a table and a summary and writes the summary to
# target/bench/cold-start.json. Measures only; asserts nothing about timings.
#
# Usage: scripts/bench-cold-start.sh [--runs N]     (or QDN_BENCH_RUNS=N; default 10)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

QDN_PYTHON="$(scripts/python-env.sh)"
export QDN_PYTHON

cargo build -q --release -p sms-inbound
QDN_FUNCTION_PROFILE=release cargo run -q -p relay-tests --bin bench_cold_start -- "$@"
