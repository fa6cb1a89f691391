#!/usr/bin/env bash
# The local stack (`make dev`): the AWS emulator, the queues and table from
# template.yaml, the four functions under `cargo lambda watch` at
# http://127.0.0.1:9000, and the runner that plays SQS's event-source mapping and
# the EventBridge schedule. Ctrl-C stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

api_port="${HOOKLINE_API_PORT:-9000}"
# cargo lambda watch listens here, behind devstack's front on the API port (see
# infra/devstack/src/front.rs: a body that is not UTF-8 reaches the function as on AWS).
watch_port="${HOOKLINE_WATCH_PORT:-$((api_port + 100))}"
aws_port="${HOOKLINE_EMULATOR_PORT:-4567}"
prefix="${HOOKLINE_DEV_PREFIX:-hookline-dev}"
venv="$root/.tools/venv"
state="${HOOKLINE_DEV_STATE:-$root/.dev}"
# Scripted runs (schemathesis) want a stack that never reloads under them.
reload_flag=()
[ "${HOOKLINE_DEV_NO_RELOAD:-}" = 1 ] && reload_flag=(--ignore-changes)
# `make bench` runs the stack as it measures it: release builds, several instances
# of each function and pollers of the queue (as Lambda's event-source mapping has),
# and its own AWS endpoint for the functions (a proxy that counts their calls).
profile=()
[ "${HOOKLINE_DEV_RELEASE:-}" = 1 ] && profile=(--release)
concurrency="${HOOKLINE_DEV_CONCURRENCY:-1}"
# The slow lane's pollers, and how many instances of each function run: on AWS the two
# lanes' mappings have concurrencies of their own, so the bench gives each lane its own
# instances (pollers + slow pollers); `make dev` shares one.
slow_pollers="${HOOKLINE_DEV_SLOW_POLLERS:-1}"
instances="${HOOKLINE_DEV_INSTANCES:-$concurrency}"
sweep_every="${HOOKLINE_DEV_SWEEP_EVERY:-60}"
mkdir -p "$state"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'make dev: %s\n' "$*" >&2; exit 1; }

port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
# Like the servers do, so that connections in TIME_WAIT do not count as "taken".
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

for tool in cargo-lambda moto_server; do
  [ -x "$venv/bin/$tool" ] || die "$tool is not installed in $venv; run 'make tools' (make dev does it for you)"
done
[ -f "$root/.tools/dynalite/node_modules/dynalite/cli.js" ] || die "dynalite is not installed in .tools/dynalite; run 'make tools' (make dev does it for you)"
port_free "$api_port" || die "port $api_port (the API) is taken: is another 'make dev' running? Stop it, or set HOOKLINE_API_PORT"
port_free "$watch_port" || die "port $watch_port (cargo lambda watch, behind the API's port) is taken: stop what uses it, or set HOOKLINE_WATCH_PORT"
port_free "$aws_port" || die "port $aws_port (the AWS emulator) is taken: stop what uses it, or set HOOKLINE_EMULATOR_PORT"

pids=()
cleanup() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    say "stopping (${#pids[@]} processes)"
    for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # What has not stopped 5 s after TERM (LocalStack can hang in its shutdown) is killed.
    for _ in $(seq 1 50); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  fi
}
trap cleanup EXIT
# Ctrl-C is how the stack is meant to stop: a clean exit.
trap 'exit 0' INT
trap 'exit 143' TERM

# Waits for the process started last to answer URL (tries × 0.1 s), or says why not.
await_started() {
  local url="$1" what="$2" log="$3" tries="$4" i
  for i in $(seq 1 "$tries"); do
    python3 -c "import urllib.request; urllib.request.urlopen('$url', timeout=1)" 2>/dev/null && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || die "$what exited; see $log"
    sleep 0.1
  done
  die "$what did not answer in $((tries / 10)) s; see $log"
}

say "starting the AWS emulator (moto) on 127.0.0.1:$aws_port"
# moto with DynamoDB's writes atomic, as on AWS (infra/moto_server.py).
"$venv/bin/python" "$root/infra/moto_server.py" -H 127.0.0.1 -p "$aws_port" >"$state/moto.log" 2>&1 &
pids+=($!)
await_started "http://127.0.0.1:$aws_port/moto-api/" "the emulator" "$state/moto.log" 100

export AWS_ENDPOINT_URL="http://127.0.0.1:$aws_port"

# DynamoDB on dynalite: moto answers each call in 6-10 ms of Python, which caps the
# stack near 80 events a second; dynalite answers in well under one.
# HOOKLINE_DEV_DYNAMODB=moto serves it from moto instead.
if [ "${HOOKLINE_DEV_DYNAMODB:-dynalite}" = dynalite ]; then
  dynamodb_port="${HOOKLINE_DYNAMODB_PORT:-$((aws_port + 1))}"
  port_free "$dynamodb_port" || die "port $dynamodb_port (dynalite, the local DynamoDB) is taken: stop what uses it, or set HOOKLINE_DYNAMODB_PORT"
  say "starting DynamoDB (dynalite) on 127.0.0.1:$dynamodb_port"
  "$root/infra/dynalite/serve.sh" "$dynamodb_port" >"$state/dynalite.log" 2>&1 &
  pids+=($!)
  for i in $(seq 1 100); do
    python3 -c "import urllib.request
try: urllib.request.urlopen('http://127.0.0.1:$dynamodb_port/', timeout=1)
except urllib.error.HTTPError: pass" 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || die "dynalite exited; see $state/dynalite.log"
    [ "$i" = 100 ] && die "dynalite did not answer in 10 s; see $state/dynalite.log"
    sleep 0.1
  done
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$dynamodb_port"
fi

# `make bench` runs SQS on LocalStack (flat latency at any depth; moto's SQS slows down
# as the queue grows), from the venv `make localstack` makes.
if [ "${HOOKLINE_DEV_SQS:-moto}" = localstack ]; then
  sqs_port="${HOOKLINE_SQS_PORT:-4566}"
  ls_venv="$root/.tools/localstack"
  [ -x "$ls_venv/bin/python" ] || die "LocalStack is not installed in $ls_venv; run 'make localstack'"
  port_free "$sqs_port" || die "port $sqs_port (LocalStack's SQS) is taken: set HOOKLINE_SQS_PORT"
  say "starting LocalStack's SQS on 127.0.0.1:$sqs_port"
  mkdir -p "$state/localstack"
  GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$sqs_port" SERVICES=sqs EAGER_SERVICE_LOADING=1 \
    SQS_ENDPOINT_STRATEGY=path SQS_DISABLE_CLOUDWATCH_METRICS=1 DISABLE_EVENTS=1 DNS_ADDRESS=0 \
    OVERRIDE_IN_DOCKER=0 FILESYSTEM_ROOT="$state/localstack" LOCALSTACK_VOLUME_DIR="$state/localstack" \
    LOCALSTACK_HOST="127.0.0.1:$sqs_port" "$ls_venv/bin/python" -m localstack.runtime.main >"$state/localstack.log" 2>&1 &
  pids+=($!)
  await_started "http://127.0.0.1:$sqs_port/_localstack/health" "LocalStack" "$state/localstack.log" 300
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$sqs_port"
fi
export AWS_ACCESS_KEY_ID=dev AWS_SECRET_ACCESS_KEY=dev AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export PATH="$venv/bin:$PATH"

say "building the workspace (the first build takes a few minutes)"
if [ ${#profile[@]} -gt 0 ]; then
  # Release builds are slow to link (LTO): only what the stack runs, selected by
  # `--bin` as `cargo lambda watch --release` selects them (the same features, so it
  # finds them built).
  cargo build --locked --release --bin ingest --bin delivery --bin sweeper --bin admin --bin devstack
else
  cargo build --workspace --locked
fi
bin="$root/target/debug"
[ ${#profile[@]} -gt 0 ] && bin="$root/target/release"

say "creating the queues and table from template.yaml"
"$bin/devstack" provision --template template.yaml --prefix "$prefix" --env-out "$state/stack.env"
set -a
# shellcheck disable=SC1091
. "$state/stack.env"
set +a
export HOOKLINE_STAGE=local
# From here on, what the functions and the runner call AWS at (a proxy, when given,
# takes every service's calls).
if [ -n "${HOOKLINE_FUNCTIONS_AWS_URL:-}" ]; then
  export AWS_ENDPOINT_URL="$HOOKLINE_FUNCTIONS_AWS_URL"
  unset AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_DYNAMODB
fi
export HOOKLINE_INGEST_KEY="${HOOKLINE_INGEST_KEY:-dev-ingest-key}"
export HOOKLINE_ADMIN_KEY="${HOOKLINE_ADMIN_KEY:-dev-admin-key}"
export HOOKLINE_ALLOWED_CIDRS="${HOOKLINE_ALLOWED_CIDRS:-127.0.0.0/8,::1/128}"
export HOOKLINE_ENDPOINT_CACHE_SECONDS="${HOOKLINE_ENDPOINT_CACHE_SECONDS:-1}"
export HOOKLINE_LOG_FORMAT="${HOOKLINE_LOG_FORMAT:-text}"

say "starting the functions: cargo lambda watch on 127.0.0.1:$watch_port, behind 127.0.0.1:$api_port"
# `--concurrency` only when more than one instance is asked for: with it, even at 1,
# watch runs the functions another way (it sets AWS_LAMBDA_MAX_CONCURRENCY).
concurrency_flag=()
[ "$instances" != 1 ] && concurrency_flag=(--concurrency "$instances")
cargo lambda watch -A 127.0.0.1 -P "$watch_port" "${concurrency_flag[@]}" "${profile[@]}" "${reload_flag[@]}" >"$state/functions.log" 2>&1 &
pids+=($!)
watch_pid=$!
"$bin/devstack" front --listen "127.0.0.1:$api_port" --to "http://127.0.0.1:$watch_port" >"$state/front.log" 2>&1 &
pids+=($!)
printf '    waiting for http://127.0.0.1:%s/health ' "$api_port"
for i in $(seq 1 600); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$api_port/health', timeout=5)" 2>/dev/null; then
    echo " up"; break
  fi
  kill -0 "$watch_pid" 2>/dev/null || { echo; die "cargo lambda watch exited; see $state/functions.log"; }
  kill -0 "${pids[-1]}" 2>/dev/null || { echo; die "devstack front exited; see $state/front.log"; }
  [ "$i" = 600 ] && { echo; die "the API did not come up in 10 min; see $state/functions.log"; }
  printf '.'; sleep 1
done

say "starting the SQS event-source mapping and the sweeper schedule"
"$bin/devstack" run --lambda "http://127.0.0.1:$watch_port" --sweep-every "$sweep_every" --pollers "$concurrency" --slow-pollers "$slow_pollers" >"$state/runner.log" 2>&1 &
pids+=($!)

cat <<MSG

  Hookline is running.
    API          http://127.0.0.1:$api_port
    console      http://127.0.0.1:$api_port/console   (sign in with the admin key)
    ingest key   $HOOKLINE_INGEST_KEY
    admin key    $HOOKLINE_ADMIN_KEY
    emulators    $AWS_ENDPOINT_URL (moto: SQS, S3), ${AWS_ENDPOINT_URL_DYNAMODB:-the same} (DynamoDB)
                 queue $HOOKLINE_QUEUE_URL, table $HOOKLINE_TABLE
    logs         $state/functions.log (functions), $state/runner.log (queue and schedule)

  Try: curl -s http://127.0.0.1:$api_port/health
  Everything listens on 127.0.0.1 only: the API's port also serves Lambda's invoke
  API, which takes no key (README, "The local stack").
  Ctrl-C stops everything.

MSG

# Follow the logs; stop everything if any part stops.
tail -n 0 -F "$state/functions.log" "$state/runner.log" &
tail_pid=$!
pids+=("$tail_pid")
while :; do
  for pid in "${pids[@]:0:${#pids[@]}-1}"; do
    kill -0 "$pid" 2>/dev/null || die "a part of the stack stopped (pid $pid); see the logs in $state"
  done
  sleep 2
done
