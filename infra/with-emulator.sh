#!/usr/bin/env bash
# Runs a command with fresh local AWS emulators on free 127.0.0.1 ports: dynalite for
# DynamoDB and moto for the rest (SQS, S3), then stops the servers it started, by their
# pids. HOOKLINE_DYNAMODB=moto serves DynamoDB from moto too.
#   infra/with-emulator.sh cargo nextest run
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
moto="$root/.tools/venv/bin/moto_server"
[ -x "$moto" ] || { echo "with-emulator: $moto is missing; run 'make tools'" >&2; exit 1; }

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$root/target/moto-test-$port.log"
mkdir -p "$root/target"
# moto with DynamoDB's writes atomic, as on AWS (infra/moto_server.py).
"$root/.tools/venv/bin/python" "$root/infra/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
dynalite_pid=""
child=""
stop() {
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; fi
  for pid in "$moto_pid" $dynalite_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then echo "with-emulator: moto exited; see $log" >&2; exit 1; fi
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
if [ "${HOOKLINE_DYNAMODB:-dynalite}" = dynalite ]; then
  dport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "$root/infra/dynalite/serve.sh" "$dport" >"$root/target/dynalite-test-$dport.log" 2>&1 &
  dynalite_pid=$!
  for _ in $(seq 1 100); do
    # Any answer (dynalite refuses an unsigned request) means it listens.
    if python3 -c "import urllib.request,sys
try: urllib.request.urlopen('http://127.0.0.1:$dport/', timeout=1)
except urllib.error.HTTPError: pass" 2>/dev/null; then break; fi
    if ! kill -0 "$dynalite_pid" 2>/dev/null; then echo "with-emulator: dynalite exited; see target/dynalite-test-$dport.log" >&2; exit 1; fi
    sleep 0.1
  done
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$dport"
fi
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# In the background, so a signal to this script stops the command and the emulator.
"$@" &
child=$!
wait "$child"
