# Sourced by the test command and the scripts beside this file, from the repository root: one copy of how they
# install Python tools, pick ports, start moto and the local runner, and stop what they started however they exit.
# Expects `root` (the repository root) to be set.

# Background processes and scratch directories of the sourcing script, removed when it exits.
background_pids=()
scratch_dirs=()
# Under `set -e` a failing last command here would become the script's exit status: every step must succeed.
stop_background() {
  local pid dir
  for pid in "${background_pids[@]:-}"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
  done
  for dir in "${scratch_dirs[@]:-}"; do
    if [ -n "$dir" ]; then rm -rf "$dir"; fi
  done
}
trap stop_background EXIT

step() { printf '\n=== %s\n' "$*"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# venv NAME REQUIREMENTS: .venv/NAME with the pinned requirements; reinstalls only when the file changed.
venv() {
  local dir=".venv/$1"
  if [ ! -x "$dir/bin/python" ]; then python3 -m venv "$dir"; fi
  if ! cmp -s "$2" "$dir/.installed" 2>/dev/null; then
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$2"
    cp "$2" "$dir/.installed"
  fi
}

# wait_for_url URL WHAT LOG...: up to 30 s for URL to answer; otherwise names WHAT, shows its logs and exits.
wait_for_url() {
  local url=$1 what=$2
  shift 2
  for _ in $(seq 1 300); do curl -fs "$url" >/dev/null && return 0; sleep 0.1; done
  echo "$what did not start"
  cat "$@" 2>/dev/null || true
  exit 1
}

# start_moto LOG: moto server (from .venv/test) on a free loopback port; sets moto_endpoint.
start_moto() {
  local port
  port=$(free_port)
  mkdir -p "$(dirname "$1")"
  .venv/test/bin/moto_server -H 127.0.0.1 -p "$port" >"$1" 2>&1 &
  background_pids+=($!)
  moto_endpoint="http://127.0.0.1:$port"
  wait_for_url "$moto_endpoint/moto-api/" "moto server" "$1"
}

# start_runner BINARY API_KEY: the local runner on a free port with a throwaway data dir and API_KEY as its
# development key; sets runner_base and runner_data (its banner, which names the dev account, in runner.out).
start_runner() {
  local port
  port=$(free_port)
  runner_data=$(mktemp -d)
  scratch_dirs+=("$runner_data")
  POSTATO_DATA_DIR="$runner_data" POSTATO_HTTP_ADDR="127.0.0.1:$port" POSTATO_SANDBOX_ADDR="127.0.0.1:0" \
    POSTATO_DEV_API_KEY="$2" RUST_LOG=warn "$1" >"$runner_data/runner.out" 2>"$runner_data/runner.err" &
  background_pids+=($!)
  runner_base="http://127.0.0.1:$port"
  wait_for_url "$runner_base/v1/openapi.json" "the local runner" "$runner_data/runner.out" "$runner_data/runner.err"
  # The runner serves before it prints its banner (which names the dev account): wait for the banner's last line.
  for _ in $(seq 1 100); do grep -q "Press Ctrl-C" "$runner_data/runner.out" && return 0; sleep 0.1; done
  echo "the local runner printed no banner"
  cat "$runner_data/runner.out" "$runner_data/runner.err"
  exit 1
}
