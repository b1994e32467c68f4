#!/bin/sh
# Remakes tests/data/golden/rope-*.json: the arch models of $EMBER_TESTDATA/arch with RoPE scaling keys
# added, and llama.cpp's outputs on them (golden.cpp). The models themselves are not kept: each golden
# names its base file and the keys, and tests/test_golden.cpp writes the same model again from them.
#
#   tests/golden_llama/make_yarn.sh [LLAMA_SRC] [LLAMA_BIN]
#
# LLAMA_SRC: llama.cpp's source tree (headers), LLAMA_BIN: the folder with its libllama.so and
# libggml*.so. The goldens in the repository come from llama.cpp c299a92c (the copy in the
# llama-cpp-python 0.3.36 source package), built Release with GGML_NATIVE off.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
src=${1:-$HOME/.cache/ember-anchor/src}
bin=${2:-$HOME/.cache/ember-anchor/build/bin}
arch=${EMBER_TESTDATA:-$repo/../shared/testdata}/arch
out=$repo/tests/data/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

c++ -std=c++17 -O2 -o "$tmp/golden" "$here/golden.cpp" -I"$src/include" -I"$src/ggml/include" \
    -L"$bin" -lllama -lggml -lggml-base -Wl,-rpath,"$bin"

# About 100 tokens, so that positions run well past the original context of 32 or 64.
prompt="Once upon a time, Lily and Tom went to the park to play with a big red ball. They ran and jumped and \
laughed all day long. Then the sun went down, and Mom called them home for dinner. Lily was sad, but Tom said \
they could come back tomorrow."

# NAME BASE KEY=TYPE:VALUE...   (EMBER_GOLDEN_ONLY=PATTERN remakes only the names matching it)
make() {
    name=$1 base=$2
    shift 2
    case $name in ${EMBER_GOLDEN_ONLY:-*}) ;; *) return 0 ;; esac
    "$tmp/golden" "$tmp/$name.gguf" "$out/$name.json" 32 "$prompt" --base "$arch/$base.gguf" "$@" 2>"$tmp/$name.log" ||
        { cat "$tmp/$name.log"; exit 1; }
    echo "$out/$name.json"
}

# YaRN on NeoX pairs, head size 128: factor 4 from an original context of 32.
make rope-yarn-qwen3-f32 qwen3-f32 qwen3.rope.scaling.type=str:yarn qwen3.rope.scaling.factor=f32:4 \
    qwen3.rope.scaling.original_context_length=u32:32
# YaRN on adjacent pairs (llama), factor 8 from 64, with rope.scaling.attn_factor 0.8. The yarn_* keys
# are there too: llama.cpp reads them only for other architectures (grok, mistral3), so they must not
# change anything.
make rope-yarn-llama-gqa-f32 llama-gqa-f32 llama.rope.scaling.type=str:yarn llama.rope.scaling.factor=f32:8 \
    llama.rope.scaling.original_context_length=u32:64 llama.rope.scaling.attn_factor=f32:0.8 \
    llama.rope.scaling.yarn_ext_factor=f32:0.5 llama.rope.scaling.yarn_attn_factor=f32:2 \
    llama.rope.scaling.yarn_beta_fast=f32:16 llama.rope.scaling.yarn_beta_slow=f32:2
# YaRN with Gemma 3's local layers, which llama.cpp leaves unscaled (freq_scale_swa 1).
make rope-yarn-gemma3-f16 gemma3-f16 gemma3.rope.scaling.type=str:yarn gemma3.rope.scaling.factor=f32:4 \
    gemma3.rope.scaling.original_context_length=u32:32
# Linear scaling, as real Gemma 3 files (4B and up) carry it: factor 8 on the global layer only.
make rope-linear-gemma3-f16 gemma3-f16 gemma3.rope.scaling.type=str:linear gemma3.rope.scaling.factor=f32:8

# LongRoPE as Phi-3 128k files carry it (no scaling type; 32 short and 32 long factors, the original context,
# attn_factor sqrt(1 + ln(256/64) / ln(64))): llama.cpp's context of 512 is longer than an original context of
# 64 (the long factors) and not than one of 512 (the short factors).
short=$(seq -s, 1.00 0.01 1.31)
long=$(seq -s, 1.00 0.25 8.75)
make rope-longrope-phi3-f16-long phi3-f16 phi3.rope.scaling.original_context_length=u32:64 \
    phi3.rope.scaling.attn_factor=f32:1.1547 rope_factors_short.weight=tensor:$short rope_factors_long.weight=tensor:$long
make rope-longrope-phi3-f16-short phi3-f16 phi3.rope.scaling.original_context_length=u32:512 \
    phi3.rope.scaling.attn_factor=f32:1.1547 rope_factors_short.weight=tensor:$short rope_factors_long.weight=tensor:$long

# For the record: this build (Release, GGML_NATIVE off) lands up to 0.05 from the arch goldens
# ($EMBER_TESTDATA/arch/*.json, made by another build of the same commit) on the unscaled base files.
