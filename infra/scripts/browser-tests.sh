#!/usr/bin/env bash
# The composer page in a real browser: installs Debian's Chromium when missing and Playwright for Python into
# .venv/browser (pointed at that Chromium: Playwright downloads no browser), starts the local runner on free ports
# with a throwaway data dir, runs tests/browser/ against it, and stops the runner. Screenshots land in
# target/browser-screenshots/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
source infra/scripts/lib.sh

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
venv browser tests/browser/requirements.txt

cargo build -q -p postato-dev

# runner PREFIX: starts a runner (with the environment of the call) and exports what the tests need of it as
# POSTATO_<PREFIX>_*: its address, its sandbox's, its dev key and its dev account (both from its banner).
runner() {
  local key="pk_browser_$(date +%s)_$1" banner sandbox account
  start_runner target/debug/postato-dev "$key"
  banner="$runner_data/runner.out"
  sandbox=$(sed -n 's/^  TikTok  *sandbox at \([^ ]*\) .*/\1/p' "$banner")
  account=$(sed -n 's/^  TikTok account  *\(acc_[^ ]*\).*/\1/p' "$banner")
  if [ -z "$sandbox" ] || [ -z "$account" ]; then
    echo "the runner's banner names no sandbox or dev account:"; cat "$banner"; exit 1
  fi
  export "POSTATO_$1_BASE_URL=$runner_base" "POSTATO_$1_SANDBOX_URL=$sandbox" "POSTATO_$1_API_KEY=$key" \
    "POSTATO_$1_DEV_ACCOUNT=$account"
}
# The runner as a developer starts it (an unaudited TikTok app: private posts only), and one whose app counts as
# audited, where public posts and TikTok's post links can be seen.
TIKTOK_APP_AUDITED=false runner UNAUDITED
TIKTOK_APP_AUDITED=true runner AUDITED
fixtures=$(mktemp -d)
scratch_dirs+=("$fixtures")
mkdir -p "$root/target/browser-screenshots"

POSTATO_SCREENSHOTS="$root/target/browser-screenshots" POSTATO_MEDIA_DIR="$fixtures" \
  .venv/browser/bin/python -m unittest discover -s tests/browser -p 'test_*.py' -v
echo "screenshots: target/browser-screenshots/"
