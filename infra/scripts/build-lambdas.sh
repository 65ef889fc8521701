#!/usr/bin/env bash
# Builds the three Lambda bootstraps (arm64, release) from a fresh Debian machine with rustup, then `sam build`, and
# prints each function's stripped and zipped size. Not part of the test command: a cold release build of the AWS
# SDKs takes 5-10 minutes on 2 cores.
#
#   infra/scripts/build-lambdas.sh            # cargo lambda build + sam build --beta-features
#   SKIP_SAM_BUILD=1 infra/scripts/build-lambdas.sh
#
# Installs: the aarch64-unknown-linux-gnu Rust target (rustup), cargo-lambda and zig from PyPI into .venv/build
# (infra/requirements-build.txt), aws-sam-cli into .venv/sam (infra/requirements-sam.txt). No Docker needed.
# Artefacts: target/lambda/<binary>/bootstrap and bootstrap.zip; .aws-sam/build/<Function>/bootstrap.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
functions=(intake-api media-validator publisher)

step() { printf '\n=== %s\n' "$*"; }

step "Rust target aarch64-unknown-linux-gnu"
rustup target add aarch64-unknown-linux-gnu

venv() { # name requirements-file
  local dir=".venv/$1"
  if [ ! -x "$dir/bin/python" ]; then python3 -m venv "$dir"; fi
  if ! cmp -s "$2" "$dir/.installed" 2>/dev/null; then
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$2"
    cp "$2" "$dir/.installed"
  fi
}
step "cargo-lambda and zig (.venv/build), SAM CLI (.venv/sam)"
venv build infra/requirements-build.txt
venv sam infra/requirements-sam.txt
export PATH="$root/.venv/build/bin:$PATH"
cargo lambda --version

step "cargo lambda build --release --arm64"
bin_args=()
for f in "${functions[@]}"; do bin_args+=(--bin "$f"); done
cargo lambda build --release --arm64 "${bin_args[@]}"

step "sizes (the release profile strips symbols: strip = true)"
printf '| function | bootstrap (stripped) | bootstrap.zip |\n|---|---:|---:|\n'
for f in "${functions[@]}"; do
  dir="target/lambda/$f"
  # Zipped as Lambda receives it: bootstrap at the root, deflated at level 9, executable bit kept (zipfile's
  # write() stores the file mode). Python rather than zip(1), which a fresh Debian lacks.
  rm -f "$dir/bootstrap.zip"
  python3 -c 'import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.write(sys.argv[2], "bootstrap")' "$dir/bootstrap.zip" "$dir/bootstrap"
  raw=$(stat -c %s "$dir/bootstrap")
  zipped=$(stat -c %s "$dir/bootstrap.zip")
  awk -v f="$f" -v r="$raw" -v z="$zipped" 'BEGIN { printf "| %s | %d bytes (%.1f MB) | %d bytes (%.1f MB) |\n", f, r, r / 1e6, z, z / 1e6 }'
done
file "target/lambda/${functions[0]}/bootstrap" 2>/dev/null || true

if [ -z "${SKIP_SAM_BUILD:-}" ]; then
  step "sam build --beta-features (rust-cargolambda; reuses the build above)"
  SAM_CLI_TELEMETRY=0 .venv/sam/bin/sam build --beta-features
  ls -l .aws-sam/build/*/bootstrap
fi
