#!/usr/bin/env bash
# Runs schemathesis against a fresh local stack (infra/with-stack.sh: closed to all
# but loopback, so generated endpoints never send past this machine): a bounded
# number of generated cases per operation, checked against infra/openapi.yaml. First,
# infra/stack_input_check.py: what only the whole stack can show about raw input.
#   infra/schemathesis.sh [max examples per operation, default 10]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
examples="${1:-10}"
# cargo lambda watch, which serves the functions locally, now and then answers about one
# request in 300 to a routed path with its own 500 ({"type":"https://httpstatuses.com/500",
# ...}, a body Hookline never writes; reproduced with a plain requests.Session). A run whose failures include
# that body is run once more, and says so; any other failure fails at once.
exec infra/with-stack.sh schemathesis bash -c '
  set -o pipefail
  out="$(mktemp)"
  st() { .tools/venv/bin/schemathesis run infra/openapi.yaml --url "$HOOKLINE_URL" \
      -H "Authorization: Bearer $HOOKLINE_ADMIN_KEY" \
      --mode positive -n "$0" --generation-deterministic --request-timeout 120 \
      -c not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance 2>&1 | tee "$out"; }
  .tools/venv/bin/python infra/stack_input_check.py || exit 1
  if st; then exit 0; fi
  if grep -q "httpstatuses.com/500" "$out"; then
    echo "schemathesis: cargo lambda watch answered with its own 500 (not Hookline); running once more" >&2
    st
  else
    exit 1
  fi' "$examples"
