#!/usr/bin/env bash
# ember beside llama.cpp on this machine: ember-bench and llama.cpp's llama-bench on the same files, test by
# test (each prefill and decode test, each thread count), the two alternating which goes first so that
# they share the machine's noise; one markdown table of both -o json outputs. A benchmark, never a test.
#   scripts/bench-vs-llama.sh [-t 1,2] [-p 512] [-n 128] [-r 3] MODEL.gguf...
# -p/-n take comma lists as well; 0 leaves that kind of test out. ember-bench: $EMBER_BENCH (default
# build/examples/ember-bench). llama-bench: ../shared/bench/llama-cpp-anchor.sh builds it once (about 10
# minutes on 2 cores), or $LLAMA_BENCH. Random-weight files of real shapes: ember-make-model.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EMBER_BENCH=${EMBER_BENCH:-$ROOT/build/examples/ember-bench}
threads=2 prompts=512 gens=128 reps=3
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "t:p:n:r:h" opt; do
  case $opt in
    t) threads=$OPTARG ;;
    p) prompts=$OPTARG ;;
    n) gens=$OPTARG ;;
    r) reps=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
for m in "$@"; do [ -f "$m" ] || { echo "no such model: $m" >&2; exit 1; }; done
[ -x "$EMBER_BENCH" ] || { echo "no $EMBER_BENCH: build ember first (cmake --preset release && cmake --build build)" >&2; exit 1; }
if [ -z "${LLAMA_BENCH:-}" ]; then
  LLAMA_BENCH=$("$ROOT/../shared/bench/llama-cpp-anchor.sh" --which llama-bench)  # builds it when absent
fi
export LD_LIBRARY_PATH="$(dirname "$LLAMA_BENCH")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
i=0
for model in "$@"; do
  for t in ${threads//,/ }; do
    tests=""
    for p in ${prompts//,/ }; do if [ "$p" -gt 0 ]; then tests="$tests $p:0"; fi; done
    for n in ${gens//,/ }; do if [ "$n" -gt 0 ]; then tests="$tests 0:$n"; fi; done
    for pn in $tests; do
      p=${pn%:*} n=${pn#*:}
      id=$(printf %04d $i)
      ember() { "$EMBER_BENCH" -m "$model" -t "$t" -p "$p" -n "$n" -r "$reps" -o json >"$work/$id.ember.json"; }
      llama() {
        "$LLAMA_BENCH" -m "$model" -t "$t" -p "$p" -n "$n" -r "$reps" -o json >"$work/$id.llama.json" 2>"$work/$id.llama.log" \
          || { cat "$work/$id.llama.log" >&2; exit 1; }
      }
      if [ $((i % 2)) -eq 0 ]; then ember; llama; else llama; ember; fi
      echo "done: $(basename "$model") $([ "$p" -gt 0 ] && echo "pp$p" || echo "tg$n") -t $t" >&2
      i=$((i + 1))
    done
  done
done

python3 - "$work" "$reps" "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" <<'EOF'
import glob, json, os, sys

work, reps, rev = sys.argv[1:4]
cpu = "unknown"
try:
    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
except OSError:
    pass

def one(path):
    with open(path) as f:
        rows = json.load(f)
    if len(rows) != 1:
        sys.exit(f"{path}: expected one test, got {len(rows)}")
    return rows[0]

print(f"ember ({rev}) vs llama.cpp | CPU: {cpu} ({os.cpu_count()} hardware threads) | {reps} runs a test, mean ± stddev\n")
print("| model | size | test | threads | ember t/s | llama.cpp t/s | ember ÷ llama.cpp | read bandwidth | ember decode | llama.cpp decode |")
print("|:--|--:|:--|--:|--:|--:|--:|--:|--:|--:|")
for path in sorted(glob.glob(os.path.join(work, "*.ember.json"))):
    e, l = one(path), one(path.replace(".ember.json", ".llama.json"))
    test = f"pp{e['n_prompt']}" if e["n_prompt"] else f"tg{e['n_gen']}"
    ratio = e["avg_ts"] / l["avg_ts"] if l["avg_ts"] else float("nan")
    bw = gb_e = gb_l = "–"
    if not e["n_prompt"]:  # decode: bytes read per second, against the bandwidth ember measured just before
        read = e["read_bw_gbs"]
        bw = f"{read:.1f} GB/s"
        gl = l["avg_ts"] * l["model_size"] / 1e9
        gb_e = f"{e['achieved_gbs']:.1f} GB/s ({e['pct_of_read_bw']:.0f}%)"
        gb_l = f"{gl:.1f} GB/s ({100 * gl / read:.0f}%)" if read else f"{gl:.1f} GB/s"
    print(f"| {os.path.basename(e['model_filename'])} | {e['model_size'] / 2**20:.0f} MiB | {test} | {e['n_threads']} "
          f"| {e['avg_ts']:.2f} ± {e['stddev_ts']:.2f} | {l['avg_ts']:.2f} ± {l['stddev_ts']:.2f} | {ratio:.2f} "
          f"| {bw} | {gb_e} | {gb_l} |")
EOF
