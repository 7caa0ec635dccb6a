#!/usr/bin/env bash
# Builds native/test/kernel_test (every SIMD table vs the scalar reference) for this machine, or with
# `aarch64` for arm64 (Debian's cross compiler; run it with qemu-aarch64). Output: build/kernel-test/.
# Natively also kernel_bench, with llama.cpp's quantizers linked in when scripts/build-ggml-reference.sh
# builds them.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-native}
out=build/kernel-test/$target
mkdir -p "$out"
common=(-std=c++17 -O3 -Wall -ffp-contract=off -fno-fast-math)
k=native/src/kernels
if [ "$target" = aarch64 ]; then
  cxx=${CXX_AARCH64:-aarch64-linux-gnu-g++}
  "$cxx" "${common[@]}" -static -o "$out/kernel_test" native/test/kernel_test.cc $k/layout.cc $k/scalar.cc $k/dispatch.cc $k/neon.cc
else
  cxx=${CXX:-g++}
  objs=()
  for f in layout scalar dispatch; do "$cxx" "${common[@]}" -c $k/$f.cc -o "$out/$f.o"; objs+=("$out/$f.o"); done
  "$cxx" "${common[@]}" -mavx2 -mfma -mf16c -c $k/avx2.cc -o "$out/avx2.o"
  "$cxx" "${common[@]}" -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c -Wno-maybe-uninitialized -c $k/avx512.cc -o "$out/avx512.o"
  "$cxx" "${common[@]}" -o "$out/kernel_test" native/test/kernel_test.cc "${objs[@]}" "$out/avx2.o" "$out/avx512.o"
  # the benchmark times llama.cpp's own quantizers alongside, when they can be built (cached)
  llama=()
  if ref=$(bash scripts/build-ggml-reference.sh 2>/dev/null); then
    llama=(-DQUANTKIT_BENCH_LLAMA "$ref/ggml_reference_lib.o" "$ref/ggml-quants.o")
  fi
  "$cxx" "${common[@]}" -o "$out/kernel_bench" native/test/kernel_bench.cc "${objs[@]}" "$out/avx2.o" "$out/avx512.o" "${llama[@]}"
fi
echo "$out/kernel_test"
