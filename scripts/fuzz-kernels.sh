#!/usr/bin/env bash
# Builds the libFuzzer harness (clang, with AddressSanitizer and UBSan) over the kernels and GPTQ, and runs
# it for a bounded time.
#   bash scripts/fuzz-kernels.sh [seconds]      (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
cxx=${CLANGXX:-clang++-14}
out=build/fuzz
mkdir -p "$out/corpus"
k=native/src/kernels
flags=(-std=c++17 -O1 -g -ffp-contract=off -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
objs=()
pids=()
compile() {  # compile SOURCE OBJECT [FLAGS...] in the background (the ISA files take the longest)
  local src=$1 obj=$2
  shift 2
  "$cxx" "${flags[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" "$@" -c "$src" -o "$obj" &
  pids+=($!)
  objs+=("$obj")
}
for f in $k/layout $k/scalar $k/dispatch native/src/gptq/gptq native/src/parallel; do compile $f.cc "$out/$(basename $f).o"; done
if [ "$(uname -m)" = x86_64 ]; then
  compile $k/avx2.cc "$out/avx2.o" -mavx2 -mfma -mf16c
  compile $k/avx512.cc "$out/avx512.o" -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c
fi
for p in "${pids[@]}"; do wait "$p"; done
"$cxx" "${flags[@]}" -o "$out/fuzz_kernels" native/test/fuzz_kernels.cc "${objs[@]}" -lpthread
# Inputs that once crashed (one file each, named by what they caught) run first, every time.
"$out/fuzz_kernels" native/test/fuzz-regressions/* 2>&1 | tail -n 3
"$out/fuzz_kernels" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" 2>&1 | tail -n 12
