#!/usr/bin/env bash
# The seed's three smoke tests against the local stack, from a fresh machine (Rust and
# python3 are all it needs): installs moto into .venv, builds sms-inbound, then plays
# primary -> backup -> tertiary routing through the real binary under a Lambda Runtime
# API emulator, with AWS in moto and Twilio in the local sandbox. Exits non-zero if any
# scenario did not route as expected.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

QDN_PYTHON="$(scripts/python-env.sh)"
export QDN_PYTHON

cargo build -q -p sms-inbound
cargo run -q -p relay-tests --bin demo
