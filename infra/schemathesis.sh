#!/usr/bin/env bash
# Runs schemathesis against a fresh local stack (infra/with-stack.sh: closed to all
# but loopback, so generated endpoints never send past this machine): a bounded
# number of generated cases per operation, checked against infra/openapi.yaml.
#   infra/schemathesis.sh [max examples per operation, default 10]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
examples="${1:-10}"
exec infra/with-stack.sh schemathesis bash -c '
  .tools/venv/bin/schemathesis run infra/openapi.yaml --url "$HOOKLINE_URL" \
    -H "Authorization: Bearer $HOOKLINE_ADMIN_KEY" \
    --mode positive -n "$0" --generation-deterministic --request-timeout 120 \
    -c not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance' "$examples"
