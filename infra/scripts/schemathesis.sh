#!/usr/bin/env bash
# Starts the local runner on a free port with a throwaway data dir, runs schemathesis against its OpenAPI document
# (checks: no 5xx, every response matches the documented schema and content type), then stops the runner.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
source infra/scripts/lib.sh
st="$root/.venv/test/bin/schemathesis"

key="pk_schemathesis_$(date +%s)"
cargo build -q -p postato-dev
start_runner target/debug/postato-dev "$key"

# One worker: with two threads, CPython 3.11 (3.11.7 here) now and then fails Hypothesis's own ast.parse with "AST
# constructor recursion depth mismatch" (python/cpython#106905), a runtime error that says nothing about the API.
# One worker finished in 7 s where two took 11-14 s.
"$st" run "$runner_base/v1/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --header "Authorization: Bearer $key" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --seed 20261125 \
  --workers 1 \
  --report junit --report-dir "$root/target/schemathesis"
