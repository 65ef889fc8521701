#!/usr/bin/env bash
# Runs every test of the project from a fresh Debian machine: installs what it needs (ffmpeg and faketime from
# Debian; moto, cfn-lint, schemathesis and SAM CLI into virtualenvs under .venv/), starts moto server on a free
# loopback port, then formatting, lints, every Rust test (the AWS adapters against moto), the date-dependent suites
# once more two years ahead, the template checks, schemathesis against the local runner and the composer page in a
# real browser. Stops what it started, whatever happens.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Every test that needs an external tool fails instead of skipping when this is set.
export POSTATO_FULL_TESTS=1

source infra/scripts/lib.sh

step "system packages"
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v curl >/dev/null || missing+=(curl)
command -v faketime >/dev/null || missing+=(faketime)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
ffmpeg -version | head -1

step "python tools (.venv/test, .venv/sam)"
venv test infra/requirements-test.txt
venv sam infra/requirements-sam.txt
export PATH="$root/.venv/test/bin:$PATH"

step "moto server"
# Its log lives with the build (start_moto creates target/, which a clean clone does not have yet).
start_moto "$root/target/moto.log"
export POSTATO_MOTO_ENDPOINT="$moto_endpoint"
echo "moto server at $POSTATO_MOTO_ENDPOINT"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "media corpus (ffmpeg)"
export POSTATO_MEDIA_CORPUS="$root/target/media-corpus"
if [ -x infra/scripts/media-corpus.sh ]; then infra/scripts/media-corpus.sh "$POSTATO_MEDIA_CORPUS"; fi

step "cargo test (AWS adapters against moto at $POSTATO_MOTO_ENDPOINT)"
cargo test --workspace --no-fail-fast

step "date-dependent suites again, two years ahead under faketime"
infra/scripts/faketime-tests.sh

step "template: cfn-lint and sam validate --lint"
.venv/test/bin/cfn-lint template.yaml
AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  SAM_CLI_TELEMETRY=0 .venv/sam/bin/sam validate --lint --template-file template.yaml

step "operator scripts (infra/scripts/postato_ops.py) against moto"
.venv/test/bin/python -m unittest discover -s infra/scripts -p 'test_*.py'

step "schemathesis against the local runner's /v1/openapi.json"
infra/scripts/schemathesis.sh

step "composer in a real browser (Debian's Chromium + Playwright, against the local runner)"
infra/scripts/browser-tests.sh

step "all tests passed"
