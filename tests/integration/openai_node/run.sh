#!/usr/bin/env bash
# CTest entry for openai_node_test: installs the official OpenAI Node SDK into
# the build directory (once), then runs test.mjs, which starts the stack.
#   run.sh WORK_DIR BIN_DIR MODEL_DIR
set -euo pipefail
work="$1"; bin="$2"; models="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v node >/dev/null || { echo "node is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$work"
cp "$here/package.json" "$here/test.mjs" "$work/"
if [ ! -f "$work/node_modules/openai/package.json" ]; then
  npm install --prefix "$work" --no-audit --no-fund --loglevel=error
fi
exec node "$work/test.mjs" "$bin" "$models"
