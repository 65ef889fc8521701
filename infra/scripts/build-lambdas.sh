#!/usr/bin/env bash
# Builds the four Lambda bootstraps (arm64, release) from a fresh Debian machine with rustup, then `sam build`, and
# prints each function's stripped and zipped size. Not part of the test command: a cold release build of the AWS
# SDKs takes 5-10 minutes on 2 cores.
#
#   infra/scripts/build-lambdas.sh
#
# Installs: the aarch64-unknown-linux-gnu Rust target (rustup), cargo-lambda and zig from PyPI into .venv/build
# (infra/requirements-build.txt), aws-sam-cli into .venv/sam (infra/requirements-sam.txt). No Docker needed.
# Artefacts: .aws-sam/build/<Function>/bootstrap (and the template sam deploy uses), the zips measured in
# target/lambda-zips/, the size table in target/lambda-sizes.md. Without SAM: `cargo lambda build --release --arm64
# --bin intake-api --bin media-validator --bin media-worker --bin publisher` (target/lambda/<binary>/bootstrap).
# The validator and the media worker are two binaries of one crate (BuildProperties.Binary picks each).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
source infra/scripts/lib.sh

step "Rust target aarch64-unknown-linux-gnu"
rustup target add aarch64-unknown-linux-gnu

step "cargo-lambda and zig (.venv/build), SAM CLI (.venv/sam)"
venv build infra/requirements-build.txt
venv sam infra/requirements-sam.txt
export PATH="$root/.venv/build/bin:$PATH"
cargo lambda --version

step "sam build --beta-features (BuildMethod rust-cargolambda: cargo lambda build --release --arm64 per function)"
# SAM builds each function in its own crate directory, so features unify per package as they will in Lambda; the
# artefacts are what `sam deploy` uploads.
SAM_CLI_TELEMETRY=0 .venv/sam/bin/sam build --beta-features

step "sizes (the release profile strips symbols: strip = true)"
out=target/lambda-sizes.md
{
  printf '| function | bootstrap (stripped arm64) | bootstrap.zip |\n|---|---:|---:|\n'
  for logical in IntakeApiFunction MediaValidatorFunction MediaWorkerFunction PublisherFunction; do
    bootstrap=".aws-sam/build/$logical/bootstrap"
    zipped="target/lambda-zips/$logical.zip"
    mkdir -p target/lambda-zips
    # Zipped as Lambda receives it: bootstrap at the root, deflated at level 9, executable bit kept (zipfile's
    # write() stores the file mode). Python rather than zip(1), which a fresh Debian lacks.
    python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(sys.argv[2], "bootstrap")' "$zipped" "$bootstrap"
    raw=$(stat -c %s "$bootstrap")
    packed=$(stat -c %s "$zipped")
    awk -v f="$logical" -v r="$raw" -v z="$packed" \
      'BEGIN { printf "| %s | %d bytes (%.1f MB) | %d bytes (%.1f MB) |\n", f, r, r / 1e6, z, z / 1e6 }'
  done
} | tee "$out"
file .aws-sam/build/*/bootstrap
