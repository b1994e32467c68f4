#!/bin/sh
# Every kernel of the CUDA backend, compiled to PTX here (no GPU needed), must still store to global memory
# and hold no trap: a kernel whose body nvcc proved undefined (e.g. a helper that calls itself) compiles
# silently to an empty loop, which only a GPU run would otherwise reveal.
#   cuda_ptx_check.sh NVCC SOURCE_DIR FILE.cu...
set -eu
nvcc=$1 src=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for f in "$@"; do
    out="$tmp/$(basename "$f").ptx"
    "$nvcc" -std=c++17 -O3 -arch=compute_90 -ptx -I "$src/lib" -I "$src/include" "$src/$f" -o "$out"
    awk -v file="$f" '
        /^(\.visible )?\.entry / { name = $NF; sub(/\($/, "", name); n++; stores[name] = 0; traps[name] = 0 }
        /st\.global/ { stores[name]++ }
        /[ \t]trap;/ { traps[name]++ }
        END {
            bad = 0
            for (k in stores) if (stores[k] == 0 || traps[k] > 0) { print file ": kernel " k " stores nothing or traps"; bad = 1 }
            print file ": " n " kernels checked"
            exit bad
        }' "$out" || status=1
done
exit $status
