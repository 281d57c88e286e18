#!/usr/bin/env bash
# Builds one libFuzzer target in its own clang build directory and runs it for
# a bounded time on a corpus seeded from the shared GGUF files.
#
#   tests/fuzz/run_fuzzer.sh TARGET SECONDS [BUILD_DIR]
#
# BUILD_DIR defaults to $LLMESH_FUZZ_BUILD_DIR, else <repo>/build-fuzz.
# Crash inputs are left in BUILD_DIR/artifacts/TARGET/; the exit status is
# non-zero when the fuzzer found one.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 TARGET SECONDS [BUILD_DIR]" >&2
  exit 2
fi
target=$1
seconds=$2
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${3:-${LLMESH_FUZZ_BUILD_DIR:-$src/build-fuzz}}
shared=${LLMESH_SHARED_DIR:-$src/../shared}
jobs=${LLMESH_FUZZ_JOBS:-2}
# Inputs longer than this are cut: megabyte inputs run ~25 execs/s, small
# ones thousands. The shared seeds' metadata sits in their first kilobytes.
max_len=${LLMESH_FUZZ_MAX_LEN:-65536}
# 0 = a fresh random seed each run (exploration); CTest pins one so a CI run
# replays the same mutations and a red result is reproducible.
seed=${LLMESH_FUZZ_SEED:-0}

if [[ ! -f $build/build.ninja ]]; then
  mkdir -p "$build"
  CC=clang CXX=clang++ cmake -S "$src" -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DLLMESH_FUZZ=ON -DLLMESH_BUILD_TESTS=OFF -DLLMESH_BUILD_BENCH=OFF >"$build/configure.log" 2>&1 || {
      cat "$build/configure.log" >&2
      exit 1
    }
fi
ninja -C "$build" -j"$jobs" "$target"

corpus=$build/corpus/$target
artifacts=$build/artifacts/$target
mkdir -p "$corpus" "$artifacts"
# Seeds: the shared model and vocabularies, small ones only (large inputs
# slow every execution), plus checked-in seeds when a target has some.
for f in "$shared"/models/*.gguf "$shared"/tokenizer-vectors/*.gguf "$src"/tests/fuzz/corpus/"$target"/*; do
  [[ -f $f ]] || continue
  if [[ $(stat -c %s "$f") -le $((2 * 1024 * 1024)) ]]; then
    cp -n "$f" "$corpus/" 2>/dev/null || true
  fi
done

exec "$build/fuzz/$target" "$corpus" \
  -max_total_time="$seconds" \
  -seed="$seed" \
  -timeout=30 \
  -max_len="$max_len" \
  -rss_limit_mb=2048 \
  -print_final_stats=1 \
  -artifact_prefix="$artifacts/"
