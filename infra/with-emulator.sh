#!/usr/bin/env bash
# Runs a command with a fresh moto server (the local AWS emulator) on a free
# 127.0.0.1 port, then stops the server it started, by its pid.
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
child=""
stop() {
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; fi
  kill "$moto_pid" 2>/dev/null || true
  wait "$moto_pid" 2>/dev/null || true
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
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# In the background, so a signal to this script stops the command and the emulator.
"$@" &
child=$!
wait "$child"
