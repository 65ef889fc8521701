#!/usr/bin/env bash
# Seeds the probe's fuzzer from the media corpus: each file (its first 256 KiB when larger), once per feeding mode.
# The fuzz target reads the first byte as the mode (even: faithful reads, odd: short reads) and the rest as the file.
#
#   infra/scripts/media-corpus.sh /tmp/corpus
#   infra/scripts/media-fuzz-seeds.sh /tmp/corpus functions/media-validator/fuzz/seeds
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 CORPUS_DIR SEEDS_DIR" >&2
    exit 2
fi
corpus=$1
seeds=$2
mkdir -p "$seeds"
for file in "$corpus"/*; do
    [[ -f "$file" ]] || continue
    name=$(basename "$file")
    for mode in 00 01 07; do
        { printf "\\x$mode"; head -c 262144 "$file"; } >"$seeds/$mode-$name"
    done
done
echo "$(find "$seeds" -type f | wc -l) seeds in $seeds"
