#!/usr/bin/env bash
# Creates .venv with the Python tools the tests and the demo need (moto's server, cfn-lint),
# and re-installs only when tests/requirements.txt changes. Prints the interpreter's path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$root/tests/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" >&2
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "installing Python test tools into $venv ..." >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/tests/requirements.txt" >&2
    echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
