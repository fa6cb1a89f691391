#!/usr/bin/env bash
# Serves DynamoDB on 127.0.0.1:PORT with dynalite (from `make tools`), tables in memory,
# each table ACTIVE as soon as it is made, as the tests and the local stack want them.
#   infra/dynalite/serve.sh PORT
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cli="$root/.tools/dynalite/node_modules/dynalite/cli.js"
node="$root/.tools/venv/bin/node"
[ -f "$cli" ] && [ -x "$node" ] || { echo "dynalite or its Node.js is missing ($cli, $node); run 'make tools'" >&2; exit 1; }
exec "$node" "$cli" --host 127.0.0.1 --port "$1" --createTableMs 0 --deleteTableMs 0 --updateTableMs 0
