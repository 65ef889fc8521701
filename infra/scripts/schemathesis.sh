#!/usr/bin/env bash
# Starts the local runner on a free port with a throwaway data dir, runs schemathesis against its OpenAPI document
# (checks: no 5xx, every response matches the documented schema and content type), then stops the runner.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
st="$root/.venv/test/bin/schemathesis"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
data=$(mktemp -d)
key="pk_schemathesis_$(date +%s)"
cargo build -q -p postato-dev
POSTATO_DATA_DIR="$data" POSTATO_HTTP_ADDR="127.0.0.1:$port" POSTATO_SANDBOX_ADDR="127.0.0.1:0" \
  POSTATO_DEV_API_KEY="$key" RUST_LOG=warn target/debug/postato-dev >"$data/runner.log" 2>&1 &
runner=$!
trap 'kill $runner 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/v1/openapi.json" >/dev/null && break; sleep 0.1; done
curl -fs "http://127.0.0.1:$port/v1/openapi.json" >/dev/null || { echo "runner did not start"; cat "$data/runner.log"; exit 1; }

"$st" run "http://127.0.0.1:$port/v1/openapi.json" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --header "Authorization: Bearer $key" \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
  --seed 20261125 \
  --workers 2 \
  --report junit --report-dir "$root/target/schemathesis"
