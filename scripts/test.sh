#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the Python tools (moto's server,
# cfn-lint) into .venv, builds the Lambda binaries, checks formatting and lints, then
# runs unit tests and the end-to-end tests (real binaries under a Lambda Runtime API
# emulator, AWS through moto, Twilio through the sandbox).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

QDN_PYTHON="$(scripts/python-env.sh)"
export QDN_PYTHON

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cfn-lint template.yaml"
"$root/.venv/bin/cfn-lint" template.yaml
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== build the function binaries the end-to-end tests run (with the test build's features, so it is built once)"
cargo build --workspace --all-targets --quiet
echo "== cargo test"
cargo test --workspace --all-targets "$@"
