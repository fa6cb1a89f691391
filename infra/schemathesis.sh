#!/usr/bin/env bash
# Runs schemathesis against the local stack: starts `make dev`'s stack on free ports,
# warms each function (cargo lambda builds one on its first call), runs a bounded
# number of generated cases per operation, and stops the stack. The stack is closed
# (HOOKLINE_PUBLIC_DESTINATIONS=deny): generated endpoints can only be loopback addresses.
#   infra/schemathesis.sh [max examples per operation, default 10]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
examples="${1:-10}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port="$(free_port)"
emulator_port="$(free_port)"
log="$root/target/schemathesis-stack.log"
mkdir -p "$root/target"

HOOKLINE_API_PORT="$api_port" HOOKLINE_EMULATOR_PORT="$emulator_port" HOOKLINE_DEV_PREFIX=schema \
  HOOKLINE_DEV_STATE="$root/target/schemathesis-stack" HOOKLINE_DEV_NO_RELOAD=1 \
  HOOKLINE_PUBLIC_DESTINATIONS=deny \
  infra/dev.sh >"$log" 2>&1 &
stack=$!
trap 'kill -TERM "$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true' EXIT

base="http://127.0.0.1:$api_port"
for i in $(seq 1 300); do
  if python3 -c "import urllib.request; urllib.request.urlopen('$base/health', timeout=5)" 2>/dev/null; then break; fi
  kill -0 "$stack" 2>/dev/null || { echo "schemathesis: the stack did not start; see $log" >&2; tail -20 "$log" >&2; exit 1; }
  [ "$i" = 300 ] && { echo "schemathesis: the stack did not answer in 10 min; see $log" >&2; exit 1; }
  sleep 2
done
# The first call to each function builds and starts it; do that before timing anything.
python3 - "$base" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
req = urllib.request.Request(base + "/v1/events", data=json.dumps({"event_type": "warm.up", "data": {}}).encode(),
                             headers={"x-api-key": "dev-ingest-key", "content-type": "application/json"})
urllib.request.urlopen(req, timeout=600).read()
urllib.request.urlopen(urllib.request.Request(base + "/v1/endpoints", headers={"x-api-key": "dev-admin-key"}), timeout=600).read()
PY

.tools/venv/bin/schemathesis run infra/openapi.yaml --url "$base" \
  -H "Authorization: Bearer dev-admin-key" \
  --mode positive -n "$examples" --generation-deterministic --request-timeout 120 \
  -c not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
