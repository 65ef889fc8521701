#!/usr/bin/env bash
# Runs the suites that pin their clock to fixed dates (rules, intake HTTP, publisher, store contracts) once more with
# the wall clock two years ahead, so that a test or a store that reads the wall clock instead of the caller's Clock
# fails here before the calendar makes it fail for a user.
#
# Only the test executables run under faketime: cargo and rustc themselves hang under libfaketime, and a cargo run
# for a subset of packages would rebuild dependencies with other features. The executables come from the same
# `cargo test --workspace` build as the main test run. Rust's Instant (and so every timeout) keeps the real
# monotonic clock; only the calendar moves.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

ahead=${POSTATO_FAKETIME_AHEAD:-+730d}
# package:target pairs; a target of `lib` is the package's unit tests.
suites=(
  shared:shared
  intake-api:intake_api intake-api:http intake-api:accounts intake-api:webhooks
  publisher:publisher
  tests:contract_sqlite tests:contract_aws tests:publishing tests:fault_suite
)

plan=$(cargo test --workspace --no-run --message-format=json 2>/dev/null | python3 -c '
import json, os, sys
wanted = set(sys.argv[1:])
for line in sys.stdin:
    message = json.loads(line)
    if message.get("reason") != "compiler-artifact" or not message.get("executable"):
        continue
    # Unit tests of libraries and integration tests; a binary of the same name is not a suite here.
    if not message["profile"]["test"] or "bin" in message["target"]["kind"]:
        continue
    manifest_dir = os.path.dirname(message["manifest_path"])
    package = os.path.basename(manifest_dir)
    if package + ":" + message["target"]["name"] in wanted:
        print(manifest_dir, message["executable"])
' "${suites[@]}")

found=$(printf '%s\n' "$plan" | grep -c . || true)
if [ "$found" -ne "${#suites[@]}" ]; then
  echo "expected ${#suites[@]} test executables, found $found:"
  printf '%s\n' "$plan"
  exit 1
fi

FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$ahead" date -u +'wall clock under faketime: %F %T'
failed=0
while read -r dir executable; do
  printf '\n--- %s (in %s)\n' "$(basename "$executable")" "$dir"
  # Each executable runs where cargo test would run it: in its package's directory.
  if ! (cd "$dir" && FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$ahead" "$executable"); then
    failed=$((failed + 1))
  fi
done <<<"$plan"
if [ "$failed" -gt 0 ]; then
  echo "$failed suite(s) failed under faketime"
  exit 1
fi
