#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Python tools (moto's server,
# cfn-lint, the SAM CLI, cargo-lambda) into .venv, checks formatting and lints (code and
# template), builds the Lambda binaries, runs unit tests and the end-to-end tests (real
# binaries under a Lambda Runtime API emulator, AWS through moto, Twilio through the
# sandbox, every file in events/ through its function), then `sam build`s the
# application as it deploys (arm64, release) and prints each function's zip size.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

QDN_PYTHON="$(scripts/python-env.sh)"
export QDN_PYTHON
export PATH="$root/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# One build from scratch gains nothing from incremental state, which would add gigabytes
# to the target directory (set CARGO_INCREMENTAL=1 to keep it on a workstation).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cfn-lint template.yaml"
cfn-lint template.yaml
echo "== sam validate --lint"
sam validate --lint
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build the function binaries the end-to-end tests run (with the test build's features, so it is built once)"
cargo build --workspace --all-targets --quiet
echo "== cargo test"
cargo test --workspace --all-targets "$@"
echo "== sam build (cargo lambda build --release --arm64, per function)"
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu ||
    rustup target add aarch64-unknown-linux-gnu
sam build
scripts/zip-sizes.sh .aws-sam/build
