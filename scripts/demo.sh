#!/usr/bin/env bash
# The seed's three smoke tests against the local stack, from a fresh machine (Rust and
# python3 are all it needs): installs moto into .venv, builds the functions, then plays
# primary -> backup -> tertiary routing through the real binary under a Lambda Runtime
# API emulator, with AWS in moto and Twilio in the local sandbox; then the primary
# answering a driver by text with the relayed text's reference (and Twilio's redelivery
# of that answer, which sends nothing more); then a dispatcher's reply through
# sms-outbound, retried with the same Idempotency-Key. Exits non-zero if any scenario
# did not go as expected.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

QDN_PYTHON="$(scripts/python-env.sh)"
export QDN_PYTHON

cargo build -q -p sms-inbound -p sms-outbound
cargo run -q -p relay-tests --bin demo
