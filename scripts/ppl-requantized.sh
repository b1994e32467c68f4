#!/usr/bin/env bash
# The course's precision comparison on SmolLM2-135M-Instruct: its Q4_1 GGUF dequantized to F16, that F16
# re-quantized to Q8_0 and Q4_K_M by ember-quantize and by llama.cpp's llama-quantize (Q8_0 must be
# byte-identical; Q4_K_M must have the same tensor-type mix), then perplexity on wikitext-2 (-c 512) of
# each file by ember-eval and by llama-perplexity, one run at a time on one thread. Prints a markdown table.
# Not a test and not run by CI: about 10 minutes with the default 40 chunks on one core.
#
#   scripts/ppl-requantized.sh [WORK_DIR]     (default /tmp/ember-ppl-requantized; the files go there)
# Environment: EMBER_BUILD (build), LLAMA_BIN (~/.cache/ember-anchor/build/bin), EMBER_MODELS
# (~/.cache/ember/models), WIKITEXT (../shared/testdata/eval/wikitext-2/wiki.test.raw), CHUNKS (40; 0: all
# 595, about 22 minutes a run), THREADS (1).
#
# Measured 2026-11-24 (CHUNKS=40, THREADS=1; the three files byte-identical to llama-quantize's, Q4_K_M's mix
# F32 x61 Q4_K x16 Q5_0 x166 Q6_K x14 Q8_0 x15: SmolLM2's rows of 576 are no multiple of 256, so most K types
# fall back as llama-quantize makes them):
# | file        | type   | size (MiB) | ember ppl          | llama.cpp ppl      | difference        |
# |-------------|--------|-----------:|-------------------:|-------------------:|------------------:|
# | f16.gguf    | F16    | 258.3      | 22.5024 ± 0.68097  | 22.5018 ± 0.68095  | +0.0006 (+0.003%) |
# | q8_0.gguf   | Q8_0   | 138.1      | 22.6314 ± 0.68499  | 22.6140 ± 0.68464  | +0.0174 (+0.077%) |
# | q4_k_m.gguf | Q4_K_M | 100.6      | 23.8091 ± 0.72823  | 23.7704 ± 0.72738  | +0.0387 (+0.163%) |
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/ember-ppl-requantized}
build=${EMBER_BUILD:-$here/build}
llama=${LLAMA_BIN:-$HOME/.cache/ember-anchor/build/bin}
model=${EMBER_MODELS:-$HOME/.cache/ember/models}/SmolLM2-135M-Instruct.Q4_1.gguf
wiki=${WIKITEXT:-$here/../shared/testdata/eval/wikitext-2/wiki.test.raw}
chunks=${CHUNKS:-40}
threads=${THREADS:-1}
for f in "$build/examples/ember-quantize" "$build/examples/ember-eval" "$build/examples/ember-info" \
         "$llama/llama-quantize" "$llama/llama-perplexity" "$model" "$wiki"; do
    [ -e "$f" ] || { echo "missing: $f" >&2; exit 1; }
done
mkdir -p "$work"
cd "$work"
export LD_LIBRARY_PATH="$llama${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
run() { nice -n 10 "$@"; }

# 1. Q4_1 -> F16 by both tools (the same bytes expected), then F16 -> Q8_0 and Q4_K_M by both.
run "$build/examples/ember-quantize" "$model" f16.gguf F16 --allow-requantize -t "$threads" -q > /dev/null
run "$llama/llama-quantize" --allow-requantize "$model" f16.llama.gguf F16 "$threads" > llama-quantize-f16.log 2>&1
for t in Q8_0 Q4_K_M; do
    l=$(echo "$t" | tr 'A-Z' 'a-z')
    run "$build/examples/ember-quantize" f16.gguf "$l.gguf" "$t" -t "$threads" -q > /dev/null
    run "$llama/llama-quantize" f16.gguf "$l.llama.gguf" "$t" "$threads" > "llama-quantize-$l.log" 2>&1
done
types() { "$build/examples/ember-info" "$1" | sed -n 's/^tensor data *.* tensors: //p'; }
echo "## Files (ember-quantize vs llama-quantize)"
echo
for l in f16 q8_0 q4_k_m; do
    a=$(sha256sum < "$l.gguf" | cut -c1-64); b=$(sha256sum < "$l.llama.gguf" | cut -c1-64)
    same=$([ "$a" = "$b" ] && echo "byte-identical" || echo "DIFFERENT bytes")
    mix=$([ "$(types "$l.gguf")" = "$(types "$l.llama.gguf")" ] && echo "same types" || echo "DIFFERENT types")
    echo "- $l.gguf: $same, $mix ($(types "$l.gguf")), sha256 ${a:0:16}"
done
echo

# 2. Perplexity, one run at a time.
chunk_args=()
[ "$chunks" -gt 0 ] && chunk_args=(--chunks "$chunks")
ppl_of() { sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$1" | tail -1; }
err_of() { sed -n 's/.*Final estimate: PPL = [0-9.]* +\/- \([0-9.]*\).*/\1/p' "$1" | tail -1; }
echo "## Perplexity, wikitext-2 test, -c 512, ${chunks/#0/all} chunks, $threads thread(s)"
echo
echo "| file | type | size (MiB) | ember ppl | llama.cpp ppl | difference |"
echo "|---|---|---:|---:|---:|---:|"
for l in f16 q8_0 q4_k_m; do
    run "$build/examples/ember-eval" perplexity -m "$l.gguf" -f "$wiki" -c 512 -t "$threads" "${chunk_args[@]}" > "ember-ppl-$l.log" 2>&1
    run "$llama/llama-perplexity" -m "$l.gguf" -f "$wiki" -c 512 -t "$threads" "${chunk_args[@]}" > "llama-ppl-$l.log" 2>&1
    e=$(ppl_of "ember-ppl-$l.log"); g=$(ppl_of "llama-ppl-$l.log")
    size=$(awk -v b="$(stat -c %s "$l.gguf")" 'BEGIN { printf "%.1f", b / 1048576 }')
    diff=$(awk -v e="$e" -v g="$g" 'BEGIN { printf "%+.4f (%+.3f%%)", e - g, 100 * (e - g) / g }')
    echo "| $l.gguf | $(echo "$l" | tr 'a-z' 'A-Z') | $size | $e ± $(err_of "ember-ppl-$l.log") | $g ± $(err_of "llama-ppl-$l.log") | $diff |"
done
