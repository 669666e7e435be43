#!/usr/bin/env bash
# The cold-start and footprint benchmark (docs/benchmark.md): builds what it measures, then
# runs tests/bin/bench_cold_start.rs, which prints one Markdown table per function
# (sms-inbound, sms-outbound, dispatcher-heartbeat, ack-timeout, with the bare
# bench-hello beside each) and the load test, and writes target/bench/bench.json.
# Measures only; asserts nothing about timings or budgets.
#
# Usage: scripts/bench-cold-start.sh [--no-arm64] [bench_cold_start options]
#   --no-arm64   skip the arm64 release build (`cargo lambda build --release --arm64
#                --output-format zip`, slow the first time); the zip column says "not built"
#   other options go to bench_cold_start: --runs N (default 10, or QDN_BENCH_RUNS),
#   --warm N (50), --function NAME (repeatable; default all four), --tls | --no-tls
#   (default both), --load N (2000; 0 skips), --instances K (4), --concurrency C (16)
#
# Builds, each incremental (nothing is cleaned):
#   1. x86_64 release: the four functions together, then bench-hello on its own (so
#      Cargo's feature unification does not hand the bare function the functions'
#      features); these are the binaries that run.
#   2. arm64 release zips, one function at a time, with cargo-lambda (.venv's or PATH's;
#      zig likewise); adds the rustup target aarch64-unknown-linux-gnu if missing.
#   3. the harness, relay-tests' bench_cold_start, in release (the proxies and the
#      Runtime API emulator sit on every request; optimised they add least).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

QDN_PYTHON="$(scripts/python-env.sh)"
export QDN_PYTHON

arm64=1
args=()
for arg in "$@"; do
    case "$arg" in
        --no-arm64) arm64=0 ;;
        *) args+=("$arg") ;;
    esac
done

functions=(sms-inbound sms-outbound dispatcher-heartbeat ack-timeout)

echo "== building the x86_64 release binaries" >&2
cargo build -q --release -p sms-inbound -p sms-outbound -p dispatcher-heartbeat -p ack-timeout
cargo build -q --release -p bench-hello

if ((arm64)); then
    echo "== building the arm64 release zips (cargo lambda build --release --arm64)" >&2
    if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
        rustup target add aarch64-unknown-linux-gnu
    fi
    # cargo-lambda (pip's `cargo-lambda`, or any on PATH) finds zig as `zig` or through
    # `python3 -m ziglang` (pip's `ziglang`): the venv comes first on PATH.
    export PATH="$root/.venv/bin:$PATH"
    if ! command -v cargo-lambda >/dev/null; then
        echo "cargo-lambda is missing: .venv/bin/pip install cargo-lambda ziglang," \
            "or pass --no-arm64" >&2
        exit 1
    fi
    # `-p` as well as `--bin`: bench-hello is not one of the workspace's default members.
    for bin in "${functions[@]}" bench-hello; do
        cargo-lambda lambda build -q --release --arm64 --output-format zip -p "$bin" --bin "$bin"
    done
else
    args+=(--no-arm64)
fi

echo "== building the harness" >&2
cargo build -q --release -p relay-tests --bin bench_cold_start

echo "== measuring" >&2
QDN_FUNCTION_PROFILE=release "$root/target/release/bench_cold_start" "${args[@]}"
