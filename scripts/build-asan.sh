#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UBSan into build-asan/ and prints the environment that loads
# it into Node (the ASan runtime must be preloaded into the node process):
#   eval "$(bash scripts/build-asan.sh)" && npx vitest run test/kernels
set -euo pipefail
cd "$(dirname "$0")/.."
npx cmake-js compile --directory native --out build-asan --CDQUANTKIT_SANITIZE=ON >&2
echo "export QUANTKIT_ADDON=$PWD/build-asan/Release/quantkit.node"
echo "export LD_PRELOAD=$(gcc -print-file-name=libasan.so)"
# Node itself is not instrumented and allocates at exit without freeing: leak reports would be noise.
echo "export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1"
echo "export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
