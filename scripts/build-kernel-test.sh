#!/usr/bin/env bash
# Builds native/test/kernel_test (every SIMD table vs the scalar reference) for this machine, or with
# `aarch64` for arm64 (Debian's cross compiler; run it with qemu-aarch64). Output: build/kernel-test/.
# Natively also kernel_bench, with llama.cpp's quantizers linked in when scripts/build-ggml-reference.sh
# builds them. The objects compile in parallel (the ISA files take the longest).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-native}
out=build/kernel-test/$target
mkdir -p "$out"
common=(-std=c++17 -O3 -Wall -ffp-contract=off -fno-fast-math)
k=native/src/kernels
c=native/src/checksum
pids=()
compile() {  # compile SOURCE OBJECT [FLAGS...] in the background
  local src=$1 obj=$2
  shift 2
  "$cxx" "${common[@]}" "$@" -c "$src" -o "$obj" &
  pids+=($!)
}
wait_all() {
  local status=0
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  pids=()
  return $status
}
if [ "$target" = aarch64 ]; then
  cxx=${CXX_AARCH64:-aarch64-linux-gnu-g++}
  for f in layout scalar dispatch neon; do compile "$k/$f.cc" "$out/$f.o"; done
  compile "$c/crc32.cc" "$out/crc32.o"
  compile "$c/crc32_armv8.cc" "$out/crc32_armv8.o" -march=armv8-a+crc
  compile native/test/kernel_test.cc "$out/kernel_test.o"
  wait_all
  "$cxx" -static -o "$out/kernel_test" "$out/kernel_test.o" "$out/layout.o" "$out/scalar.o" "$out/dispatch.o" "$out/neon.o" "$out/crc32.o" "$out/crc32_armv8.o"
else
  cxx=${CXX:-g++}
  for f in layout scalar dispatch; do compile "$k/$f.cc" "$out/$f.o"; done
  compile "$k/avx2.cc" "$out/avx2.o" -mavx2 -mfma -mf16c
  compile "$k/avx512.cc" "$out/avx512.o" -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c -Wno-maybe-uninitialized
  compile "$c/crc32.cc" "$out/crc32.o"
  compile "$c/crc32_pclmul.cc" "$out/crc32_pclmul.o" -mpclmul
  compile native/test/kernel_test.cc "$out/kernel_test.o"
  # the benchmark times llama.cpp's own quantizers alongside, when they can be built (cached)
  llama=()
  if ref=$(bash scripts/build-ggml-reference.sh 2>/dev/null); then
    llama=("$ref/ggml_reference_lib.o" "$ref/ggml-quants.o")
    compile native/test/kernel_bench.cc "$out/kernel_bench.o" -DQUANTKIT_BENCH_LLAMA
  else
    compile native/test/kernel_bench.cc "$out/kernel_bench.o"
  fi
  wait_all
  objs=("$out/layout.o" "$out/scalar.o" "$out/dispatch.o" "$out/avx2.o" "$out/avx512.o" "$out/crc32.o" "$out/crc32_pclmul.o")
  "$cxx" -o "$out/kernel_test" "$out/kernel_test.o" "${objs[@]}"
  "$cxx" -o "$out/kernel_bench" "$out/kernel_bench.o" "${objs[@]}" "${llama[@]}"
fi
echo "$out/kernel_test"
