#!/usr/bin/env bash
# POST /v1/posts through the local runner (release build) under load from wrk: requests/s and latency percentiles.
# Usage: infra/scripts/bench-intake.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
source infra/scripts/lib.sh
duration=${1:-20}
connections=${2:-32}
command -v wrk >/dev/null || { sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo; $sudo_cmd apt-get install -y -qq wrk; }
cargo build -q --profile bench -p postato-dev
key="pk_bench_$(date +%s)"
start_runner target/release/postato-dev "$key"
data=$runner_data
base=$runner_base
account=$(grep "TikTok account" "$data/runner.out" | awk '{print $3}')
media=$(curl -fs -X POST "$base/v1/media" -H "Authorization: Bearer $key" -H 'content-type: application/json' \
  -d '{"kind":"video","contentType":"video/mp4","sizeBytes":1000,"fileName":"clip.mp4"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tomorrow=$(date -u -d tomorrow +%Y-%m-%dT%H:%M:%SZ)
cat >"$data/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $key"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"platform":"tiktok","accountId":"$account","postType":"video","content":"Launch day #bts","media":[{"id":"$media"}],"options":{"privacy":"private"},"scheduledAt":"$tomorrow"}'
LUA
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$data/post.lua" "$base/v1/posts"
echo "posts stored: $(curl -fs "$base/v1/posts?limit=1" -H "Authorization: Bearer $key" >/dev/null && sqlite3 "$data/postato.sqlite3" 'select count(*) from posts' 2>/dev/null || echo '?')"
