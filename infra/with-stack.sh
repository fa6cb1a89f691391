#!/usr/bin/env bash
# Runs a command against a fresh local stack (`make dev`'s, on free ports, without hot
# reload, closed to everything but loopback: HOOKLINE_PUBLIC_DESTINATIONS=deny), then
# stops the stack it started, by its pid. The command gets HOOKLINE_URL,
# HOOKLINE_INGEST_KEY and HOOKLINE_ADMIN_KEY.
#   infra/with-stack.sh NAME COMMAND...   (NAME names the stack's log and state)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
name="$1"
shift
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port="$(free_port)"
emulator_port="$(free_port)"
watch_port="$(free_port)"
log="$root/target/$name-stack.log"
mkdir -p "$root/target"

HOOKLINE_API_PORT="$api_port" HOOKLINE_EMULATOR_PORT="$emulator_port" HOOKLINE_DYNAMODB_PORT="$(free_port)" HOOKLINE_WATCH_PORT="$watch_port" HOOKLINE_DEV_PREFIX="$name" \
  HOOKLINE_DEV_STATE="$root/target/$name-stack" HOOKLINE_DEV_NO_RELOAD=1 \
  HOOKLINE_PUBLIC_DESTINATIONS=deny \
  infra/dev.sh >"$log" 2>&1 &
stack=$!
trap 'kill -TERM "$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true' EXIT

export HOOKLINE_URL="http://127.0.0.1:$api_port" HOOKLINE_INGEST_KEY=dev-ingest-key HOOKLINE_ADMIN_KEY=dev-admin-key
for i in $(seq 1 300); do
  if python3 -c "import urllib.request; urllib.request.urlopen('$HOOKLINE_URL/health', timeout=5)" 2>/dev/null; then break; fi
  kill -0 "$stack" 2>/dev/null || { echo "$name: the stack did not start; see $log" >&2; tail -20 "$log" >&2; exit 1; }
  [ "$i" = 300 ] && { echo "$name: the stack did not answer in 10 min; see $log" >&2; exit 1; }
  sleep 2
done
# The first call to each function builds and starts it; do that for all four before the
# command runs, so that no start falls inside what it times or checks.
python3 - "$HOOKLINE_URL" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
req = urllib.request.Request(base + "/v1/events", data=json.dumps({"event_type": "warm.up", "data": {}}).encode(),
                             headers={"x-api-key": "dev-ingest-key", "content-type": "application/json"})
urllib.request.urlopen(req, timeout=600).read()
urllib.request.urlopen(urllib.request.Request(base + "/v1/endpoints", headers={"x-api-key": "dev-admin-key"}), timeout=600).read()
# delivery and sweeper through the Lambda Invoke API, as the queue runner calls them.
for function, payload in [("delivery", {"Records": []}),
                          ("sweeper", {"version": "0", "id": "warm-up", "detail-type": "Scheduled Event",
                                       "source": "aws.scheduler", "account": "000000000000",
                                       "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
                                       "resources": [], "detail": {}})]:
    req = urllib.request.Request(f"{base}/2015-03-31/functions/{function}/invocations",
                                 data=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=600).read()
PY
"$@"
