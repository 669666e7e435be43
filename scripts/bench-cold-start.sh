#!/usr/bin/env bash
# Cold-start benchmark of the release sms-inbound and sms-outbound binaries, one after
# the other: init time (spawn to first Runtime API poll), first and warm invocation
# latency, peak memory (VmHWM) and binary size, over N fresh processes each. Prints a
# table and a summary per function and writes each summary to
# target/bench/cold-start-<function>.json. Measures only; asserts nothing about timings.
#
# Usage: scripts/bench-cold-start.sh [--runs N] [--function sms-inbound|sms-outbound]
#        (or QDN_BENCH_RUNS=N; default 10). Without --function both are measured; any
#        other arguments are passed to bench_cold_start.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

QDN_PYTHON="$(scripts/python-env.sh)"
export QDN_PYTHON

functions=(sms-inbound sms-outbound)
for arg in "$@"; do
    case "$arg" in
        --function | --function=*) functions=() ;; # the caller names the one function
    esac
done

cargo build -q --release -p sms-inbound -p sms-outbound
if ((${#functions[@]} == 0)); then
    QDN_FUNCTION_PROFILE=release cargo run -q -p relay-tests --bin bench_cold_start -- "$@"
else
    for function in "${functions[@]}"; do
        QDN_FUNCTION_PROFILE=release cargo run -q -p relay-tests --bin bench_cold_start -- \
            --function "$function" "$@"
        echo
    done
fi
