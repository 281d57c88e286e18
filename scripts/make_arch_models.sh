#!/usr/bin/env bash
# Writes the small random-weight model of each family ../shared/arch knows
# into OUT_DIR with its generator, and checks each file against the published
# checksum (so every machine tests the very bytes llama.cpp's logits were
# taken on). Files already present and matching are kept.
#   scripts/make_arch_models.sh OUT_DIR [ARCH...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch_dir="${LLMESH_SHARED_DIR:-$root/../shared}/arch"
out="$1"; shift
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(qwen3 gemma2 gemma3 phi3 mistral3 olmo2 olmo3 granite smollm3 exaone4 bitnet bitnet-scaled)
mkdir -p "$out"
for a in "${archs[@]}"; do
  f="$out/$a-f16.gguf"
  want="$(awk -v n="$a-f16.gguf" '$2 == n { print $1 }' "$arch_dir/SHA256SUMS")"
  [ -n "$want" ] || { echo "make_arch_models: no checksum for $a" >&2; exit 1; }
  if [ -f "$f" ] && [ "$(sha256sum "$f" | cut -d' ' -f1)" = "$want" ]; then continue; fi
  # Debian's interpreter: the one python3-numpy installs for.
  PYTHONPATH="$arch_dir/gguf-py" /usr/bin/python3 "$arch_dir/make_synth_arch.py" --arch "$a" "$f.tmp" >/dev/null
  got="$(sha256sum "$f.tmp" | cut -d' ' -f1)"
  if [ "$got" != "$want" ]; then
    echo "make_arch_models: $a: checksum $got, expected $want" >&2
    rm -f "$f.tmp"
    exit 1
  fi
  mv "$f.tmp" "$f"
done
