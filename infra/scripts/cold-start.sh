#!/usr/bin/env bash
# Cold starts of the three Lambda binaries under cargo-lambda's runtime emulator, against moto. For each function,
# RUNS times: start the bootstrap as a fresh process, invoke it once with a sample event (infra/events/), and record
#   - time to first response: from spawning the process to the invoke's answer (process start, init, one request
#     with its DynamoDB round trip to moto);
#   - init: the function's own "initialised" log line (init_ms: tracing, config, SDK clients; no network), from the
#     top of main to the runtime loop.
# Then once more per secret-reading function with POSTATO_SECRET_ARN set (the Secrets Manager read from moto counted
# in init). Prints a Markdown table (also written to target/cold-start.md).
#
#   infra/scripts/cold-start.sh                # debug binaries (cargo build), the quick way
#   PROFILE=release infra/scripts/cold-start.sh   # x86_64 release binaries: what Lambda runs, minus the arch
#   RUNS=10 infra/scripts/cold-start.sh
#
# Needs: python3, curl; installs moto into .venv/test and cargo-lambda into .venv/build like the other scripts.
# Not part of the test command (it builds binaries and measures time).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
profile=${PROFILE:-debug}
runs=${RUNS:-5}
functions=(intake-api media-validator publisher)

source infra/scripts/lib.sh
venv test infra/requirements-test.txt
venv build infra/requirements-build.txt
export PATH="$root/.venv/build/bin:$PATH"

now_ms() { date +%s%3N; }

echo "=== building ($profile, x86_64)"
build_args=()
for f in "${functions[@]}"; do build_args+=(--bin "$f"); done
if [ "$profile" = release ]; then
  cargo build --release "${build_args[@]}"
  bindir=target/release
else
  cargo build "${build_args[@]}"
  bindir=target/debug
fi

echo "=== moto server"
start_moto "$root/target/cold-start-moto.log"
endpoint=$moto_endpoint

# The stack's resources, as template.yaml declares them: the table with its three GSIs, the bucket, the bus, and
# the TikTok secret (dummy values; the token key is 32 zero bytes in base64).
secret_arn=$(AWS_ENDPOINT="$endpoint" .venv/test/bin/python - <<'EOF'
import json, os
import boto3
kw = dict(endpoint_url=os.environ["AWS_ENDPOINT"], region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
def gsi(name, hash_key, range_key=None):
    keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return {"IndexName": name, "KeySchema": keys, "Projection": {"ProjectionType": "ALL"}}
boto3.client("dynamodb", **kw).create_table(
    TableName="postato-cold", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                          for a in ["pk", "sk", "due_pk", "due_sk", "ws_pk", "ws_sk", "publish_id_pk"]],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[gsi("due", "due_pk", "due_sk"), gsi("workspace", "ws_pk", "ws_sk"),
                            gsi("publish", "publish_id_pk")])
boto3.client("s3", **kw).create_bucket(Bucket="postato-local-media")
boto3.client("events", **kw).create_event_bus(Name="postato-cold")
secret = boto3.client("secretsmanager", **kw).create_secret(Name="postato/cold/tiktok", SecretString=json.dumps({
    "tiktokClientKey": "cold_start_key", "tiktokClientSecret": "cold-start-secret",
    "tokenEncryptionKey": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}))
print(secret["ARN"])
EOF
)

echo "=== cargo lambda watch --only-lambda-apis"
rt_port=$(free_port)
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$rt_port" >"$root/target/cold-start-emulator.log" 2>&1 &
background_pids+=($!)
for _ in $(seq 1 100); do
  grep -q "starting Runtime server" "$root/target/cold-start-emulator.log" 2>/dev/null && break
  sleep 0.1
done

event_for() {
  case "$1" in
    intake-api) echo infra/events/api-list-posts.json ;;
    media-validator) echo infra/events/s3-upload.json ;;
    publisher) echo infra/events/schedule-tick.json ;;
  esac
}
memory_for() {
  case "$1" in
    intake-api) echo 256 ;;
    media-validator) echo 512 ;;
    publisher) echo 1024 ;;
  esac
}

# One cold start: prints "<ms to first response> <init ms> <first bytes of the answer>".
cold_start() { # function secret(yes|no)
  local fn=$1 with_secret=$2 log="$root/target/cold-start-$1.log"
  local env=(
    PATH="$PATH" HOME="$HOME"
    AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:$rt_port/.rt" AWS_LAMBDA_FUNCTION_NAME=_
    AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE="$(memory_for "$fn")"
    AWS_LAMBDA_LOG_FORMAT=JSON AWS_LAMBDA_LOG_LEVEL=INFO
    AWS_ENDPOINT_URL="$endpoint" AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    TABLE_NAME=postato-cold MEDIA_BUCKET=postato-local-media EVENT_BUS_NAME=postato-cold
    TIMER_QUEUE_URL="$endpoint/123456789012/postato-cold-timer"
    TIKTOK_APP_AUDITED=false TIKTOK_REDIRECT_URI=https://api.example.com/v1/accounts/tiktok/callback
  )
  if [ "$with_secret" = yes ]; then
    env+=(POSTATO_SECRET_ARN="$secret_arn")
  else
    env+=(TIKTOK_CLIENT_KEY=cold_start_key TIKTOK_CLIENT_SECRET=cold-start-secret
      TOKEN_ENCRYPTION_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=)
  fi
  local start answer end init
  start=$(now_ms)
  env -i "${env[@]}" "$bindir/$fn" >"$log" 2>&1 &
  local pid=$!
  answer=$(curl -fsS --max-time 30 -X POST "http://127.0.0.1:$rt_port/2015-03-31/functions/_/invocations" \
    --data-binary @"$(event_for "$fn")")
  end=$(now_ms)
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  init=$(grep -o '"init_ms":[0-9]*' "$log" | head -1 | cut -d: -f2)
  echo "$((end - start)) ${init:-?} ${answer:0:60}"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

report="$root/target/cold-start.md"
{
  echo "Cold starts ($profile x86_64 binaries, $runs runs each, median / max; moto on loopback; $(date -u +%F))"
  echo
  echo "| function | event | answer | first response (ms) | init (ms) | init with secret read (ms) |"
  echo "|---|---|---|---:|---:|---:|"
} >"$report"
for fn in "${functions[@]}"; do
  firsts=() inits=() answer=""
  for _ in $(seq 1 "$runs"); do
    read -r first init answer < <(cold_start "$fn" no)
    firsts+=("$first") inits+=("$init")
  done
  secret_init="n/a (reads no secret)"
  if [ "$fn" != media-validator ]; then
    read -r _ secret_init _ < <(cold_start "$fn" yes)
  fi
  first_median=$(printf '%s\n' "${firsts[@]}" | median)
  first_max=$(printf '%s\n' "${firsts[@]}" | sort -n | tail -1)
  init_median=$(printf '%s\n' "${inits[@]}" | median)
  init_max=$(printf '%s\n' "${inits[@]}" | sort -n | tail -1)
  echo "| $fn | $(basename "$(event_for "$fn")") | \`${answer:0:40}…\` | $first_median / $first_max | $init_median / $init_max | $secret_init |" >>"$report"
done
echo
cat "$report"
