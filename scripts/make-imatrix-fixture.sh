#!/usr/bin/env bash
# Writes test/fixtures/imatrix/: what llama.cpp's own llama-imatrix (a Release build of the llama.cpp that
# node-llama-cpp bundles) computes for the bundled stories260k on the bundled evaluation text, in both of
# its formats (GGUF, and the legacy .dat older llama.cpp writes), and about.json (how it was made).
# test/formats/imatrix.test.ts reads them. Run once; the files are small (35 entries of 64/172 floats).
#
#   npm run build && scripts/make-imatrix-fixture.sh /path/to/llama-imatrix
set -euo pipefail
cd "$(dirname "$0")/.."
imatrix=${1:?usage: make-imatrix-fixture.sh LLAMA_IMATRIX}
ctx=128 chunks=8
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node dist/cli/quantkit.js quantize models/stories260k --format gguf --gguf-type F32 -o "$work/f32" -q
model=$(ls "$work"/f32/*.gguf)
out=test/fixtures/imatrix
mkdir -p "$out"
for fmt in gguf dat; do
  "$imatrix" -m "$model" -f data/tinystories-valid-excerpt.txt -c $ctx --chunks $chunks -t 2 --no-ppl \
    --output-format $fmt -o "$work/stories260k.llama-imatrix.$fmt" >"$work/log.$fmt" 2>&1 || { cat "$work/log.$fmt" >&2; exit 1; }
  cp "$work/stories260k.llama-imatrix.$fmt" "$out/"
done
commit=$(git bundle list-heads node_modules/node-llama-cpp/llama/gitRelease.bundle | awk '{ print substr($1, 1, 7); exit }')
cat >"$out/about.json" <<JSON
{
  "about": "llama.cpp's own llama-imatrix (llama.cpp $commit, bundled in node-llama-cpp) on models/stories260k written as an F32 GGUF by quantkit, text data/tinystories-valid-excerpt.txt; written by scripts/make-imatrix-fixture.sh",
  "command": "llama-imatrix -m stories260k-F32.gguf -f data/tinystories-valid-excerpt.txt -c $ctx --chunks $chunks -t 2 --no-ppl --output-format {gguf,dat}",
  "ctx": $ctx,
  "chunks": $chunks
}
JSON
ls -la "$out"
