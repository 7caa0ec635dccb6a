#!/usr/bin/env bash
# Builds llama.cpp's own quantizers for comparisons: ggml-quants.c (and the headers it needs) taken from
# the llama.cpp source that the node-llama-cpp dev dependency bundles as a git bundle, compiled with the
# flags of llama.cpp's ggml-base library (Release: -O3 -DNDEBUG, C11, no -march: nothing fused), plus
# native/test/ggml_reference.c (the driver). Cached outside the repository, keyed by the bundle's commit
# and the driver's hash; prints the directory holding ggml_reference, ggml-quants.o and
# ggml_reference_lib.o (the driver without main, for kernel_bench).
# Exit status 3 (with a reason on stderr) when the bundle or a C compiler is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${QUANTKIT_LLAMA_BUNDLE:-node_modules/node-llama-cpp/llama/gitRelease.bundle}
cc=${CC:-cc}
[ -f "$bundle" ] || { echo "no llama.cpp source bundle at $bundle" >&2; exit 3; }
command -v "$cc" >/dev/null || { echo "no C compiler ($cc)" >&2; exit 3; }
command -v git >/dev/null || { echo "no git (needed to read $bundle)" >&2; exit 3; }
commit=$(git bundle list-heads "$bundle" | awk '{ print $1; exit }')
driver=native/test/ggml_reference.c
key=$(cat "$driver" "$0" | sha256sum | cut -c1-12)
root=${QUANTKIT_GGML_CACHE:-${TMPDIR:-/tmp}/quantkit-ggml}
out=$root/$commit-$key
if [ -x "$out/ggml_reference" ] && [ -f "$out/ggml-quants.o" ] && [ -f "$out/ggml_reference_lib.o" ]; then echo "$out"; exit 0; fi
mkdir -p "$root"
work=$(mktemp -d "$root/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
git init -q "$work/repo"
git -C "$work/repo" fetch -q "$(realpath "$bundle")" "$commit"
mkdir -p "$work/src"
git -C "$work/repo" archive "$commit" ggml/include ggml/src/ggml-quants.c ggml/src/ggml-quants.h ggml/src/ggml-common.h \
  ggml/src/ggml-impl.h ggml/src/ggml-cpu/ggml-cpu-impl.h | tar -x -C "$work/src"
flags=(-O3 -DNDEBUG -std=gnu11 -fPIC -D_GNU_SOURCE -D_XOPEN_SOURCE=600 -DGGML_BUILD -I"$work/src/ggml/include" -I"$work/src/ggml/src")
mkdir -p "$work/out"
"$cc" "${flags[@]}" -w -c "$work/src/ggml/src/ggml-quants.c" -o "$work/out/ggml-quants.o"
"$cc" "${flags[@]}" -Wall -c "$driver" -o "$work/out/ggml_reference.o"
"$cc" "${flags[@]}" -Wall -DGGML_REFERENCE_NO_MAIN -c "$driver" -o "$work/out/ggml_reference_lib.o"
"$cc" -o "$work/out/ggml_reference" "$work/out/ggml_reference.o" "$work/out/ggml-quants.o" -lm
# another process may have finished the same build meanwhile: either copy is complete
mv -T "$work/out" "$out" 2>/dev/null || true
echo "$out"
