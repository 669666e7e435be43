#!/usr/bin/env bash
# Prints each built function's bootstrap size and its size zipped (deflate, as SAM
# uploads it), as a Markdown table: scripts/zip-sizes.sh [BUILD_DIR] (default
# .aws-sam/build).
set -euo pipefail
exec python3 - "${1:-.aws-sam/build}" <<'PY'
import io, pathlib, sys, zipfile

print("| function | bootstrap | zipped |\n| --- | --- | --- |")
for bootstrap in sorted(pathlib.Path(sys.argv[1]).glob("*/bootstrap")):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(bootstrap, "bootstrap")
    raw, zipped = bootstrap.stat().st_size, len(buffer.getvalue())
    print(f"| {bootstrap.parent.name} | {raw / 1e6:.2f} MB | {zipped / 1e6:.2f} MB |")
PY
